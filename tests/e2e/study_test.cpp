// `pbt study` for real: the toy study (examples/studies/toy.toml) end to end, its outputs
// checked; a study SIGKILLed after a run finished, rerun: the finished run is kept as it was,
// the half-done one resumes, nothing runs twice; a bad study file exits 2 naming the field; a
// second study on one directory is refused.
#include <sys/file.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "pbt/store.hpp"
#include "process_util.hpp"
#include "run_checks.hpp"

using namespace e2e;
namespace fs = std::filesystem;

namespace {

std::string source(const std::string& rel) { return std::string(PBT_SOURCE_DIR) + "/" + rel; }

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST(StudyCommand, ToyStudyWritesItsFiguresAndARerunKeepsEveryRun) {
  const std::string dir = temp_dir("study-toy");
  const std::string out = dir + "/out";
  // --check: the plan, every run still to do, and nothing written.
  Result check = run_pbt({"study", source("examples/studies/toy.toml"), "--dir", out, "--check"}, dir);
  ASSERT_EQ(check.code, 0) << check.out << check.err;
  EXPECT_TRUE(has(check.out, "2 variant(s) x 3 seed(s) = 6 runs")) << check.out;
  EXPECT_TRUE(has(check.out,
                  "no-exploit | 2 | 40 | 4 | none | gaussian | weights | 0/0/3 | budget.steps = 40; "
                  "exploit.strategy = 'none'"))
      << check.out;
  EXPECT_TRUE(has(check.out, "all 6 configs are valid; nothing was started")) << check.out;
  EXPECT_FALSE(fs::exists(out)) << "--check writes nothing";
  Result r = run_pbt({"study", source("examples/studies/toy.toml"), "--dir", out, "--jobs", "2", "--json"}, dir);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["study"], "toy");
  EXPECT_EQ(j["baseline"], "pbt");
  EXPECT_EQ(j["metric"], "score");
  EXPECT_TRUE(has(j["test"].get<std::string>(), "Wilcoxon signed-rank"));
  ASSERT_EQ(j["variants"].size(), 2u);
  EXPECT_EQ(j["variants"][0]["name"], "pbt");
  EXPECT_EQ(j["variants"][1]["name"], "no-exploit");
  for (const auto& v : j["variants"]) {
    EXPECT_EQ(v["runs"], 3);
    EXPECT_EQ(v["best"]["n"], 3);
    EXPECT_TRUE(v["best"]["median"].is_number()) << v.dump();
    EXPECT_LE(v["best"]["q1"].get<double>(), v["best"]["median"].get<double>());
    EXPECT_LE(v["best"]["median"].get<double>(), v["best"]["q3"].get<double>());
    // The toy's Q(θ) = 1.2 - |θ|² is at most 1.2.
    EXPECT_LE(v["best"]["q3"].get<double>(), 1.2);
    EXPECT_LE(v["population"]["median"].get<double>(), v["best"]["median"].get<double>() + 1e-12);
    EXPECT_TRUE(v["efficiency"]["median"].is_number());
    EXPECT_EQ(v["curve"].size(), 51u);
    EXPECT_EQ(v["curve"].back()["step"], 40);
    EXPECT_TRUE(v["curve"].back()["median_best_score"].is_number());
  }
  EXPECT_TRUE(j["variants"][0]["vs_baseline"].is_null());
  const auto& c = j["variants"][1]["vs_baseline"];
  EXPECT_EQ(c["pairs"], 3);
  EXPECT_EQ(c["wins"].get<int>() + c["losses"].get<int>() + c["ties"].get<int>(), 3);
  EXPECT_GT(c["wilcoxon_p"].get<double>(), 0);
  EXPECT_LE(c["wilcoxon_p"].get<double>(), 1);
  ASSERT_EQ(j["runs"].size(), 6u);
  for (const auto& run : j["runs"]) {
    EXPECT_EQ(run["best_step"], 40) << run.dump();
    EXPECT_TRUE(run["best"].is_number()) << run.dump();
    EXPECT_GT(run["wall_seconds"].get<double>(), 0);
    ASSERT_TRUE(run["copies"].is_number_integer()) << run.dump();
    if (run["variant"] == "no-exploit") {
      EXPECT_EQ(run["copies"], 0) << run.dump();  // nobody copies anybody
    }
    EXPECT_TRUE(fs::exists(out + "/" + run["dir"].get<std::string>() + "/study-finished.json"));
  }
  // Each run is an ordinary run: `pbt best` reads it.
  Result best = run_pbt({"best", "--run", out + "/runs/no-exploit/seed-2", "--json"}, dir);
  ASSERT_EQ(best.code, 0) << best.err;
  EXPECT_EQ(nlohmann::json::parse(best.out)["experiment"], "toy-no-exploit-s2");

  const std::string md = read_file(out + "/study.md");
  EXPECT_TRUE(has(md, "# Study `toy`: 2 variants x 3 seeds")) << md;
  EXPECT_TRUE(has(md, "| pbt (baseline) | 3 | ")) << md;
  EXPECT_TRUE(has(md, "| no-exploit | 3 | ")) << md;
  EXPECT_TRUE(has(md, "Wilcoxon signed-rank")) << md;
  EXPECT_TRUE(has(md, "## Median best score by step")) << md;
  EXPECT_TRUE(has(md, "`no-exploit`: budget.steps = 40; exploit.strategy = 'none'")) << md;
  const std::string html = read_file(out + "/study.html");
  EXPECT_TRUE(has(html, "<svg")) << html.substr(0, 400);
  EXPECT_TRUE(has(html, "id=\"pbt-study-data\""));
  EXPECT_EQ(nlohmann::json::parse(read_file(out + "/study.json")), j);

  // Run again: every run is kept, none started; the figures are the same.
  const std::string marker = read_file(out + "/runs/pbt/seed-0/study-finished.json");
  Result again = run_pbt({"study", source("examples/studies/toy.toml"), "--dir", out, "--json"}, dir);
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_TRUE(has(again.err, "(6 finished before)")) << again.err;
  EXPECT_FALSE(has(again.err, "starting")) << again.err;
  EXPECT_EQ(nlohmann::json::parse(again.out), j);
  EXPECT_EQ(read_file(out + "/runs/pbt/seed-0/study-finished.json"), marker);
  check = run_pbt({"study", source("examples/studies/toy.toml"), "--dir", out, "--check"}, dir);
  ASSERT_EQ(check.code, 0) << check.err;
  EXPECT_TRUE(has(check.out, "| 3/0/0 | ")) << check.out;
}

TEST(StudyCommand, AStudyKilledAfterARunFinishedResumesWithoutRunningItAgain) {
  const std::string dir = temp_dir("study-kill");
  const std::string pause = dir + "/pause";
  std::ofstream(pause) << "held\n";
  // Run order with --jobs 1: fast/0, held/0, fast/1, held/1. held/0 trains 4 steps, publishes,
  // then waits while the pause file exists: the study is killed there.
  std::ofstream(dir + "/s.toml") << R"(name = "k"
seeds = 2
baseline = "fast"
[base]
name = "b"
population = 2
trainable.kind = "toy"
budget.steps = 12
ready.interval = 4
ready.eval_every = 1
exploit.strategy = "truncation"
exploit.fraction = 0.5
explore.strategy = "perturb"
space.h0 = { low = 0.0, high = 1.0 }
space.h1 = { low = 0.0, high = 1.0 }
workers.count = 1
workers.lease_seconds = 2
[variants.fast]
[variants.held]
trainable.pause_after = 4
trainable.pause_file = ")" + pause + "\"\n";
  const std::string out = dir + "/s.study";  // the default: beside the study file
  pid_t pid = spawn({PBT_BINARY, "study", dir + "/s.toml"}, dir + "/1.out", dir + "/1.err");
  const std::string fast0 = out + "/runs/fast/seed-0", held0 = out + "/runs/held/seed-0";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);  // hang guard only
  bool held = false;
  int early = 0;
  while (!held && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (waitpid(pid, &early, WNOHANG) == pid) break;
    if (!fs::exists(fast0 + "/study-finished.json") || !fs::exists(held0 + "/store.db")) continue;
    try {
      auto store = pbt::open_existing_store("sqlite:" + held0 + "/store.db");
      for (const auto& m : store->population("k-held-s0")) held |= m.step >= 4;
    } catch (const std::exception&) {
      // not created yet
    }
  }
  ASSERT_TRUE(held) << read_file(dir + "/1.out") << read_file(dir + "/1.err");
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  waitpid(pid, nullptr, 0);
  EXPECT_FALSE(fs::exists(held0 + "/study-finished.json"));
  EXPECT_FALSE(fs::exists(out + "/study.md"));
  // The killed study's `pbt run` of held/0 got SIGTERM (its parent died) and stops like after
  // Ctrl-C; its worker, held by the pause file, is killed after the 10 s grace. Only then is
  // the pause lifted: the run is left half-done, for the rerun to resume.
  const auto stop_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);  // hang guard only
  while (!has(read_file(held0 + "/study-run.log"), "stopped: experiment 'k-held-s0'") &&
         std::chrono::steady_clock::now() < stop_deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(has(read_file(held0 + "/study-run.log"), "stopped: experiment 'k-held-s0'"))
      << read_file(held0 + "/study-run.log");

  const std::string marker = read_file(fast0 + "/study-finished.json");
  const std::string fast_log = read_file(fast0 + "/study-run.log");
  double held_created = 0;
  {
    auto store = pbt::open_existing_store("sqlite:" + held0 + "/store.db");
    held_created = store->experiment("k-held-s0")->created;
    int done = 0;
    for (const auto& m : store->population("k-held-s0")) done += m.done;
    ASSERT_EQ(done, 0) << "held/0 must be half-done here";
  }
  fs::remove(pause);

  pid = spawn({PBT_BINARY, "study", dir + "/s.toml"}, dir + "/2.out", dir + "/2.err");
  const int code = wait_exit(pid);
  const std::string said = read_file(dir + "/2.out");
  ASSERT_EQ(code, 0) << said << read_file(dir + "/2.err");
  EXPECT_TRUE(has(said, "(1 finished before)")) << said;
  EXPECT_FALSE(has(said, "'fast' seed 0")) << said;  // neither started nor resumed
  EXPECT_TRUE(has(said, "resuming 'held' seed 0")) << said;
  EXPECT_TRUE(has(said, "starting 'fast' seed 1")) << said;
  // The finished run as it was: its marker, and no second `pbt run` in its log.
  EXPECT_EQ(read_file(fast0 + "/study-finished.json"), marker);
  EXPECT_EQ(read_file(fast0 + "/study-run.log"), fast_log);
  // The half-done run resumed in its own store (not made anew), each step published once.
  {
    auto store = pbt::open_existing_store("sqlite:" + held0 + "/store.db");
    EXPECT_EQ(store->experiment("k-held-s0")->created, held_created);
    expect_complete_and_exactly_once(*store, "k-held-s0", 2, 12);
  }
  const std::string md = read_file(out + "/study.md");
  EXPECT_TRUE(has(md, "| fast (baseline) | 2 | ")) << md;
  EXPECT_TRUE(has(md, "| held | 2 | ")) << md;
  for (const char* run : {"fast/seed-0", "fast/seed-1", "held/seed-0", "held/seed-1"})
    EXPECT_TRUE(fs::exists(out + "/runs/" + run + "/study-finished.json")) << run;
}

TEST(StudyCommand, ABadStudyFileExits2NamingTheVariantAndTheKey) {
  const std::string dir = temp_dir("study-bad");
  std::ofstream(dir + "/bad.toml") << "base = \"" << source("examples/toy.toml")
                                   << "\"\nseeds = 2\n[variants.a]\n[variants.typo]\nexploit.stratgy = \"none\"\n";
  Result r = run_pbt({"study", dir + "/bad.toml"}, dir);
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  EXPECT_TRUE(has(r.err, dir + "/bad.toml [variants.typo]")) << r.err;
  EXPECT_TRUE(has(r.err, "exploit.stratgy")) << r.err;
  EXPECT_FALSE(fs::exists(dir + "/bad.study/runs")) << "nothing may run";
  r = run_pbt({"study", dir + "/bad.toml", "--check"}, dir);
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  EXPECT_TRUE(has(r.err, "exploit.stratgy")) << r.err;
  r = run_pbt({"study", dir + "/missing.toml"}, dir);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(has(r.err, "missing.toml")) << r.err;
}

TEST(StudyCommand, ASecondStudyOnTheSameDirectoryIsRefused) {
  const std::string dir = temp_dir("study-lock");
  const std::string out = dir + "/out";
  fs::create_directories(out);
  // Held as a running study holds it.
  const int fd = open((out + "/study.lock").c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(flock(fd, LOCK_EX | LOCK_NB), 0);
  Result r = run_pbt({"study", source("examples/studies/toy.toml"), "--dir", out}, dir);
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_TRUE(has(r.err, "another `pbt study` is running on " + out)) << r.err;
  EXPECT_FALSE(fs::exists(out + "/runs")) << "nothing may run";
  close(fd);
}
