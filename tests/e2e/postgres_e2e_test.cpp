// End-to-end on PostgreSQL: the real `pbt` command and worker processes on a PostgreSQL
// store. Needs a server: PBT_TEST_POSTGRES_URI (scripts/test.sh starts one); skipped,
// saying why, without it. The restart test runs a throwaway cluster of its own
// (scripts/pg-server.sh) so that it may stop it under the workers' feet.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "pbt/error.hpp"
#include "pbt/store.hpp"
#include "../store/pg_test_util.hpp"
#include "common/toy_config.hpp"
#include "pg_cluster.hpp"
#include "process_util.hpp"
#include "run_checks.hpp"

using namespace e2e;
using nlohmann::json;

namespace {

const std::string kToyConfig = std::string(PBT_SOURCE_DIR) + "/examples/toy.toml";

#ifdef PBT_WITH_POSTGRES  // the tests that use these need libpq
// The event log without what legitimately differs between runs (time, worker id).
json comparable_events(const std::string& text) {
  json out = json::array();
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    json j = json::parse(line);
    j.erase("time");
    j.erase("worker");
    out.push_back(j);
  }
  return out;
}

// The config's text with [store] uri set.
std::string with_store(std::string text, const std::string& uri) {
  const std::string line = "uri = \"" + uri + "\"\n";
  const auto at = text.find("\n[store]\n");
  if (at != std::string::npos) return text.insert(at + 9, line);
  return text + "\n[store]\n" + line;
}
#endif

}  // namespace

TEST(PostgresE2E, ToyRunGivesTheSameEventLogAsOnSqlite) {
  const std::string why = pbt::test::postgres_unavailable();
  if (!why.empty()) GTEST_SKIP() << why;
#ifdef PBT_WITH_POSTGRES
  pbt::test::PgDatabase db;
  std::string dir = temp_dir("pg-same-log");
  const std::string config = dir + "/toy-pg.toml";
  std::ofstream(config) << with_store(read_file(kToyConfig), db.uri());

  auto sq = run_pbt({"run", kToyConfig, "--run", dir + "/sqlite", "--workers", "1"}, dir);
  ASSERT_EQ(sq.code, 0) << sq.out << sq.err;
  auto pg = run_pbt({"run", config, "--run", dir + "/pg", "--workers", "1"}, dir);
  ASSERT_EQ(pg.code, 0) << pg.out << pg.err;
  EXPECT_NE(pg.out.find("finished: experiment 'toy', 2/2 members reached the budget"), std::string::npos) << pg.out;

  auto a = run_pbt({"events", "--run", dir + "/sqlite", "--json"}, dir);
  auto b = run_pbt({"events", "--store", db.uri(), "--experiment", "toy", "--json"}, dir);
  ASSERT_EQ(a.code, 0) << a.err;
  ASSERT_EQ(b.code, 0) << b.err;
  json ea = comparable_events(a.out), eb = comparable_events(b.out);
  ASSERT_GT(ea.size(), 5u);
  EXPECT_EQ(ea, eb);

  // The same final population, to the last bit.
  auto s1 = pbt::open_store("sqlite:" + dir + "/sqlite/store.db");
  auto s2 = pbt::open_store(db.uri());
  auto p1 = s1->population("toy"), p2 = s2->population("toy");
  ASSERT_EQ(p1.size(), p2.size());
  for (std::size_t i = 0; i < p1.size(); ++i) {
    EXPECT_EQ(p1[i].step, p2[i].step);
    EXPECT_EQ(p1[i].score, p2[i].score);
    EXPECT_EQ(p1[i].h, p2[i].h);
    EXPECT_EQ(p1[i].checkpoint, p2[i].checkpoint);
  }
  std::filesystem::remove_all(dir);
#endif
}

TEST(PostgresE2E, ServerRestartedMidRunLosesNothing) {
  const std::string why = pbt::test::postgres_unavailable();
  if (!why.empty()) GTEST_SKIP() << why;
  std::string dir = temp_dir("pg-restart");
  Cluster cluster(dir);
  const std::string not_started = cluster.start();
  if (!not_started.empty()) GTEST_SKIP() << "this test cannot control a PostgreSQL server of its own: " << not_started;

  const std::string uri = cluster.uri();
  const std::string config = dir + "/restart.toml";
  // Each worker holds its member after 12 steps while `pause` exists, so the restart comes
  // mid-run however slow the machine; the pause ends with the server down.
  const std::string pause = dir + "/pause";
  std::ofstream(pause) << "";
  std::ofstream(config) << pbt::test::ToyConfig("restart")
                               .seed(3)
                               .sleep_ms(10)
                               .pause(12, pause)
                               .steps(120)
                               .set("ready.eval_every", "1")
                               .set("exploit.fraction", "0.25")
                               .workers(2)
                               .lease_seconds("1.0")
                               .store(uri)
                               .text();
  auto created = run_pbt({"create", config, "--run", dir + "/run"}, dir);
  ASSERT_EQ(created.code, 0) << created.out << created.err;
  pid_t w1 = spawn({PBT_BINARY, "worker", "--store", uri, "--experiment", "restart", "--log", dir + "/w1.log"},
                   dir + "/w1.out", dir + "/w1.err");
  pid_t w2 = spawn({PBT_BINARY, "worker", "--store", uri, "--experiment", "restart", "--log", dir + "/w2.log"},
                   dir + "/w2.out", dir + "/w2.err");

  auto store = pbt::open_store(uri);
  std::int64_t steps_at_stop = -1;
  for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(180);
       steps_at_stop < 0 && std::chrono::steady_clock::now() < until;) {
    std::int64_t steps = 0, most = 0;
    for (const auto& m : store->population("restart")) {
      steps += m.step;
      most = std::max(most, m.step);
    }
    if (most >= 8) steps_at_stop = steps;
    else std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  if (steps_at_stop < 0) std::filesystem::remove(pause);  // no worker left waiting at the pause
  ASSERT_GE(steps_at_stop, 0) << "no progress before the restart";
  // Down for a while (longer than a lease), then back: the workers wait and reconnect.
  ASSERT_EQ(cluster.stop(), 0) << read_file(cluster.log());
  std::filesystem::remove(pause);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  ASSERT_EQ(cluster.start_again(), 0) << read_file(cluster.log());

  EXPECT_EQ(wait_exit_within(w1, 240), 0) << read_file(dir + "/w1.err") << read_file(dir + "/w1.log");
  EXPECT_EQ(wait_exit_within(w2, 240), 0) << read_file(dir + "/w2.err") << read_file(dir + "/w2.log");
  EXPECT_LT(steps_at_stop, 4 * 120) << "the restart came after the run";
  expect_complete_and_exactly_once(*store, "restart", 4, 120);
  store.reset();
  std::filesystem::remove_all(dir + "/run");
}

TEST(PostgresE2E, ThePasswordNeverReachesOutputOrLogs) {
  const std::string why = pbt::test::postgres_unavailable();
  if (!why.empty()) GTEST_SKIP() << why;
#ifdef PBT_WITH_POSTGRES
  pbt::test::PgDatabase db;
  // The test server trusts loopback, so any password is accepted and must still be hidden.
  std::string uri = db.uri();
  const auto at = uri.find('@');
  ASSERT_NE(at, std::string::npos) << uri;
  uri.insert(at, ":Sekr1t-pw");
  std::string dir = temp_dir("pg-secret");
  const std::string config = dir + "/toy-secret.toml";
  std::ofstream(config) << with_store(read_file(kToyConfig), uri);
  auto created = run_pbt({"create", config, "--run", dir + "/run"}, dir);
  ASSERT_EQ(created.code, 0) << created.err;
  auto worker = run_pbt({"worker", "--store", uri, "--experiment", "toy", "--log", dir + "/worker.log"}, dir);
  ASSERT_EQ(worker.code, 0) << worker.err;
  auto status = run_pbt({"status", "--store", uri, "--experiment", "toy"}, dir);
  ASSERT_EQ(status.code, 0) << status.err;
  const std::string log = read_file(dir + "/worker.log");
  EXPECT_NE(log.find("joined experiment 'toy'"), std::string::npos) << log;
  for (const std::string& text : {created.out, created.err, worker.out, worker.err, status.out, status.err, log})
    EXPECT_EQ(text.find("Sekr1t-pw"), std::string::npos) << text;
  std::filesystem::remove_all(dir);
#endif
}
