// End-to-end: the real `pbt` command, real worker processes on one SQLite store.
#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <set>

#include "pbt/store.hpp"
#include "common/toy_config.hpp"
#include "process_util.hpp"
#include "run_checks.hpp"

using namespace e2e;
using nlohmann::json;

namespace {

const std::string kToyConfig = std::string(PBT_SOURCE_DIR) + "/examples/toy.toml";

std::vector<json> json_lines(const std::string& text) {
  std::vector<json> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

// The event log without what legitimately differs between runs (time, worker id).
json comparable_events(const std::string& text) {
  json out = json::array();
  for (auto j : json_lines(text)) {
    j.erase("time");
    j.erase("worker");
    out.push_back(j);
  }
  return out;
}

// A toy population for watching a run and killing workers in it. Each worker process trains
// 8 steps (two intervals: checkpoints published), then holds its member while `pause_file`
// exists: the test sees the run mid-way however slow the machine, and lets it go on by
// removing the file.
std::string slow_config(const std::string& dir, const std::string& name, const std::string& pause_file,
                        const std::string& mode = "async") {
  std::string path = dir + "/" + name + ".toml";
  std::ofstream(path) << pbt::test::ToyConfig(name)
                             .set("ready.mode", "\"" + mode + "\"")
                             .seed(5)
                             .sleep_ms(15)
                             .pause(8, pause_file)
                             .steps(80)
                             .set("ready.eval_every", "1")
                             .set("exploit.fraction", "0.25")
                             .workers(2)
                             .lease_seconds("1.0")
                             .text();
  return path;
}

// Waits until some member with a published checkpoint is held mid-run; returns the status
// JSON then. The workers pause (see slow_config), so this is a state that lasts, not a race
// with the run's end: the deadline is only a hang guard.
json wait_for_progress(const std::string& dir, const std::string& run_dir) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(180);
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = run_pbt({"status", "--run", run_dir, "--json"}, dir);
    if (r.code == 0) {
      json j = json::parse(r.out);
      for (const auto& m : j["members"])
        if (m["step"].get<int>() >= 4 && m["step"].get<int>() < 80 && !m["held_by"].is_null()) return j;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return json();
}

// Kills and reaps the processes a test started if it returns early (a failed ASSERT).
struct Reaper {
  std::vector<pid_t> pids;
  ~Reaper() {
    for (pid_t p : pids)
      if (p > 0 && kill(p, SIGKILL) == 0) waitpid(p, nullptr, 0);
  }
  void done(pid_t p) {
    for (pid_t& q : pids)
      if (q == p) q = -1;
  }
};

pid_t pid_of(const std::string& worker_id) {
  return static_cast<pid_t>(std::stol(worker_id.substr(worker_id.rfind(':') + 1)));
}

}  // namespace

TEST(E2E, ToyRunEndsWithAReadableResult) {
  std::string dir = temp_dir("toy");
  std::string run_dir = dir + "/run";
  auto r = run_pbt({"run", kToyConfig, "--run", run_dir}, dir);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("finished: experiment 'toy', 2/2 members reached the budget"), std::string::npos) << r.out;
  // Two workers: each member decides against the other as last published, so the run
  // depends on timing, and some interleavings stall where the toy bench shows (Q = 0.851).
  // Copying is what lifts Q above 0.39, all either member reaches alone; the toy's quality
  // with one worker (deterministic) is pinned by Worker.ToyReachesTheOptimum... (>= 1.188).
  std::smatch printed;
  ASSERT_TRUE(std::regex_search(r.out, printed, std::regex("best: member [01], score ([0-9.]+)"))) << r.out;
  EXPECT_GE(std::stod(printed[1]), 0.8) << r.out;
  EXPECT_LE(std::stod(printed[1]), 1.2) << r.out;
  EXPECT_TRUE(std::filesystem::exists(run_dir + "/store.db"));
  EXPECT_TRUE(std::filesystem::exists(run_dir + "/logs/worker-0.log"));

  auto status = run_pbt({"status", "--run", run_dir, "--json"}, dir);
  ASSERT_EQ(status.code, 0) << status.err;
  json s = json::parse(status.out);
  ASSERT_EQ(s["members"].size(), 2u);
  for (const auto& m : s["members"]) {
    EXPECT_EQ(m["step"], 100);
    EXPECT_TRUE(m["done"].get<bool>());
    EXPECT_TRUE(m["held_by"].is_null());
    EXPECT_TRUE(m["h"].contains("h0") && m["h"].contains("h1"));
    // Its model's steps, following the copies back (donors may be ahead or behind).
    ASSERT_TRUE(m["trained_steps"].is_number_integer()) << m;
    EXPECT_GT(m["trained_steps"].get<int>(), 0);
    EXPECT_DOUBLE_EQ(m["efficiency"].get<double>(), m["trained_steps"].get<double>() / 100);
  }
  ASSERT_TRUE(s["median_efficiency"].is_number()) << s;
  EXPECT_DOUBLE_EQ(s["median_efficiency"].get<double>(),
                   (s["members"][0]["efficiency"].get<double>() + s["members"][1]["efficiency"].get<double>()) / 2);

  std::string model = dir + "/model.bin";
  auto best = run_pbt({"best", "--run", run_dir, "--json", "--export", model}, dir);
  ASSERT_EQ(best.code, 0) << best.err;
  json b = json::parse(best.out);
  EXPECT_NEAR(b["score"].get<double>(), std::stod(printed[1]), 1e-5);  // the member the run named
  EXPECT_EQ(pbt::checkpoint_id(read_file(model)), b["checkpoint"].get<std::string>());

  auto events = run_pbt({"events", "--run", run_dir, "--json"}, dir);
  ASSERT_EQ(events.code, 0);
  auto evs = json_lines(events.out);
  ASSERT_FALSE(evs.empty());
  for (const auto& e : evs) {
    EXPECT_EQ(e["kind"], "exploit");
    EXPECT_EQ(e["copied"], "weights");
    EXPECT_NE(e["donor"], e["member"]);
    EXPECT_EQ(e["step"].get<int>() % 4, 0);
    EXPECT_GE(e["donor_score"].get<double>(), e["old_score"].get<double>());
  }
  auto text = run_pbt({"events", "--run", run_dir}, dir);
  EXPECT_NE(text.out.find("copied member"), std::string::npos) << text.out;

  // The toy is deterministic: replaying the winner's inherited schedule from scratch, with
  // no population, lands on its score (the two workers ran asynchronously: donors were
  // at other steps than the copier, which the lineage must follow exactly).
  auto replay = run_pbt({"replay", "--run", run_dir, "--json"}, dir);
  ASSERT_EQ(replay.code, 0) << replay.err;
  json rp = json::parse(replay.out);
  EXPECT_EQ(rp["member"], b["member"]);
  EXPECT_NEAR(rp["replay_score"].get<double>(), rp["original_score"].get<double>(), 1e-12);
  EXPECT_GE(rp["schedule"].size(), 1u);
  EXPECT_EQ(b["trained_steps"], rp["total_steps"]) << "the best model's trained steps are its schedule's";
  EXPECT_DOUBLE_EQ(b["efficiency"].get<double>(), b["trained_steps"].get<double>() / b["step"].get<double>());
  EXPECT_EQ(b["median_efficiency"], s["median_efficiency"]);
}

TEST(E2E, OneWorkerAndAFixedSeedGiveTheSameEventLog) {
  std::string dir = temp_dir("repro");
  ASSERT_EQ(run_pbt({"run", kToyConfig, "--run", dir + "/a", "--workers", "1"}, dir).code, 0);
  ASSERT_EQ(run_pbt({"run", kToyConfig, "--run", dir + "/b", "--workers", "1"}, dir).code, 0);
  auto a = run_pbt({"events", "--run", dir + "/a", "--json"}, dir);
  auto b = run_pbt({"events", "--run", dir + "/b", "--json"}, dir);
  json ea = comparable_events(a.out), eb = comparable_events(b.out);
  ASSERT_GT(ea.size(), 5u);
  EXPECT_EQ(ea, eb);
}

TEST(E2E, ABadConfigIsRefusedBeforeAnythingRuns) {
  std::string dir = temp_dir("badconfig");
  std::string path = dir + "/bad.toml";
  std::string text = read_file(kToyConfig);
  text.replace(text.find("fraction = 0.5"), 14, "fraction = 0.5\nfractoin = 0.2");
  std::ofstream(path) << text;
  auto r = run_pbt({"run", path, "--run", dir + "/run"}, dir);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("config error: " + path + ": exploit.fractoin: unknown key"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir + "/run/store.db"));

  auto missing = run_pbt({"status", "--run", dir + "/nowhere"}, dir);
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("no run in '" + dir + "/nowhere'"), std::string::npos) << missing.err;
}

// Two `pbt worker` processes and no supervisor: the killed worker's lease expires and the
// survivor resumes its member from the last published checkpoint. In sync mode the kill
// lands mid-generation: the survivor's members wait at the generation's barrier for the
// dead worker's member, which the survivor then takes over, so the run still ends.
void a_worker_killed_mid_run_loses_nothing(const std::string& mode) {
  std::string dir = temp_dir("kill-" + mode);
  std::string run_dir = dir + "/run";
  const std::string pause = dir + "/pause";
  std::ofstream(pause) << "";
  std::string config = slow_config(dir, "slow", pause, mode);
  ASSERT_EQ(run_pbt({"create", config, "--run", run_dir}, dir).code, 0);
  const std::string uri = "sqlite:" + run_dir + "/store.db";
  Reaper reaper;
  pid_t w1 = spawn({PBT_BINARY, "worker", "--store", uri, "--experiment", "slow"}, dir + "/w1.out", dir + "/w1.err");
  reaper.pids.push_back(w1);
  pid_t w2 = spawn({PBT_BINARY, "worker", "--store", uri, "--experiment", "slow"}, dir + "/w2.out", dir + "/w2.err");
  reaper.pids.push_back(w2);

  // `pbt status` shows the run as it goes: some member is held and not finished.
  std::string victim_id;
  if (mode == "sync") {
    // A worker may pause holding a member that has not reached the first generation, while
    // the other waits at the barrier (holding members only for a moment): the victim is the
    // holder of the member furthest behind, once some member has published.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(180);
    while (victim_id.empty() && std::chrono::steady_clock::now() < deadline) {
      auto r = run_pbt({"status", "--run", run_dir, "--json"}, dir);
      if (r.code == 0) {
        const json j = json::parse(r.out);
        int published = 0, lowest = 80;
        for (const auto& m : j["members"]) {
          const int step = m["step"].get<int>();
          published += step >= 4;
          if (!m["held_by"].is_null() && step < lowest) lowest = step, victim_id = m["held_by"];
        }
        if (published == 0) victim_id.clear();
      }
      if (victim_id.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_FALSE(victim_id.empty()) << "no progress seen";
  } else {
    json live = wait_for_progress(dir, run_dir);
    ASSERT_FALSE(live.is_null()) << "no progress seen";
    for (const auto& m : live["members"])
      if (!m["held_by"].is_null() && m["step"].get<int>() >= 4 && m["step"].get<int>() < 80) victim_id = m["held_by"];
    ASSERT_FALSE(victim_id.empty()) << live.dump();
  }
  pid_t victim = pid_of(victim_id);
  ASSERT_TRUE(victim == w1 || victim == w2) << victim_id;
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  pid_t survivor = victim == w1 ? w2 : w1;
  EXPECT_EQ(wait_exit(victim), 128 + SIGKILL);
  reaper.done(victim);
  std::filesystem::remove(pause);
  EXPECT_EQ(wait_exit(survivor), 0) << read_file(dir + (survivor == w1 ? "/w1.err" : "/w2.err"));
  reaper.done(survivor);

  auto store = pbt::open_store("sqlite:" + run_dir + "/store.db");
  expect_complete_and_exactly_once(*store, "slow", 4, 80);
  if (mode == "sync") {  // every generation decided against itself: no donor ahead or behind
    for (const auto& e : store->events("slow")) {
      EXPECT_EQ(e.donor_step, e.donor >= 0 ? e.step : 0);
    }
  }
  if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
}

TEST(E2E, AWorkerKilledMidRunLosesNothing) { a_worker_killed_mid_run_loses_nothing("async"); }

TEST(E2E, AWorkerKilledMidGenerationLosesNothingInSyncMode) { a_worker_killed_mid_run_loses_nothing("sync"); }

TEST(E2E, PbtRunReplacesAKilledWorkerAndFinishes) {
  std::string dir = temp_dir("runkill");
  std::string run_dir = dir + "/run";
  const std::string pause = dir + "/pause";
  std::ofstream(pause) << "";
  std::string config = slow_config(dir, "slowrun", pause);
  const auto start = std::chrono::steady_clock::now();
  Reaper reaper;
  pid_t run = spawn({PBT_BINARY, "run", config, "--run", run_dir}, dir + "/run.out", dir + "/run.err");
  reaper.pids.push_back(run);
  json live = wait_for_progress(dir, run_dir);
  ASSERT_FALSE(live.is_null());
  std::string victim_id;
  for (const auto& m : live["members"])
    if (!m["held_by"].is_null() && m["step"].get<int>() >= 4 && m["step"].get<int>() < 80) victim_id = m["held_by"];
  ASSERT_FALSE(victim_id.empty());
  ASSERT_EQ(kill(pid_of(victim_id), SIGKILL), 0);
  // Let the run go on once `pbt run` has seen the death (and so decided on a replacement
  // while work was left), however long that takes here.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (read_file(dir + "/run.out").find("was killed by signal 9") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::filesystem::remove(pause);
  EXPECT_EQ(wait_exit(run), 0) << read_file(dir + "/run.out") << read_file(dir + "/run.err");
  reaper.done(run);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::string out = read_file(dir + "/run.out");
  EXPECT_NE(out.find("was killed by signal 9"), std::string::npos) << out;
  EXPECT_NE(out.find("starting a replacement worker"), std::string::npos) << out;
  EXPECT_NE(out.find("finished: experiment 'slowrun', 4/4 members reached the budget"), std::string::npos) << out;
  // Not a terminal: progress lines at most every 10 s, not one per poll (counted against
  // the run's own duration, which a busy machine stretches).
  int progress_lines = 0;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) progress_lines += line.find("] members done") != std::string::npos;
  EXPECT_LE(progress_lines, 2 + static_cast<int>(seconds / 10)) << out;
  expect_complete_and_exactly_once(*pbt::open_store("sqlite:" + run_dir + "/store.db"), "slowrun", 4, 80);
  if (!HasFailure()) std::filesystem::remove_all(dir);
}

TEST(E2E, RunningAgainResumesAndADifferentConfigIsRefused) {
  std::string dir = temp_dir("resume");
  std::string run_dir = dir + "/run";
  ASSERT_EQ(run_pbt({"run", kToyConfig, "--run", run_dir}, dir).code, 0);
  auto again = run_pbt({"run", kToyConfig, "--run", run_dir}, dir);
  EXPECT_EQ(again.code, 0);
  EXPECT_NE(again.out.find("resuming experiment 'toy'"), std::string::npos) << again.out;
  std::string other = dir + "/other.toml";
  std::string text = read_file(kToyConfig);
  text.replace(text.find("seed = 0"), 8, "seed = 1");
  std::ofstream(other) << text;
  auto refused = run_pbt({"run", other, "--run", run_dir}, dir);
  EXPECT_EQ(refused.code, 1);
  EXPECT_NE(refused.err.find("already holds an experiment named 'toy' with a different config"), std::string::npos)
      << refused.err;
}
