// Every bad-config case is refused before anything runs, with a message naming the
// file, the field and the reason.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "pbt/config.hpp"
#include "pbt/error.hpp"
#include "pbt/trainable.hpp"
#include "common/config_checks.hpp"

using namespace pbt;

namespace {
using test::error_of;
using test::good_with;
using test::kGood;
}  // namespace

TEST(Config, GoodConfigParsesWithDefaults) {
  ExperimentConfig c = parse_config(kGood, "exp.toml");
  EXPECT_EQ(c.name, "t");
  EXPECT_EQ(c.population, 4);
  EXPECT_EQ(c.seed, 3u);
  EXPECT_EQ(c.budget_steps, 20);
  EXPECT_EQ(c.ready.interval, 4);
  EXPECT_EQ(c.copy, CopyMode::all);
  EXPECT_EQ(c.window, 10);
  EXPECT_EQ(c.workers, 1);
  EXPECT_EQ(c.space.params().size(), 2u);
  auto hs = initial_hyperparams(c);
  ASSERT_EQ(hs.size(), 4u);
  EXPECT_NE(hs[0], hs[1]);                // sampled per member
  EXPECT_EQ(hs, initial_hyperparams(c));  // and reproducibly
}

TEST(Config, ExampleToyConfigParses) {
  ExperimentConfig c = load_config(std::string(PBT_SOURCE_DIR) + "/examples/toy.toml");
  auto hs = initial_hyperparams(c);
  EXPECT_EQ(std::get<double>(hs[0].at("h0")), 1.0);
  EXPECT_EQ(std::get<double>(hs[1].at("h1")), 1.0);
  EXPECT_EQ(c.copy, CopyMode::weights);
}

TEST(Config, UnknownKeyIsNamed) {
  EXPECT_EQ(error_of(good_with("[budget]", "[budget]\nstepz = 3")), "exp.toml: budget.stepz: unknown key");
  EXPECT_EQ(error_of("colour = 1\n" + std::string(kGood)), "exp.toml: colour: unknown key");
  EXPECT_EQ(error_of(good_with("strategy = \"truncation\"", "strategy = \"truncation\"\nfractoin = 0.3")),
            "exp.toml: exploit.fractoin: unknown key");
}

TEST(Config, WrongTypeIsNamed) {
  EXPECT_EQ(error_of(good_with("steps = 20", "steps = \"twenty\"")),
            "exp.toml: budget.steps: expected an integer, got a string");
  EXPECT_EQ(error_of(good_with("population = 4", "population = 4.5")),
            "exp.toml: population: expected an integer, got a float");
  EXPECT_EQ(error_of(good_with("low = 0.0\nhigh = 1.0\n[space.h1]", "low = \"zero\"\nhigh = 1.0\n[space.h1]")),
            "exp.toml: space.h0.low: expected a number, got a string");
}

TEST(Config, LowAboveHighIsNamed) {
  EXPECT_EQ(error_of(good_with("low = 0.0\nhigh = 1.0\n[space.h1]", "low = 2.0\nhigh = 1.0\n[space.h1]")),
            "exp.toml: space.h0: low (2) is greater than high (1)");
}

TEST(Config, UnknownStrategyIsNamed) {
  EXPECT_EQ(error_of(good_with("\"truncation\"", "\"truncate\"")),
            "exp.toml: exploit.strategy: unknown exploit strategy 'truncate' (known: truncation, tournament, "
            "ttest, none, fire)");
  EXPECT_EQ(error_of(good_with("\"perturb\"", "\"jitter\"")),
            "exp.toml: explore.strategy: unknown explore strategy 'jitter' (known: perturb, resample, gaussian, "
            "pb2, none)");
  EXPECT_NE(error_of(good_with("kind = \"toy\"", "kind = \"resnet\""))
                .find("exp.toml: trainable.kind: unknown trainable kind 'resnet'"),
            std::string::npos);
}

TEST(Config, PopulationTooSmallForExploitIsNamed) {
  EXPECT_EQ(error_of(good_with("population = 4", "population = 1")),
            "exp.toml: population: exploit 'truncation' needs at least 2 members, got 1");
  EXPECT_EQ(error_of(good_with("population = 4", "population = 1")
                         .replace(std::string(kGood).find("\"truncation\"") - 1, 13, "\"none\"")),
            "");
}

TEST(Config, MissingRequiredIsNamed) {
  EXPECT_EQ(error_of(good_with("steps = 20", "")), "exp.toml: budget.steps: missing (required)");
  EXPECT_EQ(error_of(good_with("name = \"t\"", "")), "exp.toml: name: missing (required)");
}

TEST(Config, OtherChecks) {
  EXPECT_EQ(error_of(good_with("name = \"t\"", "name = \"a b\"")),
            "exp.toml: name: 'a b' must be 1-100 letters, digits, '_', '.' or '-'");
  EXPECT_EQ(error_of(good_with("[budget]", "[workers]\ncount = 5\n[budget]")),
            "exp.toml: workers.count: 5 workers for 4 members: at most one worker per member");
  EXPECT_EQ(error_of(good_with("[budget]", "[[initial]]\nh0 = 3.0\n[budget]")),
            "exp.toml: initial[0].h0: value 3 is outside the bounds of 'h0'");
  EXPECT_EQ(error_of(good_with("[budget]", "[[initial]]\nlr = 3.0\n[budget]")),
            "exp.toml: initial[0].lr: not a hyperparameter declared in [space]");
  EXPECT_EQ(error_of(good_with("[exploit]", "[exploit]\ncopy = \"optimizer\"")),
            "exp.toml: exploit.copy: 'optimizer' is not one of: all, weights, hyperparameters");
  EXPECT_EQ(error_of(good_with("[trainable]\nkind = \"toy\"", "[trainable]\nkind = \"toy\"\neta = -1")),
            "exp.toml: trainable.eta: must be a positive number");
}

TEST(Config, TomlSyntaxErrorGivesLine) {
  std::string msg = error_of("name = \"t\"\npopulation = = 3\n");
  EXPECT_EQ(msg.rfind("exp.toml:2:", 0), 0u) << msg;
}

TEST(Config, MissingFileIsNamed) {
  try {
    load_config("/nonexistent/exp.toml");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "/nonexistent/exp.toml: cannot read the config file");
  }
}

// A trainable's own check of h sees the space's corners when the config is read.
TEST(Config, SpaceBoundsTheTrainableCannotTakeAreRefused) {
  register_trainable("bounded", [](const TrainableContext&) -> std::unique_ptr<Trainable> { return nullptr; });
  register_hyperparams_check("bounded", [](const Hyperparams& h) {
    if (as_double(h.at("h0")) < 0) throw ConfigError("h.h0", "must be >= 0");
  });
  std::string ok = good_with("kind = \"toy\"", "kind = \"bounded\"");
  EXPECT_NO_THROW(parse_config(ok, "exp.toml"));
  std::string bad = ok;
  bad.replace(bad.find("low = 0.0"), 9, "low = -1.0");
  try {
    parse_config(bad, "exp.toml");
    FAIL() << "accepted a lower bound the trainable refuses";
  } catch (const ConfigError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("exp.toml: space (every lower bound)"), std::string::npos) << m;
    EXPECT_NE(m.find("h.h0: must be >= 0"), std::string::npos) << m;
  }
}
