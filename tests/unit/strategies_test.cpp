#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "pbt/error.hpp"
#include "pbt/strategy.hpp"
#include "pbt/trainable.hpp"

using namespace pbt;
using nlohmann::json;

namespace {
std::vector<Candidate> population(const std::vector<double>& scores) {
  std::vector<Candidate> out;
  for (std::size_t i = 0; i < scores.size(); ++i) out.push_back({static_cast<int>(i), scores[i], {}, 0});
  return out;
}
}  // namespace

// A tie is no reason to copy: equal scores say nothing about which model is better.
TEST(Exploit, NoStrategyCopiesADonorThatOnlyTies) {
  auto pop = population({0.5, 0.5, 0.5, 0.5});
  for (const char* name : {"truncation", "tournament", "ttest"}) {
    auto e =
        make_exploit(name, name == std::string("truncation") ? json{{"fraction", 0.5}} : json::object(), "exploit");
    for (int trial = 0; trial < 50; ++trial) {
      Rng rng(trial);
      for (const auto& self : pop) EXPECT_EQ(e->choose(self, pop, rng), std::nullopt) << name << " member " << self.id;
    }
  }
  // One that scores higher, by however little, is copied.
  auto e = make_exploit("truncation", {{"fraction", 0.5}}, "exploit");
  auto close = population({0.5, std::nextafter(0.5, 1.0)});
  Rng rng(1);
  EXPECT_EQ(e->choose(close[0], close, rng), std::optional<int>(1));
}

// The paper's toy starts symmetric and its two members score the same at every step; its
// argmax copies by member id. `copy_ties` asks for that.
TEST(Exploit, TruncationCopiesTiesByIdWhenAsked) {
  auto e = make_exploit("truncation", {{"fraction", 0.5}, {"copy_ties", true}}, "exploit");
  auto pop = population({0.5, 0.5});
  Rng rng(1);
  EXPECT_EQ(e->choose(pop[1], pop, rng), std::optional<int>(0));  // member 1 ranks below member 0
  EXPECT_EQ(e->choose(pop[0], pop, rng), std::nullopt);
}

TEST(Exploit, TruncationBottomCopiesTopOnly) {
  auto e = make_exploit("truncation", json::object(), "exploit");  // fraction 0.2
  auto pop = population({9, 8, 7, 6, 5, 4, 3, 2, 1, 0});
  std::map<int, int> donors;
  for (int trial = 0; trial < 400; ++trial) {
    Rng rng(trial);
    for (int m = 0; m < 10; ++m) {
      auto d = e->choose(pop[m], pop, rng);
      if (m < 8) {
        EXPECT_FALSE(d) << "member " << m << " is not in the bottom 20%";
      } else {
        ASSERT_TRUE(d);
        donors[*d]++;
      }
    }
  }
  EXPECT_EQ(donors.size(), 2u);  // top 20% of 10 = members 0 and 1, both drawn
  EXPECT_GT(donors[0], 300);
  EXPECT_GT(donors[1], 300);
}

// A member whose score came with a copy still ranks, but no strategy copies it.
TEST(Exploit, AMemberThatMayNotBeCopiedRanksButIsNeverADonor) {
  auto pop = population({9, 8, 7, 6, 5, 4, 3, 2, 1, 0});
  pop[0].copyable = false;  // the best score is one that came with a copy
  auto truncation = make_exploit("truncation", json::object(), "exploit");
  auto tournament = make_exploit("tournament", json::object(), "exploit");
  std::map<int, int> donors;
  for (int trial = 0; trial < 200; ++trial) {
    Rng rng(trial);
    EXPECT_FALSE(truncation->choose(pop[7], pop, rng));  // member 0 still counts in the ranking
    auto d = truncation->choose(pop[9], pop, rng);
    ASSERT_TRUE(d);
    donors[*d]++;
    auto t = tournament->choose(pop[9], pop, rng);  // the worst copies whoever it draws...
    ASSERT_TRUE(t);
    EXPECT_NE(*t, 0);  // ...which is never member 0
  }
  // The best two of those that may be copied: members 1 and 2, never 0.
  EXPECT_EQ(donors.size(), 2u);
  EXPECT_GT(donors[1], 50);
  EXPECT_GT(donors[2], 50);
  EXPECT_EQ(donors.count(0), 0u);
  // Nothing above self may be copied: no copy.
  auto two = population({2, 1});
  two[0].copyable = false;
  Rng rng(1);
  EXPECT_FALSE(truncation->choose(two[1], two, rng));
  EXPECT_FALSE(tournament->choose(two[1], two, rng));
}

TEST(Exploit, TournamentCopiesOnlyABetterMember) {
  auto e = make_exploit("tournament", json::object(), "exploit");
  auto pop = population({1, 2, 3});
  int copies = 0;
  for (int trial = 0; trial < 200; ++trial) {
    Rng rng(trial);
    EXPECT_FALSE(e->choose(pop[2], pop, rng));  // the best never copies
    auto d = e->choose(pop[0], pop, rng);       // the worst copies whoever it draws
    ASSERT_TRUE(d);
    EXPECT_NE(*d, 0);
    auto m = e->choose(pop[1], pop, rng);  // the middle copies only member 2
    if (m) {
      EXPECT_EQ(*m, 2);
      ++copies;
    }
  }
  EXPECT_GT(copies, 60);
  EXPECT_LT(copies, 140);
}

TEST(Exploit, WelchPValueMatchesHandComputation) {
  // t = -1.8974, df = 5.882; two-sided p from integrating Student's t density: 0.107531.
  EXPECT_NEAR(welch_p_value({1, 2, 3, 4, 5}, {2, 4, 6, 8, 10}), 0.107531, 1e-4);
  EXPECT_NEAR(welch_p_value({1, 2, 3}, {1, 2, 3}), 1.0, 1e-12);
}

TEST(Exploit, TTestCopiesOnlyWhenSignificant) {
  auto e = make_exploit("ttest", json::object(), "exploit");
  Candidate self{0, 1.0, {0.9, 1.1, 1.0, 0.95, 1.05}, 0};
  Candidate clear{1, 5.0, {4.9, 5.1, 5.0, 4.95, 5.05}, 0};
  Candidate noisy{1, 1.2, {-3, 5, 0.2, 4, -0.2}, 0};
  Rng rng(1);
  EXPECT_EQ(e->choose(self, {self, clear}, rng), std::optional<int>(1));
  EXPECT_FALSE(e->choose(self, {self, noisy}, rng));   // higher mean, not significant
  EXPECT_FALSE(e->choose(clear, {clear, self}, rng));  // the other is worse
  Candidate empty{1, 9.0, {}, 0};
  EXPECT_FALSE(e->choose(self, {self, empty}, rng));  // no evidence, no copy
  // A diverged window (non-finite returns, stored as kDivergedScore) has no variance:
  // its member copies any healthy one and is never copied.
  const double worst = kDivergedScore;
  Candidate diverged{2, worst, {worst, worst, worst, 1.0}, 0};
  EXPECT_EQ(e->choose(diverged, {diverged, self}, rng), std::optional<int>(0));
  EXPECT_FALSE(e->choose(self, {self, diverged}, rng));
}

TEST(Exploit, NoneNeverCopies) {
  auto e = make_exploit("none", json::object(), "exploit");
  auto pop = population({0, 10});
  Rng rng(1);
  EXPECT_FALSE(e->choose(pop[0], pop, rng));
  EXPECT_EQ(e->min_population(), 1);
}

TEST(Exploit, BadOptionsAreNamed) {
  try {
    make_exploit("truncation", {{"fractoin", 0.2}}, "f.toml: exploit");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "f.toml: exploit.fractoin: unknown key");
  }
  EXPECT_THROW(make_exploit("truncation", {{"fraction", 0.9}}, "x"), ConfigError);
  EXPECT_THROW(make_exploit("ttest", {{"alpha", "low"}}, "x"), ConfigError);
  EXPECT_THROW(make_exploit("greedy", json::object(), "x"), ConfigError);
}

namespace {
SearchSpace mixed_space() {
  Param f;
  f.name = "lr";
  f.low = 1e-4;
  f.high = 1.0;
  f.log = true;
  Param i;
  i.name = "layers";
  i.kind = Param::Kind::Int;
  i.low = 1;
  i.high = 8;
  Param c;
  c.name = "size";
  c.kind = Param::Kind::Categorical;
  c.choices = {"s", "m", "l", "xl"};
  c.ordered = true;
  return SearchSpace({f, i, c});
}
}  // namespace

TEST(Explore, PerturbMultipliesByAFactorAndStaysInBounds) {
  auto e = make_explore("perturb", json::object(), "explore");
  SearchSpace s = mixed_space();
  Hyperparams h{{"lr", 0.01}, {"layers", std::int64_t(5)}, {"size", std::string("m")}};
  std::set<double> lrs;
  for (int t = 0; t < 200; ++t) {
    Rng rng(t);
    Hyperparams out = e->explore(h, s, rng, {});
    double lr = std::get<double>(out.at("lr"));
    EXPECT_TRUE(std::abs(lr - 0.008) < 1e-12 || std::abs(lr - 0.012) < 1e-12) << lr;
    lrs.insert(lr);
    auto layers = std::get<std::int64_t>(out.at("layers"));
    EXPECT_TRUE(layers == 4 || layers == 6) << layers;  // 5*0.8 = 4, 5*1.2 = 6
    auto size = std::get<std::string>(out.at("size"));
    EXPECT_TRUE(size == "s" || size == "l") << size;  // an ordered categorical moves to a neighbour
  }
  EXPECT_EQ(lrs.size(), 2u);
  // At the bound, values are clipped, never outside.
  Hyperparams top{{"lr", 1.0}, {"layers", std::int64_t(8)}, {"size", std::string("xl")}};
  for (int t = 0; t < 50; ++t) {
    Rng rng(t);
    Hyperparams out = e->explore(top, s, rng, {});
    EXPECT_LE(std::get<double>(out.at("lr")), 1.0);
    EXPECT_LE(std::get<std::int64_t>(out.at("layers")), 8);
    EXPECT_EQ(std::get<std::string>(out.at("size")), "l");
  }
}

TEST(Explore, PerturbWithResampleDrawsFromThePrior) {
  auto e = make_explore("perturb", {{"resample_probability", 1.0}}, "explore");
  SearchSpace s = mixed_space();
  Hyperparams h{{"lr", 0.01}, {"layers", std::int64_t(5)}, {"size", std::string("m")}};
  int off_grid = 0;
  for (int t = 0; t < 100; ++t) {
    Rng rng(t);
    Hyperparams out = e->explore(h, s, rng, {});
    double lr = std::get<double>(out.at("lr"));
    EXPECT_GE(lr, 1e-4);
    EXPECT_LE(lr, 1.0);
    off_grid += std::abs(lr - 0.008) > 1e-9 && std::abs(lr - 0.012) > 1e-9;
  }
  EXPECT_EQ(off_grid, 100);
}

TEST(Explore, ResampleProbabilityIsHonoured) {
  auto e = make_explore("resample", {{"probability", 0.25}}, "explore");
  SearchSpace s = mixed_space();
  Hyperparams h{{"lr", 0.01}, {"layers", std::int64_t(5)}, {"size", std::string("m")}};
  int changed = 0;
  const int n = 4000;
  for (int t = 0; t < n; ++t) {
    Rng rng(t);
    changed += std::get<double>(e->explore(h, s, rng, {}).at("lr")) != 0.01;
  }
  EXPECT_NEAR(changed / double(n), 0.25, 0.03);
}

TEST(Explore, GaussianAddsNoiseWithinBounds) {
  auto e = make_explore("gaussian", {{"sigma", 0.1}}, "explore");
  Param p;
  p.name = "h0";
  p.low = 0;
  p.high = 1;
  SearchSpace s({p});
  double sum = 0, sq = 0;
  const int n = 4000;
  for (int t = 0; t < n; ++t) {
    Rng rng(t);
    double x = std::get<double>(e->explore({{"h0", 0.5}}, s, rng, {}).at("h0"));
    ASSERT_GE(x, 0);
    ASSERT_LE(x, 1);
    sum += x - 0.5;
    sq += (x - 0.5) * (x - 0.5);
  }
  EXPECT_NEAR(sum / n, 0, 0.01);
  EXPECT_NEAR(std::sqrt(sq / n), 0.1, 0.01);
  Rng rng(3);
  EXPECT_EQ(std::get<double>(e->explore({{"h0", 0.0}}, s, rng, {}).at("h0")) >= 0, true);
}

TEST(Explore, UnknownStrategyAndBadOptionsAreNamed) {
  try {
    make_explore("mutate", json::object(), "f.toml: explore");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("f.toml: explore.strategy: unknown explore strategy 'mutate'"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(make_explore("perturb", {{"factors", json::array()}}, "x"), ConfigError);
  EXPECT_THROW(make_explore("perturb", {{"factors", {0.8, -1.0}}}, "x"), ConfigError);
  EXPECT_THROW(make_explore("resample", {{"probability", 2}}, "x"), ConfigError);
}

TEST(Ready, IntervalAndMinimumStep) {
  Ready r{4, 10};
  EXPECT_FALSE(r.is_ready(4, 0));   // interval passed, but before min_step
  EXPECT_FALSE(r.is_ready(10, 8));  // past min_step, interval not passed
  EXPECT_TRUE(r.is_ready(12, 8));
}
