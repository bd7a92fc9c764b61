// The lineage analysis of `pbt study` for real (the paper's Figure 9): a toy study whose PBT
// runs' winners are replayed; the section's numbers checked against the runs and against
// `pbt replay --schedule-only`; a study SIGKILLed while it replays resumes, keeps the
// replays that finished and redoes the half-done one.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include <nlohmann/json.hpp>

#include "process_util.hpp"

using namespace e2e;
namespace fs = std::filesystem;

namespace {

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Two members of the toy, (1, 0) and (0, 1); the worse copies the better's θ every 4 steps.
std::string study_text(const std::string& extra_base) {
  return R"(name = "lin"
seeds = 2
baseline = "pbt"
replay = ["pbt"]
fixed = "rs"
[base]
name = "b"
population = 2
trainable.kind = "toy"
budget.steps = 12
ready.interval = 4
ready.eval_every = 1
exploit.strategy = "truncation"
exploit.fraction = 0.5
exploit.copy_ties = true
exploit.copy = "weights"
explore.strategy = "gaussian"
explore.sigma = 0.1
space.h0 = { low = 0.0, high = 1.0 }
space.h1 = { low = 0.0, high = 1.0 }
initial = [{ h0 = 1.0, h1 = 0.0 }, { h0 = 0.0, h1 = 1.0 }]
workers.count = 2
)" + extra_base +
         R"(
[variants.pbt]
[variants.rs]
exploit.strategy = "none"
)";
}

}  // namespace

TEST(StudyLineage, ReplaysEachWinnerAndReportsItBesidePbtAndTheFixedH) {
  const std::string dir = temp_dir("study-lineage");
  const std::string out = dir + "/out";
  std::ofstream(dir + "/s.toml") << study_text("");
  Result r = run_pbt({"study", dir + "/s.toml", "--dir", out, "--jobs", "2", "--json"}, dir);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.err, "lineage: replaying the best member's inherited schedule of 2 run(s)")) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["lineage"].size(), 1u);
  const auto& l = j["lineage"][0];
  EXPECT_EQ(l["variant"], "pbt");
  EXPECT_EQ(l["fixed"], "rs");
  ASSERT_EQ(l["seeds"].size(), 2u);
  EXPECT_EQ(l["replay"]["n"], 2);
  EXPECT_EQ(l["replay_vs_pbt"]["pairs"], 2);
  EXPECT_EQ(l["replay_vs_fixed"]["pairs"], 2);
  EXPECT_EQ(l["hyperparameters"], (nlohmann::json{"h0", "h1"}));
  auto run_best = [&](const std::string& variant, int seed) {
    for (const auto& run : j["runs"])
      if (run["variant"] == variant && run["seed"] == seed) return run["best"].get<double>();
    ADD_FAILURE() << "no run " << variant << " " << seed;
    return 0.0;
  };
  for (int seed = 0; seed < 2; ++seed) {
    const auto& row = l["seeds"][seed];
    const std::string rd = out + "/runs/pbt/seed-" + std::to_string(seed);
    EXPECT_EQ(row["seed"], seed);
    EXPECT_DOUBLE_EQ(row["pbt"].get<double>(), run_best("pbt", seed));
    EXPECT_DOUBLE_EQ(row["fixed"].get<double>(), run_best("rs", seed));
    EXPECT_DOUBLE_EQ(row["replay_minus_pbt"].get<double>(), row["replay"].get<double>() - row["pbt"].get<double>());
    EXPECT_DOUBLE_EQ(row["replay_minus_fixed"].get<double>(), row["replay"].get<double>() - row["fixed"].get<double>());
    // The schedule kept in the run directory is the one `pbt replay` prints for that run.
    Result sched = run_pbt({"replay", "--run", rd, "--schedule-only", "--json"}, dir);
    ASSERT_EQ(sched.code, 0) << sched.err;
    const nlohmann::json s = nlohmann::json::parse(sched.out);
    EXPECT_EQ(row["member"], s["member"]);
    EXPECT_EQ(row["schedule"], s["schedule"]);
    EXPECT_EQ(row["total_steps"], s["total_steps"]);
    const nlohmann::json kept = nlohmann::json::parse(read_file(rd + "/study-replay.json"));
    EXPECT_EQ(kept["replay"]["schedule"], s["schedule"]);
    EXPECT_DOUBLE_EQ(kept["replay"]["replay_score"].get<double>(), row["replay"].get<double>());
    EXPECT_FALSE(fs::exists(rd + "/study-replay.out"));
    // The toy is deterministic: θ retrained through the same schedule is the winner's θ.
    EXPECT_NEAR(row["replay"].get<double>(), row["pbt"].get<double>(), 1e-9) << row.dump();
  }
  for (int seed = 0; seed < 2; ++seed)  // random search's runs are not replayed
    EXPECT_FALSE(fs::exists(out + "/runs/rs/seed-" + std::to_string(seed) + "/study-replay.json"));

  const std::string md = read_file(out + "/study.md");
  EXPECT_TRUE(has(md, "## Lineage (Figure 9)")) << md;
  EXPECT_TRUE(has(md, "| variant | seeds | PBT | replayed schedule | best fixed h |")) << md;
  EXPECT_TRUE(has(md, "| pbt | replay - fixed h | 2 |")) << md;
  EXPECT_TRUE(has(md, "`pbt`: `h0`")) << md;
  const std::string html = read_file(out + "/study.html");
  EXPECT_TRUE(has(html, "<section id=\"lineage\">"));
  EXPECT_TRUE(has(html, "data-hyperparameter=\"h1\""));

  // Run again: the replays are kept, not redone; the figures are the same.
  const std::string marker = read_file(out + "/runs/pbt/seed-1/study-replay.json");
  Result again = run_pbt({"study", dir + "/s.toml", "--dir", out, "--json"}, dir);
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_FALSE(has(again.err, "replaying")) << again.err;
  EXPECT_EQ(nlohmann::json::parse(again.out), j);
  EXPECT_EQ(read_file(out + "/runs/pbt/seed-1/study-replay.json"), marker);
}

TEST(StudyLineage, AStudyKilledWhileItReplaysResumesAndRedoesOnlyTheHalfDoneReplay) {
  const std::string dir = temp_dir("study-lineage-kill");
  const std::string pause = dir + "/pause";
  // Every toy step waits while the pause file exists (after the process's first step): it is
  // made once every run has finished, so a replay holds at its next step for the kill.
  std::ofstream(dir + "/s.toml") << study_text("trainable.pause_after = 1\ntrainable.pause_file = \"" + pause +
                                               "\"\ntrainable.sleep_ms = 50\n");
  const std::string out = dir + "/s.study";
  pid_t pid = spawn({PBT_BINARY, "study", dir + "/s.toml"}, dir + "/1.out", dir + "/1.err");
  const std::string runs[] = {"pbt/seed-0", "rs/seed-0", "pbt/seed-1", "rs/seed-1"};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(180);  // hang guard only
  bool replaying = false;
  int early = 0;
  while (!replaying && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (waitpid(pid, &early, WNOHANG) == pid) break;
    bool all = true;
    for (const auto& run : runs) all &= fs::exists(out + "/runs/" + run + "/study-finished.json");
    if (!all) continue;
    if (!fs::exists(pause)) std::ofstream(pause) << "held\n";
    replaying = fs::exists(out + "/runs/pbt/seed-0/study-replay.out");
  }
  ASSERT_TRUE(replaying) << read_file(dir + "/1.out") << read_file(dir + "/1.err");
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  waitpid(pid, nullptr, 0);
  // Held by the pause file (or by its own steps), seed 0's replay had not ended.
  EXPECT_FALSE(fs::exists(out + "/runs/pbt/seed-0/study-replay.json"));
  EXPECT_FALSE(fs::exists(out + "/study.md"));
  fs::remove(pause);

  pid = spawn({PBT_BINARY, "study", dir + "/s.toml"}, dir + "/2.out", dir + "/2.err");
  const int code = wait_exit(pid);
  const std::string said = read_file(dir + "/2.out");
  ASSERT_EQ(code, 0) << said << read_file(dir + "/2.err");
  EXPECT_TRUE(has(said, "(4 finished before)")) << said;
  EXPECT_FALSE(has(said, "starting")) << said;
  EXPECT_TRUE(has(said, "replaying 'pbt' seed 0")) << said;
  EXPECT_TRUE(has(said, "replaying 'pbt' seed 1")) << said;
  for (int seed = 0; seed < 2; ++seed) {
    const std::string rd = out + "/runs/pbt/seed-" + std::to_string(seed);
    ASSERT_TRUE(fs::exists(rd + "/study-replay.json")) << rd;
    EXPECT_FALSE(fs::exists(rd + "/study-replay.out")) << rd;
  }
  const nlohmann::json j = nlohmann::json::parse(read_file(out + "/study.json"));
  ASSERT_EQ(j["lineage"].size(), 1u);
  for (const auto& row : j["lineage"][0]["seeds"]) {
    ASSERT_TRUE(row["replay"].is_number()) << row.dump();
    EXPECT_NEAR(row["replay"].get<double>(), row["pbt"].get<double>(), 1e-9) << row.dump();
  }
}

TEST(StudyLineage, BadLineageOptionsExit2NamingTheField) {
  const std::string dir = temp_dir("study-lineage-bad");
  std::string text = study_text("");
  text.replace(text.find("replay = [\"pbt\"]"), 16, "replay = [\"rs\"]");
  std::ofstream(dir + "/bad.toml") << text;
  Result r = run_pbt({"study", dir + "/bad.toml"}, dir);
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  EXPECT_TRUE(has(r.err, "bad.toml: replay: 'rs' has exploit.strategy = \"none\"")) << r.err;
  EXPECT_FALSE(fs::exists(dir + "/bad.study"));
}
