// PB2: the time-varying GP, the UCB choice of h, and the history it is fit to.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "pbt/config.hpp"
#include "pbt/error.hpp"
#include "pbt/lineage.hpp"
#include "pbt/strategy.hpp"
#include "common/toy_config.hpp"
#include "core/pb2.hpp"

using namespace pbt;
using nlohmann::json;

namespace {

const double kPi = std::acos(-1.0);

// A synthetic history: `members` members over `intervals` intervals of 4 steps; member m
// trains under h from `h_of(m, k)` in its k-th interval and improves by `gain(h)` per step.
template <class HOf, class Gain>
std::vector<TrainedInterval> history(int members, int intervals, HOf h_of, Gain gain) {
  std::vector<TrainedInterval> out;
  std::vector<double> score(members, 0.0);
  for (int k = 1; k <= intervals; ++k)
    for (int m = 0; m < members; ++m) {
      TrainedInterval t;
      t.member = m;
      t.from_step = 4 * k;
      t.to_step = 4 * k + 4;
      t.h = h_of(m, k);
      t.from_score = score[m];
      score[m] += 4 * gain(t.h);
      t.to_score = score[m];
      out.push_back(t);
    }
  return out;
}

SearchSpace space_of(std::vector<Param> ps) { return SearchSpace(std::move(ps)); }

Param float_param(const std::string& name, double low, double high, bool log = false) {
  Param p;
  p.name = name;
  p.low = low;
  p.high = high;
  p.log = log;
  return p;
}

double get(const Hyperparams& h, const std::string& k) { return as_double(h.at(k)); }

Hyperparams explore_with(const Explore& e, const Hyperparams& h, const SearchSpace& s,
                         const std::vector<TrainedInterval>& hist, int member, std::int64_t step,
                         std::uint64_t seed = 0, const std::vector<Candidate>* pop = nullptr,
                         const std::vector<Hyperparams>* pop_h = nullptr) {
  Rng rng = make_rng(seed, member, step, kExplore);
  ExploreContext ctx{member, step, pop, pop_h, &hist};
  return e.explore(h, s, rng, ctx);
}

}  // namespace

TEST(Pb2Gp, RecoversAKnownOneDimensionalFunction) {
  std::vector<pb2::Point> xs;
  std::vector<double> ys;
  for (int i = 0; i < 30; ++i) {
    const double h = i / 29.0;
    xs.push_back({0.0, h});
    ys.push_back(3 + 2 * std::sin(2 * kPi * h));
  }
  pb2::TimeVaryingGp gp(xs, ys);
  for (double h = 0.05; h < 1; h += 0.1) {
    const double truth = 3 + 2 * std::sin(2 * kPi * h);
    EXPECT_NEAR(gp.mean({0.0, h}), truth, 0.2) << "h = " << h;  // amplitude 2: within 5%
    EXPECT_LT(gp.sd({0.0, h}), 0.5) << "h = " << h;
  }
  // Far from the data in time, the GP knows less.
  EXPECT_GT(gp.sd({50.0, 0.5}), 2 * gp.sd({0.0, 0.5}));
}

TEST(Pb2Gp, FollowsTheRecentDataWhenTheFunctionDrifts) {
  // At t = 0..4 the improvement is high at h = 0.2; at t = 10..14 it is high at h = 0.8.
  std::vector<pb2::Point> xs;
  std::vector<double> ys;
  for (int t : {0, 1, 2, 3, 4, 10, 11, 12, 13, 14})
    for (int i = 0; i <= 10; ++i) {
      const double h = i / 10.0, peak = t < 10 ? 0.2 : 0.8;
      xs.push_back({static_cast<double>(t), h});
      ys.push_back(-(h - peak) * (h - peak));
    }
  pb2::TimeVaryingGp gp(xs, ys, 0.2);
  EXPECT_DOUBLE_EQ(gp.params().eps, 0.2);
  EXPECT_GT(gp.mean({15.0, 0.8}), gp.mean({15.0, 0.2}) + 0.1);
  EXPECT_GT(gp.mean({2.0, 0.2}), gp.mean({2.0, 0.8}) + 0.1);
}

TEST(Pb2Gp, PendingPointsLowerTheVarianceButNotTheMean) {
  std::vector<pb2::Point> xs;
  std::vector<double> ys;
  for (int i = 0; i <= 10; ++i) {
    xs.push_back({0.0, i / 20.0});  // data on [0, 0.5] only
    ys.push_back(i / 20.0);
  }
  pb2::TimeVaryingGp gp(xs, ys);
  const pb2::Point far{1.0, 0.9};
  const double mean = gp.mean(far), sd = gp.sd(far);
  gp.add_pending({{1.0, 0.9}, {1.0, 0.91}});
  EXPECT_NEAR(gp.mean(far), mean, 1e-9);
  EXPECT_LT(gp.sd(far), 0.8 * sd);
}

TEST(Pb2, UcbChoosesTheRegionOfHigherImprovement) {
  auto e = make_explore("pb2", json::object(), "explore");
  const SearchSpace s = space_of({float_param("h0", 0, 1), float_param("h1", 0, 1)});
  // 8 members spread over h0 (h1 drawn anyhow); improvement peaks at h0 = 0.8.
  auto hist = history(
      8, 10,
      [](int m, int k) {
        return Hyperparams{{"h0", (m + 0.5) / 8.0}, {"h1", std::fmod(0.37 * (m + 3 * k), 1.0)}};
      },
      [](const Hyperparams& h) { return 1 - 4 * std::pow(get(h, "h0") - 0.8, 2); });
  for (std::uint64_t seed = 0; seed < 5; ++seed) {
    Hyperparams out = explore_with(*e, {{"h0", 0.1}, {"h1", 0.5}}, s, hist, 3, 44, seed);
    EXPECT_GT(get(out, "h0"), 0.6) << "seed " << seed << ": " << to_string(out);
    EXPECT_LE(get(out, "h0"), 1.0);
  }
}

TEST(Pb2, RespectsBoundsLogScaleAndIntegers) {
  auto e = make_explore("pb2", json::object(), "explore");
  Param layers;
  layers.name = "layers";
  layers.kind = Param::Kind::Int;
  layers.low = 1;
  layers.high = 8;
  const SearchSpace s = space_of({float_param("lr", 1e-5, 1e-1, true), layers, float_param("mom", 0, 0.99)});
  // Improvement peaks at lr = 1e-3 (the middle of the box in log space) and 6 layers.
  auto hist = history(
      16, 8,
      [](int m, int k) {
        const double u = std::fmod(0.61803 * (m + 16 * k), 1.0);
        return Hyperparams{{"lr", std::pow(10.0, -5 + 4 * u)},
                           {"layers", std::int64_t{1 + (m + k) % 8}},
                           {"mom", std::fmod(0.3 * m + 0.1 * k, 0.99)}};
      },
      [](const Hyperparams& h) {
        const double l = std::log10(get(h, "lr")) + 3;
        return 1 - l * l / 4 - std::pow((get(h, "layers") - 6) / 7, 2);
      });
  for (std::uint64_t seed = 0; seed < 4; ++seed) {
    Hyperparams out = explore_with(*e, hist.back().h, s, hist, 2, 36, seed);
    ASSERT_TRUE(std::holds_alternative<std::int64_t>(out.at("layers"))) << to_string(out);
    ASSERT_TRUE(std::holds_alternative<double>(out.at("lr"))) << to_string(out);
    EXPECT_NO_THROW(s.check(out, "explored h")) << to_string(out);
    EXPECT_LT(std::abs(std::log10(get(out, "lr")) + 3), 1.0) << "seed " << seed << ": " << to_string(out);
    EXPECT_GE(get(out, "layers"), 4) << "seed " << seed << ": " << to_string(out);
  }
}

TEST(Pb2, WithoutHistoryDrawsFromTheBox) {
  auto e = make_explore("pb2", json::object(), "explore");
  const SearchSpace s = space_of({float_param("lr", 1e-5, 1e-1, true)});
  const std::vector<TrainedInterval> none;
  std::set<double> seen;
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    Hyperparams out = explore_with(*e, {{"lr", 0.01}}, s, none, 0, 4, seed);
    EXPECT_NO_THROW(s.check(out, "explored h"));
    seen.insert(get(out, "lr"));
  }
  EXPECT_EQ(seen.size(), 20u);
}

TEST(Pb2, SameInputsAndSeedGiveTheSameH) {
  auto e = make_explore("pb2", {{"candidates", 64}}, "explore");
  const SearchSpace s = space_of({float_param("h0", 0, 1), float_param("h1", 0, 1)});
  auto hist = history(
      6, 12,
      [](int m, int k) {
        return Hyperparams{{"h0", (m + 0.5) / 6}, {"h1", std::fmod(0.3 * k, 1.0)}};
      },
      [](const Hyperparams& h) { return -std::pow(get(h, "h0") - 0.4, 2) - std::pow(get(h, "h1") - 0.6, 2); });
  std::vector<Candidate> pop;
  std::vector<Hyperparams> pop_h;
  for (int m = 0; m < 6; ++m) {
    pop.push_back({m, 1.0, {}, 52});
    pop_h.push_back(hist[hist.size() - 6 + m].h);
  }
  const Hyperparams a = explore_with(*e, pop_h[1], s, hist, 1, 52, 7, &pop, &pop_h);
  const Hyperparams b = explore_with(*e, pop_h[1], s, hist, 1, 52, 7, &pop, &pop_h);
  const Hyperparams c = explore_with(*e, pop_h[1], s, hist, 1, 52, 8, &pop, &pop_h);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);  // another seed draws other candidates
}

TEST(Pb2, CategoricalsAreRefusedNamingTheHyperparameter) {
  const std::string text = test::ToyConfig()
                               .set("explore.strategy", "\"pb2\"")
                               .append("[space.act]\ntype = \"categorical\"\nchoices = [\"relu\", \"tanh\"]\n")
                               .text();
  try {
    parse_config(text, "exp.toml");
    FAIL() << "a categorical was accepted";
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("exp.toml: explore.strategy"), std::string::npos) << what;
    EXPECT_NE(what.find("'act' is categorical"), std::string::npos) << what;
  }
  // Numeric spaces are fine, and the options are checked.
  EXPECT_NO_THROW(
      parse_config(test::ToyConfig().set("explore.strategy", "\"pb2\"").set("explore.beta", "2.0"), "exp.toml"));
  EXPECT_THROW(make_explore("pb2", {{"eps", 1.5}}, "x"), ConfigError);
  EXPECT_THROW(make_explore("pb2", {{"candidates", 0}}, "x"), ConfigError);
  EXPECT_THROW(make_explore("pb2", {{"kappa", 1}}, "x"), ConfigError);
  EXPECT_EQ(make_explore("pb2", json::object(), "x")->history_intervals(), 128u);
  EXPECT_EQ(make_explore("pb2", {{"max_points", 40}}, "x")->history_intervals(), 40u);
  EXPECT_EQ(make_explore("perturb", json::object(), "x")->history_intervals(), 0u);
}

TEST(Pb2History, IntervalsFromTheEventLogAndScores) {
  ExperimentConfig cfg = parse_config(test::ToyConfig().population(2).set("ready.eval_every", "1"), "exp.toml");
  std::vector<ScorePoint> scores;
  for (int m = 0; m < 2; ++m)
    for (int s = 1; s <= 12; ++s) scores.push_back({m, s, m * 10.0 + s});
  // Member 1 copied member 0's weights at step 4 (member 0 scored 4 there) and explored;
  // member 0 explored at step 8 without a copy.
  const Hyperparams start0{{"h0", 0.5}, {"h1", 0.5}}, start1{{"h0", 0.1}, {"h1", 0.2}};
  Event e;
  e.member = 1;
  e.step = 4;
  e.kind = EventKind::exploit;
  e.donor = 0;
  e.copied = CopyMode::all;
  e.donor_score = 4;
  e.donor_step = 4;
  e.old_h = start1;
  e.new_h = {{"h0", 0.25}, {"h1", 0.75}};
  Event f;
  f.member = 0;
  f.step = 8;
  f.kind = EventKind::explore;
  f.old_h = start0;
  f.new_h = {{"h0", 0.9}, {"h1", 0.9}};
  std::vector<MemberState> pop(2);
  pop[0].id = 0;
  pop[0].step = 12;
  pop[0].h = f.new_h;
  pop[1].id = 1;
  pop[1].step = 12;
  pop[1].h = e.new_h;
  auto t = trained_intervals(cfg, {e, f}, scores, pop);
  // Interval ends at 4, 8, 12: two intervals each (the first one has no score before it).
  ASSERT_EQ(t.size(), 4u);
  EXPECT_EQ(t[0].member, 0);
  EXPECT_EQ(t[0].from_step, 4);
  EXPECT_EQ(t[0].to_step, 8);
  EXPECT_EQ(t[0].from_score, 4);
  EXPECT_EQ(t[0].to_score, 8);
  EXPECT_EQ(t[0].h, start0);  // the old h of its event at 8
  EXPECT_EQ(t[1].member, 1);
  EXPECT_EQ(t[1].from_score, 4);  // the donor's model it started from, not its own 14
  EXPECT_EQ(t[1].to_score, 18);
  EXPECT_EQ(t[1].h, e.new_h);
  EXPECT_EQ(t[1].donor, 0);  // and which model that was (FIRE's evaluators read it)
  EXPECT_EQ(t[1].donor_step, 4);
  EXPECT_EQ(t[0].donor, -1);
  EXPECT_EQ(t[3].donor, -1);  // member 1 went on from its own model at 8
  EXPECT_EQ(t[3].donor_step, -1);
  EXPECT_EQ(t[2].member, 0);
  EXPECT_EQ(t[2].from_step, 8);
  EXPECT_EQ(t[2].h, f.new_h);
  EXPECT_EQ(t[3].member, 1);
  EXPECT_EQ(t[3].from_step, 8);
  EXPECT_EQ(t[3].from_score, 18);
  EXPECT_EQ(t[3].h, e.new_h);

  // Only the part from step 8 on (what Store::*_since give): member 1's h now comes from the
  // population, member 0's from its event at 8.
  std::vector<ScorePoint> recent;
  for (const auto& p : scores)
    if (p.step >= 8) recent.push_back(p);
  auto r = trained_intervals(cfg, {f}, recent, pop);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].member, 0);
  EXPECT_EQ(r[0].h, f.new_h);
  EXPECT_EQ(r[1].member, 1);
  EXPECT_EQ(r[1].h, e.new_h);
  EXPECT_EQ(r[1].from_score, 18);
}

TEST(Pb2History, StartHoldsTheIntervalsAsked) {
  ExperimentConfig cfg = parse_config(test::ToyConfig().population(4).steps(1000), "exp.toml");  // interval 4
  std::vector<MemberState> pop(4);
  for (int m = 0; m < 4; ++m) {
    pop[m].id = m;
    pop[m].step = 800 - 4 * m;
  }
  const std::int64_t from = history_start(cfg, pop, 40);
  EXPECT_GT(from, 0);
  std::size_t held = 0;
  for (const auto& m : pop) held += static_cast<std::size_t>((m.step - from) / 4 - 1);
  EXPECT_GE(held, 40u);
  EXPECT_LE(held, 40u + 4 * 4);                   // not much more than asked
  EXPECT_EQ(history_start(cfg, pop, 100000), 0);  // more than there is: everything
}
