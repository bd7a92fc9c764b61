// End-to-end: `pbt run` with PB2's explore (examples/toy_pb2.toml) on the toy problem.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "process_util.hpp"

using namespace e2e;
using nlohmann::json;

namespace {

const std::string kPb2Config = std::string(PBT_SOURCE_DIR) + "/examples/toy_pb2.toml";

std::vector<json> event_lines(const std::string& text) {
  std::vector<json> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) {
      json j = json::parse(line);
      j.erase("time");
      j.erase("worker");
      out.push_back(j);
    }
  return out;
}

}  // namespace

TEST(Pb2E2E, ToyRunExploresWithPb2AndOneWorkerReplaysTheSameDecisions) {
  std::string dir = temp_dir("pb2");
  std::vector<std::vector<json>> logs;
  for (const char* run : {"a", "b"}) {
    const std::string run_dir = dir + "/" + run;
    auto r = run_pbt({"run", kPb2Config, "--run", run_dir, "--workers", "1"}, dir);
    ASSERT_EQ(r.code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("finished: experiment 'toy_pb2', 4/4 members reached the budget"), std::string::npos) << r.out;
    auto events = run_pbt({"events", "--run", run_dir, "--json"}, dir);
    ASSERT_EQ(events.code, 0) << events.err;
    logs.push_back(event_lines(events.out));
  }
  const std::vector<json>& evs = logs[0];
  ASSERT_GE(evs.size(), 3u);
  std::set<std::string> chosen;
  int changed = 0;
  for (const auto& e : evs) {
    // A copy of θ and h, then PB2's h, inside the box. (A member may choose the h it had:
    // the other members' h are pending points, so UCB is lowest near them.)
    EXPECT_EQ(e["kind"], "exploit") << e;
    EXPECT_EQ(e["copied"], "all") << e;
    for (const char* k : {"h0", "h1"}) {
      const double v = e["new_h"][k].get<double>();
      EXPECT_GE(v, 0.0) << e;
      EXPECT_LE(v, 1.0) << e;
    }
    chosen.insert(e["new_h"].dump());
    changed += e["new_h"] != e["old_h"];
  }
  EXPECT_GE(chosen.size(), 3u) << "PB2 chose the same h again and again";
  EXPECT_GE(changed, 1);
  // One worker with a fixed seed: the same history, so PB2 takes the same decisions.
  EXPECT_EQ(logs[0], logs[1]);
}

TEST(Pb2E2E, ACategoricalHyperparameterIsRefusedBeforeAnythingRuns) {
  std::string dir = temp_dir("pb2cat");
  std::string path = dir + "/cat.toml";
  std::ofstream(path) << read_file(kPb2Config) << "\n[space.act]\ntype = \"categorical\"\nchoices = [\"a\", \"b\"]\n";
  auto r = run_pbt({"run", path, "--run", dir + "/run"}, dir);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find(path + ": explore.strategy: pb2 models numeric hyperparameters only, and 'act' is categorical"),
            std::string::npos)
      << r.err;
}
