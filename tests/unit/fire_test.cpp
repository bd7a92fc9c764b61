// FIRE PBT's exploit (docs/fire.md): improvement rates of curves, sub-populations, and who
// copies whom.
#include <gtest/gtest.h>

#include <map>
#include <set>

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

// Evaluators (docs/fire.md): the last `evaluators` ids. Population 8 with 2: members 0-2 are
// the greedy sub-population, 3-5 its parent, 6 and 7 evaluators. However well an evaluator
// scores, nobody copies it and it takes no place in any ranking.
TEST(Fire, EvaluatorsAreNeverDonorsNorRanked) {
  auto e = make_exploit("fire", json{{"evaluators", 2}, {"fraction", 0.25}}, "exploit");
  const std::vector<Candidate> pop{{0, 0.5, {}, 20}, {1, 0.4, {}, 20}, {2, 0.1, {}, 20}, {3, 1.0, {}, 20},
                                   {4, 2.0, {}, 20}, {5, 3.0, {}, 20}, {6, 9.0, {}, 20}, {7, 9.5, {}, 20}};
  const std::vector<Hyperparams> hs(8, lr(0.1));
  const std::vector<TrainedInterval> none;
  const ExploitContext ctx{8, &hs, &none};
  for (int trial = 0; trial < 20; ++trial) {
    Rng rng(trial);
    // The greedy block's worst takes the parent block's best (5), not an evaluator.
    EXPECT_EQ(e->choose_in(pop[2], pop, rng, ctx), std::optional<int>(5));
    // Within the parent block (3 members: one replaced) 3 copies 5; were the evaluators
    // ranked there, they would be its top and 3's donor.
    EXPECT_EQ(e->choose_in(pop[3], pop, rng, ctx), std::optional<int>(5));
    EXPECT_EQ(e->choose_in(pop[4], pop, rng, ctx), std::nullopt);
    for (const auto& c : pop) {
      const std::optional<int> d = e->choose_in(c, pop, rng, ctx);
      if (c.id < 6 && d) {
        EXPECT_LT(*d, 6) << "member " << c.id << " copied evaluator " << *d;
      }
      // An evaluator copies a parent member: never the greedy block, never an evaluator.
      if (c.id >= 6) {
        EXPECT_TRUE(d && *d >= 3 && *d <= 5) << "evaluator " << c.id;
      }
    }
  }
  // Evaluators keep the h they copy; everyone else explores.
  for (int id = 0; id < 8; ++id) EXPECT_EQ(e->explores(id, 8), id < 6) << id;
  auto plain = make_exploit("fire", json::object(), "exploit");
  for (int id = 0; id < 8; ++id) EXPECT_TRUE(plain->explores(id, 8));
  EXPECT_EQ(e->min_population(), 6);
}

// Where a member's current lineage begins, and which evaluations measured it: member 3 trained
// under lr 0.01 from step 0 (the history's edge) to 60; evaluator 4 copied it at step 40.
TEST(Fire, AnEvaluationMeasuresTheLineageItCopied) {
  std::vector<TrainedInterval> h = intervals(3, lr(0.01), {{0, -6}, {20, -5.8}, {40, -5.4}, {60, -4}});
  std::vector<TrainedInterval> ev = intervals(4, lr(0.01), {{40, -5.4}, {60, -4.4}, {80, -3.4}});
  ev[0].donor = 3;
  ev[0].donor_step = 40;
  for (const auto& iv : ev) h.push_back(iv);
  fire::LineageStart s = fire::lineage_start(3, 60, -4, lr(0.01), h);
  EXPECT_EQ(s.step, 0);
  EXPECT_FALSE(s.changed);
  const std::vector<fire::Evaluation> evals = fire::evaluations(h, 4, 8);
  ASSERT_EQ(evals.size(), 1u);
  EXPECT_EQ(evals[0].evaluator, 4);
  EXPECT_EQ(evals[0].donor, 3);
  EXPECT_EQ(evals[0].donor_step, 40);
  EXPECT_EQ(evals[0].intervals(), 2u);
  EXPECT_DOUBLE_EQ(evals[0].curve.front().score, -5.4);  // from the donor's score at the copy
  EXPECT_DOUBLE_EQ(evals[0].curve.back().score, -3.4);
  EXPECT_EQ(fire::evaluations(h, 4, 1)[0].intervals(), 1u);
  EXPECT_TRUE(fire::measures(evals[0], 3, s, lr(0.01)));
  EXPECT_FALSE(fire::measures(evals[0], 2, s, lr(0.01)));
  EXPECT_FALSE(fire::measures(evals[0], 3, s, lr(0.02)));  // member 3 holds another h now
  // Member 3 copied at step 40: its lineage begins there, and a copy of it at 40 is of the
  // model it had before (the checkpoint published at 40, before its decision).
  h[2].donor = 0;
  h[2].from_score = -3;
  s = fire::lineage_start(3, 60, -4, lr(0.01), h);
  EXPECT_EQ(s.step, 40);
  EXPECT_TRUE(s.changed);
  EXPECT_FALSE(fire::measures(evals[0], 3, s, lr(0.01)));
  fire::Evaluation later = evals[0];
  later.donor_step = 60;
  EXPECT_TRUE(fire::measures(later, 3, s, lr(0.01)));
  // A change of h at 20 begins a lineage too; holding something its intervals do not show
  // (a synchronous generation's copy) begins one at its step.
  h = intervals(3, lr(0.01), {{0, -6}, {20, -5.8}});
  for (const auto& iv : intervals(3, lr(0.02), {{20, -5.8}, {40, -5.4}})) h.push_back(iv);
  s = fire::lineage_start(3, 40, -5.4, lr(0.02), h);
  EXPECT_EQ(s.step, 20);
  EXPECT_TRUE(s.changed);
  s = fire::lineage_start(3, 40, -1.0, lr(0.02), h);
  EXPECT_EQ(s.step, 40);
  EXPECT_TRUE(s.changed);
}

// Members 0, 1 greedy; 2, 3 their parent; 4, 5 evaluators. Evaluator 4 copied member 3 at step
// 40 and has trained it 2 intervals; evaluator 5 has evaluated nothing yet.
TEST(Fire, AnEvaluatorCopiesTheLineageEvaluatedLongestAgoAndGoesOnForEvaluateIntervals) {
  std::vector<TrainedInterval> h = intervals(2, lr(0.5), {{0, -10}, {20, -7}, {40, -6}, {60, -5}});
  for (const auto& iv : intervals(3, lr(0.01), {{0, -6}, {20, -5.8}, {40, -5.4}, {60, -4}})) h.push_back(iv);
  for (const auto& iv : intervals(5, lr(0.3), {{0, -9}, {20, -8}, {40, -7}, {60, -6}})) h.push_back(iv);
  std::vector<TrainedInterval> ev = intervals(4, lr(0.01), {{40, -5.4}, {60, -4.4}, {80, -3.4}});
  ev[0].donor = 3;
  ev[0].donor_step = 40;
  for (const auto& iv : ev) h.push_back(iv);
  const std::vector<Candidate> pop{{0, -1, {}, 60}, {1, -2, {}, 60},   {2, -5, {}, 60},
                                   {3, -4, {}, 60}, {4, -3.4, {}, 80}, {5, -6, {}, 60}};
  const std::vector<Hyperparams> hs{lr(0.1), lr(0.1), lr(0.5), lr(0.01), lr(0.01), lr(0.3)};
  const ExploitContext ctx{6, &hs, &h};
  auto e4 = make_exploit("fire", json{{"evaluators", 2}, {"evaluate_intervals", 4}}, "exploit");
  auto e2 = make_exploit("fire", json{{"evaluators", 2}, {"evaluate_intervals", 2}}, "exploit");
  for (int trial = 0; trial < 20; ++trial) {
    Rng rng(trial);
    // Member 2's lineage was never evaluated, member 3's was: evaluator 5 takes 2.
    EXPECT_EQ(e4->choose_in(pop[5], pop, rng, ctx), std::optional<int>(2));
    // Evaluator 4 has trained its copy 2 intervals: with evaluate_intervals = 4 it goes on,
    // with 2 it is done, and takes the lineage not evaluated (2).
    EXPECT_EQ(e4->choose_in(pop[4], pop, rng, ctx), std::nullopt);
    EXPECT_EQ(e2->choose_in(pop[4], pop, rng, ctx), std::optional<int>(2));
  }
  // Member 3 has copied since (at 40): the lineage evaluator 4 measures is gone, so it stops
  // and draws from the two lineages that were never evaluated.
  std::vector<TrainedInterval> copied = h;
  for (auto& iv : copied)
    if (iv.member == 3 && iv.from_step == 40) iv.donor = 0;
  const ExploitContext after{6, &hs, &copied};
  std::set<int> drawn;
  for (int trial = 0; trial < 40; ++trial) {
    Rng rng(trial);
    const std::optional<int> d = e4->choose_in(pop[4], pop, rng, after);
    ASSERT_TRUE(d);
    drawn.insert(*d);
  }
  EXPECT_EQ(drawn, (std::set<int>{2, 3}));
}

// The same parents as InAParentSubpopulationTheFasterImproverIsKeptAndCopied: on their own
// curves member 2 improves faster and member 3 is replaced. Evaluators 4 (of member 3, copied
// at 40: -5.4, -4.4, -3.4) and 5 (of member 2, copied at 40: -6, -5.6, -5.2) say otherwise:
// over their common range -5.4 to -5.2, 4's curve takes 4 steps (40 to 44), 5's 10 (70 to
// 80). Ranked on them, member 2 is the one replaced, and member 3 its donor.
TEST(Fire, AParentMemberWithAnEvaluatorCurveIsRankedOnIt) {
  std::vector<TrainedInterval> h = intervals(2, lr(0.5), {{0, -10}, {20, -7}, {40, -6}, {60, -5}});
  for (const auto& iv : intervals(3, lr(0.01), {{0, -6}, {20, -5.8}, {40, -5.4}, {60, -4}})) h.push_back(iv);
  std::vector<TrainedInterval> ev4 = intervals(4, lr(0.01), {{40, -5.4}, {60, -4.4}, {80, -3.4}});
  ev4[0].donor = 3;
  ev4[0].donor_step = 40;
  std::vector<TrainedInterval> ev5 = intervals(5, lr(0.5), {{40, -6}, {60, -5.6}, {80, -5.2}});
  ev5[0].donor = 2;
  ev5[0].donor_step = 40;
  const std::vector<Candidate> pop{{0, -1, {}, 60}, {1, -2, {}, 60},   {2, -5, {}, 60},
                                   {3, -4, {}, 60}, {4, -3.4, {}, 80}, {5, -5.2, {}, 80}};
  const std::vector<Hyperparams> hs{lr(0.1), lr(0.1), lr(0.5), lr(0.01), lr(0.01), lr(0.5)};
  auto e = make_exploit("fire", json{{"fraction", 0.5}, {"evaluators", 2}}, "exploit");
  for (const auto& iv : ev4) h.push_back(iv);
  for (const auto& iv : ev5) h.push_back(iv);
  const ExploitContext evaluated{6, &hs, &h};
  std::vector<TrainedInterval> own_only(h.begin(), h.begin() + 6);
  const ExploitContext without{6, &hs, &own_only};
  for (int trial = 0; trial < 20; ++trial) {
    Rng rng(trial);
    EXPECT_EQ(e->choose_in(pop[2], pop, rng, without), std::nullopt);
    EXPECT_EQ(e->choose_in(pop[3], pop, rng, without), std::optional<int>(2));
    EXPECT_EQ(e->choose_in(pop[2], pop, rng, evaluated), std::optional<int>(3)) << "not ranked on the evaluations";
    EXPECT_EQ(e->choose_in(pop[3], pop, rng, evaluated), std::nullopt);
  }
  // An evaluation shorter than min_intervals is no evidence: the own curves decide again.
  auto strict = make_exploit("fire", json{{"fraction", 0.5}, {"evaluators", 2}, {"min_intervals", 3}}, "exploit");
  Rng rng(1);
  EXPECT_EQ(strict->choose_in(pop[3], pop, rng, evaluated), std::optional<int>(2));
}

TEST(Fire, BadEvaluatorOptionsAreRefusedWithTheirValues) {
  EXPECT_NE(error_of({{"evaluators", -1}}).find("exp.toml: exploit.evaluators: must be between 0 and"),
            std::string::npos)
      << error_of({{"evaluators", -1}});
  EXPECT_NE(error_of({{"evaluators", 2}, {"subpopulations", 1}})
                .find("exp.toml: exploit.evaluators: evaluators measure the parent sub-populations: 2 evaluators "
                      "need subpopulations >= 2, got 1"),
            std::string::npos)
      << error_of({{"evaluators", 2}, {"subpopulations", 1}});
  EXPECT_NE(error_of({{"evaluators", 2}, {"evaluate_intervals", 0}}).find("exp.toml: exploit.evaluate_intervals"),
            std::string::npos);
  const std::string text =
      test::ToyConfig("t").population(6).set("exploit.strategy", "\"fire\"").set("exploit.evaluators", "3");
  try {
    parse_config(text, "exp.toml");
    ADD_FAILURE() << "a population of 6 with 3 evaluators and 2 sub-populations was accepted";
  } catch (const ConfigError& err) {
    EXPECT_NE(std::string(err.what())
                  .find("exp.toml: exploit.evaluators: 3 evaluators leave 3 of the population's 6 members for 2 "
                        "sub-populations, which need at least 4 (population >= 7)"),
              std::string::npos)
        << err.what();
  }
  EXPECT_NO_THROW(parse_config(
      test::ToyConfig("t").population(7).set("exploit.strategy", "\"fire\"").set("exploit.evaluators", "3"),
      "exp.toml"));
}

// Through the worker, asynchronous and synchronous, on the toy with 10 members: 0-3 greedy,
// 4-7 their parent, 8 and 9 evaluators. The run finishes; nobody copies an evaluator; an
// evaluator copies only parent members, never explores, and trains under its donor's h as the
// donor held it; one worker with a fixed seed replays the same decisions.
TEST(Fire, EvaluatorsThroughTheWorkerKeepTheirDonorsHAndReplay) {
  for (const char* mode : {"async", "sync"}) {
    std::vector<std::vector<std::string>> runs;
    for (int run = 0; run < 2; ++run) {
      const std::string text = test::ToyConfig("fire")
                                   .population(10)
                                   .steps(80)
                                   .seed(7)
                                   .set("ready.mode", test::ToyConfig::quoted(mode))
                                   .set("exploit.strategy", "\"fire\"")
                                   .set("exploit.fraction", "0.25")
                                   .set("exploit.evaluators", "2")
                                   .set("exploit.evaluate_intervals", "2");
      ExperimentConfig c = parse_config(text, "exp.toml");
      auto store = open_store("memory:");
      create_or_join(*store, c);
      WorkerOptions opt;
      opt.id = "w0";
      run_worker(*store, c.name, opt);
      const std::vector<MemberState> pop = store->population(c.name);
      for (const auto& m : pop) EXPECT_TRUE(m.done) << mode << " member " << m.id;
      const std::vector<Event> events = store->events(c.name);
      // The h a member held at `step`, before any decision there: its first h, then each
      // decision's before that step.
      const std::vector<Hyperparams> initial = initial_hyperparams(c);
      auto held = [&](int member, std::int64_t step) {
        Hyperparams h = initial[member];
        for (const auto& e : events)
          if (e.member == member && e.step < step && (e.kind == EventKind::exploit || e.kind == EventKind::explore))
            h = e.new_h;
        return h;
      };
      // The h each member trained under over the interval that ended at each step.
      std::map<std::pair<int, std::int64_t>, Hyperparams> h_at;
      for (const auto& iv : trained_intervals(c, events, store->scores_since(c.name, 0), pop))
        h_at[{iv.member, iv.to_step}] = iv.h;
      std::vector<std::string> decisions;
      int evaluator_copies = 0;
      for (const auto& e : events) {
        if (e.member >= 8) {
          EXPECT_EQ(e.kind, EventKind::exploit) << mode << ": evaluator " << e.member << " explored";
        }
        if (e.kind != EventKind::exploit) continue;
        EXPECT_LT(e.donor, 8) << mode << ": member " << e.member << " copied evaluator " << e.donor;
        if (e.member >= 8) {
          evaluator_copies++;
          EXPECT_GE(e.donor, 4) << mode << ": evaluator " << e.member << " copied greedy member " << e.donor;
          EXPECT_EQ(e.new_h, held(e.donor, e.donor_step)) << mode << ": evaluator " << e.member << " at " << e.step;
          // It trains under that h until its next copy.
          const auto next = h_at.find({e.member, e.step + 4});
          if (next != h_at.end()) {
            EXPECT_EQ(next->second, e.new_h) << mode << ": evaluator " << e.member;
          }
        }
        decisions.push_back(std::to_string(e.member) + "<-" + std::to_string(e.donor) + "@" + std::to_string(e.step) +
                            " " + to_string(e.new_h));
      }
      // 19 decisions each, a copy at least every third (evaluate_intervals = 2).
      EXPECT_GE(evaluator_copies, 2 * 6) << mode;
      runs.push_back(decisions);
    }
    EXPECT_EQ(runs[0], runs[1]) << mode;
  }
}
