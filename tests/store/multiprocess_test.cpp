// Real processes sharing one store: one SQLite file, or one PostgreSQL database (when
// PBT_TEST_POSTGRES_URI names a server; skipped, saying why, when it does not). Each child
// opens its OWN store after fork() (never the parent's connection: the parent holds none
// while children run) and ends with _exit. Children report through per-child files; the
// parent checks.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iomanip>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "pg_test_util.hpp"
#include "store/sqlite_store.hpp"
#include "store_test_util.hpp"
#ifdef PBT_WITH_POSTGRES
#include "store/postgres/postgres_store.hpp"
#endif

namespace pbt {
namespace {

using test::TempDir;
using Clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC: one clock for all processes

double mono() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }

void sleep_s(double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); }

// Runs f in a child process; its return value is the exit status. Exceptions are exit 100.
pid_t spawn(const std::function<int()>& f) {
  fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    int rc = 100;
    try {
      rc = f();
    } catch (...) {
      rc = 100;
    }
    _exit(rc);
  }
  return pid;
}

int wait_status(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 200 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Where the processes meet: open() gives each caller (parent or child) its own store.
struct SqliteShared {
  static std::string unavailable() { return ""; }
  explicit SqliteShared(const TempDir& dir) : path(dir.file("shared.db")) {}
  std::unique_ptr<Store> open() const { return std::make_unique<SqliteStore>(path); }
  std::string path;
};

// kDir: checkpoint bytes in a directory shared by the processes (checkpoint_dir=).
template <bool kDir>
struct PostgresSharedT {
  static std::string unavailable() { return test::postgres_unavailable(); }
#ifdef PBT_WITH_POSTGRES
  explicit PostgresSharedT(const TempDir& dir)
      : uri(kDir ? test::uri_with_param(db.uri(), "checkpoint_dir", dir.file("checkpoints")) : db.uri()) {}
  std::unique_ptr<Store> open() const { return std::make_unique<PostgresStore>(uri); }
  test::PgDatabase db;
  std::string uri;
#else
  explicit PostgresSharedT(const TempDir&) {}
  [[noreturn]] std::unique_ptr<Store> open() const { throw std::logic_error("no PostgreSQL in this build"); }
#endif
};
using PostgresShared = PostgresSharedT<false>;
using PostgresDirShared = PostgresSharedT<true>;

template <class Shared>
class Multiprocess : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string why = Shared::unavailable();
    if (!why.empty()) GTEST_SKIP() << why;
    shared = std::make_unique<Shared>(dir);
  }
  void TearDown() override { shared.reset(); }
  std::unique_ptr<Store> open() const { return shared->open(); }

  TempDir dir;
  std::unique_ptr<Shared> shared;
};

using SharedStores = ::testing::Types<SqliteShared, PostgresShared, PostgresDirShared>;
class SharedNames {
 public:
  template <class T>
  static std::string GetName(int) {
    if (std::is_same_v<T, SqliteShared>) return "Sqlite";
    return std::is_same_v<T, PostgresShared> ? "Postgres" : "PostgresCheckpointDir";
  }
};
TYPED_TEST_SUITE(Multiprocess, SharedStores, SharedNames);

std::string checkpoint_bytes(std::int64_t step) {
  // Shared by every member at the same step modulo 3: exercises reference counting.
  std::string b(4096, static_cast<char>('a' + step % 3));
  b += "step mod 3 = " + std::to_string(step % 3);
  return b;
}

// (a) no member is ever held by two processes at once, (b) every publish is visible
// exactly once, (c) every checkpoint a member points to loads and matches its hash.
TYPED_TEST(Multiprocess, LeasesAreExclusiveAndPublishesLandExactlyOnce) {
  constexpr int kChildren = 8;
  constexpr int kMembers = 5;
  constexpr double kSeconds = 2.0;
  const TempDir& tmp = this->dir;
  this->open()->create_experiment(test::info("e", kMembers), test::members(kMembers));
  // closed: the children open their own connections

  const double deadline = mono() + kSeconds;
  std::vector<pid_t> pids;
  for (int k = 0; k < kChildren; ++k) {
    const std::string out_path = tmp.file("child" + std::to_string(k) + ".txt");
    pids.push_back(spawn([&, k, out_path]() -> int {
      std::ostringstream out;
      int rc = 0;
      try {
        auto opened = this->open();
        Store& store = *opened;
        const std::string worker = "w" + std::to_string(k);
        std::mt19937 rng(k);
        int n = 0;
        while (mono() < deadline && n < 100000) {
          auto l = store.lease("e", worker, 30.0);
          if (!l) {
            sleep_s(0.0005);
            continue;
          }
          const double start = mono();
          sleep_s(0.0002 + 0.0008 * (rng() % 1000) / 1000.0);
          store.heartbeat(l->lease, 30.0);
          const double tag = k * 1000000.0 + n++;
          Publication pub;
          pub.step = l->member.step + 1;
          pub.last_ready_step = pub.step;
          pub.score = tag;
          pub.samples = {tag};
          pub.h = l->member.h;
          pub.checkpoint_bytes = checkpoint_bytes(pub.step);
          pub.metrics = {{"count", l->member.metrics.value("count", 0) + 1}};
          pub.scores = {{l->lease.member, pub.step, tag}};
          Event ev;
          ev.member = l->lease.member;
          ev.step = pub.step;
          ev.kind = EventKind::explore;
          ev.new_score = tag;
          pub.events = {ev};
          store.publish(l->lease, pub);
          const double end = mono();
          store.release(l->lease);
          out << "I " << l->lease.member << ' ' << std::setprecision(17) << start << ' ' << end << '\n';
          out << "P " << std::setprecision(17) << tag << '\n';
        }
      } catch (const std::exception& e) {
        out << "ERR " << e.what() << '\n';
        rc = 3;
      }
      std::ofstream(out_path) << out.str();
      return rc;
    }));
  }
  for (int k = 0; k < kChildren; ++k)
    EXPECT_EQ(wait_status(pids[k]), 0) << "child " << k << ": "
                                       << read_all(tmp.file("child" + std::to_string(k) + ".txt"));

  std::map<int, std::vector<std::pair<double, double>>> intervals;
  std::multiset<double> published;
  for (int k = 0; k < kChildren; ++k) {
    std::istringstream in(read_all(tmp.file("child" + std::to_string(k) + ".txt")));
    std::string kind;
    while (in >> kind) {
      if (kind == "I") {
        int m;
        double a, b;
        in >> m >> a >> b;
        intervals[m].push_back({a, b});
      } else if (kind == "P") {
        double tag;
        in >> tag;
        published.insert(tag);
      } else {
        std::string rest;
        std::getline(in, rest);
        ADD_FAILURE() << "child " << k << ": " << kind << rest;
      }
    }
  }
  const std::size_t total = published.size();
  this->RecordProperty("publishes", static_cast<int>(total));
  std::printf("%zu publishes by %d processes on %d members\n", total, kChildren, kMembers);
  EXPECT_GE(total, 20u) << "too few publishes to mean anything";
  std::set<double> unique(published.begin(), published.end());
  EXPECT_EQ(unique.size(), total);

  // (a) intervals of one member never overlap.
  for (auto& [m, iv] : intervals) {
    std::sort(iv.begin(), iv.end());
    for (std::size_t i = 1; i < iv.size(); ++i)
      EXPECT_LE(iv[i - 1].second, iv[i].first) << "member " << m << " held twice at once";
  }

  auto opened = this->open();
  Store& s = *opened;
  // (b) every publish exactly once: in scores, in events, and in the members' counters.
  auto scores = s.scores("e");
  auto events = s.events("e");
  EXPECT_EQ(scores.size(), total);
  EXPECT_EQ(events.size(), total);
  std::set<double> score_tags, event_tags;
  for (const auto& p : scores) score_tags.insert(p.score);
  for (const auto& e : events) event_tags.insert(*e.new_score);
  EXPECT_EQ(score_tags, unique);
  EXPECT_EQ(event_tags, unique);
  std::size_t steps = 0;
  for (const auto& m : s.population("e")) {
    std::size_t n_scores =
        std::count_if(scores.begin(), scores.end(), [&](const ScorePoint& p) { return p.member == m.id; });
    EXPECT_EQ(static_cast<std::size_t>(m.step), n_scores) << "member " << m.id;
    EXPECT_EQ(m.metrics.value("count", 0), m.step) << "member " << m.id << ": a lost update";
    EXPECT_EQ(m.owner, "");
    steps += m.step;
    // (c) the checkpoint it points to loads and matches its hash.
    if (m.step > 0) {
      EXPECT_EQ(s.checkpoint(m.checkpoint), checkpoint_bytes(m.step));
    }
  }
  EXPECT_EQ(steps, total);
  // Reference-counted deletion under concurrency: nothing leaked, nothing referenced went.
  EXPECT_EQ(s.collect_garbage(), 0u);
}

// (d) two processes race to take over one expired lease: exactly one wins.
TYPED_TEST(Multiprocess, ExactlyOneTakesOverAnExpiredLease) {
  for (int round = 0; round < 5; ++round) {
    const std::string exp = "race" + std::to_string(round);
    Lease dead;
    {
      auto s = this->open();
      s->create_experiment(test::info(exp, 1), test::members(1));
      auto l = s->lease(exp, "dead", 0.2);
      ASSERT_TRUE(l);
      dead = l->lease;
    }
    sleep_s(0.3);  // the dead worker's lease has expired
    const double start = mono() + 0.4;
    std::vector<pid_t> pids;
    for (int k = 0; k < 2; ++k) {
      pids.push_back(spawn([&, k]() -> int {
        auto store = this->open();
        while (mono() < start) {
        }
        auto l = store->lease(exp, "racer" + std::to_string(k), 30.0);
        return l ? 0 : 1;
      }));
    }
    std::vector<int> rc;
    for (pid_t p : pids) rc.push_back(wait_status(p));
    ASSERT_TRUE((rc == std::vector<int>{0, 1}) || (rc == std::vector<int>{1, 0}))
        << "round " << round << ": exit codes " << rc[0] << ", " << rc[1];
    auto s = this->open();
    auto m = s->population(exp).at(0);
    EXPECT_EQ(m.owner, rc[0] == 0 ? "racer0" : "racer1");
    EXPECT_EQ(m.version, 2);
    Lease zombie = dead;
    EXPECT_THROW(s->publish(zombie, test::publication(1, 1.0, "late")), LeaseLost);
    EXPECT_THROW(s->heartbeat(dead, 30), LeaseLost);
  }
}

// Concurrent first openers of a new file (a new database) do not trip over each other:
// the first creates the schema, the others find it.
TYPED_TEST(Multiprocess, ConcurrentFirstOpenersAllSucceed) {
  constexpr int kChildren = 8;
  const double start = mono() + 0.3;
  std::vector<pid_t> pids;
  for (int k = 0; k < kChildren; ++k) {
    pids.push_back(spawn([&, k]() -> int {
      while (mono() < start) {
      }
      auto store = this->open();
      store->create_experiment(test::info("e" + std::to_string(k), 2), test::members(2));
      return 0;
    }));
  }
  for (pid_t p : pids) EXPECT_EQ(wait_status(p), 0);
  EXPECT_EQ(this->open()->experiments().size(), static_cast<std::size_t>(kChildren));
}

}  // namespace
}  // namespace pbt
