#include "cli/supervisor.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <thread>
#include <vector>

#include "pbt/config.hpp"
#include "pbt/error.hpp"

extern char** environ;

namespace fs = std::filesystem;

namespace pbt::cli {

namespace {

// One worker process: `pbt worker ...`, its output appended to its log file; `gpus` not
// empty: it (and every trainer it starts) sees only those devices.
pid_t spawn_worker(const std::string& exe, const std::string& uri, const std::string& experiment,
                   const std::string& log_path, const std::string& gpus) {
  // Built before fork: the child only calls async-signal-safe functions.
  std::vector<std::string> args = {exe, "worker", "--store", uri, "--experiment", experiment};
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e)
    if (gpus.empty() || std::strncmp(*e, "CUDA_VISIBLE_DEVICES=", 21) != 0) env.push_back(*e);
  if (!gpus.empty()) {
    args.insert(args.end(), {"--gpus", gpus});
    env.push_back("CUDA_VISIBLE_DEVICES=" + gpus);
  }
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) throw Error(std::string("cannot start a worker process: ") + std::strerror(errno));
  if (pid == 0) {
    int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    execve(exe.c_str(), argv.data(), envp.data());
    std::perror("pbt: exec worker");
    _exit(127);
  }
  return pid;
}

// Whether a member still has steps to train and the experiment goes on.
bool work_left(Store& store, const std::string& experiment) {
  auto exp = store.experiment(experiment);
  bool left = false;
  for (const auto& m : store.population(experiment)) left |= !m.done && !m.failed;
  return left && exp && !exp->finished;
}

}  // namespace

void supervise(Store& store, const SupervisorOptions& opt, SupervisorEvents& events) {
  struct Child {
    std::string log;
    int slot;  // its place among opt.workers: what decides its GPU
  };
  std::map<pid_t, Child> children;
  int started = 0;
  auto start_one = [&](int slot) {
    std::string log = (fs::path(opt.log_dir) / ("worker-" + std::to_string(started) + ".log")).string();
    const std::string gpus = opt.gpus.empty() ? "" : std::to_string(gpu_of_slot(opt.gpus, slot));
    children[spawn_worker(opt.exe, opt.uri, opt.experiment, log, gpus)] = {log, slot};
    ++started;
  };
  for (int i = 0; i < opt.workers; ++i) start_one(i);

  int restarts = 0;
  std::optional<std::chrono::steady_clock::time_point> stop_since;  // when the interrupt came
  bool killing = false;
  auto stopping = [&] { return opt.stop && *opt.stop; };
  while (!children.empty()) {
    int wstatus = 0;
    pid_t pid = waitpid(-1, &wstatus, WNOHANG);
    if (pid > 0 && children.count(pid)) {
      const std::string log = children[pid].log;
      const int slot = children[pid].slot;
      children.erase(pid);
      const bool clean = WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0;
      if (!clean) {
        events.worker_failed(pid, wstatus, log);
        if (work_left(store, opt.experiment) && !stopping() && restarts < opt.max_restarts) {
          ++restarts;
          events.replacing(restarts, opt.max_restarts);
          start_one(slot);
        }
      }
      continue;
    }
    if (stopping()) {
      // A killed worker's interval is lost; its member's lease expires and a later run takes it up.
      const auto now = std::chrono::steady_clock::now();
      if (!stop_since) stop_since = now;
      const bool overdue = now - *stop_since >= opt.stop_grace;
      if (overdue && !killing) {
        killing = true;
        events.killing(children.size(), opt.stop_grace);
      }
      for (auto& [p, child] : children) kill(p, overdue ? SIGKILL : SIGTERM);
    }
    events.poll(children.size());
    std::this_thread::sleep_for(opt.poll_every);
  }
}

}  // namespace pbt::cli
