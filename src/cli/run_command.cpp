// `pbt run` and `pbt create`: make (or find) a run from a config; `run` also trains it with
// local worker processes (cli/supervisor.hpp) and prints their progress and a summary.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "pbt/pbt.hpp"
#include "cli/commands.hpp"
#include "cli/gpus.hpp"
#include "cli/print.hpp"
#include "cli/supervisor.hpp"
#include "core/atomic_file.hpp"

namespace fs = std::filesystem;

namespace pbt::cli {

namespace {

struct Prepared {
  ExperimentConfig cfg;
  std::string run_dir, uri;
  std::unique_ptr<Store> store;
  bool created = false;
};

// Reads the config, makes the run directory and creates (or finds) the experiment.
// `gpus` (--gpus, "" if not given) replaces the config's [workers] gpus.
Prepared prepare(const std::string& config_path, const std::string& run_dir_in, int workers,
                 const std::string& gpus = "") {
  Prepared p;
  p.cfg = load_config(config_path);
  if (workers > 0) {
    const std::string why = workers_problem(workers, p.cfg.population);
    if (!why.empty()) throw ConfigError("--workers", why);
    p.cfg.workers = workers;
  }
  if (!gpus.empty()) p.cfg.gpus = parse_gpus(gpus, "--gpus");
  if (!p.cfg.gpus.empty()) {
    const std::string why = gpus_problem(p.cfg.workers, p.cfg.gpus.size(), p.cfg.workers_per_gpu);
    if (!why.empty()) throw ConfigError(!gpus.empty() ? "--gpus" : "--workers", why);
  }
  p.run_dir = run_dir_in.empty() ? (fs::path("runs") / p.cfg.name).string() : run_dir_in;
  fs::create_directories(fs::path(p.run_dir) / "logs");
  p.uri = p.cfg.store.empty() ? sqlite_uri(p.run_dir) : p.cfg.store;
  p.store = open_store(p.uri);
  p.created = create_or_join(*p.store, p.cfg);
  write_file_atomically((fs::path(p.run_dir) / "config.toml").string(), p.cfg.text);
  return p;
}

int create(const std::string& config_path, const std::string& run_dir) {
  Prepared p = prepare(config_path, run_dir, 0);
  std::cout << (p.created ? "created" : "already there:") << " experiment '" << p.cfg.name << "' (" << p.cfg.population
            << " members) in " << redact_uri(p.uri) << "\n"
            << "join it from any process that reaches the store:\n"
            << "  pbt worker --store " << redact_uri(p.uri) << " --experiment " << p.cfg.name << "\n";
  return 0;
}

std::string describe_exit(int wstatus) {
  if (WIFSIGNALED(wstatus)) return "was killed by signal " + std::to_string(WTERMSIG(wstatus));
  return "exited with status " + std::to_string(WEXITSTATUS(wstatus));
}

std::string last_lines(const std::string& path, int n) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  std::string out;
  for (std::size_t i = lines.size() > static_cast<std::size_t>(n) ? lines.size() - n : 0; i < lines.size(); ++i)
    out += "    " + lines[i] + "\n";
  return out;
}

// What `pbt run` shows while its workers run: a progress line (rewritten in place on a
// terminal, at most every 10 s otherwise) and what the supervisor reports.
class RunPrinter : public SupervisorEvents {
 public:
  RunPrinter(Store& store, const ExperimentConfig& cfg, bool quiet)
      : store_(store), cfg_(cfg), quiet_(quiet), tty_(isatty(STDOUT_FILENO) && !quiet) {}

  bool tty() const { return tty_; }

  void worker_failed(pid_t pid, int wait_status, const std::string& log) override {
    if (tty_) std::cout << "\n";
    std::cout << "worker " << pid << " " << describe_exit(wait_status) << "; its log (" << log << ") ends:\n"
              << last_lines(log, 5) << std::flush;
  }
  void replacing(int restarts, int max_restarts) override {
    std::cout << "starting a replacement worker (" << restarts << " of at most " << max_restarts << ")\n";
  }
  void killing(std::size_t running, std::chrono::seconds grace) override {
    if (tty_) std::cout << "\n";
    std::cout << running << " worker(s) still running " << grace.count()
              << " s after the interrupt; killing them (their current intervals are lost)\n"
              << std::flush;
  }
  void poll(std::size_t running) override { progress(running, false); }

  // `force`: print the line even if nothing changed or it is not time yet (the last one).
  void progress(std::size_t running, bool force) {
    auto pop = store_.population(cfg_.name);
    int done = 0, failed = 0;
    std::int64_t steps = 0;
    for (const auto& m : pop) {
      done += m.done;
      failed += m.failed;
      steps += m.step;
    }
    const MemberState* b = best_member(pop);
    std::ostringstream s;
    s << "[" << cfg_.name << "] members done " << done << "/" << pop.size()
      << (failed ? ", failed " + std::to_string(failed) : "") << ", steps " << steps << "/"
      << cfg_.budget_steps * static_cast<std::int64_t>(pop.size()) << ", best "
      << (b ? fmt_score(b->score) + " (member " + std::to_string(b->id) + ")" : "-") << ", workers " << running;
    const std::string text = s.str();
    if (quiet_) return;
    if (tty_) {
      std::cout << "\r" << text << "\033[K" << std::flush;
    } else if (force ||
               (text != last_text_ && std::chrono::steady_clock::now() - last_line_ > std::chrono::seconds(10))) {
      // Not a terminal: a line at most every 10 s, so logs stay readable.
      std::cout << now_text() << " " << text << "\n" << std::flush;
      last_line_ = std::chrono::steady_clock::now();
      last_text_ = text;
    }
  }

 private:
  Store& store_;
  const ExperimentConfig& cfg_;
  const bool quiet_;
  const bool tty_;
  std::chrono::steady_clock::time_point last_line_ = std::chrono::steady_clock::now() - std::chrono::hours(1);
  std::string last_text_;
};

// The end of `pbt run`: how far the experiment got, its population and best member.
struct Outcome {
  bool complete = false;  // every member done or failed, or the target score reached
  int failed = 0;
};
Outcome print_summary(Store& store, const ExperimentConfig& cfg, const std::string& run_dir) {
  auto pop = store.population(cfg.name);
  auto exp = store.experiment(cfg.name);
  int done = 0, failed = 0;
  for (const auto& m : pop) {
    done += m.done;
    failed += m.failed;
  }
  const bool complete = done + failed == static_cast<int>(pop.size()) || (exp && exp->finished);

  std::cout << "\n"
            << (complete ? "finished" : "stopped") << ": experiment '" << cfg.name << "', " << done << "/" << pop.size()
            << " members reached the budget" << (exp && exp->finished ? " (target score reached)" : "")
            << (failed ? ", " + std::to_string(failed) + " failed (see below and the worker logs)" : "") << "\n\n";
  print_population(std::cout, pop, trained_of(lineage_of(store, cfg), pop), store.now(), false);
  if (const MemberState* b = best_member(pop)) {
    std::cout << "\nbest: member " << b->id << ", score " << fmt_score(b->score) << " at step " << b->step
              << ", h: " << to_string(b->h) << "\n";
  }
  std::cout << "exploit/explore events: " << store.events(cfg.name).size() << "\n"
            << "see: pbt status --run " << run_dir << " | pbt best --run " << run_dir << " | pbt events --run "
            << run_dir << "\n";
  return {complete, failed};
}

int run(const std::string& config_path, const std::string& run_dir_in, int workers, const std::string& gpus, bool quiet,
        const std::string& self_exe) {
  Prepared p = prepare(config_path, run_dir_in, workers, gpus);
  const ExperimentConfig& cfg = p.cfg;
  std::cout << (p.created ? "created" : "resuming") << " experiment '" << cfg.name << "' (" << cfg.population
            << " members, " << cfg.budget_steps << " steps each) in " << p.run_dir << "\n"
            << "starting " << cfg.workers << " worker process" << (cfg.workers == 1 ? "" : "es") << "; logs in "
            << (fs::path(p.run_dir) / "logs").string() << "\n";
  if (!cfg.gpus.empty())
    std::cout << "GPUs " << gpus_text(cfg.gpus) << ", at most " << cfg.workers_per_gpu
              << " worker(s) each: worker slot i sees only GPU gpus[i % " << cfg.gpus.size() << "]\n";
  std::cout << std::flush;

  std::atomic<bool>& stop = stop_on_signals();
  RunPrinter printer(*p.store, cfg, quiet);
  SupervisorOptions opt;
  opt.exe = self_exe;
  opt.uri = p.uri;
  opt.experiment = cfg.name;
  opt.log_dir = (fs::path(p.run_dir) / "logs").string();
  opt.workers = cfg.workers;
  opt.gpus = cfg.gpus;
  opt.max_restarts = 3 * cfg.workers;
  opt.poll_every = std::chrono::milliseconds(printer.tty() ? 250 : 500);
  opt.stop = &stop;
  supervise(*p.store, opt, printer);
  printer.progress(0, true);
  if (printer.tty()) std::cout << "\n";

  const Outcome o = print_summary(*p.store, cfg, p.run_dir);
  if (!o.complete) return stop ? 130 : 1;
  return o.failed ? 1 : 0;
}

}  // namespace

Command add_run(CLI::App& app, const std::string& self_exe) {
  struct Args {
    std::string config, run_dir;
    int workers = 0;
    std::string gpus;
    bool quiet = false;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("run", "create (or resume) a run and train it with local worker processes");
  cmd->add_option("config", a->config, "experiment config (TOML)")->required();
  cmd->add_option("--run", a->run_dir, "run directory (default: runs/<name>)");
  cmd->add_option("--workers", a->workers, "local worker processes (default: the config's workers.count)")
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--gpus", a->gpus,
                  "GPU ids, e.g. 0,1: worker slot i sees only gpus[i % n] through CUDA_VISIBLE_DEVICES "
                  "(default: the config's workers.gpus; none: the environment is left as it is)");
  cmd->add_flag("--quiet", a->quiet, "no progress line");
  return {cmd, [a, self_exe] { return run(a->config, a->run_dir, a->workers, a->gpus, a->quiet, self_exe); }};
}

Command add_create(CLI::App& app) {
  struct Args {
    std::string config, run_dir;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("create", "create a run without starting workers (join with `pbt worker`)");
  cmd->add_option("config", a->config, "experiment config (TOML)")->required();
  cmd->add_option("--run", a->run_dir, "run directory (default: runs/<name>)");
  return {cmd, [a] { return create(a->config, a->run_dir); }};
}

}  // namespace pbt::cli
