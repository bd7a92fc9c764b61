#include <gtest/gtest.h>
#include <set>

#include "pbt/error.hpp"
#include "pbt/space.hpp"

using namespace pbt;

namespace {
Param make_float(double lo, double hi, bool log = false) {
  Param p;
  p.name = "x";
  p.low = lo;
  p.high = hi;
  p.log = log;
  return p;
}
}  // namespace

TEST(Space, FloatSamplesStayInBounds) {
  Rng rng(1);
  Param p = make_float(-2, 3);
  double lo = 1e9, hi = -1e9;
  for (int i = 0; i < 10000; ++i) {
    double x = std::get<double>(p.sample(rng));
    ASSERT_GE(x, -2);
    ASSERT_LE(x, 3);
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
  EXPECT_LT(lo, -1.9);  // the prior covers the whole range
  EXPECT_GT(hi, 2.9);
}

TEST(Space, LogFloatIsLogUniform) {
  Rng rng(2);
  Param p = make_float(1e-4, 1e-1, true);
  int below_1e3 = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    double x = std::get<double>(p.sample(rng));
    ASSERT_GE(x, 1e-4);
    ASSERT_LE(x, 1e-1);
    below_1e3 += x < 1e-3;
  }
  // log-uniform: a third of the mass per decade; uniform would put 0.9% below 1e-3.
  EXPECT_NEAR(below_1e3 / double(n), 1.0 / 3, 0.02);
}

TEST(Space, IntSamplesAreWholeAndCoverBounds) {
  Rng rng(3);
  Param p;
  p.name = "n";
  p.kind = Param::Kind::Int;
  p.low = 2;
  p.high = 5;
  std::set<std::int64_t> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(std::get<std::int64_t>(p.sample(rng)));
  EXPECT_EQ(seen, (std::set<std::int64_t>{2, 3, 4, 5}));
  EXPECT_EQ(std::get<std::int64_t>(p.clip(4.6)), 5);
  EXPECT_EQ(std::get<std::int64_t>(p.clip(99.0)), 5);
  EXPECT_EQ(std::get<std::int64_t>(p.clip(-3.0)), 2);
}

TEST(Space, CategoricalSamplesChoices) {
  Rng rng(4);
  Param p;
  p.name = "act";
  p.kind = Param::Kind::Categorical;
  p.choices = {"relu", "tanh", "gelu"};
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) seen.insert(std::get<std::string>(p.sample(rng)));
  EXPECT_EQ(seen.size(), 3u);
  EXPECT_THROW(p.clip(std::string("swish")), Error);
}

TEST(Space, ValidateRefusesBadBounds) {
  EXPECT_THROW(make_float(3, 2).validate("f: space.x"), ConfigError);
  try {
    make_float(3, 2).validate("f: space.x");
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("low (3) is greater than high (2)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(make_float(0, 1, true).validate("f: space.x"), ConfigError);  // log needs low > 0
  EXPECT_NO_THROW(make_float(0, 1).validate("f: space.x"));
}

TEST(Space, CheckNamesMissingAndUnknown) {
  SearchSpace s({make_float(0, 1)});
  EXPECT_NO_THROW(s.check({{"x", 0.5}}, "h"));
  EXPECT_THROW(s.check({{"x", 1.5}}, "h"), ConfigError);
  EXPECT_THROW(s.check({}, "h"), ConfigError);
  EXPECT_THROW(s.check({{"x", 0.5}, {"y", 0.1}}, "h"), ConfigError);
}

TEST(Rng, DerivedStreamsAreStableAndDistinct) {
  EXPECT_EQ(derive_seed(1, 2, 3, 4), derive_seed(1, 2, 3, 4));
  EXPECT_NE(derive_seed(1, 2, 3, 4), derive_seed(1, 3, 3, 4));
  EXPECT_NE(derive_seed(1, 2, 3, 4), derive_seed(1, 2, 4, 4));
  Rng rng(7);
  double sum = 0, sq = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    double z = standard_normal(rng);
    sum += z;
    sq += z * z;
  }
  EXPECT_NEAR(sum / n, 0, 0.03);
  EXPECT_NEAR(sq / n, 1, 0.05);
}
