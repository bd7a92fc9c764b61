// End-to-end: `pbt run` of examples/nqm.toml with FIRE's exploit (docs/fire.md): members 0-7
// are the greedy sub-population, 8-15 its parent, and the events show copies from the parent
// into the greedy one, never the other way.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "pbt/store.hpp"
#include "process_util.hpp"

using namespace e2e;
using nlohmann::json;

TEST(FireE2E, NqmRunFinishesAndCopiesFlowFromTheParentIntoTheGreedySubpopulation) {
  const std::string dir = temp_dir("fire");
  std::string text = read_file(std::string(PBT_SOURCE_DIR) + "/examples/nqm.toml");
  const std::string find = "strategy = \"truncation\"";
  const auto pos = text.find(find);
  ASSERT_NE(pos, std::string::npos);
  text.replace(pos, find.size(), "strategy = \"fire\"\nsubpopulations = 2");
  const std::string config = dir + "/nqm_fire.toml";
  std::ofstream(config) << text;
  const std::string run = dir + "/run";
  Result r = run_pbt({"run", config, "--run", run, "--workers", "1", "--quiet"}, dir);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  {
    auto store = pbt::open_store("sqlite:" + run + "/store.db");
    auto pop = store->population("nqm");
    ASSERT_EQ(pop.size(), 16u);
    for (const auto& m : pop) EXPECT_TRUE(m.done) << "member " << m.id;
  }
  Result ev = run_pbt({"events", "--run", run, "--json"}, dir);
  ASSERT_EQ(ev.code, 0) << ev.err;
  int across = 0, greedy = 0, parent = 0;
  std::istringstream in(ev.out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const json e = json::parse(line);
    if (e["kind"] != "exploit") continue;
    const int member = e["member"].get<int>(), donor = e["donor"].get<int>();
    const bool member_greedy = member < 8, donor_greedy = donor < 8;
    EXPECT_FALSE(!member_greedy && donor_greedy) << "a parent member copied the greedy sub-population: " << line;
    if (member_greedy && !donor_greedy) across++;
    if (member_greedy && donor_greedy) greedy++;
    if (!member_greedy && !donor_greedy) parent++;
  }
  EXPECT_GE(across, 1) << "no copy from the parent sub-population into the greedy one";
  EXPECT_GE(greedy, 1) << "no truncation within the greedy sub-population";
  EXPECT_GE(parent, 1) << "no selection within the parent sub-population";
  // What the run found is summarised in the log for the record.
  std::cout << "copies: " << across << " parent -> greedy, " << greedy << " within greedy, " << parent
            << " within parent\n";
}
