// The report (src/report): lineage and schedule reconstruction on hand-built event lists,
// escaping of everything that came from a config or a trainer, exports.
#include <gtest/gtest.h>

#include <sstream>

#include "pbt/pbt.hpp"
#include "pbt/report.hpp"
#include "report/html.hpp"
#include "report/run.hpp"
#include "report/tree.hpp"

using namespace pbt;
using namespace pbt::report;

namespace {

const std::string kXss = "<script>alert(1)</script>";

// The runs below are made by hand and train nothing: a kind without checks stands in for a
// trainable (the toy's would refuse this space, which lacks its h0 and h1).
const bool kHandKind =
    (register_trainable("hand", [](const TrainableContext&) -> std::unique_ptr<Trainable> { return nullptr; }), true);

// Three members, ready every 4 steps, budget 12: boundaries 4, 8, 12.
const char* kConfig = R"(
name = "hand"
population = 3
[trainable]
kind = "hand"
[budget]
steps = 12
[ready]
interval = 4
[space.lr]
type = "float"
low = 0.0
high = 1.0
[space."<script>alert(1)</script>"]
type = "categorical"
choices = ["a", "<script>alert(1)</script>"]
)";

Hyperparams H(double lr, const std::string& cat = "a") { return {{"lr", lr}, {kXss, cat}}; }

Event copy(int member, std::int64_t step, int donor, std::int64_t donor_step, CopyMode copied, Hyperparams old_h,
           Hyperparams new_h, double old_score, double donor_score, double new_score) {
  Event e;
  e.member = member;
  e.step = step;
  e.kind = EventKind::exploit;
  e.donor = donor;
  e.donor_step = donor_step;
  e.copied = copied;
  e.old_h = std::move(old_h);
  e.new_h = std::move(new_h);
  e.old_score = old_score;
  e.donor_score = donor_score;
  e.new_score = new_score;
  return e;
}

// m2 copies m0's model at step 4; m1 copies m2's model (and h) at step 8. m1 ends best.
RunData hand_run() {
  RunData r;
  r.info.name = "hand";
  r.info.config = kConfig;
  r.info.origin = "hand.toml";
  r.info.population = 3;
  auto member = [](int id, double score, Hyperparams h) {
    MemberState m;
    m.id = id;
    m.step = 12;
    m.score = score;
    m.h = std::move(h);
    m.done = true;
    return m;
  };
  r.population = {member(0, 0.7, H(0.1)), member(1, 0.9, H(0.43, kXss)), member(2, 0.8, H(0.36))};
  const double s[3][3] = {{0.5, 0.6, 0.7}, {0.4, 0.3, 0.9}, {0.1, 0.65, 0.8}};
  for (int m = 0; m < 3; ++m)
    for (int k = 0; k < 3; ++k) r.scores.push_back({m, 4 * (k + 1), s[m][k]});
  r.events.push_back(copy(2, 4, 0, 4, CopyMode::weights, H(0.3), H(0.36), 0.1, 0.5, 0.5));
  r.events.push_back(copy(1, 8, 2, 8, CopyMode::all, H(0.2), H(0.43, kXss), 0.3, 0.65, 0.65));
  return r;
}

int node_at(const Tree& L, int member, std::int64_t step) {
  for (std::size_t i = 0; i < L.nodes.size(); ++i)
    if (L.nodes[i].member == member && L.nodes[i].step == step) return static_cast<int>(i);
  return -1;
}

std::size_t count(const std::string& hay, const std::string& needle) {
  std::size_t n = 0;
  for (auto p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

}  // namespace

TEST(Report, IntervalBoundariesFollowTheWorkersRule) {
  auto cfg = parse_config(kConfig, "hand.toml");
  EXPECT_EQ(interval_boundaries(cfg), (std::vector<std::int64_t>{4, 8, 12}));
  cfg.ready.min_step = 10;
  cfg.budget_steps = 20;
  EXPECT_EQ(interval_boundaries(cfg), (std::vector<std::int64_t>{10, 14, 18, 20}));
}

TEST(Report, LineageHasOneNodePerMemberIntervalAndParentsFollowCopies) {
  const RunData run = hand_run();
  const Tree L = build_tree(run);
  ASSERT_EQ(L.nodes.size(), 9u);
  for (int m = 0; m < 3; ++m)
    for (int s : {4, 8, 12}) ASSERT_GE(node_at(L, m, s), 0) << m << ":" << s;

  auto N = [&](int m, int s) { return L.nodes[node_at(L, m, s)]; };
  EXPECT_EQ(N(0, 4).parent, -1);
  EXPECT_EQ(N(0, 8).parent, node_at(L, 0, 4));
  EXPECT_EQ(N(0, 8).link, Link::train);
  // m2 copied m0's model at step 4: its node there is the donor's model, scored again.
  EXPECT_EQ(N(2, 4).parent, node_at(L, 0, 4));
  EXPECT_EQ(N(2, 4).link, Link::copy);
  EXPECT_DOUBLE_EQ(*N(2, 4).score, 0.5);
  EXPECT_DOUBLE_EQ(*N(2, 4).pre_copy, 0.1);
  EXPECT_EQ(N(2, 8).parent, node_at(L, 2, 4));
  EXPECT_EQ(N(1, 8).parent, node_at(L, 2, 8));
  EXPECT_EQ(N(1, 8).link, Link::copy);
  EXPECT_EQ(N(1, 12).parent, node_at(L, 1, 8));

  // Everybody descends from m0's fresh model except m1's first interval, which died out.
  for (const auto& n : L.nodes) {
    const bool m1_first = n.member == 1 && n.step == 4;
    EXPECT_EQ(n.root, m1_first ? 1 : 0) << n.member << ":" << n.step;
    EXPECT_EQ(n.ancestor, !m1_first) << n.member << ":" << n.step;
  }
  EXPECT_EQ(N(1, 8).trained_root, 1);  // before the copy, m1 trained its own model
  EXPECT_TRUE(N(1, 12).last);
  EXPECT_FALSE(N(1, 8).last);
}

TEST(Report, TheBestMemberIsNeverADivergedOne) {
  std::vector<MemberState> pop(3);
  for (int i = 0; i < 3; ++i) pop[i].id = i;
  EXPECT_EQ(best_member(pop), nullptr);  // no scores yet
  pop[0].score = 0.5;
  pop[1].score = kDivergedScore;
  pop[2].score = 0.5;
  ASSERT_NE(best_member(pop), nullptr);
  EXPECT_EQ(best_member(pop)->id, 0);  // the first of equals
  pop[0].score = kDivergedScore;
  pop[2].score = kDivergedScore;
  EXPECT_EQ(best_member(pop), nullptr);
}

TEST(Report, AncestryScheduleWalksBackThroughCopies) {
  const RunData run = hand_run();
  const Tree L = build_tree(run);
  ASSERT_NE(best_member(run.population), nullptr);
  ASSERT_EQ(best_member(run.population)->id, 1);
  EXPECT_EQ(ancestry_nodes(run, L, 1), (std::vector<int>{node_at(L, 0, 4), node_at(L, 2, 4), node_at(L, 2, 8),
                                                         node_at(L, 1, 8), node_at(L, 1, 12)}));
  const InheritedSchedule a = lineage_of(run).schedule_of(1, 12);
  EXPECT_EQ(a.root, 0);
  EXPECT_EQ(a.root, L.nodes[node_at(L, 0, 4)].root);
  ASSERT_EQ(a.segments.size(), 3u);
  EXPECT_EQ(a.segments[0].member, 0);
  EXPECT_EQ(a.segments[0].from_step, 0);
  EXPECT_EQ(a.segments[0].to_step, 4);
  EXPECT_EQ(a.segments[0].h, H(0.1));
  EXPECT_EQ(a.segments[1].member, 2);
  EXPECT_EQ(a.segments[1].from_step, 4);
  EXPECT_EQ(a.segments[1].to_step, 8);
  EXPECT_EQ(a.segments[1].h, H(0.36));
  EXPECT_EQ(a.segments[2].member, 1);
  EXPECT_EQ(a.segments[2].from_step, 8);
  EXPECT_EQ(a.segments[2].to_step, 12);
  EXPECT_EQ(a.segments[2].h, H(0.43, kXss));

  // The report's initial h (each member's first old_h) are the config's: the same schedule
  // as `pbt replay` retrains.
  std::vector<Hyperparams> initial = {H(0.1), H(0.2), H(0.3)};
  const auto engine = Lineage(run.events, initial).schedule_of(1, 12);
  EXPECT_EQ(engine.root, a.root);
  ASSERT_EQ(engine.segments.size(), a.segments.size());
  for (std::size_t i = 0; i < a.segments.size(); ++i) {
    EXPECT_EQ(engine.segments[i].member, a.segments[i].member);
    EXPECT_EQ(engine.segments[i].from_step, a.segments[i].from_step);
    EXPECT_EQ(engine.segments[i].to_step, a.segments[i].to_step);
    EXPECT_EQ(engine.segments[i].h, a.segments[i].h);
  }
  // The page shows that schedule.
  const auto d = page_data(run);
  ASSERT_EQ(d["best"]["schedule"].size(), 3u);
  EXPECT_EQ(d["best"]["schedule"][1]["member"], 2);
  EXPECT_EQ(d["best"]["schedule"][1]["from"], 4);
  EXPECT_EQ(d["best"]["schedule"][1]["to"], 8);
  EXPECT_EQ(d["best"]["root"], 0);
}

TEST(Report, HyperparameterHistoryStartsFromTheFirstEventsOldH) {
  const RunData run = hand_run();
  const Lineage lineage = lineage_of(run);
  std::vector<ScheduleSegment> m2;
  for (const auto& s : hyperparameter_history(run, lineage))
    if (s.member == 2) m2.push_back(s);
  ASSERT_EQ(m2.size(), 2u);
  EXPECT_EQ(m2[0].from_step, 0);
  EXPECT_EQ(m2[0].to_step, 4);
  EXPECT_EQ(m2[0].h, H(0.3));
  EXPECT_EQ(cause_of(lineage, m2[0]), "initial");
  EXPECT_EQ(m2[1].from_step, 4);
  EXPECT_EQ(m2[1].to_step, 12);
  EXPECT_EQ(m2[1].h, H(0.36));
  EXPECT_EQ(cause_of(lineage, m2[1]), "exploit");
  EXPECT_EQ(donor_of(lineage, m2[1]), 0);
}

TEST(Report, DonorNodeFoundByCopiedScoreWhenTheStepIsUnknown) {
  RunData run = hand_run();
  run.events[0].donor_step = 999;  // not a node of m0: fall back to the score that was copied
  run.events[1].donor_step = 0;
  const Tree L = build_tree(run);
  EXPECT_EQ(L.nodes[node_at(L, 2, 4)].parent, node_at(L, 0, 4));
  EXPECT_EQ(L.nodes[node_at(L, 1, 8)].parent, node_at(L, 2, 8));
}

TEST(Report, HyperparameterOnlyCopyKeepsTheModelsLineage) {
  RunData run = hand_run();
  run.events[1].copied = CopyMode::hyperparameters;
  const Tree L = build_tree(run);
  EXPECT_EQ(L.nodes[node_at(L, 1, 8)].parent, node_at(L, 1, 4));
  EXPECT_EQ(L.nodes[node_at(L, 1, 8)].link, Link::train);
  ASSERT_EQ(L.h_copies.size(), 1u);
  EXPECT_EQ(L.h_copies[0].from, node_at(L, 2, 8));
  EXPECT_EQ(L.h_copies[0].to, node_at(L, 1, 8));
  EXPECT_EQ(L.nodes[node_at(L, 1, 12)].root, 1);
}

TEST(Report, ALoopInOddDataDoesNotHang) {
  RunData run = hand_run();
  // m0 "copies" m2 at step 4 while m2 copies m0 at step 4: a cycle of parents.
  run.events.push_back(copy(0, 4, 2, 4, CopyMode::all, H(0.1), H(0.1), 0.5, 0.5, 0.5));
  const Tree L = build_tree(run);
  for (const auto& n : L.nodes) EXPECT_GE(n.root, 0);
  EXPECT_LE(ancestry_nodes(run, L, 1).size(), L.nodes.size());
  EXPECT_EQ(page_data(run)["best"]["member"], 1);
}

TEST(Report, NoConfigFallsBackToScoredSteps) {
  RunData run = hand_run();
  run.info.config = "this is not TOML [";
  const Tree L = build_tree(run);
  EXPECT_EQ(L.nodes.size(), 9u);
  const auto d = page_data(run);
  EXPECT_EQ(d["params"].size(), 2u);
}

TEST(Report, PageDataHasOneCurvePerMemberAndTheJumpAtACopy) {
  const auto d = page_data(hand_run());
  ASSERT_EQ(d["curves"].size(), 3u);
  EXPECT_EQ(d["tree"]["m"].size(), 9u);
  const auto& m1 = d["curves"][1];
  EXPECT_EQ(m1["member"], 1);
  ASSERT_EQ(m1["pieces"].size(), 2u);
  EXPECT_EQ(m1["pieces"][0]["s"], nlohmann::json({4, 8}));
  EXPECT_EQ(m1["pieces"][1]["s"], nlohmann::json({8, 12}));  // starts at the copied model's score
  EXPECT_DOUBLE_EQ(m1["pieces"][1]["v"][0].get<double>(), 0.65);
  EXPECT_DOUBLE_EQ(m1["pieces"][1]["jump"].get<double>(), 0.3);
  EXPECT_EQ(d["best"]["member"], 1);
  EXPECT_EQ(d["best"]["schedule"].size(), 3u);
  EXPECT_EQ(d["lineages"][0]["root"], 0);
  EXPECT_EQ(d["lineages"][0]["final"], 3);
}

// m2 copies m0's model when m0 is ahead (at 8, m2 at 4): m2's model, and m1's copy of it at
// 8, were trained more steps than their members ran. m0 trained only its own 12.
TEST(Report, TrainedStepsAndEfficiencyInThePageAndTheMembersExport) {
  RunData run = hand_run();
  run.events[0].donor_step = 8;
  const auto d = page_data(run);
  ASSERT_EQ(d["members"].size(), 3u);
  EXPECT_EQ(d["members"][0]["trained_steps"], 12);
  EXPECT_EQ(d["members"][0]["efficiency"], 1.0);
  EXPECT_EQ(d["members"][1]["trained_steps"], 16);  // m2's 8 + 4 own before the copy at 8, then 4 own
  EXPECT_DOUBLE_EQ(d["members"][1]["efficiency"].get<double>(), 1.333333);  // 16 / 12, shown to 7 digits
  EXPECT_EQ(d["members"][2]["trained_steps"], 16);                          // m0's 8, then its own 4..12
  EXPECT_DOUBLE_EQ(d["median_efficiency"].get<double>(), 1.333333);
  EXPECT_EQ(d["best"]["member"], 1);
  EXPECT_EQ(d["best"]["trained_steps"], 16);
  EXPECT_DOUBLE_EQ(d["best"]["efficiency"].get<double>(), 1.333333);
  std::int64_t schedule_steps = 0;
  for (const auto& s : d["best"]["schedule"])
    schedule_steps += s["to"].get<std::int64_t>() - s["from"].get<std::int64_t>();
  EXPECT_EQ(schedule_steps, 16) << "the trained steps are the inherited schedule's length";
  EXPECT_NE(render_html(run).find("median efficiency 1.333 (trained steps / step)"), std::string::npos);

  const std::string csv = export_members(run, Format::csv);
  EXPECT_EQ(csv,
            "member,step,trained_steps,efficiency,score,done,failed,<script>alert(1)</script>,lr\n"
            "0,12,12,1,0.7,true,false,a,0.1\n"
            "1,12,16,1.3333333333333333,0.9,true,false,<script>alert(1)</script>,0.43\n"
            "2,12,16,1.3333333333333333,0.8,true,false,a,0.36\n");

  // A member at step 0 has no efficiency yet: null, an empty field, no median share.
  run.population[0].step = 0;
  run.population[0].score.reset();
  std::istringstream jl(export_members(run, Format::jsonl));
  std::string line;
  std::vector<nlohmann::json> rows;
  while (std::getline(jl, line)) rows.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0]["trained_steps"], 0);
  EXPECT_TRUE(rows[0]["efficiency"].is_null());
  EXPECT_TRUE(rows[0]["score"].is_null());
  EXPECT_EQ(rows[1]["trained_steps"], 16);
  EXPECT_DOUBLE_EQ(rows[1]["efficiency"].get<double>(), 16.0 / 12);
  EXPECT_EQ(rows[1]["h"]["lr"], 0.43);
  EXPECT_NE(export_members(run, Format::csv).find("\n0,0,0,,,true,false,a,0.1\n"), std::string::npos);
  EXPECT_TRUE(page_data(run)["members"][0]["efficiency"].is_null());
}

TEST(Report, EscapingHelpers) {
  EXPECT_EQ(html_escape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  EXPECT_EQ(script_json(nlohmann::json{{"k", "</script><b>&"}}), R"({"k":"\u003c/script\u003e\u003cb\u003e\u0026"})");
  EXPECT_EQ(script_json(nlohmann::json("a\xe2\x80\xa8z")), "\"a\\u2028z\"");
  // Escaped JSON reads back as the same value.
  const nlohmann::json j = {{kXss, {kXss, 1.5}}};
  EXPECT_EQ(nlohmann::json::parse(script_json(j)), j);
}

TEST(Report, ValuesFromTheConfigOrTrainerAppearOnlyEscaped) {
  RunData run = hand_run();
  run.info.name = "x" + kXss;
  run.info.origin = kXss + ".toml";
  run.population[0].metrics = {{kXss, kXss}};
  const std::string html = render_html(run);
  EXPECT_EQ(html.find(kXss), std::string::npos) << "the payload appears unescaped";
  EXPECT_EQ(html.find("alert(1)</script"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);  // tables, config, title
  EXPECT_NE(html.find("\\u003cscript\\u003ealert(1)\\u003c/script\\u003e"), std::string::npos);  // the data
  // Only the page's own two script elements.
  EXPECT_EQ(count(html, "<script"), 2u);
  EXPECT_EQ(count(html, "</script>"), 2u);
  // Nothing is fetched: no URL to load from, and a policy that forbids it.
  // (the one URL is the SVG namespace, an identifier that is never fetched)
  EXPECT_EQ(count(html, "http:") + count(html, "https:"), count(html, "'http://www.w3.org/2000/svg'"));
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
  EXPECT_EQ(html.find(" src="), std::string::npos);
  EXPECT_NE(html.find("default-src 'none'"), std::string::npos);
}

TEST(Report, ExportsCsvAndJsonLines) {
  RunData run = hand_run();
  run.population[1].h[kXss] = std::string("a,\"b\"");
  run.events[1].new_h[kXss] = std::string("a,\"b\"");

  const std::string scores = export_scores(run, Format::csv);
  EXPECT_EQ(scores.substr(0, scores.find('\n')), "member,step,score");
  EXPECT_NE(scores.find("\n2,8,0.65\n"), std::string::npos);

  const std::string hyper = export_hyperparameters(run, Format::csv);
  std::istringstream in(hyper);
  std::string header, line;
  std::getline(in, header);
  // columns in the config's order (its tables are read sorted by name)
  EXPECT_EQ(header, "member,from_step,to_step,cause,donor,<script>alert(1)</script>,lr");
  std::vector<std::string> rows;
  while (std::getline(in, line)) rows.push_back(line);
  EXPECT_EQ(rows.size(), 5u);  // m0: 1, m1: 2, m2: 2
  EXPECT_NE(std::find(rows.begin(), rows.end(), "1,8,12,exploit,2,\"a,\"\"b\"\"\",0.43"), rows.end()) << hyper;

  const std::string events = export_events(run, Format::csv);
  EXPECT_EQ(events.substr(0, events.find('\n')),
            "member,step,kind,donor,donor_step,copied,old_score,donor_score,new_score,worker,time,"
            "old.<script>alert(1)</script>,old.lr,new.<script>alert(1)</script>,new.lr");

  std::istringstream jl(export_events(run, Format::jsonl));
  int n = 0;
  while (std::getline(jl, line)) {
    auto j = nlohmann::json::parse(line);
    EXPECT_TRUE(j.contains("donor_step"));
    ++n;
  }
  EXPECT_EQ(n, 2);
  std::istringstream hj(export_hyperparameters(run, Format::jsonl));
  std::getline(hj, line);
  auto first = nlohmann::json::parse(line);
  EXPECT_EQ(first["member"], 0);
  EXPECT_EQ(first["cause"], "initial");
  EXPECT_EQ(first["h"]["lr"], 0.1);
}

TEST(Report, ReadsARunFromAStore) {
  auto store = open_store("memory:");
  auto cfg = parse_config(kConfig, "hand.toml");
  create_or_join(*store, cfg);
  const RunData run = read_run(*store, "hand");
  EXPECT_EQ(run.population.size(), 3u);
  EXPECT_TRUE(run.events.empty());
  // A run that has not started: no nodes, the page still builds.
  EXPECT_TRUE(build_tree(run).nodes.empty());
  const std::string html = render_html(run);
  EXPECT_NE(html.find("id=\"pbt-data\""), std::string::npos);
  EXPECT_THROW(read_run(*store, "nope"), Error);
}
