// The fault suite: a SIGKILL storm over real `pbt worker` processes on one store, with the
// built-in toy and with a Python trainer that leaves descendants behind on purpose.
//
// A storm kills a worker that holds a lease each time the population has published
// something since the last kill (so kills land mid-interval, mid-publish, mid-start, and
// every kill costs progress whatever the machine's speed) and starts a replacement.
// Rounds of small experiments go on until the storm has killed enough workers, so the
// number of kills does not depend on how fast the machine trains. After every round:
// every member at the budget, every eval published exactly once, every checkpoint
// verified, the lineage consistent and replayable, the SQLite file intact, and nothing
// left behind: no worker, trainer or descendant process, no scratch directory.
//
// Kills per storm: PBT_FAULT_KILLS (default 40 with the toy, 20 with the Python trainer and
// on PostgreSQL, where the server is also restarted half-way);
// a soak by hand: PBT_FAULT_KILLS=1000 ./build/tests/pbt_fault_tests
#include <dirent.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "pbt/config.hpp"
#include "pbt/lineage.hpp"
#include "pbt/store.hpp"
#include "../e2e/pg_cluster.hpp"
#include "../e2e/process_util.hpp"
#include "../e2e/run_checks.hpp"
#include "../store/pg_test_util.hpp"

using namespace e2e;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

int kills_wanted(int fallback) {
  const char* v = std::getenv("PBT_FAULT_KILLS");
  return v && *v ? std::max(1, std::atoi(v)) : fallback;
}

// A process that is gone or a zombie (its parent has not reaped it: it runs nothing).
bool gone(pid_t pid) {
  if (kill(pid, 0) != 0) return errno == ESRCH;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');
  return close != std::string::npos && close + 2 < text.size() && (text[close + 2] == 'Z' || text[close + 2] == 'X');
}

struct Round {
  std::string name;
  int population = 0;
  int steps = 0;
};

// One storm: K live workers on one store, a seeded choice of victims.
class Storm {
 public:
  Storm(std::string dir, std::string uri, int workers, unsigned seed)
      : dir_(std::move(dir)), uri_(std::move(uri)), workers_(workers), rng_(seed) {}

  ~Storm() {
    for (auto& [pid, id] : live_) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }

  int kills() const { return kills_; }

  // Runs `experiment` to its end while killing workers, at most `max_kills` of them.
  void run(const std::string& experiment, int max_kills, const std::function<void(int)>& after_kill = {}) {
    experiment_ = experiment;
    auto store = pbt::open_store(uri_);
    while (static_cast<int>(live_.size()) < workers_) start();
    std::size_t points_at_last_kill = 0;
    int kills_this_round = 0;
    const auto hang_guard = Clock::now() + std::chrono::minutes(10);
    while (Clock::now() < hang_guard) {
      reap_exited();
      const auto pop = store->population(experiment);
      const bool finished = std::all_of(pop.begin(), pop.end(), [](const auto& m) { return m.done || m.failed; });
      if (finished) break;
      if (live_.empty()) start();  // every worker left early (none should): keep the run going
      const std::size_t points = store->scores(experiment).size();
      std::vector<pid_t> holders;
      if (kills_this_round < max_kills && points > points_at_last_kill)
        for (const auto& m : pop)
          for (const auto& [pid, id] : live_)
            if (m.owner == id) holders.push_back(pid);
      if (holders.empty()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      std::uniform_int_distribution<int> delay_ms(0, 30), pick(0, static_cast<int>(holders.size()) - 1);
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng_)));
      const pid_t victim = holders[pick(rng_)];
      ASSERT_EQ(kill(victim, SIGKILL), 0);
      int status = 0;
      waitpid(victim, &status, 0);
      live_.erase(victim);
      ++kills_;
      ++kills_this_round;
      start();
      if (after_kill) after_kill(kills_);
      points_at_last_kill = store->scores(experiment).size();
    }
    ASSERT_LT(Clock::now(), hang_guard) << "the storm's round '" << experiment << "' did not end in 10 minutes";
    // The run is over: every worker must now leave by itself, with exit code 0.
    for (auto& [pid, id] : live_) {
      const int code = wait_exit_within(pid, 300);
      EXPECT_EQ(code, 0) << id << " did not end cleanly; its log:\n" << read_file(log_of(id));
    }
    live_.clear();
  }

  std::string log_of(const std::string& id) const { return dir_ + "/" + id + ".log"; }

 private:
  void start() {
    const std::string id = "storm-" + std::to_string(++started_);
    pid_t pid =
        spawn({PBT_BINARY, "worker", "--store", uri_, "--experiment", experiment_, "--id", id, "--log", log_of(id)},
              dir_ + "/" + id + ".out", dir_ + "/" + id + ".err");
    live_[pid] = id;
  }

  void reap_exited() {
    for (auto it = live_.begin(); it != live_.end();) {
      int status = 0;
      if (waitpid(it->first, &status, WNOHANG) == it->first) {
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
            << it->second << " ended on its own with status " << status << ":\n"
            << read_file(log_of(it->second));
        it = live_.erase(it);
      } else {
        ++it;
      }
    }
  }

  std::string dir_, uri_, experiment_;
  int workers_;
  std::mt19937 rng_;
  std::map<pid_t, std::string> live_;
  int started_ = 0;
  int kills_ = 0;
};

// The lineage as the store holds it after the storm: every event names real members at
// steps they published, no event is recorded twice, and every member's schedule replays.
void expect_lineage_valid(pbt::Store& store, const std::string& experiment, const pbt::ExperimentConfig& cfg) {
  std::set<std::pair<int, std::int64_t>> published;
  for (const auto& p : store.scores(experiment)) published.insert({p.member, p.step});
  std::set<std::tuple<int, std::int64_t, pbt::EventKind>> seen;
  const auto events = store.events(experiment);
  for (const auto& e : events) {
    EXPECT_TRUE(e.member >= 0 && e.member < cfg.population) << "event of member " << e.member;
    EXPECT_TRUE(seen.insert({e.member, e.step, e.kind}).second)
        << "member " << e.member << " step " << e.step << ": '" << pbt::to_string(e.kind) << "' recorded twice";
    EXPECT_TRUE(published.count({e.member, e.step}))
        << "event at an unpublished step: member " << e.member << " step " << e.step;
    if (e.donor >= 0 && e.kind == pbt::EventKind::exploit) {
      EXPECT_NE(e.donor, e.member);
      EXPECT_TRUE(published.count({e.donor, e.donor_step}))
          << "member " << e.member << " copied member " << e.donor << " at step " << e.donor_step
          << ", which that member never published";
    }
  }
  const pbt::Lineage lineage(events, pbt::initial_hyperparams(cfg));
  for (const auto& m : store.population(experiment)) {
    pbt::InheritedSchedule s;
    ASSERT_NO_THROW(s = lineage.schedule_of(m.id, m.step)) << "member " << m.id;
    EXPECT_GT(s.total_steps(), 0) << "member " << m.id;
    for (const auto& seg : s.segments) EXPECT_LT(seg.from_step, seg.to_step) << "member " << m.id;
  }
}

void expect_sqlite_intact(const std::string& path) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "ok") << path;
  sqlite3_finalize(st);
  sqlite3_close(db);
}

// A round's config: its [trainable] table between the shared head and tail.
std::string round_config(const Round& r, int seed, const std::string& trainable) {
  return "name = \"" + r.name + "\"\nseed = " + std::to_string(seed) +
         "\npopulation = " + std::to_string(r.population) + "\n[trainable]\n" + trainable +
         "[budget]\nsteps = " + std::to_string(r.steps) +
         R"(
[ready]
interval = 4
eval_every = 1
[exploit]
strategy = "truncation"
fraction = 0.25
[explore]
strategy = "perturb"
[space.h0]
low = 0.0
high = 1.0
[space.h1]
low = 0.0
high = 1.0
[workers]
lease_seconds = 1.0
)";
}

std::string toy_config(const Round& r) { return round_config(r, 11, "kind = \"toy\"\nsleep_ms = 10\n"); }

std::string python_config(const Round& r, const std::string& state_dir, const std::string& scratch) {
  return round_config(r, 12,
                      "kind = \"process\"\nargv = [\"python3\", \"" + std::string(PBT_SOURCE_DIR) +
                          "/tests/fault/spawning_trainer.py\", \"--state-dir\", \"" + state_dir +
                          "\"]\nscratch_dir = \"" + scratch +
                          "\"\ntimeouts = { start = 120, step = 120, eval = 120 }\n");
}

std::vector<fs::path> entries(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path());
  return out;
}

// Rounds of experiments in one store until `wanted` kills; `config_of` writes a round's
// config, `after_round` checks what the round left, `after_kill(n)` runs after the n-th kill.
struct StormSetup {
  std::string dir;
  std::string uri;  // the store; a run directory's SQLite file when empty
  int workers = 2;
  int wanted = 10;
  int population = 6;  // each round's experiment
  int steps = 48;
  std::function<std::string(const Round&)> config_of;
  std::function<void()> after_round = [] {};
  std::function<void(int)> after_kill;
};

void storm_until(const StormSetup& s) {
  const std::string run_dir = s.dir + "/run";
  const std::string sqlite_path = run_dir + "/store.db";
  const std::string uri = s.uri.empty() ? "sqlite:" + sqlite_path : s.uri;
  Storm storm(s.dir, uri, s.workers, 20261129);
  for (int round = 0; storm.kills() < s.wanted; ++round) {
    ASSERT_LT(round, 200) << "200 rounds and only " << storm.kills() << " kills: workers never hold a lease?";
    const Round r{"storm" + std::to_string(round), s.population, s.steps};
    const std::string path = s.dir + "/" + r.name + ".toml";
    std::string text = s.config_of(r);
    if (!s.uri.empty()) text += "[store]\nuri = \"" + s.uri + "\"\n";
    std::ofstream(path) << text;
    auto created = run_pbt({"create", path, "--run", run_dir}, s.dir);
    ASSERT_EQ(created.code, 0) << created.out << created.err;
    const int before = storm.kills();
    storm.run(r.name, s.wanted - before, s.after_kill);
    if (::testing::Test::HasFatalFailure()) return;

    auto store = pbt::open_store(uri);
    SCOPED_TRACE("round " + r.name + " (" + std::to_string(storm.kills() - before) + " kills)");
    expect_complete_and_exactly_once(*store, r.name, r.population, r.steps);
    expect_lineage_valid(*store, r.name, pbt::load_config(path));
    store.reset();
    s.after_round();
    if (::testing::Test::HasFailure()) return;
  }
  if (s.uri.empty()) expect_sqlite_intact(sqlite_path);
  std::printf("[storm] %d workers killed with SIGKILL, nothing lost\n", storm.kills());
}

}  // namespace

TEST(KillStorm, ToyWorkersKilledOverAndOverLoseNothing) {
  const std::string dir = temp_dir("storm-toy");
  StormSetup storm;
  storm.dir = dir;
  storm.workers = 3;
  storm.wanted = kills_wanted(40);
  storm.config_of = toy_config;
  storm_until(storm);
  if (!HasFailure()) fs::remove_all(dir);
}

TEST(KillStorm, PythonTrainersAndWhatTheyStartedDieWithTheirWorker) {
  const std::string dir = temp_dir("storm-python");
  const std::string state = dir + "/state", scratch = dir + "/scratch";
  fs::create_directories(state);
  fs::create_directories(scratch);
  auto config = [&](const Round& r) { return python_config(r, state, scratch); };
  auto nothing_left = [&] {
    // Every process a trainer started (one in its group, one setsid() daemon), dead soon
    // after its worker ended, however it ended.
    std::vector<std::string> alive;
    const auto until = Clock::now() + std::chrono::seconds(60);
    do {
      alive.clear();
      for (const auto& p : entries(state)) {
        const pid_t pid = static_cast<pid_t>(std::stol(read_file(p.string())));
        if (!gone(pid)) alive.push_back(p.filename().string());
      }
      if (alive.empty()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    } while (Clock::now() < until);
    EXPECT_TRUE(alive.empty()) << alive.size() << " descendants of trainers outlived their workers, e.g. "
                               << alive.front();
    for (const auto& p : entries(state)) {
      const pid_t pid = static_cast<pid_t>(std::stol(read_file(p.string())));
      if (!gone(pid)) kill(pid, SIGKILL);  // leave the machine clean even when the check failed
      fs::remove(p);
    }
    // A killed worker's guard removes its scratch directory once it sees the worker gone,
    // which on a busy machine may come after the round has ended: wait for it, boundedly.
    std::vector<fs::path> left;
    const auto swept_by = Clock::now() + std::chrono::seconds(60);
    while (!(left = entries(scratch)).empty() && Clock::now() < swept_by)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_TRUE(left.empty()) << left.size() << " scratch entries left behind, e.g. " << left.front();
  };
  StormSetup storm;
  storm.dir = dir;
  storm.workers = 2;
  storm.population = 4;  // more members than workers: a trainer starts at almost every interval
  storm.steps = 24;
  storm.wanted = kills_wanted(20);
  storm.config_of = config;
  storm.after_round = nothing_left;
  storm_until(storm);
  if (!HasFailure()) fs::remove_all(dir);
}

TEST(KillStorm, OnPostgreSQLWithTheServerRestartedMidStormNothingIsLost) {
  const std::string why = pbt::test::postgres_unavailable();
  if (!why.empty()) GTEST_SKIP() << why;
  const std::string dir = temp_dir("storm-pg");
  bool restarted = false;
  {
    Cluster cluster(dir);
    const std::string not_started = cluster.start();
    if (!not_started.empty())
      GTEST_SKIP() << "this test cannot control a PostgreSQL server of its own: " << not_started;
    const int wanted = kills_wanted(20);
    // Half-way through the kills the server goes down for longer than a lease, then comes back.
    auto restart_once = [&](int kills) {
      if (kills != (wanted + 1) / 2) return;
      ASSERT_EQ(cluster.stop(), 0) << read_file(cluster.log());
      std::this_thread::sleep_for(std::chrono::milliseconds(2500));
      ASSERT_EQ(cluster.start_again(), 0) << read_file(cluster.log());
      restarted = true;
    };
    StormSetup storm;
    storm.dir = dir;
    storm.uri = cluster.uri();
    storm.workers = 3;
    storm.wanted = wanted;
    storm.config_of = toy_config;
    storm.after_kill = restart_once;
    storm_until(storm);
  }
  EXPECT_TRUE(restarted);
  if (!HasFailure()) fs::remove_all(dir);
}
