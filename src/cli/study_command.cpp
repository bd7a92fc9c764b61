// `pbt study`: PBT variants over seeds (pbt/study.hpp). Each (variant, seed) is an ordinary
// `pbt run` in its own run directory, started as a child process, J at once; a run that ended
// gets a marker written atomically, so a study run again (after a kill) keeps the finished
// runs, resumes the half-done ones through `pbt run`'s own resume, and starts the rest. When
// every run has finished: study.md, study.html and study.json in the study directory.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "pbt/pbt.hpp"
#include "pbt/study.hpp"
#include "pbt/study_report.hpp"
#include "cli/commands.hpp"
#include "core/atomic_file.hpp"

namespace fs = std::filesystem;

namespace pbt::cli {

namespace {

constexpr const char* kFinished = "study-finished.json";      // the marker: the run ended
constexpr const char* kUnfinished = "study-unfinished.json";  // seconds spent in sessions that did not finish it
constexpr const char* kReplayed = "study-replay.json";  // the lineage analysis: the replay's result, written whole
constexpr const char* kReplayOut = "study-replay.out";  // `pbt replay --json`'s output while it runs

struct Args {
  std::string study, dir;
  int jobs = 1;
  int workers = 0;
  bool json = false;
  bool check = false;
};

std::optional<nlohmann::json> read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  try {
    return nlohmann::json::parse(in);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string store_uri(const StudyRun& r, const fs::path& run_dir) {
  return r.config.store.empty() ? sqlite_uri(run_dir.string()) : r.config.store;
}

// Every member done or failed, or the target score reached.
bool run_complete(const StudyRun& r, const fs::path& run_dir) {
  try {
    auto store = open_existing_store(store_uri(r, run_dir));
    auto exp = store->experiment(r.config.name);
    if (!exp) return false;
    if (exp->finished) return true;
    auto pop = store->population(r.config.name);
    if (pop.empty()) return false;
    for (const auto& m : pop)
      if (!m.done && !m.failed) return false;
    return true;
  } catch (const std::exception&) {
    return false;  // not created yet
  }
}

std::string describe(int wstatus) {
  if (WIFSIGNALED(wstatus)) return "killed by signal " + std::to_string(WTERMSIG(wstatus));
  return "exit status " + std::to_string(WEXITSTATUS(wstatus));
}

std::string run_name(const StudyRun& r) { return "'" + r.variant + "' seed " + std::to_string(r.seed); }

double epoch_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// `exe ARGS`, its output appended to DIR/study-run.log (its stdout to `out` instead, when
// given, truncated). It gets SIGTERM when the study dies (even by SIGKILL).
pid_t start_child(const std::string& exe, std::vector<std::string> args, const fs::path& run_dir,
                  const std::string& out = "") {
  args.insert(args.begin(), exe);
  const std::string log = (run_dir / "study-run.log").string();
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) throw Error(std::string("cannot start a run: ") + std::strerror(errno));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(130);  // the study died before the line above
    int in = open("/dev/null", O_RDONLY);
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in >= 0) dup2(in, 0);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    if (!out.empty()) {
      const int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (o >= 0) dup2(o, 1);
    }
    execv(exe.c_str(), argv.data());
    std::perror("pbt: exec pbt");
    _exit(127);
  }
  return pid;
}

// `pbt run CONFIG --run DIR --quiet [--workers K]`: stops like after Ctrl-C on SIGTERM.
pid_t start_run(const std::string& exe, const fs::path& run_dir, int workers) {
  std::vector<std::string> args = {"run", (run_dir / "config.toml").string(), "--run", run_dir.string(), "--quiet"};
  if (workers > 0) args.insert(args.end(), {"--workers", std::to_string(workers)});
  return start_child(exe, args, run_dir);
}

// `pbt replay` of the run's best member, its JSON to DIR/study-replay.out.
pid_t start_replay(const std::string& exe, const StudyRun& r, const fs::path& run_dir) {
  std::vector<std::string> args = {"replay", "--json"};
  if (r.config.store.empty()) args.insert(args.end(), {"--run", run_dir.string()});
  else args.insert(args.end(), {"--store", r.config.store, "--experiment", r.config.name});
  return start_child(exe, args, run_dir, (run_dir / kReplayOut).string());
}

bool replayed(const StudyRun& r, const fs::path& run_dir) {
  auto m = read_json(run_dir / kReplayed);
  return m && m->value("config_sha256", "") == checkpoint_id(r.config.text) && m->contains("replay");
}

// The lineage analysis: every finished run of a replayed variant without its replay gets one,
// J at once. A replay killed half-way left no kReplayed: it is done again. Returns the number
// of replays that failed, or -1 when stopped by a signal.
int replay_runs(const StudySpec& spec, const fs::path& dir, int jobs, const std::string& exe, std::ostream& out) {
  std::vector<std::size_t> todo;
  int kept = 0;
  for (std::size_t i = 0; i < spec.runs.size(); ++i) {
    const StudyRun& r = spec.runs[i];
    if (std::find(spec.replay.begin(), spec.replay.end(), r.variant) == spec.replay.end()) continue;
    const fs::path rd = dir / r.dir;
    if (replayed(r, rd)) {
      ++kept;
      continue;
    }
    // A run whose members all diverged has no winner: nothing to replay, said so once.
    bool scored = false;
    try {
      auto store = open_existing_store(store_uri(r, rd));
      scored = best_member(store->population(r.config.name)) != nullptr;
    } catch (const std::exception&) {
    }
    if (scored) {
      todo.push_back(i);
      continue;
    }
    const nlohmann::json marker = {{"variant", r.variant},
                                   {"seed", r.seed},
                                   {"experiment", r.config.name},
                                   {"config_sha256", checkpoint_id(r.config.text)},
                                   {"finished_at", epoch_seconds()},
                                   {"replay", nullptr},
                                   {"why", "no member has a score (a diverged one does not count)"}};
    write_file_atomically((rd / kReplayed).string(), marker.dump(2) + "\n");
    out << "not replaying " << run_name(r) << ": no member has a score\n" << std::flush;
  }
  if (todo.empty()) return 0;
  out << "lineage: replaying the best member's inherited schedule of " << todo.size() << " run(s) (" << kept
      << " replayed before)\n"
      << std::flush;
  std::atomic<bool>& stop = stop_on_signals();
  std::map<pid_t, std::size_t> running;
  std::size_t next = 0;
  int failures = 0;
  bool forwarded = false;
  while (true) {
    while (!stop && running.size() < static_cast<std::size_t>(jobs) && next < todo.size()) {
      const StudyRun& r = spec.runs[todo[next]];
      running[start_replay(exe, r, dir / r.dir)] = todo[next++];
      out << "replaying " << run_name(r) << "\n" << std::flush;
    }
    if (running.empty()) break;
    int wstatus = 0;
    const pid_t pid = waitpid(-1, &wstatus, WNOHANG);
    if (pid > 0 && running.count(pid)) {
      const StudyRun& r = spec.runs[running[pid]];
      running.erase(pid);
      const fs::path rd = dir / r.dir;
      std::optional<nlohmann::json> result;
      if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) result = read_json(rd / kReplayOut);
      if (result) {
        const nlohmann::json marker = {
            {"variant", r.variant},           {"seed", r.seed},
            {"experiment", r.config.name},    {"config_sha256", checkpoint_id(r.config.text)},
            {"finished_at", epoch_seconds()}, {"replay", *result}};
        write_file_atomically((rd / kReplayed).string(), marker.dump(2) + "\n");
        fs::remove(rd / kReplayOut);
        out << "replayed " << run_name(r) << "\n" << std::flush;
      } else if (!stop) {
        ++failures;
        out << "replay of " << run_name(r) << " failed (" << describe(wstatus)
            << "); its output: " << (rd / "study-run.log").string() << "\n"
            << std::flush;
      }
      continue;
    }
    if (stop && !forwarded) {
      for (const auto& [p, i] : running) kill(p, SIGTERM);
      forwarded = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return stop ? -1 : failures;
}

// The marker that the run has ended, written whole; `seconds`: its wall time over all sessions.
void write_marker(const StudyRun& r, const fs::path& rd, double seconds) {
  const nlohmann::json marker = {{"variant", r.variant},        {"seed", r.seed},
                                 {"experiment", r.config.name}, {"config_sha256", checkpoint_id(r.config.text)},
                                 {"wall_seconds", seconds},     {"finished_at", epoch_seconds()}};
  write_file_atomically((rd / kFinished).string(), marker.dump(2) + "\n");
  fs::remove(rd / kUnfinished);
}

// `--check`: the study file and every run's config are checked (load_study), then the plan is
// printed with what the directory already holds; nothing is started or written.
int check_study(const StudySpec& spec, const fs::path& dir) {
  std::cout << "study '" << spec.name << "' (" << spec.origin << "): " << spec.variants.size() << " variant(s) x "
            << spec.seeds.size() << " seed(s) = " << spec.runs.size() << " runs\n"
            << "base: " << (spec.base.empty() ? std::string("inline [base]") : spec.base) << "\n"
            << "metric: " << spec.metric << " (" << (spec.lower_is_better ? "lower" : "higher")
            << " is better); baseline: " << spec.baseline << "\n";
  if (!spec.replay.empty()) {
    std::string names;
    for (const auto& n : spec.replay) names += (names.empty() ? "" : ", ") + n;
    std::cout << "lineage: replay " << names << (spec.fixed.empty() ? "" : "; best fixed h: " + spec.fixed) << "\n";
  }
  std::map<std::string, std::array<int, 3>> state;  // variant -> finished, half-done, not started
  bool any_dir = false;
  for (const StudyRun& r : spec.runs) {
    const fs::path rd = dir / r.dir;
    auto& s = state[r.variant];
    if (!fs::exists(rd / "config.toml")) {
      ++s[2];
      continue;
    }
    any_dir = true;
    if (read_text(rd / "config.toml") != r.config.text)
      throw Error("run directory " + rd.string() + " holds a run of another config (the study file or its base " +
                  "changed since it was made): remove it, or give the study another --dir");
    const auto m = read_json(rd / kFinished);
    const bool done = (m && m->value("config_sha256", "") == checkpoint_id(r.config.text)) || run_complete(r, rd);
    ++s[done ? 0 : 1];
  }
  std::cout << "directory: " << dir.string() << (any_dir ? "" : " (no run started yet)") << "\n\n";
  std::cout << "variant | population | steps | ready every | exploit | explore | copy | runs done/half/todo | keys\n";
  for (const StudyVariant& v : spec.variants) {
    const StudyRun* first = nullptr;
    for (const StudyRun& r : spec.runs)
      if (r.variant == v.name) {
        first = &r;
        break;
      }
    if (first == nullptr) continue;
    const ExperimentConfig& c = first->config;
    // The overlay as dotted keys on one line: "[exploit]\nstrategy = 'none'" -> exploit.strategy = 'none'.
    std::string keys, table;
    std::istringstream lines(v.overlay);
    for (std::string line; std::getline(lines, line);) {
      if (line.empty()) continue;
      if (line.front() == '[') {
        table = line.substr(1, line.find(']') - 1) + ".";
        continue;
      }
      keys += (keys.empty() ? "" : "; ") + table + line;
    }
    const auto& s = state[v.name];
    std::cout << v.name << " | " << c.population << " | " << c.budget_steps << " | " << c.ready.interval
              << (c.ready.min_step > 0 ? " from " + std::to_string(c.ready.min_step) : "") << " | " << c.exploit
              << " | " << c.explore << " | " << to_string(c.copy) << " | " << s[0] << "/" << s[1] << "/" << s[2]
              << " | " << (keys.empty() ? "(the base)" : keys) << "\n";
  }
  std::cout << "\nall " << spec.runs.size() << " configs are valid; nothing was started\n";
  return 0;
}

int study(const Args& a, const std::string& self_exe) {
  const StudySpec spec = load_study(a.study);
  const fs::path dir = a.dir.empty() ? default_study_dir(a.study) : a.dir;
  if (a.check) return check_study(spec, dir);
  std::ostream& out = a.json ? std::cerr : std::cout;

  // A run directory made from another config (the study file or its base changed since) is
  // refused before anything starts: its results would not be this study's.
  std::vector<bool> finished(spec.runs.size(), false);
  for (std::size_t i = 0; i < spec.runs.size(); ++i) {
    const StudyRun& r = spec.runs[i];
    const fs::path rd = dir / r.dir;
    if (fs::exists(rd / "config.toml") && read_text(rd / "config.toml") != r.config.text)
      throw Error("run directory " + rd.string() + " holds a run of another config (the study file or its base " +
                  "changed since it was made): remove it, or give the study another --dir");
    if (auto m = read_json(rd / kFinished)) finished[i] = m->value("config_sha256", "") == checkpoint_id(r.config.text);
  }
  // One study process per directory: a second would start the same runs again. The lock goes
  // with the process (even on SIGKILL); the runs it starts do not hold it (close-on-exec).
  fs::create_directories(dir);
  const std::string lock_path = (dir / "study.lock").string();
  const int lock = open(lock_path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  if (lock < 0) throw Error("cannot open " + lock_path + ": " + std::strerror(errno));
  if (flock(lock, LOCK_EX | LOCK_NB) != 0)
    throw Error("another `pbt study` is running on " + dir.string() + " (it holds " + lock_path + ")");

  // A run that ended without its marker (the study was killed just then) is marked now.
  for (std::size_t i = 0; i < spec.runs.size(); ++i) {
    const StudyRun& r = spec.runs[i];
    const fs::path rd = dir / r.dir;
    if (finished[i] || !fs::exists(rd / "config.toml") || !run_complete(r, rd)) continue;
    double seconds = 0;
    if (auto u = read_json(rd / kUnfinished)) seconds = u->value("seconds", 0.0);
    write_marker(r, rd, seconds);
    finished[i] = true;
  }
  int kept = 0;
  for (bool f : finished) kept += f;
  out << "study '" << spec.name << "': " << spec.variants.size() << " variant(s) x " << spec.seeds.size()
      << " seed(s) = " << spec.runs.size() << " runs in " << dir.string() << " (" << kept << " finished before)\n"
      << a.jobs << " run(s) at once, each with "
      << (a.workers > 0 ? std::to_string(a.workers) + " worker processes (--workers; at most its population)"
                        : "its config's workers.count worker processes")
      << "\n"
      << std::flush;

  std::atomic<bool>& stop = stop_on_signals();
  struct Active {
    std::size_t run;
    std::chrono::steady_clock::time_point start;
  };
  std::map<pid_t, Active> running;
  std::size_t next = 0;
  int failures = 0, done = kept;
  bool forwarded = false;
  while (true) {
    while (!stop && running.size() < static_cast<std::size_t>(a.jobs) && next < spec.runs.size()) {
      const std::size_t i = next++;
      if (finished[i]) continue;
      const StudyRun& r = spec.runs[i];
      const fs::path rd = dir / r.dir;
      fs::create_directories(rd);
      write_file_atomically((rd / "config.toml").string(), r.config.text);
      const int workers = a.workers > 0 ? std::min(a.workers, r.config.population) : 0;
      const bool resuming = fs::exists(rd / "store.db") || fs::exists(rd / kUnfinished);
      running[start_run(self_exe, rd, workers)] = {i, std::chrono::steady_clock::now()};
      out << (resuming ? "resuming " : "starting ") << run_name(r) << " in " << rd.string() << "\n" << std::flush;
    }
    if (running.empty()) break;
    int wstatus = 0;
    const pid_t pid = waitpid(-1, &wstatus, WNOHANG);
    if (pid > 0 && running.count(pid)) {
      const Active act = running[pid];
      running.erase(pid);
      const StudyRun& r = spec.runs[act.run];
      const fs::path rd = dir / r.dir;
      double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - act.start).count();
      if (auto u = read_json(rd / kUnfinished)) seconds += u->value("seconds", 0.0);
      if (run_complete(r, rd)) {
        write_marker(r, rd, seconds);
        finished[act.run] = true;
        ++done;
        out << "finished " << run_name(r) << " (" << done << "/" << spec.runs.size() << ")\n" << std::flush;
      } else {
        write_file_atomically((rd / kUnfinished).string(), nlohmann::json{{"seconds", seconds}}.dump() + "\n");
        if (!stop) {
          ++failures;
          out << "run " << run_name(r) << " ended unfinished (" << describe(wstatus)
              << "); its output: " << (rd / "study-run.log").string() << "\n"
              << std::flush;
        }
      }
      continue;
    }
    if (stop && !forwarded) {
      // Each run stops like `pbt run` after Ctrl-C: its workers finish their intervals.
      for (const auto& [p, act] : running) kill(p, SIGTERM);
      forwarded = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (stop && done < static_cast<int>(spec.runs.size())) {
    out << "interrupted: " << done << " of " << spec.runs.size()
        << " runs finished; run the same command again to go on from there\n";
    return 130;
  }
  if (failures) {
    out << failures << " run(s) did not finish (see above); run the same command again to resume them\n";
    return 1;
  }

  if (!spec.replay.empty()) {
    const int failed = replay_runs(spec, dir, a.jobs, self_exe, out);
    if (failed < 0) {
      out << "interrupted during the lineage replays; run the same command again to go on from there\n";
      return 130;
    }
    if (failed > 0) {
      out << failed << " replay(s) failed (see above); run the same command again to redo them\n";
      return 1;
    }
  }

  std::vector<report::StudyRunFigures> figures;
  for (const StudyRun& r : spec.runs) {
    const fs::path rd = dir / r.dir;
    const auto marker = read_json(rd / kFinished);
    auto store = open_existing_store(store_uri(r, rd));
    auto f = report::run_figures(*store, r.config, spec.metric, marker ? marker->value("wall_seconds", 0.0) : 0.0);
    f.variant = r.variant;
    f.seed = r.seed;
    f.dir = r.dir;
    if (auto m = read_json(rd / kReplayed); m && replayed(r, rd) && (*m)["replay"].is_object())
      f.replay = report::replay_from_json((*m)["replay"], spec.metric);
    figures.push_back(std::move(f));
  }
  bool any = false;
  std::set<std::string> reported;
  for (const auto& f : figures) {
    any |= f.best.has_value();
    for (const auto& [k, x] : f.metrics) reported.insert("metrics." + k);
  }
  if (!any) {
    std::string names;
    for (const auto& n : reported) names += " " + n;
    out << "warning: no run's best member has a finite '" << spec.metric << "'"
        << (spec.metric == "score" ? "" : "; the metrics reported are:" + (names.empty() ? " none" : names)) << "\n";
  }
  const report::StudyFigures result = report::gather_study(spec, std::move(figures));
  const nlohmann::json j = report::study_json(result);
  const std::string md = report::study_markdown(result);
  write_file_atomically((dir / "study.md").string(), md);
  write_file_atomically((dir / "study.html").string(), report::study_html(result));
  write_file_atomically((dir / "study.json").string(), j.dump(2) + "\n");
  if (a.json) {
    std::cout << j.dump(2) << "\n";
  } else {
    const auto from = md.find("## Final figures");
    const auto to = md.find("\n## ", from + 1);
    std::cout << "\n" << md.substr(from, to == std::string::npos ? std::string::npos : to - from) << "\n";
  }
  out << "wrote " << (dir / "study.md").string() << ", " << (dir / "study.html").string() << ", "
      << (dir / "study.json").string() << "\n";
  return 0;
}

}  // namespace

Command add_study(CLI::App& app, const std::string& self_exe) {
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("study",
                                 "compare PBT variants over seeds: one run per (variant, seed), resumable; "
                                 "writes study.md and study.html");
  cmd->add_option("study", a->study, "study file (TOML): base config, variants, seeds, baseline")->required();
  cmd->add_option("--dir", a->dir, "study directory (default: STUDY.study beside the study file)");
  cmd->add_option("--jobs", a->jobs, "runs at once (default 1)")->check(CLI::Range(1, 1000));
  cmd->add_option("--workers", a->workers,
                  "worker processes per run (default: each run's workers.count; at most its population)")
      ->check(CLI::Range(1, 100000));
  cmd->add_flag("--json", a->json, "print the figures as JSON (progress goes to stderr)");
  cmd->add_flag("--check", a->check,
                "check the study file and every run's config, print the plan and what DIR holds; start nothing");
  return {cmd, [a, self_exe] { return study(*a, self_exe); }};
}

}  // namespace pbt::cli
