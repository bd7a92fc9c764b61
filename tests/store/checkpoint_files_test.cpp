// Checkpoints as files (checkpoint_dir.hpp): the SQLite store (checkpoints over 64 KiB) and
// the PostgreSQL store with checkpoint_dir= (every checkpoint) stream them to a temp file,
// publish by linking it into place, read them back verified, and collect what nobody refers to.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "pbt/checkpoint_io.hpp"
#include "core/process_owner.hpp"
#include "pg_test_util.hpp"
#include "store/checkpoint_dir.hpp"
#include "store/sqlite_store.hpp"
#include "store_test_util.hpp"
#ifdef PBT_WITH_POSTGRES
#include "store/postgres/postgres_store.hpp"
#endif

namespace pbt {
namespace {

namespace fs = std::filesystem;
using test::contains;
using test::message_of;
using test::TempDir;

constexpr std::size_t kMiB = 1u << 20;

// Bytes that differ by seed (fixed seeds: the same bytes every run).
std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  for (std::size_t i = 0; i + 8 <= n; i += 8) {
    const std::uint64_t v = rng();
    std::memcpy(out.data() + i, &v, 8);
  }
  for (std::size_t i = n - n % 8; i < n; ++i) out[i] = static_cast<char>(rng());
  return out;
}

struct stat stat_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path << ": " << std::strerror(errno);
  return st;
}

// Flips one byte of a file in place (the same inode: links to it see it too).
void flip_byte(const std::string& path, std::uint64_t at) {
  ::chmod(path.c_str(), 0644);
  const int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << path;
  char c = 0;
  ASSERT_EQ(::pread(fd, &c, 1, static_cast<off_t>(at)), 1);
  c = static_cast<char>(c ^ 0x5a);
  ASSERT_EQ(::pwrite(fd, &c, 1, static_cast<off_t>(at)), 1);
  ::close(fd);
}

std::vector<std::string> temp_files(const std::string& dir) {
  CheckpointDir::wait_for_removals();  // files removed a moment ago free their blocks meanwhile
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().filename().string().rfind(".tmp-", 0) == 0) out.push_back(e.path().string());
  return out;
}

std::uint64_t file_bytes(const std::string& dir) {
  CheckpointDir::wait_for_removals();
  std::uint64_t n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (valid_checkpoint_id(e.path().filename().string())) n += fs::file_size(e.path());
  return n;
}

// Streams `bytes` into a store's stager in pieces of several sizes, as a trainable's save does.
std::shared_ptr<StagedCheckpoint> stage(Store& s, const std::string& bytes) {
  auto stager = s.stage_checkpoint();
  {
    CheckpointWriter w(*stager);
    std::size_t at = 0;
    for (std::size_t piece : {std::size_t{7}, std::size_t{4096}, std::size_t{2 * kMiB}}) {
      piece = std::min(piece, bytes.size() - at);
      w.write_bytes(bytes.data() + at, piece);
      at += piece;
    }
    w.write_bytes(bytes.data() + at, bytes.size() - at);
    w.flush();
  }
  return stager->finish();
}

Publication staged_publication(std::int64_t step, std::shared_ptr<StagedCheckpoint> staged) {
  Publication p = test::publication(step, 0.5, "");
  p.checkpoint = std::move(staged);
  return p;
}

// The whole checkpoint through open_checkpoint, as the worker reads it.
std::string read_streamed(Store& s, const std::string& id) {
  auto source = s.open_checkpoint(id);
  std::string out;
  {
    CheckpointReader r(*source);
    out.resize(static_cast<std::size_t>(r.size()));
    r.read_bytes(out.data(), out.size());
  }
  source->finish();
  return out;
}

// ---- the backends that keep checkpoint files

struct SqliteFiles {
  static std::string unavailable() { return ""; }
  explicit SqliteFiles(const TempDir& dir) : db(dir.file("store.db")) {}
  std::unique_ptr<Store> open() { return std::make_unique<SqliteStore>(db); }
  std::string dir() const { return db + ".checkpoints"; }
  // Whether the row of checkpoint `id` refers to its file (an empty blob and the size).
  bool row_in_file(const std::string& id) {
    return raw("SELECT length(bytes) = 0 AND size > 0 FROM checkpoints WHERE id = '" + id + "'") == 1;
  }
  std::int64_t rows() { return raw("SELECT count(*) FROM checkpoints"); }
  // The database's own files (the WAL is folded in and removed when the last connection closes).
  std::uint64_t database_bytes() const {
    std::uint64_t n = 0;
    for (const char* suffix : {"", "-wal", "-shm"}) {
      std::error_code ec;
      const auto k = fs::file_size(db + suffix, ec);
      if (!ec) n += k;
    }
    return n;
  }
  std::int64_t raw(const std::string& sql) {
    sqlite3* h = nullptr;
    EXPECT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
    sqlite3_busy_timeout(h, 5000);
    sqlite3_stmt* s = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(h, sql.c_str(), -1, &s, nullptr), SQLITE_OK) << sqlite3_errmsg(h);
    std::int64_t n = -1;
    if (sqlite3_step(s) == SQLITE_ROW) n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(h);
    return n;
  }
  std::string db;
};

struct PostgresFiles {
  static std::string unavailable() { return test::postgres_unavailable(); }
#ifdef PBT_WITH_POSTGRES
  explicit PostgresFiles(const TempDir& d) : checkpoints(d.file("checkpoints")) {}
  std::unique_ptr<Store> open() {
    return std::make_unique<PostgresStore>(test::uri_with_param(db.uri(), "checkpoint_dir", checkpoints));
  }
  std::string dir() const { return checkpoints; }
  bool row_in_file(const std::string& id) {
    return test::PgConnection(db.uri()).scalar("SELECT bytes IS NULL FROM pbt.checkpoints WHERE id = '" + id + "'") ==
           "t";
  }
  std::int64_t rows() { return test::PgConnection(db.uri()).count("SELECT count(*) FROM pbt.checkpoints"); }
  std::uint64_t database_bytes() const { return 0; }  // the server's files are not the store's to count
  test::PgDatabase db;
  std::string checkpoints;
#else
  explicit PostgresFiles(const TempDir&) {}
  [[noreturn]] std::unique_ptr<Store> open() { throw std::logic_error("no PostgreSQL in this build"); }
  std::string dir() const { return ""; }
  bool row_in_file(const std::string&) { return false; }
  std::int64_t rows() { return 0; }
  std::uint64_t database_bytes() const { return 0; }
#endif
};

template <class Backend>
class CheckpointFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string why = Backend::unavailable();
    if (!why.empty()) GTEST_SKIP() << why;
    backend = std::make_unique<Backend>(tmp);
    store = backend->open();
  }
  void TearDown() override {
    store.reset();
    backend.reset();
  }
  Leased must_lease(const std::string& worker) {
    auto l = store->lease("e", worker, 60);
    if (!l) throw std::runtime_error("expected a lease for " + worker);
    return *l;
  }
  // Member 0 publishes `bytes` (staged); returns its checkpoint id.
  std::string publish_one(const std::string& bytes) {
    store->create_experiment(test::info("e", 1), test::members(1));
    auto l = must_lease("w");
    store->publish(l.lease, staged_publication(1, stage(*store, bytes)));
    return store->population("e").at(0).checkpoint;
  }
  std::string file_of(const std::string& id) const { return backend->dir() + "/" + id; }
  // Member 0 publishes a staged checkpoint that adopted the trainer's file (`inode`): the
  // store's file must be that file, and read back as `bytes`.
  void publish_adopted(const std::shared_ptr<StagedCheckpoint>& staged, const std::string& bytes, ino_t inode) {
    store->create_experiment(test::info("e", 1), test::members(1));
    auto l = must_lease("w");
    store->publish(l.lease, staged_publication(1, staged));
    const std::string id = store->population("e").at(0).checkpoint;
    ASSERT_EQ(id, checkpoint_id(bytes));
    EXPECT_EQ(stat_of(file_of(id)).st_ino, inode) << "the trainer's own file, put in place";
    EXPECT_EQ(read_streamed(*store, id), bytes);
  }

  TempDir tmp;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Store> store;
};

using FileBackends = ::testing::Types<SqliteFiles, PostgresFiles>;
class FileBackendNames {
 public:
  template <class T>
  static std::string GetName(int) {
    return std::is_same_v<T, SqliteFiles> ? "Sqlite" : "PostgresCheckpointDir";
  }
};
TYPED_TEST_SUITE(CheckpointFiles, FileBackends, FileBackendNames);

TYPED_TEST(CheckpointFiles, ALargeCheckpointIsAFileReadBackVerified) {
  const std::string bytes = random_bytes(3 * kMiB + 17, 1);
  auto staged = stage(*this->store, bytes);
  EXPECT_EQ(staged->id(), checkpoint_id(bytes));
  EXPECT_EQ(staged->size(), bytes.size());
  EXPECT_TRUE(staged->bytes().empty());
  ASSERT_FALSE(staged->temp_file().empty());
  EXPECT_EQ(fs::path(staged->temp_file()).parent_path(), fs::path(this->backend->dir()));

  this->store->create_experiment(test::info("e", 1), test::members(1));
  auto l = this->must_lease("w");
  this->store->publish(l.lease, staged_publication(1, staged));
  const std::string id = this->store->population("e").at(0).checkpoint;
  ASSERT_EQ(id, checkpoint_id(bytes));
  EXPECT_TRUE(this->backend->row_in_file(id));  // the row holds no bytes
  const auto st = stat_of(this->file_of(id));
  EXPECT_EQ(static_cast<std::uint64_t>(st.st_size), bytes.size());
  EXPECT_EQ(st.st_mode & 0777, 0444u) << "checkpoint files are read-only";
  EXPECT_TRUE(temp_files(this->backend->dir()).empty()) << "the temp file goes once published";

  EXPECT_EQ(read_streamed(*this->store, id), bytes);
  EXPECT_EQ(this->store->checkpoint(id), bytes);
  // Another connection (a worker on another host) reads it too.
  auto other = this->backend->open();
  EXPECT_EQ(read_streamed(*other, id), bytes);
}

TYPED_TEST(CheckpointFiles, AFlippedOrTruncatedFileIsACheckpointError) {
  const std::string bytes = random_bytes(3 * kMiB, 2);
  const std::string id = this->publish_one(bytes);
  flip_byte(this->file_of(id), 2 * kMiB + 5);

  const std::string whole = message_of<CheckpointError>([&] { this->store->checkpoint(id); });
  EXPECT_TRUE(contains(whole, id)) << whole;
  EXPECT_TRUE(contains(whole, "does not match its hash")) << whole;
  EXPECT_TRUE(contains(whole, this->backend->dir())) << whole;
  // Streamed: the last byte read says so, and so does finish() of a source read in part.
  const std::string streamed = message_of<CheckpointError>([&] { read_streamed(*this->store, id); });
  EXPECT_TRUE(contains(streamed, id)) << streamed;
  auto source = this->store->open_checkpoint(id);
  char head[100];
  EXPECT_EQ(source->read(head, sizeof head), sizeof head);
  const std::string rest = message_of<CheckpointError>([&] { source->finish(); });
  EXPECT_TRUE(contains(rest, id)) << rest;

  fs::resize_file(this->file_of(id), kMiB);
  const std::string truncated = message_of<CheckpointError>([&] { this->store->open_checkpoint(id); });
  EXPECT_TRUE(contains(truncated, id)) << truncated;
  EXPECT_TRUE(contains(truncated, "truncated")) << truncated;

  fs::remove(this->file_of(id));
  const std::string missing = message_of<CheckpointError>([&] { this->store->open_checkpoint(id); });
  EXPECT_TRUE(contains(missing, "missing")) << missing;
}

TYPED_TEST(CheckpointFiles, ToFileIsAHardLinkCheckedInTheBackground) {
  const std::string bytes = random_bytes(3 * kMiB, 3);
  const std::string id = this->publish_one(bytes);
  {
    auto source = this->store->open_checkpoint(id);
    CheckpointReader r(*source);
    r.to_file(this->tmp.file("loaded"));
    EXPECT_EQ(stat_of(this->tmp.file("loaded")).st_ino, stat_of(this->file_of(id)).st_ino) << "a link, not a copy";
    source->finish();
  }
  flip_byte(this->file_of(id), 7);  // the linked file is the store's: both see it
  {
    auto source = this->store->open_checkpoint(id);
    CheckpointReader r(*source);
    r.to_file(this->tmp.file("loaded2"));
    const std::string bad = message_of<CheckpointError>([&] { source->finish(); });
    EXPECT_TRUE(contains(bad, id)) << bad;
    EXPECT_TRUE(contains(bad, "does not match its hash")) << bad;
  }
  {  // dropped without finish(): the check is joined, nothing throws
    auto source = this->store->open_checkpoint(id);
    source->to_file(this->tmp.file("loaded3"));
  }
}

TYPED_TEST(CheckpointFiles, AdoptFileRenamesTheTrainersFile) {
  const std::string bytes = random_bytes(3 * kMiB, 4);
  const std::string scratch = this->store->scratch_dir();
  ASSERT_FALSE(scratch.empty());
  EXPECT_EQ(stat_of(scratch).st_dev, stat_of(this->backend->dir()).st_dev) << "same filesystem";
  const std::string written = scratch + "/model.bin";
  std::ofstream(written, std::ios::binary) << bytes;
  const ino_t inode = stat_of(written).st_ino;

  auto stager = this->store->stage_checkpoint();
  {
    CheckpointWriter w(*stager);
    w.write_file(written);
    w.flush();
  }
  auto staged = stager->finish();
  EXPECT_EQ(staged->id(), checkpoint_id(bytes));
  EXPECT_FALSE(fs::exists(written)) << "renamed, not copied";
  this->publish_adopted(staged, bytes, inode);
}

// expect_file: the trainer writes the file front to back while the store hashes it. Written
// in small pieces with pauses (the store reads up to the end of what is written, waits, reads
// on), it is adopted by rename with the right id; a file put there by a rename instead (another
// inode than the one read) and a file never written are adopted or refused as without it; a
// stager dropped while it waits for the file does not hang.
TYPED_TEST(CheckpointFiles, AnExpectedFileIsHashedWhileItIsWritten) {
  const std::string scratch = this->store->scratch_dir();
  ASSERT_FALSE(scratch.empty());
  const std::string bytes = random_bytes(9 * kMiB + 3, 8);
  const std::string written = scratch + "/grown.bin";
  auto stager = this->store->stage_checkpoint();
  CheckpointWriter w(*stager);
  w.expect_file(written);
  std::thread trainer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // the store waits for the file too
    std::ofstream out(written, std::ios::binary);
    for (std::size_t at = 0; at < bytes.size(); at += 300 * 1024) {
      out.write(bytes.data() + at, static_cast<std::streamsize>(std::min<std::size_t>(300 * 1024, bytes.size() - at)));
      out.flush();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  trainer.join();
  const ino_t inode = stat_of(written).st_ino;
  w.write_file(written);
  w.flush();
  auto staged = stager->finish();
  EXPECT_EQ(staged->id(), checkpoint_id(bytes));
  EXPECT_EQ(staged->size(), bytes.size());
  EXPECT_FALSE(fs::exists(written)) << "renamed, not copied";
  this->publish_adopted(staged, bytes, inode);

  // Written, then replaced by a rename (a trainer that writes a temp file and renames it):
  // the file now there is another inode than the one read, so it is hashed again, whole.
  const std::string other = random_bytes(4 * kMiB, 9);
  {
    auto s2 = this->store->stage_checkpoint();
    CheckpointWriter w2(*s2);
    w2.expect_file(written);
    std::ofstream(written, std::ios::binary) << random_bytes(4 * kMiB, 10);
    std::ofstream(written + ".tmp", std::ios::binary) << other;
    fs::rename(written + ".tmp", written);
    w2.write_file(written);
    w2.flush();
    EXPECT_EQ(s2->finish()->id(), checkpoint_id(other));
  }
  {  // never written: the usual error, naming the file
    auto s3 = this->store->stage_checkpoint();
    CheckpointWriter w3(*s3);
    w3.expect_file(written + ".never");
    const std::string e = message_of<Error>([&] { w3.write_file(written + ".never"); });
    EXPECT_TRUE(contains(e, written + ".never")) << e;
  }
  {  // dropped while waiting (the trainer failed): nothing hangs, nothing is left
    auto s4 = this->store->stage_checkpoint();
    CheckpointWriter w4(*s4);
    w4.expect_file(written + ".failed");
  }
  EXPECT_TRUE(temp_files(this->backend->dir()).empty());
}

TYPED_TEST(CheckpointFiles, CollectingGarbageKeepsTheStoreNearItsLiveCheckpoints) {
  constexpr int kMembers = 4, kRounds = 12;
  this->store->create_experiment(test::info("e", kMembers), test::members(kMembers));
  for (int round = 0; round < kRounds; ++round)
    for (int i = 0; i < kMembers; ++i) {
      auto l = this->must_lease("w" + std::to_string(i));
      this->store->publish(l.lease,
                           staged_publication(round + 1, stage(*this->store, random_bytes(kMiB, 100 * round + i))));
      this->store->release(l.lease);
    }
  // A crash's leftovers: a file no row refers to, and a temp file of a process that is gone.
  std::ofstream(this->file_of(checkpoint_id("orphan")), std::ios::binary) << "orphan";
  fflush(nullptr);
  const pid_t child = fork();
  if (child == 0) {
    auto s = this->backend->open();
    auto stager = s->stage_checkpoint();
    const std::string big = random_bytes(kMiB, 9);
    stager->write(big.data(), big.size());
    _exit(0);  // no destructors: its temp file stays behind
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_EQ(temp_files(this->backend->dir()).size(), 1u);

  EXPECT_GE(this->store->collect_garbage(), 1u);
  EXPECT_TRUE(temp_files(this->backend->dir()).empty());
  EXPECT_FALSE(fs::exists(this->file_of(checkpoint_id("orphan"))));
  EXPECT_EQ(this->backend->rows(), kMembers);
  const std::uint64_t live = kMembers * kMiB;
  EXPECT_EQ(file_bytes(this->backend->dir()), live);
  for (const auto& m : this->store->population("e")) EXPECT_TRUE(fs::exists(this->file_of(m.checkpoint)));
  this->store.reset();  // at rest: SQLite folds its WAL into the database
  const std::uint64_t total = file_bytes(this->backend->dir()) + this->backend->database_bytes();
  EXPECT_LE(total, live + live / 10) << "database " << this->backend->database_bytes() << " bytes";
}

TYPED_TEST(CheckpointFiles, AKilledWriterLeavesNoCheckpointOnlyATempThatGoes) {
  const std::string bytes = random_bytes(8 * kMiB, 5);
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  fflush(nullptr);
  const pid_t child = fork();
  if (child == 0) {
    ::close(ready[0]);
    auto s = this->backend->open();
    auto stager = s->stage_checkpoint();
    stager->write(bytes.data(), 3 * kMiB);
    char c = 'x';
    (void)!::write(ready[1], &c, 1);
    for (;;) {  // slowly, until killed
      stager->write(bytes.data() + 3 * kMiB, 4096);
      ::usleep(10000);
    }
  }
  ::close(ready[1]);
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::close(ready[0]);
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status));

  const auto temps = temp_files(this->backend->dir());
  ASSERT_EQ(temps.size(), 1u);
  EXPECT_TRUE(contains(temps[0], "." + std::to_string(child) + ".")) << temps[0] << " names its owner";
  EXPECT_TRUE(this->store->experiments().empty());
  const std::string id = checkpoint_id(bytes);
  EXPECT_FALSE(fs::exists(this->file_of(id)));
  EXPECT_EQ(this->backend->rows(), 0);
  EXPECT_TRUE(contains(message_of<CheckpointError>([&] { this->store->open_checkpoint(id); }), "missing"));

  // A live writer's temp file stays; the dead one's goes.
  auto stager = this->store->stage_checkpoint();
  stager->write(bytes.data(), 2 * kMiB);
  this->store->collect_garbage();
  const auto left = temp_files(this->backend->dir());
  ASSERT_EQ(left.size(), 1u);
  EXPECT_NE(left[0], temps[0]);
  stager.reset();
  EXPECT_TRUE(temp_files(this->backend->dir()).empty()) << "an abandoned stager removes its temp file";
}

TYPED_TEST(CheckpointFiles, ADecisionRefusesACheckpointWhoseFileIsGone) {
  const std::string bytes = random_bytes(kMiB, 15);
  this->store->create_experiment(test::info("e", 2), test::members(2));
  auto l = this->must_lease("w");
  this->store->publish(l.lease, staged_publication(1, stage(*this->store, bytes)));
  this->store->release(l.lease);
  const std::string id = checkpoint_id(bytes);
  fs::remove(this->file_of(id));
  Decision d;
  d.member = 1;
  d.h = test::h_for(1);
  d.checkpoint = id;
  const std::string refused = message_of<StoreError>([&] { this->store->decide("e", {d}); });
  EXPECT_TRUE(contains(refused, id)) << refused;
  EXPECT_TRUE(this->store->population("e").at(1).checkpoint.empty()) << "nothing was applied";
}

TYPED_TEST(CheckpointFiles, AnUnpublishedStagedCheckpointRemovesItsFile) {
  auto staged = stage(*this->store, random_bytes(kMiB, 6));
  const std::string temp = staged->temp_file();
  ASSERT_TRUE(fs::exists(temp));
  staged.reset();
  EXPECT_FALSE(fs::exists(temp));
}

// ---- SQLite only

TEST(SqliteCheckpointFiles, ASmallCheckpointStaysInItsRow) {
  TempDir tmp;
  SqliteFiles b(tmp);
  auto s = b.open();
  const std::string bytes = random_bytes(64 * 1024, 7);  // the most that stays inline
  auto staged = stage(*s, bytes);
  EXPECT_TRUE(staged->temp_file().empty());
  EXPECT_EQ(staged->bytes(), bytes);
  s->create_experiment(test::info("e", 1), test::members(1));
  auto l = s->lease("e", "w", 60);
  ASSERT_TRUE(l);
  s->publish(l->lease, staged_publication(1, staged));
  const std::string id = checkpoint_id(bytes);
  EXPECT_FALSE(b.row_in_file(id));
  EXPECT_EQ(b.raw("SELECT length(bytes) FROM checkpoints WHERE id = '" + id + "'"), 64 * 1024);
  EXPECT_FALSE(fs::exists(b.dir())) << "no directory until a checkpoint needs it";
  EXPECT_EQ(read_streamed(*s, id), bytes);
  // Bytes given in memory (checkpoint_bytes) past 64 KiB go to a file as well.
  const std::string big = random_bytes(64 * 1024 + 1, 8);
  s->publish(l->lease, test::publication(2, 0.5, big));
  EXPECT_TRUE(b.row_in_file(checkpoint_id(big)));
  EXPECT_EQ(s->checkpoint(checkpoint_id(big)), big);
  EXPECT_EQ(b.raw("SELECT count(*) FROM checkpoints"), 1) << "the small one went";
}

TEST(SqliteCheckpointFiles, OldStoresWithLargeRowsKeepWorking) {
  TempDir tmp;
  const std::string db = tmp.file("old.db");
  const std::string bytes = random_bytes(3 * kMiB, 10);
  {
    SqliteStore::Options everything_inline;
    everything_inline.inline_max = std::size_t{1} << 40;
    SqliteStore s(db, everything_inline);
    s.create_experiment(test::info("e", 2), test::members(2));
    auto l = s.lease("e", "w", 60);
    s.publish(l->lease, staged_publication(1, stage(s, bytes)));
  }
  SqliteFiles b(tmp);
  b.db = db;
  EXPECT_FALSE(b.row_in_file(checkpoint_id(bytes)));
  SqliteStore s(db);
  EXPECT_EQ(s.checkpoint(checkpoint_id(bytes)), bytes);
  EXPECT_EQ(read_streamed(s, checkpoint_id(bytes)), bytes);
  // The same bytes published again by another member share the old row.
  auto l = s.lease("e", "w2", 60);
  s.publish(l->lease, staged_publication(1, stage(s, bytes)));
  EXPECT_EQ(b.raw("SELECT count(*) FROM checkpoints"), 1);
  EXPECT_EQ(s.checkpoint(checkpoint_id(bytes)), bytes);
  EXPECT_TRUE(temp_files(s.checkpoint_dir()).empty());
}

TEST(SqliteCheckpointFiles, ARowWhoseFileWentMissingGetsItBackOnPublish) {
  TempDir tmp;
  SqliteFiles b(tmp);
  SqliteStore s(b.db);
  const std::string bytes = random_bytes(kMiB, 11);
  s.create_experiment(test::info("e", 2), test::members(2));
  auto l0 = s.lease("e", "w0", 60);
  s.publish(l0->lease, staged_publication(1, stage(s, bytes)));
  const std::string id = checkpoint_id(bytes);
  fs::remove(b.dir() + "/" + id);
  // A decision may not point a member at it now.
  Decision d;
  d.member = 1;
  d.h = test::h_for(1);
  d.checkpoint = id;
  const std::string refused = message_of<StoreError>([&] { s.decide("e", {d}); });
  EXPECT_TRUE(contains(refused, id)) << refused;
  EXPECT_TRUE(contains(refused, "missing")) << refused;
  auto l1 = s.lease("e", "w1", 60);
  s.publish(l1->lease, staged_publication(1, stage(s, bytes)));
  EXPECT_EQ(s.checkpoint(id), bytes);
}

TEST(SqliteCheckpointFiles, UriParameters) {
  TempDir tmp;
  const std::string db = tmp.file("p.db");
  {
    auto s = open_store("sqlite:" + db);
    EXPECT_EQ(dynamic_cast<SqliteStore&>(*s).checkpoint_dir(), db + ".checkpoints");
  }
  auto s = open_store("sqlite:" + db + "?checkpoint_dir=" + tmp.file("elsewhere%20x"));
  auto& sq = dynamic_cast<SqliteStore&>(*s);
  EXPECT_EQ(sq.path(), db);
  EXPECT_EQ(sq.checkpoint_dir(), tmp.file("elsewhere x"));
  EXPECT_EQ(s->scratch_dir(), tmp.file("elsewhere x") + "/scratch");
  EXPECT_TRUE(fs::is_directory(tmp.file("elsewhere x/scratch")));
  const std::string bytes = random_bytes(kMiB, 12);
  s->create_experiment(test::info("e", 1), test::members(1));
  auto l = s->lease("e", "w", 60);
  s->publish(l->lease, staged_publication(1, stage(*s, bytes)));
  EXPECT_TRUE(fs::exists(tmp.file("elsewhere x/" + checkpoint_id(bytes))));
  EXPECT_NO_THROW(open_existing_store(db + "?checkpoint_dir=" + tmp.file("elsewhere")));

  const std::string unknown = message_of<StoreError>([&] { open_store("sqlite:" + db + "?checkpoint_dri=/x"); });
  EXPECT_TRUE(contains(unknown, "checkpoint_dri")) << unknown;
  EXPECT_TRUE(contains(unknown, "unknown parameter")) << unknown;
  message_of<StoreError>([&] { open_store(db + "?checkpoint_dir="); });
}

// ---- CheckpointDir itself

TEST(CheckpointDirFiles, OtherHostsTempFilesGoOnlyWhenOld) {
  TempDir tmp;
  CheckpointDir dir(tmp.path(), "test");
  const std::string elsewhere = tmp.file(".tmp-deadbeef.123.456.cafebabe-0123456789abcdef");
  const std::string old_form = tmp.file(".tmp-" + checkpoint_id("x") + "-123-456");
  const std::string here_dead = tmp.file(".tmp-" + process_owner::tag_of(process_owner::host_name()) + ".999999999.1." +
                                         process_owner::tag_of(process_owner::boot_id()) + "-0123456789abcdef");
  for (const auto& f : {elsewhere, old_form, here_dead}) std::ofstream(f) << "x";
  EXPECT_EQ(dir.remove_temp_files(std::chrono::hours(1)), 1u);
  EXPECT_FALSE(fs::exists(here_dead)) << "a process of this host that is gone";
  EXPECT_TRUE(fs::exists(elsewhere));
  EXPECT_TRUE(fs::exists(old_form));
  for (const auto& f : {elsewhere, old_form})
    fs::last_write_time(f, fs::file_time_type::clock::now() - std::chrono::hours(2));
  EXPECT_EQ(dir.remove_temp_files(std::chrono::hours(1)), 2u);
  EXPECT_TRUE(temp_files(tmp.path()).empty());
}

TEST(CheckpointDirFiles, AdoptFromAnotherFilesystemCopies) {
  TempDir tmp;
  const std::string shm = "/dev/shm";
  struct stat a {
  }, b{};
  if (::stat(shm.c_str(), &a) != 0 || ::stat(tmp.path().c_str(), &b) != 0 || a.st_dev == b.st_dev ||
      ::access(shm.c_str(), W_OK) != 0)
    GTEST_SKIP() << "no second filesystem to adopt a file from";
  const std::string bytes = random_bytes(2 * kMiB, 13);
  const std::string src = shm + "/pbt-adopt-test-" + std::to_string(::getpid());
  std::ofstream(src, std::ios::binary) << bytes;
  CheckpointDir dir(tmp.file("d"), "test");
  auto stager = dir.stage(0);
  stager->adopt_file(src);
  auto staged = stager->finish();
  fs::remove(src);
  EXPECT_EQ(staged->id(), checkpoint_id(bytes));
  dir.adopt(*staged);
  EXPECT_EQ(dir.read(staged->id(), bytes.size()), bytes);
}

// The memory a checkpoint costs stays flat: 64 MiB written and read back through a store
// directory, in a child (its own peak RSS), grows the peak by a few MiB at most.
TEST(CheckpointDirFiles, MemoryStaysFlatWhateverTheSize) {
  TempDir tmp;
  fflush(nullptr);
  const pid_t child = fork();
  if (child == 0) {
    int rc = 1;
    try {
      CheckpointDir dir(tmp.file("d"), "test");
      std::string piece = random_bytes(256 * 1024, 14);
      auto peak = [] {
        struct rusage u {};
        getrusage(RUSAGE_SELF, &u);
        return static_cast<long>(u.ru_maxrss);  // KiB
      };
      // Touch the buffers the streams will use once, so that only growth is measured.
      const long before = peak();
      auto stager = dir.stage(0);
      {
        CheckpointWriter w(*stager);
        for (int i = 0; i < 256; ++i) {
          piece[0] = static_cast<char>(i);
          w.write_bytes(piece.data(), piece.size());
        }
        w.flush();
      }
      auto staged = stager->finish();
      dir.adopt(*staged);
      auto source = dir.open(staged->id(), 64 * kMiB);
      {
        CheckpointReader r(*source);
        char buf[4096];
        while (r.remaining() > 0) r.read_bytes(buf, std::min<std::uint64_t>(sizeof buf, r.remaining()));
      }
      source->finish();
      const long grown = peak() - before;
      // The streams' own buffers (1 MiB each, the hashing threads' read-ahead of 4 MiB, their
      // stacks): well under the 64 MiB checkpoint, which must never be held whole.
      rc = grown < 24 * 1024 ? 0 : 2;
      if (rc) std::fprintf(stderr, "peak RSS grew by %ld KiB\n", grown);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child: %s\n", e.what());
    }
    _exit(rc);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: an error, 2: memory grew (see stderr)";
}

}  // namespace
}  // namespace pbt
