#pragma once
// A worker: a plain process that repeats "lease a member, run Algorithm 1 for one
// interval, publish, release" until every member is done. Nothing orchestrates it.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "pbt/config.hpp"
#include "pbt/store.hpp"

namespace pbt {

struct WorkerOptions {
  std::string id;                               // unique per process (host:pid by default)
  double idle_sleep_seconds = 0.05;             // wait when every free member is held by others
  double store_retry_seconds = 1.0;             // wait after the store failed, before trying again
  std::int64_t max_intervals = -1;              // stop after this many intervals (-1: until done)
  std::atomic<bool>* stop = nullptr;            // set to ask the worker to stop after its interval
  std::function<void(const std::string&)> log;  // one line per event worth a log line
};

struct WorkerStats {
  std::int64_t intervals = 0;
  std::int64_t exploits = 0;
  std::int64_t lost_leases = 0;
  std::int64_t failed_intervals = 0;
  std::int64_t trainables_built = 0;  // new trainables (for a process trainer: processes started)
  std::int64_t member_switches = 0;   // times a kept trainable went on to serve another member
};

// Creates the experiment in the store from the config unless it exists already (then
// checks the stored config is the same text). Returns true when it was created.
bool create_or_join(Store& store, const ExperimentConfig& config);

// The config an experiment was created with, parsed from the store's copy. That copy was
// checked when it was stored, so a failure here is about the stored copy (damaged, or
// refused by this version of pbt): a StoreError naming the experiment and the copy, not a
// ConfigError in the user's file (which may have changed since, or be elsewhere).
ExperimentConfig stored_config(const ExperimentInfo& info);

// Runs until the experiment is done (or max_intervals / stop). The config is read from
// the store, so any process that can reach the store can join.
WorkerStats run_worker(Store& store, const std::string& experiment, const WorkerOptions& options);

// A unique worker id for this process: "host:pid".
std::string default_worker_id();

}  // namespace pbt
