// What only the PostgreSQL store has: URIs with passwords, a server that drops the
// connection or goes away, schemas in a shared database, checkpoint files. The tests that
// need a server run when PBT_TEST_POSTGRES_URI names one (each in a database of its own)
// and are skipped, saying why, when it does not.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <thread>

#include "pg_test_util.hpp"
#include "store_test_util.hpp"
#ifdef PBT_WITH_POSTGRES
#include "store/postgres/postgres_store.hpp"
#endif

namespace pbt {
namespace {

using test::contains;
using test::message_of;
using test::TempDir;

#define PBT_REQUIRE_POSTGRES()                            \
  do {                                                    \
    const std::string why = test::postgres_unavailable(); \
    if (!why.empty()) GTEST_SKIP() << why;                \
  } while (0)

TEST(RedactUri, HidesPasswordsAndNothingElse) {
  EXPECT_EQ(redact_uri("postgresql://alice:s3cret@db.example.org:5432/pbt"),
            "postgresql://alice:***@db.example.org:5432/pbt");
  EXPECT_EQ(redact_uri("postgres://alice:s3cret@db/pbt?sslmode=require&password=other&x=1"),
            "postgres://alice:***@db/pbt?sslmode=require&password=***&x=1");
  EXPECT_EQ(redact_uri("postgresql://alice:p%40ss%2Fw0rd@db/pbt"), "postgresql://alice:***@db/pbt");
  EXPECT_EQ(redact_uri("postgresql://db/pbt?password=hunter2"), "postgresql://db/pbt?password=***");
  EXPECT_EQ(redact_uri("host=db user=alice password='a b\\' c' dbname=pbt"),
            "host=db user=alice password=*** dbname=pbt");
  // Nothing to hide: unchanged.
  for (const char* uri :
       {"postgresql://alice@db:5432/pbt", "postgresql://db/pbt", "postgresql:///pbt?host=/run/postgresql",
        "postgresql://[::1]:5432/pbt", "sqlite:/tmp/runs/store.db", "memory:", "/tmp/a:b@c/store.db",
        "postgresql://db/pbt?checkpoint_dir=/shared/ck&application_name=passwordless"})
    EXPECT_EQ(redact_uri(uri), uri);
}

TEST(PostgresStore, OpenStoreSelectsItAndMessagesNeverShowThePassword) {
#ifndef PBT_WITH_POSTGRES
  GTEST_SKIP() << test::postgres_unavailable();
#else
  // Nothing listens on port 1: the store retries for retry_seconds, then says so.
  const auto t0 = std::chrono::steady_clock::now();
  const std::string m = message_of<StoreError>(
      [] { open_store("postgresql://alice:s3cret-pw@127.0.0.1:1/pbt?retry_seconds=0.4&connect_timeout=2"); });
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_FALSE(contains(m, "s3cret-pw")) << m;
  EXPECT_TRUE(contains(m, "postgresql://alice:***@127.0.0.1:1/pbt")) << m;
  EXPECT_TRUE(contains(m, "no usable connection")) << m;
  EXPECT_GE(waited, 0.4);
  EXPECT_LT(waited, 5.0);
  const std::string bad = message_of<StoreError>([] { open_store("postgres://u:pw@127.0.0.1:1/pbt?retry_seconds=x"); });
  EXPECT_TRUE(contains(bad, "retry_seconds")) << bad;
  EXPECT_FALSE(contains(bad, ":pw@")) << bad;
#endif
}

#ifdef PBT_WITH_POSTGRES

std::string read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The URI with a password put in (the test server trusts loopback and ignores it); "" when
// the URI names no user to put it next to.
std::string with_password(const std::string& uri, const std::string& password) {
  const auto start = uri.find("://") + 3;
  const auto at = uri.find_first_of("@/", start);
  if (at == std::string::npos || uri[at] != '@') return "";
  const auto colon = uri.find(':', start);
  const std::string user = uri.substr(start, std::min(colon, at) - start);
  return uri.substr(0, start) + user + ":" + password + uri.substr(at);
}

#endif

TEST(PostgresStore, AnErrorFromTheServerNamesTheStoreWithoutThePassword) {
  PBT_REQUIRE_POSTGRES();
#ifdef PBT_WITH_POSTGRES
  test::PgDatabase db;
  const std::string uri = with_password(db.uri(), "hunter2-secret");
  if (uri.empty()) GTEST_SKIP() << "PBT_TEST_POSTGRES_URI names no user to add a password to";
  auto store = open_store(uri);
  ASSERT_TRUE(dynamic_cast<PostgresStore*>(store.get()));
  EXPECT_FALSE(contains(static_cast<PostgresStore&>(*store).uri(), "hunter2"))
      << static_cast<PostgresStore&>(*store).uri();
  const std::string m = message_of<StoreError>([&] { store->lease("nope", "w", 10); });
  EXPECT_TRUE(contains(m, "nope")) << m;
  EXPECT_TRUE(contains(m, ":***@")) << m;
  EXPECT_FALSE(contains(m, "hunter2")) << m;

  // A database that does not exist: refused at once (no waiting), password hidden.
  const auto t0 = std::chrono::steady_clock::now();
  const std::string missing =
      message_of<StoreError>([&] { open_store(test::uri_with_database(uri, "pbt_no_such_database")); });
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
  EXPECT_TRUE(contains(missing, "does not exist")) << missing;
  EXPECT_TRUE(contains(missing, ":***@")) << missing;
  EXPECT_FALSE(contains(missing, "hunter2")) << missing;
#endif
}

#ifdef PBT_WITH_POSTGRES

// Terminates the store's server process from another session, as a server restart or a
// network failure would cut it.
void terminate_backend(const test::PgDatabase& db, PostgresStore& s) {
  const int pid = s.backend_pid();
  test::PgConnection admin(db.uri());
  ASSERT_EQ(admin.scalar("SELECT pg_terminate_backend(" + std::to_string(pid) + ", 5000)"), "t");
}

TEST(PostgresStore, TheNextOperationSurvivesADroppedConnection) {
  PBT_REQUIRE_POSTGRES();
  test::PgDatabase db;
  PostgresStore s(db.uri());
  s.create_experiment(test::info("e", 2), test::members(2));
  const std::size_t c0 = s.connections();

  terminate_backend(db, s);
  auto l = s.lease("e", "w", 30);  // reconnects, then leases
  ASSERT_TRUE(l.has_value());
  EXPECT_EQ(s.connections(), c0 + 1);

  terminate_backend(db, s);
  s.heartbeat(l->lease, 30);
  terminate_backend(db, s);
  auto pub = test::publication(4, 0.5, "weights after a dropped connection");
  pub.scores = {{0, 4, 0.5}};
  Event ev;
  ev.kind = EventKind::explore;
  pub.events = {ev};
  s.publish(l->lease, pub);
  EXPECT_EQ(l->lease.version, l->member.version + 1);
  terminate_backend(db, s);
  auto pop = s.population("e");
  EXPECT_EQ(pop.at(0).step, 4);
  EXPECT_EQ(pop.at(0).version, l->lease.version);
  terminate_backend(db, s);
  EXPECT_EQ(s.checkpoint(pop.at(0).checkpoint), "weights after a dropped connection");
  terminate_backend(db, s);
  s.release(l->lease);
  EXPECT_EQ(s.connections(), c0 + 6);
  EXPECT_EQ(s.scores("e").size(), 1u);
  EXPECT_EQ(s.events("e").size(), 1u);
  EXPECT_EQ(s.population("e").at(0).owner, "");
}

TEST(PostgresStore, APublishWhoseCommitReplyWasLostIsAppliedOnce) {
  PBT_REQUIRE_POSTGRES();
  test::PgDatabase db;
  PostgresStore s(db.uri());
  s.lose_next_commit_reply();
  s.create_experiment(test::info("e", 2), test::members(2));  // committed; the retry recognises it
  EXPECT_EQ(s.population("e").size(), 2u);
  EXPECT_EQ(s.connections(), 2u);

  auto l = s.lease("e", "w", 30);
  ASSERT_TRUE(l);
  const std::int64_t v0 = l->lease.version;
  auto pub = test::publication(4, 0.25, "first");
  pub.scores = {{0, 3, 0.2}, {0, 4, 0.25}};
  Event ev;
  ev.kind = EventKind::explore;
  pub.events = {ev};
  s.lose_next_commit_reply();
  s.publish(l->lease, pub);  // the COMMIT went through, its reply did not: not applied twice, not lost
  EXPECT_EQ(l->lease.version, v0 + 1);
  EXPECT_EQ(s.connections(), 3u);
  auto m = s.population("e").at(0);
  EXPECT_EQ(m.version, v0 + 1);
  EXPECT_EQ(m.step, 4);
  EXPECT_EQ(s.scores("e").size(), 2u);
  EXPECT_EQ(s.events("e").size(), 1u);
  // The lease goes on as usual.
  s.heartbeat(l->lease, 30);
  s.publish(l->lease, test::publication(8, 0.5, "second"));
  EXPECT_EQ(s.population("e").at(0).version, v0 + 2);
  EXPECT_EQ(s.collect_garbage(), 0u);
  EXPECT_TRUE(contains(message_of<CheckpointError>([&] { s.checkpoint(checkpoint_id("first")); }), "missing"));
}

TEST(PostgresStore, ADecisionWhoseCommitReplyWasLostIsAppliedOnce) {
  PBT_REQUIRE_POSTGRES();
  test::PgDatabase db;
  TempDir dir;
  const std::string ck = dir.file("checkpoints");
  PostgresStore s(test::uri_with_param(db.uri(), "checkpoint_dir", ck));
  s.create_experiment(test::info("e", 2), test::members(2));
  for (const std::string bytes : {"weights a", "weights b"}) {
    auto l = s.lease("e", "w", 30);
    ASSERT_TRUE(l);
    auto pub = test::publication(4, bytes == "weights a" ? 0.1 : 0.9, bytes);
    pub.last_ready_step = 0;
    s.publish(l->lease, pub);
    s.release(l->lease);
  }
  const auto before = s.population("e");
  const std::string a = checkpoint_id("weights a"), b = checkpoint_id("weights b");
  ASSERT_EQ(before.at(0).checkpoint, a);
  ASSERT_TRUE(std::filesystem::exists(ck + "/" + a));

  Decision d;  // member 0 copies member 1
  d.member = 0;
  d.step = 4;
  d.last_ready_step = 0;
  d.h = test::h_for(1);
  d.checkpoint = b;
  d.score = 0.9;
  Event ev;
  ev.member = 0;
  ev.step = 4;
  ev.kind = EventKind::exploit;
  ev.donor = 1;
  d.events = {ev};
  const std::size_t c0 = s.connections();
  s.lose_next_commit_reply();
  s.decide("e", {d});  // the COMMIT went through, its reply did not: not stale, not applied twice
  EXPECT_EQ(s.connections(), c0 + 1);
  const auto m = s.population("e").at(0);
  EXPECT_EQ(m.version, before.at(0).version + 1);
  EXPECT_EQ(m.last_ready_step, 4);
  EXPECT_EQ(m.checkpoint, b);
  EXPECT_EQ(s.events("e").size(), 1u);
  // Its old checkpoint went, file and all, after the commit that was not reported.
  EXPECT_TRUE(contains(message_of<CheckpointError>([&] { s.checkpoint(a); }), "missing"));
  EXPECT_FALSE(std::filesystem::exists(ck + "/" + a));
  EXPECT_EQ(s.checkpoint(b), "weights b");
  // Deciding it again is stale.
  message_of<LeaseLost>([&] { s.decide("e", {d}); });
  EXPECT_EQ(s.collect_garbage(), 0u);
}

TEST(PostgresStore, ReopenKeepsTheDataAndTwoConnectionsSeeEachOther) {
  PBT_REQUIRE_POSTGRES();
  test::PgDatabase db;
  {
    PostgresStore a(db.uri());
    a.create_experiment(test::info("e", 1), test::members(1));
    auto l = a.lease("e", "a", 30);
    ASSERT_TRUE(l);
    PostgresStore b(db.uri());
    EXPECT_FALSE(b.lease("e", "b", 30).has_value());
    a.publish(l->lease, test::publication(7, 0.1 + 0.2, "persisted"));
    EXPECT_EQ(b.population("e").at(0).step, 7);
    EXPECT_EQ(b.checkpoint(checkpoint_id("persisted")), "persisted");
    EXPECT_NEAR(a.now(), b.now(), 1.0);
  }
  PostgresStore s(db.uri());
  auto m = s.population("e").at(0);
  EXPECT_EQ(m.step, 7);
  EXPECT_EQ(*m.score, 0.1 + 0.2);
  EXPECT_EQ(m.owner, "a");
  EXPECT_EQ(s.checkpoint(m.checkpoint), "persisted");
}

TEST(PostgresStore, NanScoreIsStoredAsNoScore) {
  PBT_REQUIRE_POSTGRES();
  test::PgDatabase db;
  PostgresStore s(db.uri());
  s.create_experiment(test::info("e", 1), test::members(1));
  auto l = s.lease("e", "a", 30);
  auto pub = test::publication(1, std::numeric_limits<double>::quiet_NaN(), "b");
  pub.samples = {1.0, std::numeric_limits<double>::quiet_NaN(), -std::numeric_limits<double>::infinity()};
  pub.scores = {{0, 1, std::numeric_limits<double>::quiet_NaN()}, {0, 1, std::numeric_limits<double>::infinity()}};
  s.publish(l->lease, pub);
  auto m = s.population("e").at(0);
  EXPECT_FALSE(m.score.has_value());
  ASSERT_EQ(m.samples.size(), 3u);
  EXPECT_TRUE(std::isnan(m.samples[1]));
  EXPECT_EQ(m.samples[2], -std::numeric_limits<double>::infinity());
  auto scores = s.scores("e");
  ASSERT_EQ(scores.size(), 2u);
  EXPECT_TRUE(std::isnan(scores[0].score));
  EXPECT_EQ(scores[1].score, std::numeric_limits<double>::infinity());
}

TEST(PostgresStore, AGarbledJsonColumnNamesTableRowAndColumn) {
  PBT_REQUIRE_POSTGRES();
  test::PgDatabase db;
  PostgresStore s(db.uri());
  s.create_experiment(test::info("e", 5), test::members(5));
  auto l = s.lease("e", "a", 30);
  auto pub = test::publication(8, 0.5, "b");
  Event ev;
  ev.member = l->lease.member;
  ev.step = 8;
  ev.kind = EventKind::explore;
  pub.events = {ev};
  s.publish(l->lease, pub);
  test::PgConnection raw(db.uri());
  raw.exec("UPDATE pbt.members SET h = '{\"lr\": 0.1' WHERE experiment = 'e' AND id = 3");
  raw.exec("UPDATE pbt.events SET new_h = 'not json'");
  PostgresStore fresh(db.uri());  // nothing cached
  std::string m = message_of<StoreError>([&] { fresh.population("e"); });
  EXPECT_TRUE(contains(m, db.name())) << m;
  EXPECT_TRUE(contains(m, "table members, experiment 'e', member 3, column h: invalid JSON")) << m;
  std::string e = message_of<StoreError>([&] { fresh.events("e"); });
  EXPECT_TRUE(contains(e, "table events, experiment 'e', event of member " + std::to_string(ev.member) +
                              " at step 8, column new_h: invalid JSON"))
      << e;
}

TEST(PostgresStore, RefusesAnotherSchemaVersion) {
  PBT_REQUIRE_POSTGRES();
  test::PgDatabase db;
  { PostgresStore s(db.uri()); }
  test::PgConnection(db.uri()).exec("UPDATE pbt.meta SET value = '99' WHERE key = 'schema_version'");
  std::string m = message_of<StoreError>([&] { PostgresStore s(db.uri()); });
  EXPECT_TRUE(contains(m, "schema version 99")) << m;
  EXPECT_TRUE(contains(m, "schema versions 1 (upgraded in place) and 2 only")) << m;
  EXPECT_TRUE(contains(m, db.name())) << m;
}

// A population read fetches only rows written since the previous read's snapshot xmin.
// A transaction that started before another one but commits after it (and after a read)
// must still reach the reader on its next read.
TEST(PostgresStore, APopulationReadMissesNoWriteThatCommitsOutOfOrder) {
  PBT_REQUIRE_POSTGRES();
  test::PgDatabase db;
  PostgresStore reader(db.uri());
  reader.create_experiment(test::info("e", 2), test::members(2));
  EXPECT_EQ(reader.population("e").at(0).step, 0);
  test::PgConnection slow(db.uri());
  slow.exec("BEGIN");
  slow.exec("UPDATE pbt.members SET step = 42 WHERE experiment = 'e' AND id = 0");  // older transaction id
  PostgresStore writer(db.uri());
  auto l = writer.lease("e", "w", 30);
  ASSERT_TRUE(l);
  ASSERT_EQ(l->member.id, 1) << "member 0 is locked by the open transaction, so the lease must skip it";
  writer.publish(l->lease, test::publication(7, 0.5, "newer"));  // commits first
  auto pop = reader.population("e");
  EXPECT_EQ(pop.at(1).step, 7);
  EXPECT_EQ(pop.at(0).step, 0);  // not committed yet
  slow.exec("COMMIT");
  pop = reader.population("e");
  EXPECT_EQ(pop.at(0).step, 42);
  EXPECT_EQ(pop.at(1).step, 7);
  // Lease columns change without a version change (heartbeats); they are news too.
  writer.heartbeat(l->lease, 300);
  EXPECT_GT(reader.population("e").at(1).lease_expires, reader.now() + 200);
}

// Schema version 1 had no members.changed column: the first worker upgrades it in place.
TEST(PostgresStore, UpgradesASchemaVersion1StoreInPlace) {
  PBT_REQUIRE_POSTGRES();
  test::PgDatabase db;
  {
    PostgresStore s(db.uri());
    s.create_experiment(test::info("e", 1), test::members(1));
  }
  test::PgConnection c(db.uri());
  c.exec(
      "DROP TRIGGER members_changed ON pbt.members; DROP FUNCTION pbt.pbt_member_changed(); "
      "ALTER TABLE pbt.members DROP COLUMN changed; UPDATE pbt.meta SET value = '1' WHERE key = 'schema_version'");
  PostgresStore s(db.uri());
  EXPECT_EQ(c.scalar("SELECT value FROM pbt.meta WHERE key = 'schema_version'"), "2");
  EXPECT_EQ(s.population("e").at(0).step, 0);
  auto l = s.lease("e", "w", 30);
  s.publish(l->lease, test::publication(3, 0.5, "after-upgrade"));
  PostgresStore other(db.uri());
  EXPECT_EQ(other.population("e").at(0).step, 3);
  EXPECT_EQ(s.population("e").at(0).step, 3);
}

TEST(PostgresStore, SchemasKeepStoresApartAndForeignTablesAreRefused) {
  PBT_REQUIRE_POSTGRES();
  test::PgDatabase db;
  PostgresStore a(test::uri_with_param(db.uri(), "schema", "team_a"));
  PostgresStore b(test::uri_with_param(db.uri(), "schema", "team_b"));
  a.create_experiment(test::info("ea", 1), test::members(1));
  b.create_experiment(test::info("eb", 1), test::members(1));
  EXPECT_EQ(a.experiments(), std::vector<std::string>{"ea"});
  EXPECT_EQ(b.experiments(), std::vector<std::string>{"eb"});

  test::PgConnection(db.uri()).exec("CREATE TABLE public.users(id integer)");
  std::string m = message_of<StoreError>([&] { PostgresStore s(test::uri_with_param(db.uri(), "schema", "public")); });
  EXPECT_TRUE(contains(m, "not a pbt store")) << m;
  EXPECT_TRUE(contains(m, "users")) << m;
  EXPECT_EQ(test::PgConnection(db.uri()).count("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"), 1);
}

TEST(PostgresStore, CheckpointDirKeepsBytesInVerifiedFiles) {
  PBT_REQUIRE_POSTGRES();
  test::PgDatabase db;
  TempDir dir;
  const std::string ck = dir.file("shared checkpoints");  // a space: percent-encoded in the URI
  PostgresStore s(test::uri_with_param(db.uri(), "checkpoint_dir", dir.file("shared%20checkpoints")));
  EXPECT_EQ(s.options().checkpoint_dir, ck);
  ASSERT_TRUE(std::filesystem::is_directory(ck));
  test::PgConnection raw(db.uri());
  s.create_experiment(test::info("e", 2), test::members(2));
  auto l = s.lease("e", "a", 30);
  ASSERT_TRUE(l);

  std::string a(100000, '\0');
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<char>((i * 7919) & 0xff);
  s.publish(l->lease, test::publication(1, 0.1, a));
  const std::string ida = checkpoint_id(a);
  EXPECT_EQ(read_file_bytes(ck + "/" + ida), a);
  EXPECT_EQ(raw.scalar("SELECT bytes IS NULL FROM pbt.checkpoints WHERE id = '" + ida + "'"), "t");
  EXPECT_EQ(s.checkpoint(ida), a);
  for (const auto& e : std::filesystem::directory_iterator(ck))
    EXPECT_EQ(e.path().filename().string().rfind(".tmp-", 0), std::string::npos) << e.path();

  // A store opened without the directory cannot read it, and says why.
  PostgresStore plain(db.uri());
  std::string no_dir = message_of<CheckpointError>([&] { plain.checkpoint(ida); });
  EXPECT_TRUE(contains(no_dir, "checkpoint_dir")) << no_dir;

  // The member moves on: its old file goes with its row.
  const std::string b = "second checkpoint";
  s.publish(l->lease, test::publication(2, 0.2, b));
  const std::string idb = checkpoint_id(b);
  EXPECT_FALSE(std::filesystem::exists(ck + "/" + ida));
  EXPECT_EQ(s.checkpoint(idb), b);

  // A corrupted file fails its hash check; a missing one is reported missing.
  {
    std::fstream f(ck + "/" + idb, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(3);
    f.put('X');
  }
  std::string bad = message_of<CheckpointError>([&] { s.checkpoint(idb); });
  EXPECT_TRUE(contains(bad, idb)) << bad;
  EXPECT_TRUE(contains(bad, "does not match its hash")) << bad;
  EXPECT_TRUE(contains(bad, ck)) << bad;
  std::filesystem::remove(ck + "/" + idb);
  std::string gone = message_of<CheckpointError>([&] { s.checkpoint(idb); });
  EXPECT_TRUE(contains(gone, "missing")) << gone;
  EXPECT_TRUE(contains(gone, ck)) << gone;

  // Publishing the same bytes again (another member) brings the file back.
  auto l2 = s.lease("e", "b", 30);
  ASSERT_TRUE(l2);
  s.publish(l2->lease, test::publication(1, 0.3, b));
  EXPECT_EQ(s.checkpoint(idb), b);

  // A zombie's publish leaves no file behind.
  Lease zombie = l->lease;
  zombie.version -= 1;
  EXPECT_THROW(s.publish(zombie, test::publication(3, 0.9, "zombie bytes")), LeaseLost);
  EXPECT_FALSE(std::filesystem::exists(ck + "/" + checkpoint_id("zombie bytes")));

  // Garbage collection sweeps files that no row refers to (a crash between writing and
  // publishing) and keeps the referenced ones.
  const std::string orphan = "orphan bytes";
  std::ofstream(ck + "/" + checkpoint_id(orphan), std::ios::binary) << orphan;
  std::ofstream(ck + "/not-a-checkpoint.txt") << "left alone";
  EXPECT_EQ(s.collect_garbage(), 1u);
  EXPECT_FALSE(std::filesystem::exists(ck + "/" + checkpoint_id(orphan)));
  EXPECT_TRUE(std::filesystem::exists(ck + "/not-a-checkpoint.txt"));
  EXPECT_EQ(s.checkpoint(idb), b);
  EXPECT_EQ(s.collect_garbage(), 0u);
}

#endif  // PBT_WITH_POSTGRES

}  // namespace
}  // namespace pbt
