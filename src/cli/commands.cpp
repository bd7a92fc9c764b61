#include "cli/commands.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include "core/atomic_file.hpp"
#include "pbt/pbt.hpp"

namespace fs = std::filesystem;

namespace pbt::cli {

namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

std::string now_text() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", std::localtime(&t));
  return buf;
}

std::string sqlite_uri(const std::string& run_dir) { return "sqlite:" + (fs::path(run_dir) / "store.db").string(); }

std::string fmt_score(const std::optional<double>& s) {
  if (!s) return "-";
  std::ostringstream o;
  o << std::setprecision(6) << *s;
  return o.str();
}

nlohmann::json score_json(const std::optional<double>& s) { return s ? nlohmann::json(*s) : nlohmann::json(nullptr); }

const MemberState* best_member(const std::vector<MemberState>& pop) {
  const MemberState* best = nullptr;
  for (const auto& m : pop)
    if (m.score && (!best || *m.score > *best->score)) best = &m;
  return best;
}

// One worker process: `pbt worker ...`, its output appended to its log file.
pid_t spawn_worker(const std::string& exe, const std::string& uri, const std::string& experiment,
                   const std::string& log_path) {
  pid_t pid = fork();
  if (pid < 0) throw Error(std::string("cannot start a worker process: ") + std::strerror(errno));
  if (pid == 0) {
    int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    std::vector<std::string> args = {exe, "worker", "--store", uri, "--experiment", experiment};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(exe.c_str(), argv.data());
    std::perror("pbt: exec worker");
    _exit(127);
  }
  return pid;
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

void print_population(std::ostream& out, const std::vector<MemberState>& pop, double now, bool show_owner) {
  out << std::left << std::setw(8) << "member" << std::setw(8) << "step" << std::setw(14) << "score";
  if (show_owner) out << std::setw(22) << "held by";
  out << "hyperparameters\n";
  for (const auto& m : pop) {
    out << std::left << std::setw(8) << m.id << std::setw(8) << m.step << std::setw(14) << fmt_score(m.score);
    if (show_owner) {
      std::string held = m.done     ? "(done)"
                         : m.failed ? "(failed)"
                                    : (!m.owner.empty() && m.lease_expires > now ? m.owner : "-");
      out << std::setw(22) << held;
    }
    out << to_string(m.h) << "\n";
  }
  for (const auto& m : pop)
    if (m.failed)
      out << "member " << m.id << " FAILED after " << m.failures << " failed intervals at step " << m.step
          << ": " << m.last_error << "\n";
}

}  // namespace

Opened open_target(const Target& t) {
  std::string uri = t.store;
  if (uri.empty()) {
    if (t.run_dir.empty()) throw Error("say which run: --run DIR (or --store URI)");
    if (!fs::exists(fs::path(t.run_dir) / "store.db"))
      throw Error("no run in '" + t.run_dir + "' (no store.db there); start one with `pbt run CONFIG --run " +
                  t.run_dir + "`");
    uri = sqlite_uri(t.run_dir);
  }
  // Readers open what is there: a typo must not leave a new, empty store behind.
  Opened o{open_existing_store(uri), t.experiment};
  if (o.experiment.empty()) {
    auto names = o.store->experiments();
    if (names.size() != 1) {
      std::string list;
      for (const auto& n : names) list += " " + n;
      throw Error("the store holds " + std::to_string(names.size()) + " experiments; choose one with --experiment" +
                  (list.empty() ? "" : " (" + list.substr(1) + ")"));
    }
    o.experiment = names[0];
  } else if (!o.store->experiment(o.experiment)) {
    throw Error("the store has no experiment named '" + o.experiment + "'");
  }
  return o;
}

namespace {
struct Prepared {
  ExperimentConfig cfg;
  std::string run_dir, uri;
  std::unique_ptr<Store> store;
  bool created = false;
};

// Reads the config, makes the run directory and creates (or finds) the experiment.
Prepared prepare(const std::string& config_path, const std::string& run_dir_in, int workers) {
  Prepared p;
  p.cfg = load_config(config_path);
  if (workers > 0) {
    if (workers > p.cfg.population)
      throw ConfigError("--workers", std::to_string(workers) + " workers for " + std::to_string(p.cfg.population) +
                                         " members: at most one worker per member");
    p.cfg.workers = workers;
  }
  p.run_dir = run_dir_in.empty() ? (fs::path("runs") / p.cfg.name).string() : run_dir_in;
  fs::create_directories(fs::path(p.run_dir) / "logs");
  p.uri = p.cfg.store.empty() ? sqlite_uri(p.run_dir) : p.cfg.store;
  p.store = open_store(p.uri);
  p.created = create_or_join(*p.store, p.cfg);
  write_file_atomically((fs::path(p.run_dir) / "config.toml").string(), p.cfg.text);
  return p;
}
}  // namespace

int create(const std::string& config_path, const std::string& run_dir) {
  Prepared p = prepare(config_path, run_dir, 0);
  std::cout << (p.created ? "created" : "already there:") << " experiment '" << p.cfg.name << "' ("
            << p.cfg.population << " members) in " << redact_uri(p.uri) << "\n"
            << "join it from any process that reaches the store:\n"
            << "  pbt worker --store " << redact_uri(p.uri) << " --experiment " << p.cfg.name << "\n";
  return 0;
}

int run(const std::string& config_path, const std::string& run_dir_in, int workers, bool quiet,
        const std::string& self_exe) {
  Prepared p = prepare(config_path, run_dir_in, workers);
  const ExperimentConfig& cfg = p.cfg;
  const std::string& run_dir = p.run_dir;
  const std::string& uri = p.uri;
  auto& store = p.store;
  std::cout << (p.created ? "created" : "resuming") << " experiment '" << cfg.name << "' (" << cfg.population
            << " members, " << cfg.budget_steps << " steps each) in " << run_dir << "\n"
            << "starting " << cfg.workers << " worker process" << (cfg.workers == 1 ? "" : "es") << "; logs in "
            << (fs::path(run_dir) / "logs").string() << "\n"
            << std::flush;

  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);

  struct Child {
    pid_t pid;
    std::string log;
  };
  std::map<pid_t, Child> children;
  int started = 0;
  auto start_one = [&] {
    std::string log = (fs::path(run_dir) / "logs" / ("worker-" + std::to_string(started) + ".log")).string();
    pid_t pid = spawn_worker(self_exe, uri, cfg.name, log);
    children[pid] = {pid, log};
    ++started;
  };
  for (int i = 0; i < cfg.workers; ++i) start_one();

  const bool tty = isatty(STDOUT_FILENO) && !quiet;
  const int max_restarts = 3 * cfg.workers;
  int restarts = 0;
  int failures = 0;
  auto last_line = std::chrono::steady_clock::now() - std::chrono::hours(1);
  constexpr auto kStopGrace = std::chrono::seconds(10);
  std::optional<std::chrono::steady_clock::time_point> stop_since;  // when the interrupt came
  bool killing = false;
  std::string last_text;
  auto progress = [&](bool force) {
    auto pop = store->population(cfg.name);
    int done = 0, failed = 0;
    std::int64_t steps = 0;
    for (const auto& m : pop) {
      done += m.done;
      failed += m.failed;
      steps += m.step;
    }
    const MemberState* b = best_member(pop);
    std::ostringstream s;
    s << "[" << cfg.name << "] members done " << done << "/" << pop.size()
      << (failed ? ", failed " + std::to_string(failed) : "") << ", steps "
      << steps << "/" << cfg.budget_steps * static_cast<std::int64_t>(pop.size()) << ", best "
      << (b ? fmt_score(b->score) + " (member " + std::to_string(b->id) + ")" : "-") << ", workers "
      << children.size();
    const std::string text = s.str();
    if (quiet) return;
    if (tty) {
      std::cout << "\r" << text << "\033[K" << std::flush;
    } else if (force || (text != last_text && std::chrono::steady_clock::now() - last_line > std::chrono::seconds(10))) {
      // Not a terminal: a line at most every 10 s, so logs stay readable.
      std::cout << now_text() << " " << text << "\n" << std::flush;
      last_line = std::chrono::steady_clock::now();
      last_text = text;
    }
  };

  while (!children.empty()) {
    int wstatus = 0;
    pid_t pid = waitpid(-1, &wstatus, WNOHANG);
    if (pid > 0 && children.count(pid)) {
      Child c = children[pid];
      children.erase(pid);
      const bool clean = WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0;
      if (!clean) {
        ++failures;
        if (tty) std::cout << "\n";
        std::cout << "worker " << pid << " " << describe_exit(wstatus) << "; its log (" << c.log << ") ends:\n"
                  << last_lines(c.log, 5) << std::flush;
        auto exp = store->experiment(cfg.name);
        bool work_left = false;
        for (const auto& m : store->population(cfg.name)) work_left |= !m.done && !m.failed;
        if (!g_stop && work_left && exp && !exp->finished && restarts < max_restarts) {
          ++restarts;
          std::cout << "starting a replacement worker (" << restarts << " of at most " << max_restarts << ")\n";
          start_one();
        }
      }
      continue;
    }
    if (g_stop) {
      // A worker stops after its interval; one still running kStopGrace after the interrupt
      // (a long interval, a trainer that does not answer) is killed, so that `pbt run` always
      // ends. Its interval is lost; its member's lease expires and a later run takes it up.
      const auto now = std::chrono::steady_clock::now();
      if (!stop_since) stop_since = now;
      const bool overdue = now - *stop_since >= kStopGrace;
      if (overdue && !killing) {
        killing = true;
        if (tty) std::cout << "\n";
        std::cout << children.size() << " worker(s) still running "
                  << std::chrono::duration_cast<std::chrono::seconds>(kStopGrace).count()
                  << " s after the interrupt; killing them (their current intervals are lost)\n"
                  << std::flush;
      }
      for (auto& [child, c] : children) kill(child, overdue ? SIGKILL : SIGTERM);
    }
    progress(false);
    std::this_thread::sleep_for(std::chrono::milliseconds(tty ? 250 : 500));
  }
  progress(true);
  if (tty) std::cout << "\n";

  auto pop = store->population(cfg.name);
  auto exp = store->experiment(cfg.name);
  int done = 0, failed = 0;
  for (const auto& m : pop) {
    done += m.done;
    failed += m.failed;
  }
  const bool complete = done + failed == static_cast<int>(pop.size()) || (exp && exp->finished);

  std::cout << "\n" << (complete ? "finished" : "stopped") << ": experiment '" << cfg.name << "', " << done << "/"
            << pop.size() << " members reached the budget" << (exp && exp->finished ? " (target score reached)" : "")
            << (failed ? ", " + std::to_string(failed) + " failed (see below and the worker logs)" : "") << "\n\n";
  print_population(std::cout, pop, store->now(), false);
  if (const MemberState* b = best_member(pop)) {
    std::cout << "\nbest: member " << b->id << ", score " << fmt_score(b->score) << " at step " << b->step
              << ", h: " << to_string(b->h) << "\n";
  }
  std::cout << "exploit/explore events: " << store->events(cfg.name).size() << "\n"
            << "see: pbt status --run " << run_dir << " | pbt best --run " << run_dir << " | pbt events --run "
            << run_dir << "\n";
  if (!complete) return g_stop ? 130 : 1;
  return failed ? 1 : 0;
}

int worker(const std::string& uri, const std::string& experiment, const std::string& id,
           const std::string& log_path, long max_intervals) {
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  std::ofstream log_file;
  if (!log_path.empty()) {
    log_file.open(log_path, std::ios::app);
    if (!log_file) throw Error("cannot open the log file '" + log_path + "': " + std::strerror(errno));
  }
  std::ostream& log = log_path.empty() ? std::cerr : log_file;
  auto store = open_existing_store(uri);  // a typo names no store; it never makes an empty one
  WorkerOptions opt;
  opt.id = id.empty() ? default_worker_id() : id;
  opt.max_intervals = max_intervals;
  opt.stop = &g_stop;
  opt.log = [&](const std::string& line) { log << now_text() << " [" << opt.id << "] " << line << std::endl; };
  opt.log("joined experiment '" + experiment + "' on " + redact_uri(uri));
  WorkerStats s = run_worker(*store, experiment, opt);
  opt.log("leaving: " + std::to_string(s.intervals) + " intervals, " + std::to_string(s.exploits) + " exploits, " +
          std::to_string(s.lost_leases) + " lost leases, " + std::to_string(s.failed_intervals) + " failed intervals");
  return 0;
}

int status(const Target& target, bool json) {
  Opened o = open_target(target);
  auto info = o.store->experiment(o.experiment);
  auto pop = o.store->population(o.experiment);
  const double now = o.store->now();
  ExperimentConfig cfg = stored_config(*info);
  if (json) {
    nlohmann::json j;
    j["experiment"] = o.experiment;
    j["finished"] = info->finished;
    j["budget_steps"] = cfg.budget_steps;
    j["members"] = nlohmann::json::array();
    for (const auto& m : pop) {
      j["members"].push_back({{"id", m.id},
                              {"step", m.step},
                              {"score", score_json(m.score)},
                              {"h", to_json(m.h)},
                              {"done", m.done},
                              {"failed", m.failed},
                              {"failures", m.failures},
                              {"last_error", m.last_error},
                              {"held_by", (!m.owner.empty() && m.lease_expires > now) ? nlohmann::json(m.owner)
                                                                                       : nlohmann::json(nullptr)},
                              {"last_ready_step", m.last_ready_step},
                              {"checkpoint", m.checkpoint}});
    }
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  int done = 0, failed = 0;
  for (const auto& m : pop) {
    done += m.done;
    failed += m.failed;
  }
  std::cout << "experiment '" << o.experiment << "': " << done << "/" << pop.size() << " members done"
            << (failed ? ", " + std::to_string(failed) + " failed" : "") << ", budget "
            << cfg.budget_steps << " steps" << (info->finished ? ", finished (target score reached)" : "") << "\n\n";
  print_population(std::cout, pop, now, true);
  return 0;
}

int best(const Target& target, bool json, const std::string& export_path) {
  Opened o = open_target(target);
  auto pop = o.store->population(o.experiment);
  const MemberState* b = best_member(pop);
  if (!b) throw Error("no member of '" + o.experiment + "' has a score yet");
  if (!export_path.empty()) {
    write_file_atomically(export_path, o.store->checkpoint(b->checkpoint));
  }
  if (json) {
    nlohmann::json j = {{"experiment", o.experiment}, {"member", b->id},          {"score", *b->score},
                        {"step", b->step},            {"h", to_json(b->h)},       {"checkpoint", b->checkpoint},
                        {"metrics", b->metrics},      {"exported_to", export_path.empty() ? nlohmann::json(nullptr)
                                                                                          : nlohmann::json(export_path)}};
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << "best member of '" << o.experiment << "': " << b->id << "\n"
            << "score: " << fmt_score(b->score) << " at step " << b->step << "\n"
            << "h: " << to_string(b->h) << "\n"
            << "checkpoint: " << b->checkpoint << "\n";
  if (!b->metrics.empty()) std::cout << "metrics: " << b->metrics.dump() << "\n";
  if (!export_path.empty()) std::cout << "exported to " << export_path << "\n";
  return 0;
}

int events(const Target& target, bool json) {
  Opened o = open_target(target);
  auto evs = o.store->events(o.experiment);
  if (json) {
    for (const auto& e : evs) {
      nlohmann::json j = {{"member", e.member},
                          {"step", e.step},
                          {"kind", e.kind},
                          {"donor", e.donor < 0 ? nlohmann::json(nullptr) : nlohmann::json(e.donor)},
                          {"donor_step", e.donor < 0 ? nlohmann::json(nullptr) : nlohmann::json(e.donor_step)},
                          {"copied", e.copied},
                          {"old_h", to_json(e.old_h)},
                          {"new_h", to_json(e.new_h)},
                          {"old_score", e.old_score},
                          {"donor_score", e.donor < 0 ? nlohmann::json(nullptr) : nlohmann::json(e.donor_score)},
                          {"new_score", score_json(e.new_score)},
                          {"donor_checkpoint", e.donor_checkpoint},
                          {"worker", e.worker},
                          {"time", e.time}};
      std::cout << j.dump() << "\n";
    }
    return 0;
  }
  std::cout << evs.size() << " events in '" << o.experiment << "'\n";
  for (const auto& e : evs) {
    std::cout << "step " << std::setw(6) << std::left << e.step << " member " << e.member << " ";
    if (e.kind == "exploit")
      std::cout << "copied member " << e.donor << " at step " << e.donor_step << " (" << e.copied << ", score " << fmt_score(e.donor_score)
                << " > " << fmt_score(e.old_score) << ")";
    else
      std::cout << "explored";
    std::cout << ": " << to_string(e.old_h) << "  ->  " << to_string(e.new_h);
    if (e.new_score) std::cout << ", score now " << fmt_score(e.new_score);
    std::cout << "\n";
  }
  return 0;
}

}  // namespace pbt::cli

namespace pbt::cli {

int replay(const Target& target, int member, bool json) {
  Opened o = open_target(target);
  auto info = o.store->experiment(o.experiment);
  const ExperimentConfig cfg = stored_config(*info);
  auto pop = o.store->population(o.experiment);
  const MemberState* m = nullptr;
  if (member < 0) {
    m = best_member(pop);
    if (!m) throw Error("no member of '" + o.experiment + "' has a score yet");
  } else {
    for (const auto& x : pop)
      if (x.id == member) m = &x;
    if (!m) throw Error("'" + o.experiment + "' has no member " + std::to_string(member));
  }
  if (!m->score) throw Error("member " + std::to_string(m->id) + " has no score yet");
  auto schedule = inherited_schedule(o.store->events(o.experiment), initial_hyperparams(cfg), m->id, m->step);
  ReplayResult r = replay(cfg, schedule);

  if (json) {
    nlohmann::json segs = nlohmann::json::array();
    for (const auto& s : schedule.segments)
      segs.push_back({{"member", s.member}, {"from_step", s.from_step}, {"to_step", s.to_step}, {"h", to_json(s.h)}});
    nlohmann::json j = {{"experiment", o.experiment}, {"member", m->id},
                        {"original_score", *m->score}, {"replay_score", r.score.value},
                        {"root", schedule.root},       {"total_steps", schedule.total_steps()},
                        {"schedule", segs}};
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << "member " << m->id << " of '" << o.experiment << "' inherited this schedule ("
            << schedule.total_steps() << " steps, from member " << schedule.root << "'s fresh model):\n";
  std::cout << std::left << std::setw(8) << "member" << std::setw(16) << "steps" << "hyperparameters\n";
  for (const auto& s : schedule.segments)
    std::cout << std::left << std::setw(8) << s.member << std::setw(16)
              << (std::to_string(s.from_step) + ".." + std::to_string(s.to_step)) << to_string(s.h) << "\n";
  std::cout << "\nreplayed from scratch, no population: score " << fmt_score(r.score.value) << "\n"
            << "original (with PBT):                   score " << fmt_score(m->score) << "\n";
  return 0;
}

}  // namespace pbt::cli
