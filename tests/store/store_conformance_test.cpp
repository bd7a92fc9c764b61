// One suite, every backend: the guarantees of store.hpp.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <thread>

#include "pg_test_util.hpp"
#include "store/checkpoint_dir.hpp"
#include "store/memory_store.hpp"
#include "store/sqlite_store.hpp"
#include "store_test_util.hpp"
#ifdef PBT_WITH_POSTGRES
#include "store/postgres/postgres_store.hpp"
#endif

namespace pbt {
namespace {

using test::contains;
using test::message_of;
using test::TempDir;

// Raw access to an SQLite file, bypassing the store (to corrupt it on purpose).
void raw_exec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  std::string message = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << sql << ": " << message;
}

std::int64_t raw_count(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt* s = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  std::int64_t n = -1;
  if (sqlite3_step(s) == SQLITE_ROW) n = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  sqlite3_close(db);
  return n;
}

// Each backend: a per-test object that opens the store and reaches behind it for the tests
// (let time pass, plant an orphan checkpoint, corrupt one, count them). unavailable() says
// why a backend cannot run here (its tests are then skipped, never silently passed).
struct MemoryBackend {
  static std::string unavailable() { return ""; }
  explicit MemoryBackend(const TempDir&) {}
  std::unique_ptr<Store> open() { return std::make_unique<MemoryStore>(); }
  void pass_time(Store& s, double seconds) { static_cast<MemoryStore&>(s).advance_clock(seconds); }
  std::string add_orphan(Store& s, const std::string& bytes) {
    return static_cast<MemoryStore&>(s).put_orphan_checkpoint(bytes);
  }
  void corrupt(Store& s, const std::string& id) { static_cast<MemoryStore&>(s).corrupt_checkpoint(id, "tampered"); }
  std::size_t checkpoint_count(Store& s) { return static_cast<MemoryStore&>(s).checkpoint_count(); }
};

struct SqliteBackend {
  static std::string unavailable() { return ""; }
  explicit SqliteBackend(const TempDir& dir) : db(dir.file("store.db")) {}
  std::unique_ptr<Store> open() { return std::make_unique<SqliteStore>(db); }
  void pass_time(Store&, double seconds) { std::this_thread::sleep_for(std::chrono::duration<double>(seconds)); }
  std::string add_orphan(Store&, const std::string& bytes) {
    std::string id = checkpoint_id(bytes);
    raw_exec(db, "INSERT INTO checkpoints(id, bytes, size, created) VALUES ('" + id + "', CAST('" + bytes +
                     "' AS BLOB), " + std::to_string(bytes.size()) + ", 0)");
    return id;
  }
  void corrupt(Store&, const std::string& id) {
    raw_exec(db, "UPDATE checkpoints SET bytes = CAST('tampered' AS BLOB) WHERE id = '" + id + "'");
  }
  std::size_t checkpoint_count(Store&) {
    return static_cast<std::size_t>(raw_count(db, "SELECT count(*) FROM checkpoints"));
  }
  std::string db;
};

// PostgreSQL, in a database of its own; kDir: checkpoint bytes in a checkpoint_dir.
template <bool kDir>
struct PostgresBackendT {
  static std::string unavailable() { return test::postgres_unavailable(); }
#ifdef PBT_WITH_POSTGRES
  explicit PostgresBackendT(const TempDir& dir) : checkpoints(dir.file("checkpoints")) {}
  std::string uri() const { return kDir ? test::uri_with_param(db.uri(), "checkpoint_dir", checkpoints) : db.uri(); }
  std::unique_ptr<Store> open() { return std::make_unique<PostgresStore>(uri()); }
  void pass_time(Store&, double seconds) { std::this_thread::sleep_for(std::chrono::duration<double>(seconds)); }
  std::string add_orphan(Store&, const std::string& bytes) {
    std::string id = checkpoint_id(bytes);
    std::string hex;
    for (unsigned char c : bytes) {
      static const char* digits = "0123456789abcdef";
      hex += digits[c >> 4];
      hex += digits[c & 15];
    }
    test::PgConnection(db.uri()).exec("INSERT INTO pbt.checkpoints(id, bytes, size, created) VALUES ('" + id + "', " +
                                      (kDir ? std::string("NULL") : "'\\x" + hex + "'::bytea") + ", " +
                                      std::to_string(bytes.size()) + ", 0)");
    if (kDir) std::ofstream(checkpoints + "/" + id, std::ios::binary) << bytes;
    return id;
  }
  void corrupt(Store&, const std::string& id) {
    if (kDir) {  // checkpoint files are read-only: a new file in its place
      std::filesystem::remove(checkpoints + "/" + id);
      std::ofstream(checkpoints + "/" + id, std::ios::binary) << "tampered";
    } else {
      test::PgConnection(db.uri()).exec("UPDATE pbt.checkpoints SET bytes = 'tampered'::bytea WHERE id = '" + id + "'");
    }
  }
  std::size_t checkpoint_count(Store&) {
    const auto rows =
        static_cast<std::size_t>(test::PgConnection(db.uri()).count("SELECT count(*) FROM pbt.checkpoints"));
    if (kDir) {  // in checkpoint_dir mode every row has its file, and no file outlives its row
      std::size_t files = 0;
      for (const auto& e : std::filesystem::directory_iterator(checkpoints))
        files += valid_checkpoint_id(e.path().filename().string());
      EXPECT_EQ(files, rows) << "checkpoint files and rows disagree";
    }
    return rows;
  }
  test::PgDatabase db;
  std::string checkpoints;
#else
  explicit PostgresBackendT(const TempDir&) {}
  [[noreturn]] std::unique_ptr<Store> open() { throw std::logic_error("no PostgreSQL in this build"); }
  void pass_time(Store&, double) {}
  std::string add_orphan(Store&, const std::string&) { return ""; }
  void corrupt(Store&, const std::string&) {}
  std::size_t checkpoint_count(Store&) { return 0; }
#endif
};
using PostgresBackend = PostgresBackendT<false>;
using PostgresDirBackend = PostgresBackendT<true>;

template <class Backend>
class StoreConformance : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string why = Backend::unavailable();
    if (!why.empty()) GTEST_SKIP() << why;
    backend = std::make_unique<Backend>(dir);
    store = backend->open();
  }
  void TearDown() override {
    store.reset();
    backend.reset();
  }

  void create(const std::string& name, int n, std::vector<std::int64_t> steps = {}) {
    store->create_experiment(test::info(name, n), test::members(n, std::move(steps)));
  }
  Leased must_lease(const std::string& worker, double seconds = 30, const std::string& exp = "e") {
    auto l = store->lease(exp, worker, seconds);
    if (!l) throw std::runtime_error("expected a lease for " + worker);
    return *l;
  }
  MemberState member(int id, const std::string& exp = "e") { return store->population(exp).at(id); }
  void pass_time(double seconds) { backend->pass_time(*store, seconds); }
  std::size_t checkpoint_count() { return backend->checkpoint_count(*store); }

  // A synchronous generation at `step`: member i published "weights i" at it (score
  // 0.1 * (i + 1), last ready at 0), undecided; nobody holds a lease. Returns the population.
  std::vector<MemberState> at_generation(int n, std::int64_t step) {
    create("e", n);
    for (int i = 0; i < n; ++i) {
      auto l = must_lease("w" + std::to_string(i));
      auto pub = test::publication(step, 0.1 * (i + 1), "weights " + std::to_string(l.lease.member));
      pub.last_ready_step = 0;
      pub.h = l.member.h;
      pub.metrics = {{"loss", i}};
      store->publish(l.lease, pub);
      store->release(l.lease);
    }
    return store->population("e");
  }

  // What decide must leave alone when it refuses: every member's row, the events, the checkpoints.
  void expect_unchanged(const std::vector<MemberState>& before, std::size_t events, std::size_t checkpoints) {
    const auto after = store->population("e");
    ASSERT_EQ(after.size(), before.size());
    for (std::size_t i = 0; i < before.size(); ++i) {
      EXPECT_EQ(after[i].version, before[i].version) << "member " << i;
      EXPECT_EQ(after[i].last_ready_step, before[i].last_ready_step) << "member " << i;
      EXPECT_EQ(after[i].h, before[i].h) << "member " << i;
      EXPECT_EQ(after[i].checkpoint, before[i].checkpoint) << "member " << i;
      EXPECT_EQ(after[i].score, before[i].score) << "member " << i;
      EXPECT_EQ(after[i].metrics, before[i].metrics) << "member " << i;
      EXPECT_EQ(after[i].owner, before[i].owner) << "member " << i;
    }
    EXPECT_EQ(store->events("e").size(), events);
    EXPECT_EQ(checkpoint_count(), checkpoints);
    for (const auto& m : before) {
      if (m.checkpoint.empty()) continue;
      EXPECT_EQ(store->checkpoint(m.checkpoint), "weights " + std::to_string(m.id));
    }
  }

  TempDir dir;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Store> store;
};

using Backends = ::testing::Types<MemoryBackend, SqliteBackend, PostgresBackend, PostgresDirBackend>;
class BackendNames {
 public:
  template <class T>
  static std::string GetName(int) {
    if (std::is_same_v<T, MemoryBackend>) return "Memory";
    if (std::is_same_v<T, SqliteBackend>) return "Sqlite";
    if (std::is_same_v<T, PostgresBackend>) return "Postgres";
    return "PostgresCheckpointDir";
  }
};
TYPED_TEST_SUITE(StoreConformance, Backends, BackendNames);

TYPED_TEST(StoreConformance, CreateAndReadExperiment) {
  auto& s = *this->store;
  EXPECT_TRUE(s.experiments().empty());
  EXPECT_FALSE(s.experiment("e").has_value());
  const double before = s.now();
  this->create("e", 3);
  this->create("a", 1);
  EXPECT_EQ(s.experiments(), (std::vector<std::string>{"a", "e"}));
  auto info = s.experiment("e");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->name, "e");
  EXPECT_EQ(info->config, test::info("e", 3).config);
  EXPECT_EQ(info->origin, "/tmp/e.toml");
  EXPECT_EQ(info->population, 3);
  EXPECT_FALSE(info->finished);
  EXPECT_GE(info->created, before - 1);
  EXPECT_LE(info->created, s.now() + 1);

  auto pop = s.population("e");
  ASSERT_EQ(pop.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(pop[i].id, i);
    EXPECT_EQ(pop[i].step, 0);
    EXPECT_FALSE(pop[i].score.has_value());
    EXPECT_EQ(pop[i].h, test::h_for(i));  // doubles exactly
    EXPECT_EQ(pop[i].checkpoint, "");
    EXPECT_FALSE(pop[i].done);
    EXPECT_EQ(pop[i].owner, "");
  }
  EXPECT_TRUE(s.events("e").empty());
  EXPECT_TRUE(s.scores("e").empty());
}

TYPED_TEST(StoreConformance, DuplicateCreateThrows) {
  this->create("e", 2);
  std::string m = message_of<StoreError>([&] { this->create("e", 2); });
  EXPECT_TRUE(contains(m, "'e'")) << m;
  EXPECT_EQ(this->store->population("e").size(), 2u);
}

TYPED_TEST(StoreConformance, UnknownExperimentIsAnError) {
  auto& s = *this->store;
  EXPECT_TRUE(contains(message_of<StoreError>([&] { s.lease("nope", "w", 10); }), "nope"));
  EXPECT_TRUE(contains(message_of<StoreError>([&] { s.population("nope"); }), "nope"));
  EXPECT_TRUE(contains(message_of<StoreError>([&] { s.finish("nope"); }), "nope"));
}

TYPED_TEST(StoreConformance, LeasesFurthestBehindFirstTiesById) {
  this->create("e", 4, {5, 2, 2, 7});
  EXPECT_EQ(this->must_lease("a").lease.member, 1);
  EXPECT_EQ(this->must_lease("b").lease.member, 2);
  EXPECT_EQ(this->must_lease("c").lease.member, 0);
  EXPECT_EQ(this->must_lease("d").lease.member, 3);
  EXPECT_FALSE(this->store->lease("e", "f", 30).has_value());
}

TYPED_TEST(StoreConformance, LeasePrefersTheLastOwnerAmongEquals) {
  this->create("e", 3);
  auto a = this->must_lease("a");
  auto b = this->must_lease("b");
  EXPECT_EQ(a.lease.member, 0);
  EXPECT_EQ(b.lease.member, 1);
  EXPECT_EQ(a.member.owner, "a");
  EXPECT_EQ(a.member.last_owner, "a");
  this->store->release(a.lease);
  this->store->release(b.lease);
  EXPECT_EQ(this->member(1).last_owner, "b");
  EXPECT_EQ(this->member(1).owner, "");
  auto b2 = this->must_lease("b");
  EXPECT_EQ(b2.lease.member, 1);  // affinity beats the lower id
  auto c = this->must_lease("c");
  EXPECT_EQ(c.lease.member, 0);  // no affinity: lowest id
  this->store->release(b2.lease);
  this->store->release(c.lease);
  // Affinity never beats being further behind.
  auto a2 = this->must_lease("a");
  ASSERT_EQ(a2.lease.member, 0);
  this->store->publish(a2.lease, test::publication(3, 0.5, "x"));
  this->store->release(a2.lease);
  EXPECT_NE(this->must_lease("a").lease.member, 0);
}

TYPED_TEST(StoreConformance, LeaseSkipsHeldAndDoneMembers) {
  auto ms = test::members(3);
  ms[1].done = true;
  this->store->create_experiment(test::info("e", 3), ms);
  auto a = this->must_lease("a");
  auto b = this->must_lease("b");
  EXPECT_EQ(a.lease.member, 0);
  EXPECT_EQ(b.lease.member, 2);
  EXPECT_FALSE(this->store->lease("e", "c", 30).has_value());
  auto pub = test::publication(10, 1.0, "final");
  pub.done = true;
  this->store->publish(a.lease, pub);
  this->store->release(a.lease);
  EXPECT_TRUE(this->member(0).done);
  EXPECT_FALSE(this->store->lease("e", "c", 30).has_value());
}

TYPED_TEST(StoreConformance, LeaseVersionAndExpiry) {
  this->create("e", 1);
  auto& s = *this->store;
  const double before = s.now();
  auto a = this->must_lease("a", 30);
  EXPECT_EQ(a.lease.experiment, "e");
  EXPECT_EQ(a.lease.worker, "a");
  EXPECT_EQ(a.lease.version, 1);
  EXPECT_EQ(a.member.version, 1);
  EXPECT_GE(a.member.lease_expires, before + 29);
  EXPECT_LE(a.member.lease_expires, s.now() + 31);
  EXPECT_EQ(this->member(0).owner, "a");
}

TYPED_TEST(StoreConformance, ExpiredLeaseIsTakenOverAndTheZombieFails) {
  this->create("e", 1);
  auto& s = *this->store;
  auto a = this->must_lease("a", 0.2);
  EXPECT_FALSE(s.lease("e", "b", 30).has_value());
  this->pass_time(0.4);
  auto b = this->must_lease("b", 30);
  EXPECT_EQ(b.lease.member, 0);
  EXPECT_GT(b.lease.version, a.lease.version);
  EXPECT_EQ(b.member.owner, "b");

  std::string hb = message_of<LeaseLost>([&] { s.heartbeat(a.lease, 30); });
  EXPECT_TRUE(contains(hb, "member 0")) << hb;
  EXPECT_TRUE(contains(hb, "'a'")) << hb;

  const auto before = this->member(0);
  Lease zombie = a.lease;
  auto pub = test::publication(99, 9.0, "zombie weights");
  pub.scores = {{0, 99, 9.0}};
  Event ev;
  ev.kind = EventKind::explore;
  pub.events = {ev};
  message_of<LeaseLost>([&] { s.publish(zombie, pub); });
  EXPECT_EQ(zombie.version, a.lease.version);
  const auto after = this->member(0);
  EXPECT_EQ(after.step, before.step);
  EXPECT_EQ(after.version, before.version);
  EXPECT_EQ(after.owner, "b");
  EXPECT_FALSE(after.score.has_value());
  EXPECT_EQ(after.checkpoint, "");
  EXPECT_TRUE(s.events("e").empty());
  EXPECT_TRUE(s.scores("e").empty());
  EXPECT_EQ(this->checkpoint_count(), 0u);
  EXPECT_TRUE(contains(message_of<CheckpointError>([&] { s.checkpoint(checkpoint_id("zombie weights")); }), "missing"));

  s.release(a.lease);  // a lost lease: no error, no change
  EXPECT_EQ(this->member(0).owner, "b");
  s.heartbeat(b.lease, 30);
  s.publish(b.lease, test::publication(1, 0.5, "b weights"));
  EXPECT_EQ(this->member(0).step, 1);
}

TYPED_TEST(StoreConformance, HeartbeatExtendsTheLease) {
  this->create("e", 1);
  auto& s = *this->store;
  auto a = this->must_lease("a", 0.3);
  this->pass_time(0.15);
  s.heartbeat(a.lease, 30);
  EXPECT_GT(this->member(0).lease_expires, s.now() + 25);
  this->pass_time(0.3);
  EXPECT_FALSE(s.lease("e", "b", 30).has_value());
  s.heartbeat(a.lease, 30);
  auto pub = test::publication(1, 0.1, "w");
  s.publish(a.lease, pub);
  s.heartbeat(a.lease, 30);  // the lease's version followed the publish
}

// What PB2 reads at every decision: the events and score points from a step on, in the
// order of the full reads.
TYPED_TEST(StoreConformance, EventsAndScoresSinceAStep) {
  auto& s = *this->store;
  this->create("e", 2);
  for (std::int64_t step = 4; step <= 12; step += 4)
    for (int i = 0; i < 2; ++i) {
      auto l = this->must_lease("w");
      auto pub = test::publication(step, 0.1 * static_cast<double>(step) + i,
                                   "w " + std::to_string(l.member.id) + " " + std::to_string(step));
      pub.scores = {{l.member.id, step - 2, 0.0}, {l.member.id, step, pub.score}};
      Event e;
      e.member = l.member.id;
      e.step = step - 4;
      e.kind = EventKind::explore;
      e.old_h = test::h_for(0);
      e.new_h = test::h_for(1);
      pub.events = {e};
      s.publish(l.lease, pub);
      s.release(l.lease);
    }
  ASSERT_EQ(s.events("e").size(), 6u);
  ASSERT_EQ(s.scores("e").size(), 12u);
  EXPECT_EQ(s.events_since("e", kAllSteps).size(), 6u);
  EXPECT_EQ(s.scores_since("e", kAllSteps).size(), 12u);

  const auto events = s.events_since("e", 4);
  ASSERT_EQ(events.size(), 4u);
  const auto all = s.events("e");
  for (std::size_t i = 0; i < events.size(); ++i) {  // the full read's order, its tail here
    EXPECT_EQ(events[i].step, all[i + 2].step);
    EXPECT_EQ(events[i].member, all[i + 2].member);
    EXPECT_EQ(events[i].new_h, test::h_for(1));
  }
  const auto scores = s.scores_since("e", 8);
  ASSERT_EQ(scores.size(), 6u);  // steps 8, 10, 12 of both members
  for (std::size_t i = 0; i < scores.size(); ++i) {
    EXPECT_GE(scores[i].step, 8);
    if (i > 0)
      EXPECT_TRUE(scores[i - 1].member < scores[i].member ||
                  (scores[i - 1].member == scores[i].member && scores[i - 1].step < scores[i].step));
  }
  EXPECT_TRUE(s.events_since("e", 100).empty());
  EXPECT_TRUE(s.scores_since("e", 100).empty());
}

TYPED_TEST(StoreConformance, PublishMakesEverythingVisibleTogether) {
  this->create("e", 2);
  auto& s = *this->store;
  auto l = this->must_lease("w1");
  const std::int64_t v0 = l.lease.version;

  Publication pub;
  pub.step = 10;
  pub.last_ready_step = 8;
  pub.score = 1.0 / 3.0;
  pub.samples = {0.1, 1.0 / 3.0, 1e-300, -2.5, std::numeric_limits<double>::infinity()};
  pub.h = Hyperparams{{"lr", 0.1 + 0.2}, {"layers", std::int64_t{1} << 40}, {"act", std::string("gelu")}};
  pub.checkpoint_bytes = std::string("weights\0with\0zeros", 18);
  pub.metrics = {{"loss", 0.25}, {"note", "x"}};
  pub.scores = {{0, 9, 0.3}, {0, 10, 1.0 / 3.0}};
  Event ev;
  ev.member = 0;
  ev.step = 10;
  ev.kind = EventKind::exploit;
  ev.donor = 1;
  ev.copied = CopyMode::all;
  ev.donor_checkpoint = "abc";
  ev.old_h = test::h_for(0);
  ev.new_h = pub.h;
  ev.old_score = 0.125;
  ev.donor_score = 0.5;
  ev.new_score = 1.0 / 3.0;
  Event ev2;
  ev2.member = 0;
  ev2.step = 10;
  ev2.kind = EventKind::explore;
  ev2.worker = "someone-else";
  pub.events = {ev, ev2};

  const double t0 = s.now();
  s.publish(l.lease, pub);
  const double t1 = s.now();
  EXPECT_EQ(l.lease.version, v0 + 1);

  auto m = this->member(0);
  EXPECT_EQ(m.step, 10);
  EXPECT_EQ(m.last_ready_step, 8);
  ASSERT_TRUE(m.score.has_value());
  EXPECT_EQ(*m.score, 1.0 / 3.0);
  EXPECT_EQ(m.samples, pub.samples);
  EXPECT_EQ(m.h, pub.h);
  EXPECT_EQ(m.checkpoint, checkpoint_id(pub.checkpoint_bytes));
  EXPECT_EQ(m.metrics, pub.metrics);
  EXPECT_EQ(m.version, l.lease.version);
  EXPECT_EQ(m.owner, "w1");  // the lease is kept
  EXPECT_FALSE(m.done);
  EXPECT_EQ(s.checkpoint(m.checkpoint), pub.checkpoint_bytes);

  auto events = s.events("e");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, EventKind::exploit);
  EXPECT_EQ(events[0].member, 0);
  EXPECT_EQ(events[0].step, 10);
  EXPECT_EQ(events[0].donor, 1);
  EXPECT_EQ(events[0].copied, CopyMode::all);
  EXPECT_EQ(events[0].donor_checkpoint, "abc");
  EXPECT_EQ(events[0].old_h, ev.old_h);
  EXPECT_EQ(events[0].new_h, ev.new_h);
  EXPECT_EQ(events[0].old_score, 0.125);
  EXPECT_EQ(events[0].donor_score, 0.5);
  ASSERT_TRUE(events[0].new_score.has_value());
  EXPECT_EQ(*events[0].new_score, 1.0 / 3.0);
  EXPECT_EQ(events[0].worker, "w1");
  EXPECT_GE(events[0].time, t0 - 0.01);
  EXPECT_LE(events[0].time, t1 + 0.01);
  EXPECT_EQ(events[1].kind, EventKind::explore);
  EXPECT_EQ(events[1].worker, "someone-else");
  EXPECT_FALSE(events[1].new_score.has_value());
  EXPECT_EQ(events[1].donor, -1);

  auto scores = s.scores("e");
  ASSERT_EQ(scores.size(), 2u);
  EXPECT_EQ(scores[0].step, 9);
  EXPECT_EQ(scores[1].score, 1.0 / 3.0);

  // Still held: nobody else gets member 0.
  auto other = this->must_lease("w2");
  EXPECT_EQ(other.lease.member, 1);
  EXPECT_FALSE(s.lease("e", "w3", 30).has_value());

  // No bytes: the checkpoint stays.
  auto pub2 = test::publication(11, 0.5, "");
  s.publish(l.lease, pub2);
  EXPECT_EQ(this->member(0).checkpoint, checkpoint_id(pub.checkpoint_bytes));
  EXPECT_EQ(this->member(0).step, 11);
  s.release(l.lease);
  EXPECT_EQ(this->member(0).owner, "");
  EXPECT_EQ(this->member(0).last_owner, "w1");
}

TYPED_TEST(StoreConformance, ScoresAndEventsAreOrdered) {
  this->create("e", 2);
  auto& s = *this->store;
  auto a = this->must_lease("a");
  auto b = this->must_lease("b");
  auto p1 = test::publication(5, 0.5, "1");
  p1.scores = {{1, 5, 0.1}, {0, 3, 0.2}};
  Event e1;
  e1.kind = EventKind::explore;
  e1.member = 0;
  e1.step = 5;
  p1.events = {e1};
  s.publish(a.lease, p1);
  auto p2 = test::publication(4, 0.5, "2");
  p2.scores = {{0, 3, 0.3}, {0, 1, 0.4}};
  Event e2 = e1;
  e2.member = 1;
  e2.step = 4;
  p2.events = {e2};
  s.publish(b.lease, p2);
  auto p3 = test::publication(6, 0.5, "3");
  Event e3 = e1;
  e3.step = 6;
  p3.events = {e3};
  s.publish(a.lease, p3);

  auto scores = s.scores("e");
  ASSERT_EQ(scores.size(), 4u);
  EXPECT_EQ(scores[0].score, 0.4);  // (0, 1)
  EXPECT_EQ(scores[1].score, 0.2);  // (0, 3), first inserted
  EXPECT_EQ(scores[2].score, 0.3);  // (0, 3), second
  EXPECT_EQ(scores[3].score, 0.1);  // (1, 5)
  auto events = s.events("e");
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].step, 5);
  EXPECT_EQ(events[1].step, 4);
  EXPECT_EQ(events[2].step, 6);
  EXPECT_LE(events[0].time, events[2].time);
}

TYPED_TEST(StoreConformance, CheckpointRoundTripAndVerification) {
  EXPECT_EQ(checkpoint_id("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(checkpoint_id(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  this->create("e", 1);
  auto& s = *this->store;
  std::string bytes;
  for (int i = 0; i < 3 * 256 + 7; ++i) bytes.push_back(static_cast<char>(i & 0xff));
  auto l = this->must_lease("a");
  s.publish(l.lease, test::publication(1, 0.0, bytes));
  const std::string id = this->member(0).checkpoint;
  EXPECT_EQ(id, checkpoint_id(bytes));
  EXPECT_EQ(s.checkpoint(id), bytes);

  std::string missing = message_of<CheckpointError>([&] { s.checkpoint(checkpoint_id("never stored")); });
  EXPECT_TRUE(contains(missing, checkpoint_id("never stored"))) << missing;
  EXPECT_TRUE(contains(missing, "missing")) << missing;

  this->backend->corrupt(s, id);
  std::string bad = message_of<CheckpointError>([&] { s.checkpoint(id); });
  EXPECT_TRUE(contains(bad, id)) << bad;
  EXPECT_TRUE(contains(bad, "does not match its hash")) << bad;
}

TYPED_TEST(StoreConformance, SharedCheckpointLivesWhileReferenced) {
  this->create("e", 2);
  this->create("f", 1);
  auto& s = *this->store;
  auto a = this->must_lease("a");
  auto b = this->must_lease("b");
  auto c = this->must_lease("c", 30, "f");
  s.publish(a.lease, test::publication(1, 0.1, "X"));
  s.publish(b.lease, test::publication(1, 0.2, "X"));
  s.publish(c.lease, test::publication(1, 0.3, "X"));
  const std::string x = checkpoint_id("X");
  EXPECT_EQ(this->member(0).checkpoint, x);
  EXPECT_EQ(this->member(1).checkpoint, x);
  EXPECT_EQ(this->checkpoint_count(), 1u);  // identical bytes share one

  s.publish(a.lease, test::publication(2, 0.1, "Y"));
  EXPECT_EQ(s.checkpoint(x), "X");
  s.publish(b.lease, test::publication(2, 0.2, "Z"));
  EXPECT_EQ(s.checkpoint(x), "X");  // experiment f's member still refers to it
  s.publish(c.lease, test::publication(2, 0.3, "Y"));
  EXPECT_TRUE(contains(message_of<CheckpointError>([&] { s.checkpoint(x); }), "missing"));
  EXPECT_EQ(s.checkpoint(checkpoint_id("Y")), "Y");
  EXPECT_EQ(s.checkpoint(checkpoint_id("Z")), "Z");
  EXPECT_EQ(this->checkpoint_count(), 2u);

  // Publishing the bytes a member already points to keeps them.
  s.publish(a.lease, test::publication(3, 0.1, "Y"));
  EXPECT_EQ(s.checkpoint(checkpoint_id("Y")), "Y");
  EXPECT_EQ(s.collect_garbage(), 0u);
}

TYPED_TEST(StoreConformance, CollectGarbageRemovesOnlyUnreferenced) {
  this->create("e", 1);
  auto& s = *this->store;
  auto a = this->must_lease("a");
  s.publish(a.lease, test::publication(1, 0.1, "kept"));
  EXPECT_EQ(s.collect_garbage(), 0u);
  const std::string o1 = this->backend->add_orphan(s, "orphan one");
  const std::string o2 = this->backend->add_orphan(s, "orphan two");
  EXPECT_EQ(s.checkpoint(o1), "orphan one");
  EXPECT_EQ(s.collect_garbage(), 2u);
  EXPECT_EQ(s.collect_garbage(), 0u);
  message_of<CheckpointError>([&] { s.checkpoint(o2); });
  EXPECT_EQ(s.checkpoint(checkpoint_id("kept")), "kept");
}

TYPED_TEST(StoreConformance, FinishStopsLeasing) {
  this->create("e", 2);
  auto& s = *this->store;
  auto a = this->must_lease("a");
  s.finish("e");
  EXPECT_TRUE(s.experiment("e")->finished);
  EXPECT_FALSE(s.lease("e", "b", 30).has_value());
  // The holder may still publish and release what it has.
  s.publish(a.lease, test::publication(1, 0.9, "last"));
  s.release(a.lease);
  EXPECT_FALSE(s.lease("e", "a", 30).has_value());
}

TYPED_TEST(StoreConformance, HeartbeatFromAnotherThreadWhilePublishing) {
  this->create("e", 1);
  auto& s = *this->store;
  auto l = this->must_lease("a");
  std::atomic<std::int64_t> version{l.lease.version};
  std::atomic<bool> stop{false};
  std::atomic<int> beats{0}, lost{0};
  std::thread heart([&] {
    while (!stop) {
      Lease copy = l.lease;
      copy.version = version.load();
      try {
        s.heartbeat(copy, 30);
        ++beats;
      } catch (const LeaseLost&) {
        ++lost;  // raced with a publish that bumped the version: fine, retry with the new one
      }
    }
  });
  Lease lease = l.lease;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  int i = 0;
  // Interleave for real: keep publishing until the heart has beaten a few times.
  while (i < 40 || (beats.load() < 5 && std::chrono::steady_clock::now() < give_up)) {
    ++i;
    s.publish(lease, test::publication(i, i * 0.01, "w" + std::to_string(i % 3)));
    version = lease.version;
    if (i % 8 == 0) std::this_thread::yield();
  }
  stop = true;
  heart.join();
  EXPECT_GE(beats.load(), 5);
  EXPECT_EQ(this->member(0).step, i);
  EXPECT_EQ(this->member(0).version, lease.version);
  EXPECT_EQ(this->member(0).owner, "a");
}

// ---- decide: a synchronous generation's decisions, applied at once ----

// A decision where `m` stands now: an explore that keeps its own checkpoint and score.
Decision explore_of(const MemberState& m, double lr) {
  Decision d;
  d.member = m.id;
  d.step = m.step;
  d.last_ready_step = m.last_ready_step;
  d.h = m.h;
  d.h["lr"] = lr;
  d.score = m.score.value_or(0);
  d.samples = m.samples;
  d.metrics = m.metrics;
  Event ev;
  ev.member = m.id;
  ev.step = m.step;
  ev.kind = EventKind::explore;
  ev.old_h = m.h;
  ev.new_h = d.h;
  ev.old_score = d.score;
  ev.worker = "decider";
  d.events = {ev};
  return d;
}

// `m` copies `donor`'s checkpoint, h (perturbed), score, samples and metrics.
Decision exploit_of(const MemberState& m, const MemberState& donor, double lr) {
  Decision d = explore_of(donor, lr);
  d.member = m.id;
  d.step = m.step;
  d.last_ready_step = m.last_ready_step;
  d.checkpoint = donor.checkpoint;
  Event& ev = d.events.at(0);
  ev.member = m.id;
  ev.kind = EventKind::exploit;
  ev.donor = donor.id;
  ev.donor_step = donor.step;
  ev.copied = CopyMode::all;
  ev.donor_checkpoint = donor.checkpoint;
  ev.old_h = m.h;
  ev.old_score = m.score.value_or(0);
  ev.donor_score = donor.score.value_or(0);
  return d;
}

TYPED_TEST(StoreConformance, DecideAppliesAGenerationAtOnce) {
  auto& s = *this->store;
  const auto before = this->at_generation(3, 4);
  // Workers waiting at the barrier hold leases on members 0 and 2 just to look.
  auto waiting0 = this->must_lease("w0");
  auto waiting2 = this->must_lease("w2");
  ASSERT_EQ(waiting0.lease.member, 0);
  ASSERT_EQ(waiting2.lease.member, 2);
  const auto held = s.population("e");  // (SQLite: fills its cache, which must not go stale)
  ASSERT_EQ(held[0].owner, "w0");

  // 0 copies 2; 1 explores; 2 explores.
  std::vector<Decision> ds = {exploit_of(before[0], before[2], 0.5), explore_of(before[1], 0.25),
                              explore_of(before[2], 0.125)};
  ds[0].samples = {0.3, 0.2, 0.1};
  ds[0].metrics = {{"copied_from", {{"member", 2}, {"step", 4}}}};
  const double t0 = s.now();
  s.decide("e", ds);
  const double t1 = s.now();

  const auto pop = s.population("e");
  ASSERT_EQ(pop.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE("member " + std::to_string(i));
    EXPECT_EQ(pop[i].step, 4);
    EXPECT_EQ(pop[i].last_ready_step, 4);  // decided at its step
    EXPECT_EQ(pop[i].h, ds[i].h);
    ASSERT_TRUE(pop[i].score.has_value());
    EXPECT_EQ(*pop[i].score, ds[i].score);
    EXPECT_EQ(pop[i].samples, ds[i].samples);
    EXPECT_EQ(pop[i].metrics, ds[i].metrics);
    EXPECT_EQ(pop[i].version, held[i].version + 1);
    EXPECT_EQ(pop[i].owner, "");
    EXPECT_EQ(pop[i].lease_expires, 0);
    EXPECT_FALSE(pop[i].done);
    EXPECT_EQ(pop[i].failures, 0);
  }
  EXPECT_EQ(pop[0].checkpoint, before[2].checkpoint);  // points at the donor's
  EXPECT_EQ(pop[0].score, before[2].score);            // the donor's
  EXPECT_EQ(pop[0].h.at("lr"), Value{0.5});
  EXPECT_EQ(pop[1].checkpoint, before[1].checkpoint);  // no checkpoint named: keeps its own
  EXPECT_EQ(pop[2].checkpoint, before[2].checkpoint);
  EXPECT_EQ(s.checkpoint(pop[0].checkpoint), "weights 2");

  const auto events = s.events("e");
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].member, 0);
  EXPECT_EQ(events[0].kind, EventKind::exploit);
  EXPECT_EQ(events[0].donor, 2);
  EXPECT_EQ(events[0].donor_step, 4);
  EXPECT_EQ(events[0].copied, CopyMode::all);
  EXPECT_EQ(events[0].donor_checkpoint, before[2].checkpoint);
  EXPECT_EQ(events[0].old_h, before[0].h);
  EXPECT_EQ(events[0].new_h, ds[0].h);
  EXPECT_EQ(events[0].donor_score, *before[2].score);
  EXPECT_EQ(events[0].worker, "decider");
  EXPECT_EQ(events[1].member, 1);
  EXPECT_EQ(events[1].kind, EventKind::explore);
  EXPECT_EQ(events[1].donor, -1);
  EXPECT_EQ(events[2].member, 2);
  for (const auto& ev : events) {
    EXPECT_GE(ev.time, t0 - 0.01);
    EXPECT_LE(ev.time, t1 + 0.01);
  }

  // Member 0's own checkpoint went with the decision; the donor's stays (two refer to it).
  EXPECT_TRUE(contains(message_of<CheckpointError>([&] { s.checkpoint(before[0].checkpoint); }), "missing"));
  EXPECT_EQ(this->checkpoint_count(), 2u);
  EXPECT_EQ(s.collect_garbage(), 0u);
  EXPECT_TRUE(s.scores("e").size() == 0u);  // a decision records no score points

  // The next generation goes on from the decision: lease, publish, decide again.
  auto l = this->must_lease("w0");
  EXPECT_EQ(l.member.version, pop[l.lease.member].version + 1);
  auto pub = test::publication(8, 0.7, "next " + std::to_string(l.lease.member));
  pub.last_ready_step = 4;
  s.publish(l.lease, pub);
  s.release(l.lease);
  const auto m = this->member(l.lease.member);
  EXPECT_EQ(m.step, 8);
  s.decide("e", {explore_of(m, 0.0625)});
  EXPECT_EQ(this->member(l.lease.member).last_ready_step, 8);
}

TYPED_TEST(StoreConformance, AStaleDecisionChangesNothing) {
  auto& s = *this->store;
  const auto gen = this->at_generation(3, 4);
  // Another worker decided member 1 first (its last_ready_step moved).
  s.decide("e", {explore_of(gen[1], 0.9)});
  auto before = s.population("e");
  const std::size_t events = s.events("e").size();
  const std::size_t checkpoints = this->checkpoint_count();
  ASSERT_EQ(checkpoints, 3u);

  const std::vector<Decision> ds = {exploit_of(gen[0], gen[2], 0.5), explore_of(gen[1], 0.25),
                                    explore_of(gen[2], 0.125)};
  const std::string m = message_of<LeaseLost>([&] { s.decide("e", ds); });
  EXPECT_TRUE(contains(m, "member 1")) << m;
  EXPECT_TRUE(contains(m, "'e'")) << m;
  EXPECT_TRUE(contains(m, "last ready at 4")) << m;
  this->expect_unchanged(before, events, checkpoints);

  // A member whose step moved (it published again) is stale too.
  auto l2 = this->must_lease("w9");
  ASSERT_EQ(l2.lease.member, 0);
  auto pub = test::publication(6, 0.5, "weights 0");
  pub.last_ready_step = 0;
  pub.h = gen[0].h;
  pub.metrics = gen[0].metrics;
  s.publish(l2.lease, pub);
  s.release(l2.lease);
  before = s.population("e");
  const std::string m2 = message_of<LeaseLost>([&] {
    s.decide("e", {explore_of(gen[2], 0.3), explore_of(gen[0], 0.3)});
  });
  EXPECT_TRUE(contains(m2, "member 0")) << m2;
  EXPECT_TRUE(contains(m2, "step 6")) << m2;
  this->expect_unchanged(before, events, checkpoints);

  // A member that is not there, or has failed, cannot be decided either.
  Decision ghost = explore_of(gen[2], 0.3);
  ghost.member = 7;
  EXPECT_TRUE(contains(message_of<LeaseLost>([&] { s.decide("e", {explore_of(gen[2], 0.3), ghost}); }), "member 7"));
  this->expect_unchanged(before, events, checkpoints);
  auto l3 = this->must_lease("w9");
  ASSERT_EQ(l3.lease.member, 1);  // the first of those furthest behind
  ASSERT_TRUE(s.fail(l3.lease, "boom", 1));
  before = s.population("e");
  EXPECT_TRUE(contains(message_of<LeaseLost>([&] { s.decide("e", {explore_of(before[1], 0.3)}); }), "failed"));
  this->expect_unchanged(before, events, checkpoints);
  EXPECT_EQ(this->member(1).failures, 1);
  EXPECT_EQ(this->member(1).last_error, "boom");
}

TYPED_TEST(StoreConformance, DecideRefusesAnUnknownCheckpointAndBadLists) {
  auto& s = *this->store;
  const auto gen = this->at_generation(2, 4);
  const std::size_t checkpoints = this->checkpoint_count();
  Decision bad = exploit_of(gen[1], gen[0], 0.5);
  bad.checkpoint = checkpoint_id("never stored");
  const std::string m = message_of<StoreError>([&] { s.decide("e", {explore_of(gen[0], 0.3), bad}); });
  EXPECT_TRUE(contains(m, checkpoint_id("never stored"))) << m;
  EXPECT_TRUE(contains(m, "member 1")) << m;
  this->expect_unchanged(gen, 0, checkpoints);

  const std::string twice = message_of<StoreError>([&] {
    s.decide("e", {explore_of(gen[0], 0.3), explore_of(gen[0], 0.4)});
  });
  EXPECT_TRUE(contains(twice, "member 0 twice")) << twice;
  this->expect_unchanged(gen, 0, checkpoints);

  EXPECT_TRUE(contains(message_of<StoreError>([&] { s.decide("nope", {explore_of(gen[0], 0.3)}); }), "nope"));
  s.decide("e", {});  // nothing to decide: nothing happens
  this->expect_unchanged(gen, 0, checkpoints);
}

TYPED_TEST(StoreConformance, DecideCollectsACheckpointOnceNobodyRefersToIt) {
  auto& s = *this->store;
  auto gen = this->at_generation(3, 4);
  const std::string c0 = gen[0].checkpoint, c1 = gen[1].checkpoint, c2 = gen[2].checkpoint;
  // 1 copies 0: its own c1 goes, c0 is now shared.
  s.decide("e", {explore_of(gen[0], 0.3), exploit_of(gen[1], gen[0], 0.3)});
  EXPECT_EQ(this->member(1).checkpoint, c0);
  EXPECT_TRUE(contains(message_of<CheckpointError>([&] { s.checkpoint(c1); }), "missing"));
  EXPECT_EQ(this->checkpoint_count(), 2u);

  // Next generation: 0 copies 2; c0 survives, member 1 still refers to it.
  for (int i = 0; i < 2; ++i) {
    auto l = this->must_lease("w" + std::to_string(i));
    auto pub = test::publication(8, gen[l.lease.member].score.value_or(0), "");  // no new bytes
    pub.last_ready_step = 4;
    pub.h = this->member(l.lease.member).h;
    s.publish(l.lease, pub);
    s.release(l.lease);
  }
  gen = s.population("e");
  ASSERT_EQ(gen[0].step, 8);
  ASSERT_EQ(gen[1].step, 8);
  s.decide("e", {exploit_of(gen[0], gen[2], 0.3)});
  EXPECT_EQ(this->member(0).checkpoint, c2);
  EXPECT_EQ(s.checkpoint(c0), "weights 0");
  EXPECT_EQ(this->checkpoint_count(), 2u);

  // 1 copies 2 as well: nobody refers to c0 any more, and it goes (with its file).
  s.decide("e", {exploit_of(gen[1], gen[2], 0.3)});
  EXPECT_TRUE(contains(message_of<CheckpointError>([&] { s.checkpoint(c0); }), "missing"));
  EXPECT_EQ(s.checkpoint(c2), "weights 2");
  EXPECT_EQ(this->checkpoint_count(), 1u);
  EXPECT_EQ(s.collect_garbage(), 0u);
}

TYPED_TEST(StoreConformance, AWaitingWorkersLeaseIsClearedByADecision) {
  auto& s = *this->store;
  const auto gen = this->at_generation(2, 4);
  auto waiting = this->must_lease("a", 30);
  ASSERT_EQ(waiting.lease.member, 0);
  s.heartbeat(waiting.lease, 30);
  s.decide("e", {explore_of(gen[0], 0.3), explore_of(gen[1], 0.3)});
  EXPECT_EQ(this->member(0).owner, "");

  // The old lease is gone: a heartbeat says so, publish refuses, release is a quiet no-op.
  const std::string hb = message_of<LeaseLost>([&] { s.heartbeat(waiting.lease, 30); });
  EXPECT_TRUE(contains(hb, "member 0")) << hb;
  Lease old = waiting.lease;
  message_of<LeaseLost>([&] { s.publish(old, test::publication(8, 0.9, "zombie")); });
  s.release(waiting.lease);
  EXPECT_EQ(this->member(0).owner, "");
  EXPECT_EQ(this->member(0).last_ready_step, 4);

  // Another worker takes member 0; the old lease's release does not free it.
  auto b = this->must_lease("b", 30);
  ASSERT_EQ(b.lease.member, 0);
  s.release(waiting.lease);
  EXPECT_EQ(this->member(0).owner, "b");
  s.heartbeat(b.lease, 30);
  auto pub = test::publication(8, 0.9, "b weights");
  pub.last_ready_step = 4;
  s.publish(b.lease, pub);
  EXPECT_EQ(this->member(0).step, 8);
  EXPECT_EQ(this->member(0).last_ready_step, 4);
}

TYPED_TEST(StoreConformance, TwoWorkersDecidingAtOnceOneWins) {
  auto gen = this->at_generation(4, 4);
  // Each worker with a connection of its own (memory: the one store), deciding the same
  // generation with its list in another order: exactly one applies, the other is stale.
  std::unique_ptr<Store> own[2];
  Store* stores[2] = {this->store.get(), this->store.get()};
  if (!std::is_same_v<TypeParam, MemoryBackend>) {
    for (int w = 0; w < 2; ++w) stores[w] = (own[w] = this->backend->open()).get();
  }
  for (int round = 0; round < 3; ++round) {
    std::vector<Decision> ds[2];
    for (const auto& m : gen) ds[0].push_back(exploit_of(m, gen[(m.id + 1) % 4], 0.5 + round));
    ds[1] = std::vector<Decision>(ds[0].rbegin(), ds[0].rend());
    std::atomic<int> applied{0}, stale{0};
    std::thread workers[2];
    for (int w = 0; w < 2; ++w)
      workers[w] = std::thread([&, w] {
        try {
          stores[w]->decide("e", ds[w]);
          ++applied;
        } catch (const LeaseLost&) {
          ++stale;
        }
      });
    for (auto& t : workers) t.join();
    EXPECT_EQ(applied.load(), 1) << "round " << round;
    EXPECT_EQ(stale.load(), 1) << "round " << round;
    const auto pop = this->store->population("e");
    for (const auto& m : pop) {
      EXPECT_EQ(m.version, gen[m.id].version + 1) << "member " << m.id;
      EXPECT_EQ(m.h.at("lr"), Value{0.5 + round}) << "member " << m.id;
    }
    EXPECT_EQ(this->store->events("e").size(), 4u * (round + 1));
    // Next generation: everyone publishes again (no new bytes).
    for (int i = 0; i < 4; ++i) {
      auto l = this->must_lease("w");
      auto pub = test::publication(pop[l.lease.member].step + 4, 0.5, "");
      pub.last_ready_step = pop[l.lease.member].last_ready_step;
      pub.h = pop[l.lease.member].h;
      this->store->publish(l.lease, pub);
      this->store->release(l.lease);
    }
    gen = this->store->population("e");
  }
}

// ---- open_store ----

TEST(OpenStore, AcceptsTheDocumentedForms) {
  TempDir dir;
  auto m = open_store("memory:");
  ASSERT_TRUE(dynamic_cast<MemoryStore*>(m.get()));
  for (const std::string& uri : {"sqlite:" + dir.file("a.db"), "sqlite://" + dir.file("b.db"), dir.file("c.db"),
                                 dir.file("d.sqlite"), dir.file("e.sqlite3"), "sqlite:" + dir.file("noext")}) {
    auto s = open_store(uri);
    auto* sq = dynamic_cast<SqliteStore*>(s.get());
    ASSERT_TRUE(sq) << uri;
    s->create_experiment(test::info("x", 1), test::members(1));
    EXPECT_TRUE(std::filesystem::exists(sq->path())) << uri;
  }
  EXPECT_TRUE(std::filesystem::exists(dir.file("b.db")));
  EXPECT_TRUE(std::filesystem::exists(dir.file("noext")));
}

TEST(OpenStore, RejectsUnknownForms) {
  std::string pg = message_of<StoreError>([] { open_store("postgresql:localhost/pbt"); });
  EXPECT_TRUE(contains(pg, "PostgreSQL")) << pg;
  EXPECT_TRUE(contains(pg, "postgresql:localhost/pbt")) << pg;
  EXPECT_TRUE(contains(pg, "postgresql://")) << pg;
  std::string other = message_of<StoreError>([] { open_store("results.txt"); });
  EXPECT_TRUE(contains(other, "results.txt")) << other;
  EXPECT_TRUE(contains(other, "memory:")) << other;
  EXPECT_TRUE(contains(other, "sqlite:PATH")) << other;
  message_of<StoreError>([] { open_store("sqlite:"); });
  message_of<StoreError>([] { open_store(""); });
  std::string missing = message_of<StoreError>([] { open_store("sqlite:/nonexistent-dir-pbt/x.db"); });
  EXPECT_TRUE(contains(missing, "/nonexistent-dir-pbt/x.db")) << missing;
}

// ---- SQLite only ----

TEST(SqliteStore, ReopenKeepsTheData) {
  TempDir dir;
  const std::string path = dir.file("s.db");
  std::string id;
  {
    SqliteStore s(path);
    s.create_experiment(test::info("e", 2), test::members(2));
    auto l = s.lease("e", "a", 30);
    ASSERT_TRUE(l);
    auto pub = test::publication(7, 0.1 + 0.2, "persisted");
    Event ev;
    ev.kind = EventKind::explore;
    pub.events = {ev};
    pub.scores = {{0, 7, 0.1 + 0.2}};
    s.publish(l->lease, pub);
    id = checkpoint_id("persisted");
  }
  SqliteStore s(path);
  EXPECT_EQ(s.experiments(), std::vector<std::string>{"e"});
  auto m = s.population("e").at(0);
  EXPECT_EQ(m.step, 7);
  EXPECT_EQ(*m.score, 0.1 + 0.2);
  EXPECT_EQ(m.owner, "a");
  EXPECT_EQ(m.checkpoint, id);
  EXPECT_EQ(s.checkpoint(id), "persisted");
  EXPECT_EQ(s.events("e").size(), 1u);
  EXPECT_EQ(s.scores("e").at(0).score, 0.1 + 0.2);
}

TEST(SqliteStore, TwoConnectionsSeeEachOther) {
  TempDir dir;
  SqliteStore a(dir.file("s.db"));
  SqliteStore b(dir.file("s.db"));
  a.create_experiment(test::info("e", 1), test::members(1));
  auto la = a.lease("e", "a", 30);
  ASSERT_TRUE(la);
  EXPECT_FALSE(b.lease("e", "b", 30).has_value());
  a.publish(la->lease, test::publication(3, 0.5, "bytes"));
  EXPECT_EQ(b.population("e").at(0).step, 3);
  EXPECT_EQ(b.checkpoint(checkpoint_id("bytes")), "bytes");
  EXPECT_NEAR(a.now(), b.now(), 1.0);
}

TEST(SqliteStore, RefusesAnotherSchemaVersion) {
  TempDir dir;
  const std::string path = dir.file("s.db");
  { SqliteStore s(path); }
  raw_exec(path, "UPDATE meta SET value = '99' WHERE key = 'schema_version'");
  std::string m = message_of<StoreError>([&] { SqliteStore s(path); });
  EXPECT_TRUE(contains(m, "schema version 99")) << m;
  EXPECT_TRUE(contains(m, "schema version 1")) << m;
  EXPECT_TRUE(contains(m, path)) << m;
}

TEST(SqliteStore, RefusesForeignFiles) {
  TempDir dir;
  const std::string other = dir.file("other.db");
  raw_exec(other, "CREATE TABLE users(id INTEGER)");
  std::string m = message_of<StoreError>([&] { SqliteStore s(other); });
  EXPECT_TRUE(contains(m, "not a pbt store")) << m;
  EXPECT_TRUE(contains(m, other)) << m;
  EXPECT_EQ(raw_count(other, "SELECT count(*) FROM sqlite_master WHERE name = 'meta'"), 0);

  const std::string text = dir.file("notes.db");
  std::ofstream(text)
      << "these are not the droids you are looking for, this is plain text, long enough to fill a header\n";
  std::string t = message_of<StoreError>([&] { SqliteStore s(text); });
  EXPECT_TRUE(contains(t, text)) << t;
}

// Another connection holding the write lock, as a busy worker in another process would.
class WriteLockHolder {
 public:
  explicit WriteLockHolder(const std::string& path) {
    EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  }
  ~WriteLockHolder() { sqlite3_close(db_); }
  void release() { EXPECT_EQ(sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK); }

 private:
  sqlite3* db_ = nullptr;
};

TEST(SqliteStore, RidesOutABriefLock) {
  TempDir dir;
  const std::string path = dir.file("s.db");
  SqliteStore::Options options;
  options.busy_timeout_ms = 50;  // so that our own retry loop does the waiting
  options.retry_seconds = 10;
  SqliteStore s(path, options);
  s.create_experiment(test::info("e", 1), test::members(1));
  WriteLockHolder holder(path);
  std::thread unlock([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    holder.release();
  });
  auto l = s.lease("e", "a", 30);  // waits for the lock, does not fail
  unlock.join();
  ASSERT_TRUE(l.has_value());
  EXPECT_EQ(s.population("e").at(0).owner, "a");
}

TEST(SqliteStore, GivesUpOnALongLockWithAClearError) {
  TempDir dir;
  const std::string path = dir.file("s.db");
  SqliteStore::Options options;
  options.busy_timeout_ms = 50;
  options.retry_seconds = 0.3;
  SqliteStore s(path, options);
  s.create_experiment(test::info("e", 1), test::members(1));
  WriteLockHolder holder(path);
  const auto t0 = std::chrono::steady_clock::now();
  std::string m = message_of<StoreError>([&] { s.lease("e", "a", 30); });
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(contains(m, path)) << m;
  EXPECT_TRUE(contains(m, "locked")) << m;
  EXPECT_GE(waited, 0.3);
  EXPECT_LT(waited, 3.0);
  // Readers are not blocked by a writer (WAL).
  EXPECT_EQ(s.population("e").size(), 1u);
  holder.release();
  EXPECT_TRUE(s.lease("e", "a", 30).has_value());
}

TEST(SqliteStore, NanScoreIsStoredAsNoScore) {
  TempDir dir;
  SqliteStore s(dir.file("s.db"));
  s.create_experiment(test::info("e", 1), test::members(1));
  auto l = s.lease("e", "a", 30);
  auto pub = test::publication(1, std::numeric_limits<double>::quiet_NaN(), "b");
  pub.samples = {1.0, std::numeric_limits<double>::quiet_NaN(), -std::numeric_limits<double>::infinity()};
  s.publish(l->lease, pub);
  auto m = s.population("e").at(0);
  EXPECT_FALSE(m.score.has_value());
  ASSERT_EQ(m.samples.size(), 3u);
  EXPECT_TRUE(std::isnan(m.samples[1]));
  EXPECT_EQ(m.samples[2], -std::numeric_limits<double>::infinity());
}

}  // namespace
}  // namespace pbt
