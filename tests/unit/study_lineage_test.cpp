// The lineage analysis of `pbt study` (the paper's Figure 9): the study file's `replay` and
// `fixed` options and their errors, `pbt replay --json` read back, and the table that pairs
// each seed's PBT result with its replayed schedule and the best fixed h, on hand-made results.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "pbt/pbt.hpp"
#include "pbt/study.hpp"
#include "pbt/study_report.hpp"

using namespace pbt;

namespace {

const std::string kStudy = R"(
seeds = 3
baseline = "pbt"
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
[variants.pbt]
[variants.rs]
exploit.strategy = "none"
[variants.copy-h]
exploit.copy = "hyperparameters"
)";

std::string study_error(const std::string& head) {
  try {
    parse_study(head + kStudy, "dir/study.toml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_HAS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << (text)

// A schedule segment of member `m` over its steps (from, to] under h0 = `h0`.
ScheduleSegment seg(int m, std::int64_t from, std::int64_t to, double h0) {
  ScheduleSegment s;
  s.member = m;
  s.from_step = from;
  s.to_step = to;
  s.h = {{"h0", h0}, {"h1", 0.5}, {"act", std::string("relu")}};
  return s;
}

}  // namespace

TEST(StudyLineage, ReplayAndFixedAreRead) {
  StudySpec s = parse_study("replay = [\"pbt\", \"copy-h\"]\nfixed = \"rs\"\n" + kStudy, "dir/study.toml");
  EXPECT_EQ(s.replay, (std::vector<std::string>{"pbt", "copy-h"}));
  EXPECT_EQ(s.fixed, "rs");
  s = parse_study("replay = \"pbt\"\n" + kStudy, "dir/study.toml");  // one name as a string
  EXPECT_EQ(s.replay, (std::vector<std::string>{"pbt"}));
  EXPECT_EQ(s.fixed, "");
  s = parse_study(kStudy, "dir/study.toml");  // neither: no lineage analysis
  EXPECT_TRUE(s.replay.empty());
}

TEST(StudyLineage, BadOptionsNameTheFieldAndWhy) {
  EXPECT_HAS(study_error("replay = [\"pdt\"]\n"), "dir/study.toml: replay: 'pdt' is not one of the [variants.NAME]");
  EXPECT_HAS(study_error("replay = [\"rs\"]\n"), "dir/study.toml: replay: 'rs' has exploit.strategy = \"none\"");
  EXPECT_HAS(study_error("replay = [\"pbt\", \"pbt\"]\n"), "'pbt' is listed twice");
  EXPECT_HAS(study_error("replay = []\n"), "dir/study.toml: replay: expected a variant's name or a list");
  EXPECT_HAS(study_error("replay = 3\n"), "dir/study.toml: replay: expected a variant's name or a list");
  EXPECT_HAS(study_error("replay = [3]\n"), "every entry must be a variant's name");
  EXPECT_HAS(study_error("replay = \"pbt\"\nfixed = \"nope\"\n"), "dir/study.toml: fixed: 'nope' is not one of");
  EXPECT_HAS(study_error("replay = \"pbt\"\nfixed = \"copy-h\"\n"), "dir/study.toml: fixed: 'copy-h' must keep");
  EXPECT_HAS(study_error("fixed = \"rs\"\n"), "dir/study.toml: fixed: the best fixed h is compared with replayed");
  EXPECT_HAS(study_error("replay = \"pbt\"\nfixed = 1\n"), "dir/study.toml: fixed");
}

TEST(StudyLineage, ReplayJsonIsReadWithTheStudysMetric) {
  const nlohmann::json j = nlohmann::json::parse(R"({
    "experiment": "x", "member": 2, "original_score": 1.0, "original_metrics": {"acc": 0.5},
    "replay_score": 0.9, "replay_metrics": {"acc": 0.75}, "root": 1, "total_steps": 12,
    "schedule": [{"member": 1, "from_step": 0, "to_step": 4, "h": {"h0": 1.0, "h1": 0.0}},
                 {"member": 2, "from_step": 4, "to_step": 12, "h": {"h0": 0.5, "h1": 0.0}}]})");
  report::StudyReplay r = report::replay_from_json(j, "score");
  EXPECT_EQ(r.member, 2);
  EXPECT_DOUBLE_EQ(*r.figure, 0.9);
  EXPECT_EQ(r.total_steps, 12);
  ASSERT_EQ(r.schedule.size(), 2u);
  EXPECT_EQ(r.schedule[1].from_step, 4);
  EXPECT_DOUBLE_EQ(as_double(r.schedule[1].h.at("h0")), 0.5);
  r = report::replay_from_json(j, "metrics.acc");
  EXPECT_DOUBLE_EQ(*r.figure, 0.75);
  EXPECT_DOUBLE_EQ(*r.score, 0.9);
  EXPECT_FALSE(report::replay_from_json(j, "metrics.loss").figure);  // a metric the replay lacks
  EXPECT_THROW(report::replay_from_json(nlohmann::json::object(), "score"), Error);
}

TEST(StudyLineage, StretchesFollowTheReplaysOwnStepCount) {
  // Member 1's steps 0..4, then member 3's 8..12 (it copied member 1 behind it), then 12..20.
  const std::vector<ScheduleSegment> sched = {seg(1, 0, 4, 1.0), seg(3, 8, 12, 1.0), seg(3, 12, 20, 0.25)};
  const auto st = report::schedule_stretches(sched, "h0");
  ASSERT_EQ(st.size(), 2u);  // the first two have one value: one stretch
  EXPECT_EQ(st[0].from, 0);
  EXPECT_EQ(st[0].to, 8);
  EXPECT_DOUBLE_EQ(st[0].value, 1.0);
  EXPECT_EQ(st[1].from, 8);
  EXPECT_EQ(st[1].to, 16);
  EXPECT_DOUBLE_EQ(st[1].value, 0.25);
  EXPECT_TRUE(report::schedule_stretches(sched, "act").empty());  // categorical: not drawn
}

TEST(StudyLineage, TheTablePairsEachSeedsPbtReplayAndFixedH) {
  const StudySpec spec = parse_study("replay = \"pbt\"\nfixed = \"rs\"\n" + kStudy, "dir/study.toml");
  // By seed: PBT best 1, 2, 3; replayed 0.9, 2.5, 2.0 (seed 2's fixed run has no figure);
  // fixed h 0.5, 1.0, none.
  const double pbt[] = {1, 2, 3}, replay[] = {0.9, 2.5, 2.0};
  const std::optional<double> fixed[] = {0.5, 1.0, std::nullopt};
  std::vector<report::StudyRunFigures> runs;
  for (std::uint64_t seed = 0; seed < 3; ++seed) {
    report::StudyRunFigures p;
    p.variant = "pbt";
    p.seed = seed;
    p.best = pbt[seed];
    p.best_member = 3;
    report::StudyReplay r;
    r.member = 3;
    r.figure = replay[seed];
    r.schedule = {seg(0, 0, 6, 1.0), seg(3, 6, 12, 0.5 + 0.1 * static_cast<double>(seed))};
    r.total_steps = 12;
    p.replay = r;
    runs.push_back(p);
    report::StudyRunFigures f;
    f.variant = "rs";
    f.seed = seed;
    f.best = fixed[seed];
    runs.push_back(f);
    report::StudyRunFigures c;  // a variant that is not replayed
    c.variant = "copy-h";
    c.seed = seed;
    c.best = 10;
    runs.push_back(c);
  }
  const report::StudyFigures f = report::gather_study(spec, runs);
  ASSERT_EQ(f.lineage.size(), 1u);
  const auto& l = f.lineage[0];
  EXPECT_EQ(l.variant, "pbt");
  EXPECT_EQ(l.fixed, "rs");
  ASSERT_EQ(l.rows.size(), 3u);
  EXPECT_EQ(l.rows[2].seed, 2u);
  EXPECT_DOUBLE_EQ(*l.rows[1].replay, 2.5);
  EXPECT_DOUBLE_EQ(*l.rows[1].fixed, 1.0);
  EXPECT_FALSE(l.rows[2].fixed);
  EXPECT_DOUBLE_EQ(*l.pbt.median, 2);
  EXPECT_DOUBLE_EQ(*l.replay.median, 2.0);
  EXPECT_DOUBLE_EQ(*l.replay.q1, 1.45);  // 0.9 + 0.5 x (2.0 - 0.9)
  EXPECT_DOUBLE_EQ(*l.fixed_figure.median, 0.75);
  // replay - PBT: -0.1, +0.5, -1.0: one win, two losses.
  EXPECT_EQ(l.replay_vs_pbt.pairs, 3);
  EXPECT_EQ(l.replay_vs_pbt.wins, 1);
  EXPECT_EQ(l.replay_vs_pbt.losses, 2);
  EXPECT_NEAR(*l.replay_vs_pbt.median_difference, -0.1, 1e-12);
  EXPECT_DOUBLE_EQ(l.replay_vs_pbt.sign_p, 1.0);
  // replay - fixed: +0.4, +1.5 (seed 2 has no fixed figure): two wins of two pairs.
  ASSERT_TRUE(l.replay_vs_fixed);
  EXPECT_EQ(l.replay_vs_fixed->pairs, 2);
  EXPECT_EQ(l.replay_vs_fixed->wins, 2);
  EXPECT_DOUBLE_EQ(*l.replay_vs_fixed->median_difference, 0.95);
  EXPECT_DOUBLE_EQ(l.replay_vs_fixed->sign_p, 0.5);  // 2 x (1/2)^2
  ASSERT_TRUE(l.pbt_vs_fixed);
  EXPECT_EQ(l.pbt_vs_fixed->pairs, 2);
  EXPECT_EQ(l.hyperparams, (std::vector<std::string>{"h0", "h1"}));  // categorical left out

  const nlohmann::json j = report::study_json(f);
  ASSERT_EQ(j["lineage"].size(), 1u);
  EXPECT_EQ(j["lineage"][0]["fixed"], "rs");
  EXPECT_EQ(j["lineage"][0]["replay_vs_fixed"]["wins"], 2);
  EXPECT_NEAR(j["lineage"][0]["seeds"][0]["replay_minus_pbt"].get<double>(), -0.1, 1e-12);
  EXPECT_TRUE(j["lineage"][0]["seeds"][2]["replay_minus_fixed"].is_null());
  EXPECT_EQ(j["lineage"][0]["seeds"][1]["schedule"][1]["to_step"], 12);

  const std::string md = report::study_markdown(f);
  EXPECT_HAS(md, "## Lineage (Figure 9)");
  EXPECT_HAS(md, "| pbt | 3 | 2 [1.5, 2.5] | 2 [1.45, 2.25] | 0.75 [0.625, 0.875] (`rs`) |");
  EXPECT_HAS(md, "| pbt | replay - PBT | 3 | -0.1 | 1/2/0 |");
  EXPECT_HAS(md, "| pbt | replay - fixed h | 2 | 0.95 | 2/0/0 |");
  EXPECT_HAS(md, "| pbt | 2 | 3 | 3 | 2 | - | -1 | - | 12 |");
  // Seed 1's h0: 1 over steps 0..6, then 0.6: 50% is step 6, the first of the second stretch.
  EXPECT_HAS(md, "| 1 | 1 | 1 | 1 | 1 | 1 | 1 | 0.6 | 0.6 | 0.6 | 0.6 | 0.6 |");
  const std::string html = report::study_html(f);
  EXPECT_HAS(html, "<section id=\"lineage\">");
  EXPECT_HAS(html, "data-hyperparameter=\"h0\"");
  EXPECT_HAS(html, "<a href=\"#lineage\">");

  // A study without the options has no section.
  const StudySpec plain = parse_study(kStudy, "dir/study.toml");
  const report::StudyFigures g = report::gather_study(plain, runs);
  EXPECT_TRUE(g.lineage.empty());
  EXPECT_EQ(report::study_markdown(g).find("Lineage"), std::string::npos);
  EXPECT_TRUE(report::study_json(g)["lineage"].empty());
}

TEST(StudyLineage, TheExampleStudiesReplayPbtAgainstRandomSearch) {
  const std::string root = PBT_SOURCE_DIR;
  const StudySpec toy = load_study(root + "/examples/studies/lineage_toy.toml");
  EXPECT_EQ(toy.replay, (std::vector<std::string>{"pbt"}));
  EXPECT_EQ(toy.fixed, "random-search");
  // The CartPole study over a toy base with the same exploit (the RL trainable needs LibTorch).
  std::ifstream in(root + "/examples/studies/lineage_cartpole.toml");
  std::stringstream s;
  s << in.rdbuf();
  std::string text = s.str();
  const std::string base_line = "base = \"../cartpole.toml\"";
  ASSERT_NE(text.find(base_line), std::string::npos);
  text.replace(text.find(base_line), base_line.size(), "");
  const std::string base = R"(
[base]
name = "b"
population = 10
trainable.kind = "toy"
budget.steps = 12
ready.interval = 4
exploit.strategy = "ttest"
explore.strategy = "perturb"
space.h0 = { low = 0.0, high = 1.0 }
space.h1 = { low = 0.0, high = 1.0 }
)";
  text.insert(text.find("[variants."), base + "\n");
  const StudySpec cp = parse_study(text, root + "/examples/studies/lineage_cartpole.toml");
  EXPECT_EQ(cp.replay, (std::vector<std::string>{"pbt"}));
  EXPECT_EQ(cp.fixed, "random-search");
  EXPECT_GE(cp.seeds.size(), 5u);
  EXPECT_EQ(cp.metric, "metrics.fresh_return");
}
