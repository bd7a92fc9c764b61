// `pbt study` (pbt/study.hpp, pbt/study_report.hpp): the study file and its overlays, the
// errors it gives, the paired tests against hand-computed values, and the figures gathered.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "pbt/pbt.hpp"
#include "pbt/study.hpp"
#include "pbt/study_report.hpp"
#include "common/toy_config.hpp"

using namespace pbt;

namespace {

std::string source(const std::string& rel) { return std::string(PBT_SOURCE_DIR) + "/" + rel; }

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A base config as an inline [base] table: the toy with truncation's and perturb's options.
const std::string kBase = R"(
[base]
name = "b"
population = 4
trainable.kind = "toy"
budget.steps = 12
ready.interval = 4
exploit.strategy = "truncation"
exploit.fraction = 0.25
explore.strategy = "perturb"
explore.factors = [0.8, 1.2]
space.h0 = { low = 0.0, high = 1.0 }
space.h1 = { low = 0.0, high = 1.0 }
)";

std::string study_error(const std::string& text) {
  try {
    parse_study(text, "dir/study.toml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_HAS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << (text)

}  // namespace

TEST(Study, TheToyStudyReadsItsBaseAndVariantsInFileOrder) {
  const StudySpec s = load_study(source("examples/studies/toy.toml"));
  EXPECT_EQ(s.name, "toy");
  ASSERT_EQ(s.variants.size(), 2u);
  EXPECT_EQ(s.variants[0].name, "pbt");
  EXPECT_EQ(s.variants[1].name, "no-exploit");
  EXPECT_EQ(s.baseline, "pbt");
  EXPECT_EQ(s.metric, "score");
  EXPECT_EQ(s.seeds, (std::vector<std::uint64_t>{0, 1, 2}));
  ASSERT_EQ(s.runs.size(), 6u);
  // Seed by seed, each seed's variants in the file's order.
  EXPECT_EQ(s.runs[0].variant, "pbt");
  EXPECT_EQ(s.runs[1].variant, "no-exploit");
  EXPECT_EQ(s.runs[1].seed, 0u);
  EXPECT_EQ(s.runs[2].seed, 1u);
  EXPECT_EQ(s.runs[3].dir, "runs/no-exploit/seed-1");
  const ExperimentConfig& pbt = s.runs[0].config;
  const ExperimentConfig& none = s.runs[5].config;
  EXPECT_EQ(pbt.name, "toy-pbt-s0");
  EXPECT_EQ(none.name, "toy-no-exploit-s2");
  EXPECT_EQ(none.seed, 2u);
  EXPECT_EQ(pbt.budget_steps, 40);  // the variant's key over the base's 100
  EXPECT_EQ(pbt.exploit, "truncation");
  EXPECT_EQ(pbt.exploit_options["fraction"], 0.5);  // the base's, kept
  EXPECT_EQ(none.exploit, "none");
  EXPECT_TRUE(none.exploit_options.empty());  // a new strategy starts without the base's options
  EXPECT_EQ(none.copy, CopyMode::weights);    // declared keys of [exploit] stay
  EXPECT_EQ(pbt.initial.size(), 2u);          // [[initial]] went through
  // The generated text is the config: read again, it gives the same.
  EXPECT_EQ(parse_config(none.text, "again.toml").exploit, "none");
  EXPECT_EQ(default_study_dir("examples/studies/toy.toml"), "examples/studies/toy.study");
}

TEST(Study, EveryCartpoleVariantIsAValidConfig) {
  // examples/studies/cartpole.toml over a toy base with the same exploit and explore (the
  // RL trainable needs LibTorch): each overlay key must be one the config takes.
  std::string text = read(source("examples/studies/cartpole.toml"));
  const std::string base_line = "base = \"../cartpole.toml\"";
  ASSERT_NE(text.find(base_line), std::string::npos);
  text.replace(text.find(base_line), base_line.size(), "");
  std::string base = kBase;
  base.replace(base.find("exploit.strategy = \"truncation\"\nexploit.fraction = 0.25"),
               std::string("exploit.strategy = \"truncation\"\nexploit.fraction = 0.25").size(),
               "exploit.strategy = \"ttest\"\nexploit.alpha = 0.05\nexplore.resample_probability = 0.25");
  base.replace(base.find("population = 4"), 14, "population = 10");
  // [base] must come before the [variants.*] tables' keys: put it first, after the top keys.
  const std::size_t first_table = text.find("\n[variants.");
  text = text.substr(0, first_table) + "\n" + base + text.substr(first_table);
  const StudySpec s = parse_study(text, source("examples/studies/cartpole.toml"));
  ASSERT_EQ(s.variants.size(), 13u);
  EXPECT_EQ(s.runs.size(), 130u);
  auto cfg = [&](const std::string& v) {
    for (const auto& r : s.runs)
      if (r.variant == v) return r.config;
    ADD_FAILURE() << v;
    return ExperimentConfig{};
  };
  EXPECT_EQ(cfg("pop-32").population, 32);
  EXPECT_EQ(cfg("exploit-truncation").exploit, "truncation");
  EXPECT_EQ(cfg("exploit-truncation").exploit_options, (nlohmann::json{{"fraction", 0.2}}));
  EXPECT_TRUE(cfg("exploit-tournament").exploit_options.empty());
  EXPECT_EQ(cfg("explore-perturb").explore_options["resample_probability"], 0.0);
  EXPECT_EQ(cfg("explore-resample").explore_options, (nlohmann::json{{"probability", 0.25}}));
  EXPECT_EQ(cfg("copy-h-only").copy, CopyMode::hyperparameters);
  EXPECT_EQ(cfg("ready-long").ready.interval, 20);
  EXPECT_EQ(cfg("random-search").exploit, "none");
  EXPECT_EQ(cfg("pbt").exploit_options["alpha"], 0.05);
}

// The example studies over built-in trainables that need no LibTorch load as they are: every
// variant a valid config (a FIRE variant below FIRE's smallest population would fail here).
TEST(Study, TheNoisyQuadraticStudiesLoadWithEveryVariant) {
  const StudySpec prep = load_study(source("examples/studies/beyond_greedy_nqm.toml"));
  EXPECT_EQ(prep.variants.size(), 8u);
  const StudySpec horizon = load_study(source("examples/studies/short_horizon_nqm.toml"));
  EXPECT_EQ(horizon.variants.size(), 10u);
  EXPECT_EQ(horizon.runs.size(), 100u);
  EXPECT_TRUE(horizon.lower_is_better);
  int fire = 0;
  for (const auto& r : horizon.runs)
    if (r.config.exploit == "fire") {
      ++fire;
      EXPECT_GE(r.config.population, 4);
    }
  EXPECT_EQ(fire, 20);
}

// FIRE's evaluators against FIRE without them and PBT, on both noisy quadratic tasks.
TEST(Study, TheFireEvaluatorStudiesLoadWithEveryVariant) {
  for (const std::string task : {"nqm", "short_horizon"}) {
    const StudySpec s = load_study(source("examples/studies/fire_evaluators_" + task + ".toml"));
    ASSERT_EQ(s.variants.size(), 3u) << task;
    for (const auto& r : s.runs) {
      EXPECT_EQ(r.config.population, 16) << task << " " << r.variant;
      EXPECT_EQ(r.config.exploit, r.variant == "pbt-16" ? "truncation" : "fire") << task << " " << r.variant;
      const bool evaluators = r.config.exploit_options.contains("evaluators");
      EXPECT_EQ(evaluators, r.variant == "fire-16-e4") << task << " " << r.variant;
    }
  }
}

// The beyond-greedy RL studies over the toy (the RL trainables need LibTorch): every overlay
// a valid config, each method at 4 and 16 members.
TEST(Study, TheBeyondGreedyRlStudiesAreValidConfigs) {
  for (const std::string env : {"cartpole", "acrobot"}) {
    const std::string path = source("examples/studies/beyond_greedy_" + env + ".toml");
    std::string text = read(path);
    const std::string base_line = "base = \"../" + env + ".toml\"";
    ASSERT_NE(text.find(base_line), std::string::npos) << env;
    text.replace(text.find(base_line), base_line.size(), "");
    const std::size_t first_table = text.find("\n[variants.");
    text = text.substr(0, first_table) + "\n" + kBase + text.substr(first_table);
    const StudySpec s = parse_study(text, path);
    ASSERT_EQ(s.variants.size(), 8u) << env;
    std::map<std::string, int> population;
    for (const auto& r : s.runs) population[r.variant] = r.config.population;
    EXPECT_EQ(population["fire-4"], 4) << env;
    EXPECT_EQ(population["pb2-16"], 16) << env;
    for (const auto& r : s.runs) {
      if (r.variant.rfind("random", 0) == 0) {
        EXPECT_EQ(r.config.exploit, "none");
      }
      if (r.variant.rfind("pb2", 0) == 0) {
        EXPECT_EQ(r.config.explore, "pb2");
      }
      if (r.variant.rfind("fire", 0) == 0) {
        EXPECT_EQ(r.config.exploit, "fire");
      }
    }
  }
}

// The comparisons the bench programs ran (bench/paper/torch/*_pbt.cpp, process_pbt.py) as
// studies: every variant a valid config, in the benches' method order, with their seeds and
// held-out figures. The LibTorch domains over the toy (their [base] swapped for kBase); the
// digits study (a process trainable) as it is.
TEST(Study, TheBenchComparisonStudiesLoadWithEveryVariant) {
  struct Expected {
    std::string file;
    std::vector<std::string> variants;
    std::size_t seeds;
    std::string metric;
  };
  const std::vector<std::string> rl = {"pbt-ttest", "pbt-truncation", "random-search"};
  const std::vector<std::string> gan = {"pbt-tournament", "pbt-truncation", "random-search"};
  const std::vector<Expected> torch = {
      {"rl_cartpole", rl, 20, "metrics.fresh_return"},
      {"rl_acrobot", rl, 20, "metrics.fresh_return"},
      {"rl_pendulum", rl, 5, "metrics.fresh_return"},
      {"gan_ring", gan, 10, "metrics.strict_is"},
      {"gan_grid", gan, 10, "metrics.strict_is"},
      {"translation", {"pbt", "random-search"}, 5, "metrics.test_bleu"},
  };
  auto check = [](const StudySpec& s, const Expected& e) {
    ASSERT_EQ(s.variants.size(), e.variants.size()) << e.file;
    for (std::size_t i = 0; i < e.variants.size(); ++i) EXPECT_EQ(s.variants[i].name, e.variants[i]) << e.file;
    EXPECT_EQ(s.seeds.size(), e.seeds) << e.file;
    EXPECT_EQ(s.runs.size(), e.seeds * e.variants.size()) << e.file;
    EXPECT_EQ(s.metric, e.metric) << e.file;
    EXPECT_FALSE(s.lower_is_better) << e.file;
    EXPECT_EQ(s.baseline, "random-search") << e.file;
    for (const auto& r : s.runs) {
      const bool random = r.variant == "random-search";
      EXPECT_EQ(r.config.exploit == "none", random) << e.file << " " << r.variant;
      EXPECT_EQ(r.config.explore == "none", random) << e.file << " " << r.variant;
      if (random) {
        EXPECT_TRUE(r.config.explore_options.empty()) << e.file;  // perturb's factors dropped
      }
    }
  };
  // A study file with its [base] swapped for the toy's.
  auto over_toy = [](const std::string& path) {
    std::string text = read(path);
    const std::size_t base = text.find("\n[base]"), first_variant = text.find("\n[variants.");
    EXPECT_NE(base, std::string::npos) << path;
    EXPECT_NE(first_variant, std::string::npos) << path;
    EXPECT_LT(base, first_variant) << path;
    if (base == std::string::npos || first_variant == std::string::npos || base > first_variant) return text;
    return text.substr(0, base) + "\n" + kBase + text.substr(first_variant);
  };
  for (const auto& e : torch) {
    const std::string path = source("examples/studies/" + e.file + ".toml");
    check(parse_study(over_toy(path), path), e);
  }
  {  // The hand-tuned baseline: one model, one seed; its overlay's translation option left out.
    const std::string path = source("examples/studies/translation_hand_tuned.toml");
    std::string text = over_toy(path);
    const std::string warmup = "trainable.warmup_steps = 60\n";
    ASSERT_NE(text.find(warmup), std::string::npos);
    text.erase(text.find(warmup), warmup.size());
    const StudySpec s = parse_study(text, path);
    ASSERT_EQ(s.variants.size(), 2u);
    EXPECT_EQ(s.variants[1].name, "hand-tuned-short");
    EXPECT_EQ(s.seeds, (std::vector<std::uint64_t>{0}));
    EXPECT_EQ(s.baseline, "hand-tuned");
    EXPECT_EQ(s.metric, "metrics.test_bleu");
    ASSERT_EQ(s.runs.size(), 2u);
    EXPECT_EQ(s.runs[1].config.budget_steps, 600);
  }
  const StudySpec digits = load_study(source("examples/studies/digits.toml"));
  check(digits, {"digits", {"pbt", "pbt-ready-500", "random-search"}, 5, "metrics.test_acc"});
  for (const auto& r : digits.runs) {
    EXPECT_EQ(r.config.population, 16);
    EXPECT_EQ(r.config.workers, 16);
    EXPECT_EQ(r.config.budget_steps, 2000);
    EXPECT_EQ(r.config.ready.interval, r.variant == "pbt-ready-500" ? 500 : 100) << r.variant;
  }
}

TEST(Study, TheBeyondGreedyDigitsStudyRunsTheProtocolsConfigUnderEveryMethod) {
  // Its base is examples/studies/digits.toml's: the same runs as there for PBT and random search.
  const StudySpec s = load_study(source("examples/studies/beyond_greedy_digits.toml"));
  const StudySpec digits = load_study(source("examples/studies/digits.toml"));
  ASSERT_EQ(s.variants.size(), 9u);
  EXPECT_EQ(s.runs.size(), 45u);
  EXPECT_EQ(s.baseline, "random-16");
  EXPECT_EQ(s.metric, "metrics.test_acc");
  std::map<std::string, ExperimentConfig> cfg;
  for (const auto& r : s.runs)
    if (r.seed == 0) cfg[r.variant] = r.config;
  for (const auto& r : digits.runs)
    if (r.seed == 0 && r.variant == "pbt") {
      EXPECT_EQ(cfg["pbt-16"].trainable_options, r.config.trainable_options);
      EXPECT_EQ(cfg["pbt-16"].budget_steps, r.config.budget_steps);
      EXPECT_EQ(cfg["pbt-16"].ready.interval, r.config.ready.interval);
      EXPECT_EQ(cfg["pbt-16"].exploit_options, r.config.exploit_options);
      EXPECT_EQ(cfg["pbt-16"].explore_options, r.config.explore_options);
    }
  EXPECT_EQ(cfg["pb2-16"].explore, "pb2");
  EXPECT_TRUE(cfg["pb2-16"].explore_options.empty()) << "perturb's resample_probability is not PB2's";
  EXPECT_EQ(cfg["fire-16-evaluators"].exploit_options["evaluators"], 4);
  for (const std::string v : {"random-4", "pbt-4", "pb2-4", "fire-4"}) {
    EXPECT_EQ(cfg[v].population, 4) << v;
    EXPECT_EQ(cfg[v].workers, 4) << v;
  }
  EXPECT_EQ(cfg["random-4"].exploit, "none");
  EXPECT_EQ(cfg["random-16"].explore, "none");
}

TEST(Study, TheGanRingDesignStudyIsValidOverATournamentBase) {
  // examples/studies/design_gan_ring.toml over a toy base with the ring's exploit (tournament)
  // and explore (perturb, no resampling): every overlay a valid config, each changes one thing.
  const std::string path = source("examples/studies/design_gan_ring.toml");
  std::string text = read(path);
  const std::string base_line = "base = \"../gan_ring.toml\"";
  ASSERT_NE(text.find(base_line), std::string::npos);
  text.replace(text.find(base_line), base_line.size(), "");
  std::string base = kBase;
  const std::string exploit = "exploit.strategy = \"truncation\"\nexploit.fraction = 0.25";
  base.replace(base.find(exploit), exploit.size(),
               "exploit.strategy = \"tournament\"\nexplore.resample_probability = 0.0\nready.min_step = 4");
  const std::size_t first_table = text.find("\n[variants.");
  text = text.substr(0, first_table) + "\n" + base + text.substr(first_table);
  const StudySpec s = parse_study(text, path);
  ASSERT_EQ(s.variants.size(), 13u);
  EXPECT_EQ(s.runs.size(), 130u);
  EXPECT_EQ(s.metric, "metrics.strict_is");
  EXPECT_EQ(s.replay, std::vector<std::string>{"pbt"});
  EXPECT_EQ(s.fixed, "random-search");
  std::map<std::string, ExperimentConfig> cfg;
  for (const auto& r : s.runs) cfg[r.variant] = r.config;
  EXPECT_EQ(cfg["pbt"].exploit, "tournament");
  EXPECT_EQ(cfg["pop-32"].population, 32);
  EXPECT_EQ(cfg["exploit-ttest"].exploit, "ttest");
  EXPECT_EQ(cfg["exploit-truncation"].exploit_options, (nlohmann::json{{"fraction", 0.2}}));
  // The outputs show the variant's keys as written (0.2, not the formatter's 0.20000000000000001).
  ASSERT_EQ(s.variants[5].name, "exploit-truncation");
  EXPECT_HAS(s.variants[5].overlay, "fraction = 0.2\n");
  EXPECT_EQ(cfg["explore-resample"].explore, "resample");
  EXPECT_EQ(cfg["explore-both"].explore_options["resample_probability"], 0.25);
  EXPECT_EQ(cfg["copy-h-only"].copy, CopyMode::hyperparameters);
  EXPECT_EQ(cfg["ready-short"].ready.interval, 50);
  EXPECT_EQ(cfg["ready-long"].ready.interval, 250);
  EXPECT_EQ(cfg["random-search"].exploit, "none");
}

TEST(Study, OverlaysApplyAndAStrategyKeepsOnlyItsOwnOptions) {
  const StudySpec s = parse_study("seeds = [7, 3]\nbaseline = \"c\"\n" + kBase + R"(
[variants.a]
"exploit.copy" = "hyperparameters"
[variants.b.exploit]
alpha = 0.1
strategy = "ttest"
[variants.c]
)",
                                  "dir/study.toml");
  ASSERT_EQ(s.variants.size(), 3u);
  EXPECT_EQ(s.variants[2].name, "c");
  EXPECT_EQ(s.baseline, "c");
  EXPECT_EQ(s.name, "study");  // the file's stem
  EXPECT_EQ(s.seeds, (std::vector<std::uint64_t>{7, 3}));
  EXPECT_EQ(s.runs[0].config.copy, CopyMode::hyperparameters);
  EXPECT_EQ(s.runs[0].config.exploit_options["fraction"], 0.25);
  EXPECT_EQ(s.runs[1].config.exploit, "ttest");
  // alpha sorts before strategy, yet the reset of the base's options comes first.
  EXPECT_EQ(s.runs[1].config.exploit_options, (nlohmann::json{{"alpha", 0.1}}));
  EXPECT_EQ(s.runs[2].config.exploit, "truncation");
  EXPECT_EQ(s.runs[3].config.seed, 3u);
  EXPECT_EQ(s.runs[3].config.name, "study-a-s3");
  EXPECT_TRUE(s.base.empty());
}

TEST(Study, AnOverlayKeyTheConfigLacksNamesTheFileTheVariantAndTheKey) {
  const std::string head = "seeds = 2\n" + kBase;
  std::string e = study_error(head + "[variants.ok]\n[variants.bad]\npopulaton = 3\n");
  EXPECT_HAS(e, "dir/study.toml [variants.bad]");
  EXPECT_HAS(e, "populaton");
  EXPECT_HAS(e, "unknown key");
  e = study_error(head + "[variants.bad]\nexploit.fractoin = 0.5\n");
  EXPECT_HAS(e, "dir/study.toml [variants.bad]");
  EXPECT_HAS(e, "exploit.fractoin");
  e = study_error(head + "[variants.bad]\nready.interval = 0\n");
  EXPECT_HAS(e, "dir/study.toml [variants.bad]: ready.interval");
  e = study_error(head + "[variants.bad]\npopulation.x = 1\n");
  EXPECT_HAS(e, "dir/study.toml [variants.bad]: population.x");
  EXPECT_HAS(e, "not a table in the base config");
  e = study_error(head + "[variants.bad]\nexploit.strategy = \"nope\"\n");
  EXPECT_HAS(e, "dir/study.toml [variants.bad]");
  EXPECT_HAS(e, "nope");
}

TEST(Study, StudyFileErrorsNameTheField) {
  const std::string v = "[variants.a]\n";
  EXPECT_HAS(study_error("seeds = 2\n" + v), "dir/study.toml: base: missing");
  EXPECT_HAS(study_error("base = 3\nseeds = 2\n" + v), "dir/study.toml: base: expected a config's path");
  EXPECT_HAS(study_error("base = \"nowhere.toml\"\nseeds = 2\n" + v), "no config file at 'dir/nowhere.toml'");
  EXPECT_HAS(study_error(kBase + v), "dir/study.toml: seeds: missing");
  EXPECT_HAS(study_error("seeds = 0\n" + kBase + v), "dir/study.toml: seeds: a count of seeds must be 1 to");
  EXPECT_HAS(study_error("seeds = [1, 1]\n" + kBase + v), "seed 1 is listed twice");
  EXPECT_HAS(study_error("seeds = [-1]\n" + kBase + v), "every seed must be an integer >= 0");
  EXPECT_HAS(study_error("seeds = 2\n" + kBase), "dir/study.toml: variants: missing");
  EXPECT_HAS(study_error("seeds = 2\nbaseline = \"z\"\n" + kBase + v),
             "dir/study.toml: baseline: 'z' is not one of the [variants.NAME] tables");
  EXPECT_HAS(study_error("seeds = 2\nmetric = \"loss\"\n" + kBase + v), "dir/study.toml: metric: 'loss' must be");
  EXPECT_HAS(study_error("seeds = 2\nseedz = 2\n" + kBase + v), "dir/study.toml: seedz: unknown key");
  EXPECT_HAS(study_error("seeds = 2\n" + kBase + "[variants.\"a/b\"]\n"), "dir/study.toml: variants.a/b");
  EXPECT_HAS(study_error("seeds = 2\n" + kBase + "[variants]\na = 3\n"), "variants.a: expected a table");
  EXPECT_HAS(study_error("seeds = 2\n" + kBase + "[variants.a]\n[variants.a]\n"), "dir/study.toml:");  // TOML's own
  // The base's own errors name the base, before any variant.
  std::string bad = kBase;
  bad.replace(bad.find("budget.steps = 12"), 17, "budget.stepz = 12");
  EXPECT_HAS(study_error("seeds = 2\n" + bad + v), "dir/study.toml [base]: budget.steps: missing");
}

// ---------------------------------------------------------------------------------------
// The paired tests, against values computed by hand.

TEST(StudyStats, QuantilesInterpolateLinearly) {
  EXPECT_DOUBLE_EQ(*quantile({4, 1, 3, 2}, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(*quantile({4, 1, 3, 2}, 0.25), 1.75);
  EXPECT_DOUBLE_EQ(*quantile({4, 1, 3, 2}, 0.75), 3.25);
  EXPECT_DOUBLE_EQ(*quantile({5}, 0.25), 5);
  EXPECT_FALSE(quantile({}, 0.5));
}

TEST(StudyStats, SignTestIsTheTwoSidedBinomial) {
  EXPECT_DOUBLE_EQ(sign_test_p(5, 0), 2.0 / 32);   // 2 x (1/2)^5
  EXPECT_DOUBLE_EQ(sign_test_p(5, 1), 14.0 / 64);  // 2 x (1 + 6) / 64
  EXPECT_DOUBLE_EQ(sign_test_p(1, 5), 14.0 / 64);
  EXPECT_DOUBLE_EQ(sign_test_p(3, 3), 1.0);  // capped at 1
  EXPECT_DOUBLE_EQ(sign_test_p(0, 0), 1.0);
  EXPECT_NEAR(sign_test_p(10, 2), 2 * (1 + 12 + 66) / 4096.0, 1e-12);
}

TEST(StudyStats, WilcoxonExactByHand) {
  bool exact = false;
  // All five positive: W+ = 15, the largest of 32 equally likely sign patterns.
  EXPECT_NEAR(wilcoxon_signed_rank_p({1, 2, 3, 4, 5}, &exact), 2.0 / 32, 1e-12);
  EXPECT_TRUE(exact);
  // Zeros are dropped.
  EXPECT_NEAR(wilcoxon_signed_rank_p({0, 1, 2, 3, 4, 5, 0}), 2.0 / 32, 1e-12);
  // n = 6, rank 2 negative: W- = 2; subsets of {1..6} summing to <= 2: {}, {1}, {2}: p = 2 x 3/64.
  EXPECT_NEAR(wilcoxon_signed_rank_p({1, -2, 3, 4, 5, 6}), 6.0 / 64, 1e-12);
  EXPECT_NEAR(wilcoxon_signed_rank_p({-1, 2, -3, -4, -5, -6}), 6.0 / 64, 1e-12);  // mirrored
  // Ties: |d| = 1, 1, 1, 2 have ranks 2, 2, 2, 4; W+ = 2 + 2 + 4 = 8. Over the 16 sign patterns
  // W+ takes 0,2,2,2,4,4,4,6 and 4,6,6,6,8,8,8,10: P(W+ >= 8) = 4/16, so p = 0.5.
  EXPECT_NEAR(wilcoxon_signed_rank_p({1, 1, -1, 2}), 0.5, 1e-12);
  // Symmetric: W+ = W- = 5 of 10 (n = 4): p = 1.
  EXPECT_NEAR(wilcoxon_signed_rank_p({1, -2, -3, 4}), 1.0, 1e-12);
  EXPECT_DOUBLE_EQ(wilcoxon_signed_rank_p({0, 0}), 1.0);
}

TEST(StudyStats, WilcoxonNormalApproximationByHand) {
  // n = 20, all positive: W+ = 210, mean 105, variance 20 x 21 x 41 / 24 = 717.5;
  // z = (105 - 0.5) / sqrt(717.5), p = erfc(z / sqrt 2).
  std::vector<double> d;
  for (int i = 1; i <= 20; ++i) d.push_back(i);
  bool exact = true;
  const double z = 104.5 / std::sqrt(717.5);
  EXPECT_NEAR(wilcoxon_signed_rank_p(d, &exact, /*force_normal=*/true), std::erfc(z / std::sqrt(2.0)), 1e-12);
  EXPECT_FALSE(exact);
  // The exact p is 2 / 2^20.
  EXPECT_NEAR(wilcoxon_signed_rank_p(d, &exact), 2.0 / (1 << 20), 1e-15);
  EXPECT_TRUE(exact);
  // Past the exact limit the approximation is used.
  std::vector<double> big;
  for (int i = 1; i <= kWilcoxonExactMax + 1; ++i) big.push_back(i % 3 ? i : -i);
  wilcoxon_signed_rank_p(big, &exact);
  EXPECT_FALSE(exact);
  // With ties the variance loses sum(t^3 - t) / 48: d = 1 x 4, 2 x 2 (all positive):
  // ranks 2.5 x 4, 5.5 x 2, W+ = 21, mean 10.5, var = 6 x 7 x 13 / 24 - (60 + 6) / 48 = 21.375.
  const double zt = (21 - 10.5 - 0.5) / std::sqrt(21.375);
  EXPECT_NEAR(wilcoxon_signed_rank_p({1, 1, 1, 1, 2, 2}, nullptr, true), std::erfc(zt / std::sqrt(2.0)), 1e-12);
}

TEST(StudyStats, PairedComparisonCountsInTheMetricsDirection) {
  const PairedComparison c = compare_paired({0.5, -0.25, 1, 0, 2}, false);
  EXPECT_EQ(c.pairs, 5);
  EXPECT_EQ(c.wins, 3);
  EXPECT_EQ(c.losses, 1);
  EXPECT_EQ(c.ties, 1);
  EXPECT_DOUBLE_EQ(*c.median_difference, 0.5);
  EXPECT_DOUBLE_EQ(c.sign_p, sign_test_p(3, 1));
  // Nonzero: 0.5, -0.25, 1, 2 -> ranks 2, 1, 3, 4; W- = 1: P(W- <= 1) = 2/16, p = 0.25.
  EXPECT_NEAR(c.wilcoxon_p, 0.25, 1e-12);
  const PairedComparison lower = compare_paired({0.5, -0.25, 1, 0, 2}, true);
  EXPECT_EQ(lower.wins, 1);
  EXPECT_EQ(lower.losses, 3);
  EXPECT_NEAR(lower.wilcoxon_p, 0.25, 1e-12);
}

// ---------------------------------------------------------------------------------------
// The figures: one real (in-memory) toy run, and the gathering over seeds by hand.

TEST(StudyFigures, ARunsFiguresComeFromItsStore) {
  const std::string text = pbt::test::ToyConfig("fig").population(3).steps(12).set("ready.eval_every", "1");
  const ExperimentConfig c = parse_config(text, "fig.toml");
  auto store = open_store("memory:");
  create_or_join(*store, c);
  WorkerOptions opt;
  opt.id = "w0";
  run_worker(*store, c.name, opt);
  const report::StudyRunFigures f = report::run_figures(*store, c, "score", 1.5);
  const auto pop = store->population(c.name);
  const MemberState* b = best_member(pop);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(f.best_member, b->id);
  EXPECT_DOUBLE_EQ(*f.best, *b->score);
  EXPECT_DOUBLE_EQ(*f.best_score, *b->score);
  std::vector<double> scores;
  for (const auto& m : pop) scores.push_back(*m.score);
  EXPECT_DOUBLE_EQ(*f.population, *quantile(scores, 0.5));
  EXPECT_EQ(f.best_step, 12);
  ASSERT_TRUE(f.best_trained_steps);
  EXPECT_DOUBLE_EQ(*f.best_efficiency, static_cast<double>(*f.best_trained_steps) / 12);
  EXPECT_DOUBLE_EQ(f.wall_seconds, 1.5);
  int copies = 0;  // the store's exploit events
  for (const auto& e : store->events(c.name)) copies += e.kind == EventKind::exploit;
  EXPECT_GT(copies, 0);  // truncation over 3 members, ready every 4 of 12 steps
  EXPECT_EQ(f.copies, copies);
  ASSERT_EQ(f.grid.size(), static_cast<std::size_t>(report::kStudyCurvePoints + 1));
  EXPECT_EQ(f.grid.front(), 0);
  EXPECT_EQ(f.grid.back(), 12);
  EXPECT_FALSE(f.curve.front());                 // nothing evaluated at step 0
  EXPECT_DOUBLE_EQ(*f.curve.back(), *b->score);  // at the end: every member's final score
  // A metric the trainable does not report is none, not zero.
  EXPECT_FALSE(report::run_figures(*store, c, "metrics.nothing", 0).best);
}

TEST(StudyFigures, GatheredPerVariantWithPairedDifferences) {
  StudySpec spec;
  spec.name = "s";
  spec.baseline = "base";
  spec.seeds = {0, 1, 2};
  spec.variants = {{"base", ""}, {"other", "exploit.strategy = \"none\"\n"}};
  std::vector<report::StudyRunFigures> runs;
  const double base_best[] = {1.0, 2.0, 3.0}, other_best[] = {1.5, 2.5, 2.0};
  for (std::uint64_t seed = 0; seed < 3; ++seed) {
    for (const char* v : {"base", "other"}) {
      spec.runs.push_back({v, seed, "", {}});
      report::StudyRunFigures r;
      r.variant = v;
      r.seed = seed;
      r.best = std::string(v) == "base" ? base_best[seed] : other_best[seed];
      r.population = *r.best - 1;
      r.best_efficiency = 1.0 + 0.1 * static_cast<double>(seed);
      r.wall_seconds = 10.0 * static_cast<double>(seed + 1);
      r.copies = std::string(v) == "base" ? static_cast<int>(seed) : 0;
      r.metrics["acc"] = 0.5 + static_cast<double>(seed);
      r.grid = {0, 5, 10};
      r.curve = {std::nullopt, *r.best / 2, *r.best};
      runs.push_back(r);
    }
  }
  const report::StudyFigures f = report::gather_study(spec, runs);
  ASSERT_EQ(f.variants.size(), 2u);
  const auto& base = f.variants[0];
  const auto& other = f.variants[1];
  EXPECT_EQ(base.runs, 3);
  EXPECT_DOUBLE_EQ(*base.best.median, 2.0);
  EXPECT_DOUBLE_EQ(*base.best.q1, 1.5);
  EXPECT_DOUBLE_EQ(*base.best.q3, 2.5);
  EXPECT_DOUBLE_EQ(*other.best.median, 2.0);
  EXPECT_DOUBLE_EQ(*other.population.median, 1.0);
  EXPECT_DOUBLE_EQ(*other.efficiency.median, 1.1);
  EXPECT_DOUBLE_EQ(*other.wall_seconds.median, 20);
  EXPECT_DOUBLE_EQ(*base.copies.median, 1);
  EXPECT_DOUBLE_EQ(*base.copies.q3, 1.5);
  EXPECT_DOUBLE_EQ(*other.copies.median, 0);
  EXPECT_DOUBLE_EQ(*other.metrics.at("acc").median, 1.5);
  EXPECT_FALSE(base.vs_baseline);
  ASSERT_TRUE(other.vs_baseline);
  // Differences by seed: +0.5, +0.5, -1.
  EXPECT_EQ(other.vs_baseline->wins, 2);
  EXPECT_EQ(other.vs_baseline->losses, 1);
  EXPECT_DOUBLE_EQ(*other.vs_baseline->median_difference, 0.5);
  // Ranks: 1.5, 1.5, 3; W- = 3 of a total 6: p = 2 x P(W+ <= 3) = 2 x 4/8, capped at 1.
  EXPECT_NEAR(other.vs_baseline->wilcoxon_p, 1.0, 1e-12);
  EXPECT_FALSE(other.median_curve[0]);
  EXPECT_DOUBLE_EQ(*other.median_curve[2], 2.0);
  EXPECT_DOUBLE_EQ(*other.median_curve[1], 1.0);

  const nlohmann::json j = report::study_json(f);
  EXPECT_EQ(j["variants"][1]["vs_baseline"]["wins"], 2);
  EXPECT_EQ(j["runs"].size(), 6u);
  const std::string md = report::study_markdown(f);
  EXPECT_HAS(md, "| other | 3 | 2 [1.75, 2.25] |");
  EXPECT_HAS(md, "| base (baseline) | 3 | 2 [1.5, 2.5] |");
  EXPECT_HAS(md, "| step | base | other |");
  // Budgets that differ: the curve's rows are fractions of each variant's budget.
  for (auto& r : runs)
    if (r.variant == "other") r.grid = {0, 10, 20};
  EXPECT_HAS(report::study_markdown(report::gather_study(spec, runs)),
             "| budget | base | other |\n|---|---|---|\n| 0% |");
  const std::string html = report::study_html(f);
  EXPECT_HAS(html, "<svg");
  EXPECT_HAS(html, "default-src 'none'");
  EXPECT_EQ(html.find("<script src"), std::string::npos);  // nothing fetched
  EXPECT_EQ(html.find("<link"), std::string::npos);
}

TEST(Study, TheReadmesFiveLineStudyIsOne) {
  // README.md, "Studies": the study file shown there, as if beside examples/toy.toml.
  const std::string readme = read(source("README.md"));
  const std::size_t from = readme.find("base = \"toy.toml\"");
  ASSERT_NE(from, std::string::npos);
  const std::size_t to = readme.find("```", from);
  ASSERT_NE(to, std::string::npos);
  const StudySpec s = parse_study(readme.substr(from, to - from), source("examples/mine.toml"));
  ASSERT_EQ(s.variants.size(), 2u);
  EXPECT_EQ(s.variants[1].name, "no-exploit");
  EXPECT_EQ(s.runs.size(), 6u);
  EXPECT_EQ(s.runs[1].config.exploit, "none");
  EXPECT_EQ(s.runs[0].config.exploit, "truncation");
}
