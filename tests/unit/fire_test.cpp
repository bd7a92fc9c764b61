// FIRE PBT's exploit (docs/fire.md): improvement rates of curves, sub-populations, and who
// copies whom.
#include <gtest/gtest.h>

#include "pbt/pbt.hpp"
#include "common/toy_config.hpp"
#include "core/fire.hpp"

using namespace pbt;
using nlohmann::json;

namespace {

// Intervals of `member` under `h` through the (step, score) points given, one per pair.
std::vector<TrainedInterval> intervals(int member, const Hyperparams& h, const fire::Curve& points) {
  std::vector<TrainedInterval> out;
  for (std::size_t i = 1; i < points.size(); ++i)
    out.push_back({member, points[i - 1].step, points[i].step, points[i - 1].score, points[i].score, h});
  return out;
}

Hyperparams lr(double v) { return {{"lr", v}}; }

std::string error_of(const json& options) {
  try {
    make_exploit("fire", options, "exp.toml: exploit");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

// Worked by hand. A: -10 -> -6 -> -4 -> -3 at steps 0, 20, 40, 60; B: -8 -> -7 -> -5 -> -4.5.
// Common range: from -8 (the higher start) to -4.5 (the lower best). A reaches -8 at step 10
// (halfway from -10 to -6) and -4.5 at 35 (3/4 of the way from -6 to -4): 25 steps, a rate of
// 3.5/25 = 0.14 per step. B starts at -8 and reaches -4.5 at 60: 60 steps, 0.058 per step.
TEST(Fire, ImprovementRatesOfTwoCurvesOverTheirCommonRange) {
  const fire::Curve a{{0, -10}, {20, -6}, {40, -4}, {60, -3}};
  const fire::Curve b{{0, -8}, {20, -7}, {40, -5}, {60, -4.5}};
  const auto r = fire::common_range(a, b);
  ASSERT_TRUE(r);
  EXPECT_DOUBLE_EQ(r->lo, -8);
  EXPECT_DOUBLE_EQ(r->hi, -4.5);
  EXPECT_DOUBLE_EQ(*fire::steps_between(a, r->lo, r->hi), 25);
  EXPECT_DOUBLE_EQ(*fire::steps_between(b, r->lo, r->hi), 60);
  EXPECT_EQ(fire::faster(a, b), std::optional<int>(-1));
  EXPECT_EQ(fire::faster(b, a), std::optional<int>(1));
  EXPECT_EQ(fire::faster(a, a), std::optional<int>(0));
  // A dip does not count: the running best is what a curve has reached.
  const fire::Curve dip{{0, -8}, {20, -5}, {40, -9}, {60, -4}};
  EXPECT_DOUBLE_EQ(*fire::steps_between(dip, -8, -4.5), 20 + 20 + 20 * (0.5 / 1.0));
  // No common range: one curve ends below where the other starts. Never reached: nothing.
  EXPECT_EQ(fire::faster(fire::Curve{{0, -10}, {20, -9}}, fire::Curve{{0, -8}, {20, -7}}), std::nullopt);
  EXPECT_EQ(fire::steps_between(b, -8, -4), std::nullopt);
}

TEST(Fire, SubpopulationsAreContiguousBlocksOfIds) {
  for (int id = 0; id < 16; ++id) EXPECT_EQ(fire::subpopulation(id, 16, 2), id < 8 ? 0 : 1) << id;
  // 10 members in 3: 4, 3, 3.
  const std::vector<int> want{0, 0, 0, 0, 1, 1, 1, 2, 2, 2};
  for (int id = 0; id < 10; ++id) EXPECT_EQ(fire::subpopulation(id, 10, 3), want[id]) << id;
  for (int id = 0; id < 5; ++id) EXPECT_EQ(fire::subpopulation(id, 5, 1), 0);
}

// A curve is the member's unbroken run under the h it holds now: a change of h or a copy
// (which starts from the donor's score) begins a new one.
TEST(Fire, ACurveStartsAtTheLastChangeOfHOrCopy) {
  std::vector<TrainedInterval> h = intervals(3, lr(0.1), {{0, -10}, {20, -8}, {40, -7}});
  for (const auto& iv : intervals(3, lr(0.2), {{40, -7}, {60, -6}, {80, -5}, {100, -4.5}})) h.push_back(iv);
  fire::Curve c = fire::curve_of(3, 100, -4.5, lr(0.2), h, 2, 8);
  ASSERT_EQ(c.size(), 4u);
  EXPECT_EQ(c.front().step, 40);
  EXPECT_EQ(c.back().step, 100);
  EXPECT_EQ(fire::curve_of(3, 100, -4.5, lr(0.2), h, 2, 2).size(), 3u);  // at most 2 intervals
  EXPECT_TRUE(fire::curve_of(3, 100, -4.5, lr(0.2), h, 4, 8).empty());   // too short
  // The member holds something else now (a generation's copy or new h): no curve yet.
  EXPECT_TRUE(fire::curve_of(3, 100, -3.0, lr(0.2), h, 2, 8).empty());
  EXPECT_TRUE(fire::curve_of(3, 100, -4.5, lr(0.3), h, 2, 8).empty());
  // A copy at step 80: the next interval starts from the donor's score, not its own.
  h.back().from_score = -2;
  h.back().to_score = -1.5;
  EXPECT_TRUE(fire::curve_of(3, 100, -1.5, lr(0.2), h, 2, 8).empty());
  EXPECT_EQ(fire::curve_of(3, 100, -1.5, lr(0.2), h, 1, 8).size(), 2u);
}

// Members 0, 1: the greedy sub-population; 2, 3 its parent. The greedy sub-population's worst
// copies the parent's best when that scores above every greedy member, and its own best else.
TEST(Fire, AGreedyMemberCopiesAParentMemberWithABetterScore) {
  auto e = make_exploit("fire", json::object(), "exploit");
  std::vector<Candidate> pop{{0, 1.0, {}, 20}, {1, 0.5, {}, 20}, {2, 2.0, {}, 20}, {3, 0.1, {}, 20}};
  const std::vector<Hyperparams> hs(4, lr(0.1));
  const std::vector<TrainedInterval> none;
  const ExploitContext ctx{4, &hs, &none};
  Rng rng(1);
  EXPECT_EQ(e->choose_in(pop[1], pop, rng, ctx), std::optional<int>(2));
  EXPECT_EQ(e->choose_in(pop[0], pop, rng, ctx), std::nullopt);  // the greedy best stays
  // The parent's best below the greedy best: ordinary truncation within the greedy ones.
  pop[2].score = 0.9;
  EXPECT_EQ(e->choose_in(pop[1], pop, rng, ctx), std::optional<int>(0));
  // A parent member never copies its child sub-population, however well that scores.
  pop[0].score = 5.0;
  EXPECT_EQ(e->choose_in(pop[3], pop, rng, ctx), std::optional<int>(2));  // its own sub-population's best
  // One whose score came with a copy is not copied across either.
  pop[2].score = 9.0;
  pop[2].copyable = false;
  EXPECT_EQ(e->choose_in(pop[1], pop, rng, ctx), std::optional<int>(0));
}

// In the parent sub-population (members 2, 3) selection is on the improvement rate. Member 2
// scores lower (-5 against -4) but improves faster: over the common range -6 to -5 it takes
// 20 steps (from 40 to 60), member 3 45.7 (from 0 to 45.7). So member 3 is the one replaced,
// and member 2 is its donor; on the score alone it would be the other way round.
TEST(Fire, InAParentSubpopulationTheFasterImproverIsKeptAndCopied) {
  auto e = make_exploit("fire", json{{"fraction", 0.5}}, "exploit");
  std::vector<TrainedInterval> history = intervals(2, lr(0.5), {{0, -10}, {20, -7}, {40, -6}, {60, -5}});
  for (const auto& iv : intervals(3, lr(0.01), {{0, -6}, {20, -5.8}, {40, -5.4}, {60, -4}})) history.push_back(iv);
  const std::vector<Candidate> pop{{0, -1, {}, 60}, {1, -2, {}, 60}, {2, -5, {}, 60}, {3, -4, {}, 60}};
  const std::vector<Hyperparams> hs{lr(0.1), lr(0.1), lr(0.5), lr(0.01)};
  const ExploitContext ctx{4, &hs, &history};
  for (int trial = 0; trial < 20; ++trial) {
    Rng rng(trial);
    EXPECT_EQ(e->choose_in(pop[2], pop, rng, ctx), std::nullopt) << "the faster improver was replaced";
    EXPECT_EQ(e->choose_in(pop[3], pop, rng, ctx), std::optional<int>(2));
  }
  // Without curves (no history, or too short ones) the parents rank by score.
  Rng rng(1);
  EXPECT_EQ(e->choose(pop[2], pop, rng), std::optional<int>(3));
  auto strict = make_exploit("fire", json{{"fraction", 0.5}, {"min_intervals", 4}}, "exploit");
  EXPECT_EQ(strict->choose_in(pop[2], pop, rng, ctx), std::optional<int>(3));
  EXPECT_EQ(strict->choose_in(pop[3], pop, rng, ctx), std::nullopt);
  // It reads the most recent curve_intervals + 1 intervals of every member.
  EXPECT_EQ(e->history_intervals(4), 4u * 9u);
}

TEST(Fire, BadOptionsAreRefusedWithTheirName) {
  EXPECT_NE(error_of({{"subpopulation", 2}}).find("exp.toml: exploit.subpopulation: unknown key"), std::string::npos)
      << error_of({{"subpopulation", 2}});
  EXPECT_NE(error_of({{"subpopulations", 0}}).find("exp.toml: exploit.subpopulations"), std::string::npos);
  EXPECT_NE(error_of({{"fraction", 0.7}}).find("exp.toml: exploit.fraction: must be in (0, 0.5]"), std::string::npos);
  EXPECT_NE(error_of({{"min_intervals", 0}}).find("exp.toml: exploit.min_intervals"), std::string::npos);
  EXPECT_NE(error_of({{"min_intervals", 4}, {"curve_intervals", 3}})
                .find("exp.toml: exploit.curve_intervals: must be at least min_intervals (4), got 3"),
            std::string::npos);
  EXPECT_EQ(error_of({{"subpopulations", 3}, {"fraction", 0.25}, {"min_intervals", 1}, {"curve_intervals", 4}}), "");
  // Every sub-population needs two members: 3 of them need a population of 6.
  const std::string text =
      test::ToyConfig("t").population(5).set("exploit.strategy", "\"fire\"").set("exploit.subpopulations", "3");
  try {
    parse_config(text, "exp.toml");
    ADD_FAILURE() << "a population of 5 in 3 sub-populations was accepted";
  } catch (const ConfigError& err) {
    EXPECT_NE(std::string(err.what()).find("exp.toml: population: exploit 'fire' needs at least 6 members, got 5"),
              std::string::npos)
        << err.what();
  }
  EXPECT_NO_THROW(parse_config(
      test::ToyConfig("t").population(6).set("exploit.strategy", "\"fire\"").set("exploit.subpopulations", "3"),
      "exp.toml"));
}

// Through the worker, asynchronous and synchronous, on the toy with 8 members (0-3 greedy, 4-7
// their parent): the run finishes, every copy is within a sub-population or from the parent
// into the greedy one, and one worker with a fixed seed replays the same decisions.
TEST(Fire, TheWorkerRunsItInBothModesAndReplaysTheSameDecisions) {
  for (const char* mode : {"async", "sync"}) {
    std::vector<std::vector<std::string>> runs;
    for (int run = 0; run < 2; ++run) {
      const std::string text = test::ToyConfig("fire")
                                   .population(8)
                                   .steps(40)
                                   .seed(5)
                                   .set("ready.mode", test::ToyConfig::quoted(mode))
                                   .set("exploit.strategy", "\"fire\"")
                                   .set("exploit.fraction", "0.25");
      ExperimentConfig c = parse_config(text, "exp.toml");
      auto store = open_store("memory:");
      create_or_join(*store, c);
      WorkerOptions opt;
      opt.id = "w0";
      run_worker(*store, c.name, opt);
      for (const auto& m : store->population(c.name)) EXPECT_TRUE(m.done) << mode << " member " << m.id;
      std::vector<std::string> decisions;
      int copies = 0;
      for (const auto& e : store->events(c.name)) {
        if (e.kind != EventKind::exploit) continue;
        copies++;
        EXPECT_LE(fire::subpopulation(e.member, 8, 2), fire::subpopulation(e.donor, 8, 2))
            << mode << ": member " << e.member << " copied " << e.donor << " of its child sub-population";
        decisions.push_back(std::to_string(e.member) + "<-" + std::to_string(e.donor) + "@" + std::to_string(e.step) +
                            " " + to_string(e.new_h));
      }
      EXPECT_GE(copies, 4) << mode;
      runs.push_back(decisions);
    }
    EXPECT_EQ(runs[0], runs[1]) << mode;
  }
}
