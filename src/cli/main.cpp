// pbt: the command line. Thin: parse, dispatch, report errors.
#include <unistd.h>

#include <climits>
#include <iostream>
#include <limits>

#include <CLI/CLI.hpp>

#include "cli/commands.hpp"
#include "cli/report_commands.hpp"
#include "pbt/error.hpp"
#ifdef PBT_WITH_TORCH
#include "trainables/torch/torch_trainables.hpp"
#endif

namespace {
std::string self_exe(const char* argv0) {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n > 0) return std::string(buf, n);
  return argv0;
}

void add_target(CLI::App* cmd, pbt::cli::Target& t) {
  cmd->add_option("--run", t.run_dir, "run directory (holds store.db)");
  cmd->add_option("--store", t.store, "store URI instead of a run directory (sqlite:PATH)");
  cmd->add_option("--experiment", t.experiment, "experiment name (needed when the store holds several)");
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pbt: Population Based Training (Jaderberg et al., 2017)"};
  app.require_subcommand(1);

  std::string config, run_dir, store, experiment, id, log_path, export_path;
  int workers = 0;
  long max_intervals = -1;
  bool quiet = false, json = false;
  pbt::cli::Target target;

  auto* run = app.add_subcommand("run", "create (or resume) a run and train it with local worker processes");
  run->add_option("config", config, "experiment config (TOML)")->required();
  run->add_option("--run", run_dir, "run directory (default: runs/<name>)");
  run->add_option("--workers", workers, "local worker processes (default: the config's workers.count)")
      ->check(CLI::Range(1, 100000));
  run->add_flag("--quiet", quiet, "no progress line");

  auto* create = app.add_subcommand("create", "create a run without starting workers (join with `pbt worker`)");
  create->add_option("config", config, "experiment config (TOML)")->required();
  create->add_option("--run", run_dir, "run directory (default: runs/<name>)");

  auto* worker = app.add_subcommand("worker", "join an existing experiment as one worker process");
  worker->add_option("--store", store, "store URI (sqlite:PATH)")->required();
  worker->add_option("--experiment", experiment, "experiment name")->required();
  worker->add_option("--id", id, "worker id (default host:pid)");
  worker->add_option("--log", log_path, "append log lines to this file (default: stderr)");
  worker->add_option("--max-intervals", max_intervals, "stop after this many intervals")
      ->check(CLI::Range(0L, std::numeric_limits<long>::max()));

  auto* status = app.add_subcommand("status", "the population now: step, score, h, who holds each member");
  add_target(status, target);
  status->add_flag("--json", json, "machine-readable output");

  auto* best = app.add_subcommand("best", "the best member: score, h, checkpoint");
  add_target(best, target);
  best->add_flag("--json", json, "machine-readable output");
  best->add_option("--export", export_path, "write the best member's checkpoint bytes to this file");

  auto* events = app.add_subcommand("events", "the lineage: every exploit and explore");
  add_target(events, target);
  events->add_flag("--json", json, "machine-readable output (JSON lines)");

  int replay_member = -1;
  auto* replay = app.add_subcommand("replay", "retrain one member from scratch on the schedule it inherited");
  add_target(replay, target);
  replay->add_option("--member", replay_member, "member to replay (default: the best)")
      ->check(CLI::Range(0, 100000));
  replay->add_flag("--json", json, "machine-readable output");

  auto report_commands = pbt::cli::add_report_commands(app);  // report, dashboard, export

  // A usage error exits 2 like a config error (CLI11's own codes, 100 and up, are not
  // documented); --help prints and exits 0.
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
#ifdef PBT_WITH_TORCH
    pbt::register_torch_trainables();
#endif
    if (report_commands->selected()) return report_commands->run();
    if (*run) return pbt::cli::run(config, run_dir, workers, quiet, self_exe(argv[0]));
    if (*create) return pbt::cli::create(config, run_dir);
    if (*worker) return pbt::cli::worker(store, experiment, id, log_path, max_intervals);
    if (*status) return pbt::cli::status(target, json);
    if (*best) return pbt::cli::best(target, json, export_path);
    if (*events) return pbt::cli::events(target, json);
    if (*replay) return pbt::cli::replay(target, replay_member, json);
  } catch (const pbt::ConfigError& e) {
    std::cerr << "pbt: config error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "pbt: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
