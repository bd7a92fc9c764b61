// `pbt worker`: joins an existing experiment as one worker process.
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <limits>

#include "pbt/pbt.hpp"
#include "pbt/version.hpp"
#include "cli/commands.hpp"
#include "cli/gpus.hpp"
#include "cli/print.hpp"

namespace pbt::cli {

namespace {

int worker(const std::string& uri, const std::string& experiment, const std::string& id, const std::string& log_path,
           long max_intervals, const std::string& gpus) {
  // Before anything starts a thread or a trainer: they all see only these devices.
  if (!gpus.empty() && setenv("CUDA_VISIBLE_DEVICES", gpus_text(parse_gpus(gpus, "--gpus")).c_str(), 1) != 0)
    throw Error(std::string("cannot set CUDA_VISIBLE_DEVICES: ") + std::strerror(errno));
  std::atomic<bool>& stop = stop_on_signals();
  std::ofstream log_file;
  if (!log_path.empty()) {
    log_file.open(log_path, std::ios::app);
    if (!log_file) throw Error("cannot open the log file '" + log_path + "': " + std::strerror(errno));
  }
  std::ostream& log = log_path.empty() ? std::cerr : log_file;
  WorkerOptions opt;
  opt.id = id.empty() ? default_worker_id() : id;
  opt.log = [&](const std::string& line) { log << now_text() << " [" << opt.id << "] " << line << std::endl; };
  opt.log(version_text());                // first line: which pbt wrote this log, and what it speaks
  auto store = open_existing_store(uri);  // a typo names no store; it never makes an empty one
  opt.max_intervals = max_intervals;
  opt.stop = &stop;
  const char* devices = std::getenv("CUDA_VISIBLE_DEVICES");
  opt.log("joined experiment '" + experiment + "' on " + redact_uri(uri) +
          (devices ? std::string(", CUDA_VISIBLE_DEVICES=") + devices : std::string()));
  WorkerStats s = run_worker(*store, experiment, opt);
  opt.log("leaving: " + std::to_string(s.intervals) + " intervals, " + std::to_string(s.exploits) + " exploits, " +
          std::to_string(s.lost_leases) + " lost leases, " + std::to_string(s.failed_intervals) + " failed intervals");
  return 0;
}

}  // namespace

Command add_worker(CLI::App& app) {
  struct Args {
    std::string store, experiment, id, log_path;
    long max_intervals = -1;
    std::string gpus;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("worker", "join an existing experiment as one worker process");
  cmd->add_option("--store", a->store, "store URI (sqlite:PATH)")->required();
  cmd->add_option("--experiment", a->experiment, "experiment name")->required();
  cmd->add_option("--id", a->id, "worker id (default host:pid)");
  cmd->add_option("--log", a->log_path, "append log lines to this file (default: stderr)");
  cmd->add_option("--max-intervals", a->max_intervals, "stop after this many intervals")
      ->check(CLI::Range(0L, std::numeric_limits<long>::max()));
  cmd->add_option("--gpus", a->gpus,
                  "GPU ids, e.g. 2 or 0,1: sets CUDA_VISIBLE_DEVICES for this worker and its trainers "
                  "(default: the environment's, as a launcher such as Slurm set it)");
  return {cmd, [a] { return worker(a->store, a->experiment, a->id, a->log_path, a->max_intervals, a->gpus); }};
}

}  // namespace pbt::cli
