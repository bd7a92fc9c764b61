// SQLite under a worker: a brief lock loses nothing, a checkpoint over SQLite's length limit
// is refused by name, and a garbled stored row or config is reported as the store's damage
// (table, row, column), not as a parser's bare message or an error in the user's file.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "pbt/pbt.hpp"
#include "common/toy_config.hpp"
#include "store/sqlite_store.hpp"
#include "store_test_util.hpp"

namespace pbt {
namespace {

using test::contains;
using test::message_of;
using test::TempDir;

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

const std::string kConfig = test::ToyConfig("locked")
                                .seed(3)
                                .population(3)
                                .steps(16)
                                .set("ready.eval_every", "1")
                                .set("exploit.fraction", "0.34")
                                .lease_seconds("30");

// Another connection takes the write lock just before some publishes and keeps it until the
// store gives up on it (as a busy worker in another process might, for longer than usual).
class LockedAtPublish : public SqliteStore {
 public:
  LockedAtPublish(const std::string& path, Options o, std::set<int> locked)
      : SqliteStore(path, o), path_(path), locked_(std::move(locked)) {}
  int unavailable = 0;

  void publish(Lease& lease, const Publication& pub) override {
    if (!locked_.count(++publishes_)) return SqliteStore::publish(lease, pub);
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
    try {
      SqliteStore::publish(lease, pub);
    } catch (const StoreUnavailable&) {
      ++unavailable;
      sqlite3_close(db);  // rolls back: the lock is gone
      throw;
    } catch (...) {
      sqlite3_close(db);
      throw;
    }
    sqlite3_close(db);
    ADD_FAILURE() << "publish went through a held write lock";
  }

 private:
  std::string path_;
  std::set<int> locked_;
  int publishes_ = 0;
};

TEST(SqliteWorker, ABrieflyLockedStoreLosesNothing) {
  TempDir dir;
  SqliteStore::Options o;
  o.busy_timeout_ms = 20;
  o.retry_seconds = 0.2;  // give up on the lock quickly, so the worker sees the failure
  LockedAtPublish store(dir.file("s.db"), o, {2, 3, 4, 5, 9});  // more in a row than max_failures
  create_or_join(store, parse_config(kConfig, "locked.toml"));
  WorkerOptions opt;
  opt.id = "w";
  opt.store_retry_seconds = 0.001;
  WorkerStats stats = run_worker(store, "locked", opt);
  EXPECT_EQ(store.unavailable, 5);
  EXPECT_EQ(stats.failed_intervals, 0);
  std::map<int, std::multiset<std::int64_t>> seen;
  for (const auto& p : store.scores("locked")) seen[p.member].insert(p.step);
  for (const auto& m : store.population("locked")) {
    EXPECT_FALSE(m.failed) << "member " << m.id << ": " << m.last_error;
    EXPECT_TRUE(m.done);
    EXPECT_EQ(m.step, 16);
    for (int s = 1; s <= 16; ++s) EXPECT_EQ(seen[m.id].count(s), 1u) << "member " << m.id << " step " << s;
  }
}

TEST(SqliteStore, ACheckpointOverTheLengthLimitIsRefusedNamingMemberSizeAndLimit) {
  TempDir dir;
  SqliteStore::Options o;
  o.length_limit = 1000;  // SQLite's default is 1e9: the same check, at a size a test can afford
  SqliteStore s(dir.file("s.db"), o);
  s.create_experiment(test::info("e", 2), test::members(2));
  auto l = s.lease("e", "a", 30);
  ASSERT_TRUE(l);
  std::string m;
  try {
    s.publish(l->lease, test::publication(4, 0.5, std::string(2000, 'x')));
    ADD_FAILURE() << "published a checkpoint over the limit";
  } catch (const StoreUnavailable& e) {
    ADD_FAILURE() << "reported as transient: " << e.what();
  } catch (const StoreError& e) {
    m = e.what();
  }
  EXPECT_TRUE(contains(m, dir.file("s.db"))) << m;
  EXPECT_TRUE(contains(m, "member " + std::to_string(l->lease.member))) << m;
  EXPECT_TRUE(contains(m, "2000 bytes")) << m;
  EXPECT_TRUE(contains(m, "limit of 1000 bytes")) << m;
  // Nothing was published; a checkpoint within the limit still is.
  EXPECT_EQ(s.population("e").at(l->lease.member).step, 0);
  s.publish(l->lease, test::publication(4, 0.5, std::string(500, 'x')));
  EXPECT_EQ(s.population("e").at(l->lease.member).step, 4);
}

// The message of what f throws, which must be a StoreError and not a ConfigError.
template <class F>
std::string store_error_of(F&& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    ADD_FAILURE() << "reported as a config error (exit 2): " << e.what();
  } catch (const StoreError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a StoreError: " << e.what();
  }
  return "";
}

TEST(SqliteStore, AGarbledJsonColumnNamesTableRowAndColumn) {
  TempDir dir;
  const std::string path = dir.file("s.db");
  {
    SqliteStore s(path);
    s.create_experiment(test::info("e", 5), test::members(5));
  }
  raw_exec(path, "UPDATE members SET h = '{\"lr\": 0.1' WHERE experiment = 'e' AND id = 3");
  SqliteStore s(path);
  const std::string m = store_error_of([&] { s.population("e"); });
  EXPECT_TRUE(contains(m, path)) << m;
  EXPECT_TRUE(contains(m, "table members")) << m;
  EXPECT_TRUE(contains(m, "member 3")) << m;
  EXPECT_TRUE(contains(m, "column h: invalid JSON")) << m;

  raw_exec(path, "UPDATE members SET h = '{\"lr\": 0.1}', metrics = '[1, 2' WHERE experiment = 'e' AND id = 3");
  const std::string metrics = store_error_of([&] { s.population("e"); });
  EXPECT_TRUE(contains(metrics, "member 3, column metrics: invalid JSON")) << metrics;

  raw_exec(path, "UPDATE members SET metrics = '{}', samples = '{\"a\": 1}' WHERE experiment = 'e' AND id = 3");
  const std::string samples = store_error_of([&] { s.population("e"); });
  EXPECT_TRUE(contains(samples, "member 3, column samples")) << samples;

  raw_exec(path, "UPDATE members SET samples = '[]', h = '[1]' WHERE experiment = 'e' AND id = 3");
  const std::string not_h = store_error_of([&] { s.population("e"); });
  EXPECT_TRUE(contains(not_h, "member 3, column h")) << not_h;
}

TEST(SqliteStore, AGarbledEventNamesItsRowAndColumn) {
  TempDir dir;
  const std::string path = dir.file("s.db");
  SqliteStore s(path);
  s.create_experiment(test::info("e", 2), test::members(2));
  auto l = s.lease("e", "a", 30);
  auto pub = test::publication(8, 0.5, "b");
  Event ev;
  ev.member = l->lease.member;
  ev.step = 8;
  ev.kind = EventKind::explore;
  pub.events = {ev};
  s.publish(l->lease, pub);
  raw_exec(path, "UPDATE events SET new_h = 'not json'");
  const std::string m = store_error_of([&] { s.events("e"); });
  EXPECT_TRUE(contains(m, path)) << m;
  EXPECT_TRUE(contains(m, "table events")) << m;
  EXPECT_TRUE(contains(m, "member " + std::to_string(ev.member) + " at step 8")) << m;
  EXPECT_TRUE(contains(m, "column new_h: invalid JSON")) << m;
}

TEST(SqliteStore, AGarbledStoredConfigIsTheStoresCopyNotTheUsersFile) {
  TempDir dir;
  const std::string path = dir.file("s.db");
  SqliteStore s(path);
  create_or_join(s, parse_config(kConfig, "/home/u/locked.toml"));
  raw_exec(path, "UPDATE experiments SET config = 'name = [' WHERE name = 'locked'");
  const std::string m = store_error_of([&] { run_worker(s, "locked", WorkerOptions{}); });
  EXPECT_TRUE(contains(m, "experiment 'locked'")) << m;
  EXPECT_TRUE(contains(m, "held in the store")) << m;
  EXPECT_TRUE(contains(m, "/home/u/locked.toml")) << m;
}

}  // namespace
}  // namespace pbt

namespace pbt {
namespace {

// The toy with 200 KiB of padding in every checkpoint: over SQLite's inline limit, so its
// checkpoints are files in the store's checkpoint directory.
class PaddedToy : public Trainable {
 public:
  explicit PaddedToy(std::unique_ptr<Trainable> toy) : toy_(std::move(toy)) {}
  void apply(const Hyperparams& h) override { toy_->apply(h); }
  void step(std::int64_t n) override { toy_->step(n); }
  Score eval() override { return toy_->eval(); }
  void save(CheckpointWriter& out) const override {
    toy_->save(out);
    const std::string pad(200 << 10, 'p');
    out.write_string(pad);
  }
  void load(CheckpointReader& in) override {
    toy_->load(in);
    if (in.read_string().size() != (200u << 10)) throw CheckpointError("padding of the wrong size");
  }
  void copied(const Copied& c) override { toy_->copied(c); }

 private:
  std::unique_ptr<Trainable> toy_;
};

TEST(SqliteWorker, ACorruptCheckpointFileFoundWhileTrainingDropsOneIntervalThenTheMemberRecovers) {
  register_builtin_trainables();
  register_trainable("padded_toy", [](const TrainableContext& ctx) {
    return std::make_unique<PaddedToy>(make_trainable("toy", ctx));
  });
  TempDir dir;
  SqliteStore store(dir.file("store.db"));
  ExperimentConfig c = parse_config(test::ToyConfig("padded")
                                        .seed(2)
                                        .population(3)
                                        .steps(24)
                                        .set("trainable.kind", "\"padded_toy\"")
                                        .set("exploit.strategy", "\"none\"")
                                        .text(),
                                    "padded.toml");
  create_or_join(store, c);
  WorkerOptions opt;
  opt.id = "w";
  opt.max_intervals = 3;  // one interval per member: every member has a checkpoint file
  run_worker(store, "padded", opt);
  const auto before = store.population("padded");
  const std::string file = dir.file("store.db.checkpoints/" + before[1].checkpoint);
  ASSERT_TRUE(std::filesystem::exists(file)) << file;
  std::filesystem::permissions(file, std::filesystem::perms::owner_write, std::filesystem::perm_options::add);
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('X');  // the padding: the trainable loads it without noticing
  }

  std::vector<std::string> log;
  opt.max_intervals = -1;
  opt.log = [&](const std::string& l) { log.push_back(l); };
  const WorkerStats stats = run_worker(store, "padded", opt);

  // The check (deferred while the interval trained) dropped that interval, naming the
  // checkpoint; the next load checked it first and the member recovered from another.
  int dropped = 0;
  for (const auto& l : log)
    if (contains(l, "member 1") && contains(l, before[1].checkpoint) && contains(l, "found while the interval trained"))
      ++dropped;
  EXPECT_EQ(dropped, 1);
  EXPECT_EQ(stats.failed_intervals, 1);
  int recovered = 0;
  for (const auto& e : store.events("padded"))
    if (e.kind == EventKind::recover && e.member == 1) {
      ++recovered;
      EXPECT_NE(e.donor_checkpoint, before[1].checkpoint);
    }
  EXPECT_EQ(recovered, 1);
  for (const auto& m : store.population("padded")) {
    EXPECT_TRUE(m.done);
    EXPECT_EQ(m.step, 24);
    EXPECT_FALSE(m.failed);
  }
  // Nothing was published from the corrupt model: member 1's scores are one per step.
  std::map<std::int64_t, int> points;
  for (const auto& p : store.scores("padded"))
    if (p.member == 1) ++points[p.step];
  for (const auto& [step, n] : points) EXPECT_EQ(n, 1) << "step " << step;
}

}  // namespace
}  // namespace pbt

namespace pbt {
namespace {

TEST(SqliteWorker, AWorkerStartingSweepsTheTempFileOfAWriterThatDied) {
  register_builtin_trainables();
  TempDir dir;
  const std::string db = dir.file("store.db");
  {
    SqliteStore store(db);
    create_or_join(store, parse_config(test::ToyConfig("sweep").population(2).steps(8).text(), "sweep.toml"));
  }
  // A process that dies while writing a checkpoint (as a SIGKILLed worker would).
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    SqliteStore store(db);
    std::unique_ptr<CheckpointStager> st = store.stage_checkpoint();
    const std::string chunk(1 << 20, 'w');
    for (int i = 0; i < 3; ++i) st->write(chunk.data(), chunk.size());
    _exit(0);  // no finish(), no destructor: its temp file stays behind
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  auto temps = [&] {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir.file("store.db.checkpoints")))
      if (e.path().filename().string().rfind(".tmp-", 0) == 0) ++n;
    return n;
  };
  ASSERT_EQ(temps(), 1);
  SqliteStore store(db);
  WorkerOptions opt;
  opt.id = "w";
  run_worker(store, "sweep", opt);
  EXPECT_EQ(temps(), 0);
  for (const auto& m : store.population("sweep")) EXPECT_TRUE(m.done);
}

}  // namespace
}  // namespace pbt
