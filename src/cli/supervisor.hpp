#pragma once
// `pbt run`'s local worker processes: started, a dead one replaced while work is left, all
// stopped on an interrupt. The supervisor prints nothing: it reports what happens to a
// SupervisorEvents, and the caller decides what the user sees.
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "pbt/store.hpp"

namespace pbt::cli {

class SupervisorEvents {
 public:
  virtual ~SupervisorEvents() = default;
  // A worker ended other than with status 0 (`wait_status` as waitpid gives it); its
  // output went to `log`.
  virtual void worker_failed(pid_t pid, int wait_status, const std::string& log) = 0;
  // A replacement for it is about to start: the `restarts`-th of at most `max_restarts`.
  virtual void replacing(int restarts, int max_restarts) = 0;
  // `running` workers are still there `grace` after the interrupt and are about to be killed.
  virtual void killing(std::size_t running, std::chrono::seconds grace) = 0;
  // Once per poll while workers run.
  virtual void poll(std::size_t running) = 0;
};

struct SupervisorOptions {
  std::string exe;  // the `pbt` executable: each worker is `exe worker --store uri --experiment name`
  std::string uri;
  std::string experiment;
  std::string log_dir;  // worker N appends to log_dir/worker-N.log
  int workers = 1;
  // Worker slot i (a replacement takes its slot) runs with CUDA_VISIBLE_DEVICES and
  // --gpus set to gpus[i % size]; empty: the environment is passed on as it is.
  std::vector<int> gpus;
  int max_restarts = 3;  // replacements in all
  std::chrono::milliseconds poll_every{500};
  // After an interrupt a worker stops after its interval; one still running this long
  // after it (a long interval, a trainer that does not answer) is killed.
  std::chrono::seconds stop_grace{10};
  const std::atomic<bool>* stop = nullptr;  // set by the interrupt
};

// Returns when every worker has exited. `store` says whether work is left to replace a dead one for.
void supervise(Store& store, const SupervisorOptions& opt, SupervisorEvents& events);

}  // namespace pbt::cli
