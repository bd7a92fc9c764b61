// The worker loop (Algorithm 1) on the in-memory store, in this process.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <set>
#include <tuple>

#include "pbt/pbt.hpp"
#include "common/toy_config.hpp"

using namespace pbt;
using pbt::test::ToyConfig;

namespace {

// The toy run these tests share: two members, 100 steps, an eval at every step, truncation
// copying weights and gaussian explore; `exploit` and `explore` pick other strategies (the
// fraction and sigma come only with truncation and gaussian). Its members are drawn from the
// prior; toy() starts them at the paper's Figure 2 points.
ToyConfig toy_from_the_prior(const std::string& exploit = "truncation", const std::string& explore = "gaussian") {
  ToyConfig c;
  c.seed(0).population(2).steps(100).set("ready.eval_every", "1");
  c.set("exploit.strategy", ToyConfig::quoted(exploit));
  if (exploit == "truncation") c.set("exploit.fraction", "0.5");
  c.set("exploit.copy", ToyConfig::quoted("weights"));
  c.set("explore.strategy", ToyConfig::quoted(explore));
  if (explore == "gaussian") c.set("explore.sigma", "0.1");
  return c;
}
ToyConfig toy(const std::string& exploit = "truncation", const std::string& explore = "gaussian") {
  return toy_from_the_prior(exploit, explore).figure2_start();
}

std::string replace(std::string s, const std::string& a, const std::string& b) {
  auto pos = s.find(a);
  EXPECT_NE(pos, std::string::npos) << a;
  return s.replace(pos, a.size(), b);
}

struct ToyRun {
  std::unique_ptr<Store> store = open_store("memory:");
  WorkerStats stats;
  explicit ToyRun(const std::string& text) {
    ExperimentConfig c = parse_config(text, "test.toml");
    create_or_join(*store, c);
    WorkerOptions opt;
    opt.id = "w0";
    stats = run_worker(*store, c.name, opt);
  }
  std::vector<MemberState> pop(const std::string& name = "toy") { return store->population(name); }
};

nlohmann::json comparable(const std::vector<Event>& evs) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& e : evs)
    j.push_back({e.member, e.step, e.kind, e.donor, e.copied, to_json(e.old_h), to_json(e.new_h), e.old_score,
                 e.donor_score, e.new_score.value_or(-1), e.donor_checkpoint});
  return j;
}

}  // namespace

TEST(Worker, ToyReachesTheOptimumAndEveryMemberReachesTheBudget) {
  ToyRun r(toy());
  auto pop = r.pop();
  ASSERT_EQ(pop.size(), 2u);
  for (const auto& m : pop) {
    EXPECT_TRUE(m.done);
    EXPECT_EQ(m.step, 100);
    EXPECT_FALSE(m.checkpoint.empty());
    for (const auto& [k, v] : m.h) {
      EXPECT_GE(std::get<double>(v), 0.0);
      EXPECT_LE(std::get<double>(v), 1.0);
    }
  }
  EXPECT_GE(std::max(*pop[0].score, *pop[1].score), 1.188);
  EXPECT_GT(r.stats.exploits, 5);
  EXPECT_EQ(r.stats.intervals, 50);  // 2 members x 100 steps / interval 4
  // A score point for every eval (eval_every = 1).
  EXPECT_EQ(r.store->scores("toy").size(), 2u * 100u + r.stats.exploits * 0);
}

TEST(Worker, GridSearchStallsAtPointThreeNine) {
  ToyRun r(toy("none", "none"));
  for (const auto& m : r.pop()) EXPECT_NEAR(*m.score, 1.2 - 0.81, 1e-3);
  EXPECT_TRUE(r.store->events("toy").empty());  // no copy, so no explore either
}

TEST(Worker, OneWorkerWithFixedSeedReplaysExactly) {
  ToyRun a(toy()), b(toy());
  auto ea = a.store->events("toy"), eb = b.store->events("toy");
  ASSERT_FALSE(ea.empty());
  EXPECT_EQ(comparable(ea), comparable(eb));
  ToyRun c(toy().seed(1));
  EXPECT_NE(comparable(ea), comparable(c.store->events("toy")));
}

TEST(Worker, HyperparametersInForceAreTheStoresAfterExplore) {
  ToyRun r(toy().set("exploit.copy", ToyConfig::quoted("all")));
  auto evs = r.store->events("toy");
  ASSERT_FALSE(evs.empty());
  for (const auto& m : r.pop()) {
    const Event* last = nullptr;
    for (const auto& e : evs)
      if (e.member == m.id) last = &e;
    if (last) {
      EXPECT_EQ(m.h, last->new_h);
    }
  }
  for (const auto& e : evs) {
    EXPECT_EQ(e.kind, EventKind::exploit);
    EXPECT_GE(e.donor_score, e.old_score);  // only better (or tied, lower id) members are copied
    EXPECT_NE(e.donor, e.member);
  }
}

TEST(Worker, ExploreAlwaysExploresWithoutCopying) {
  ToyRun r(toy("none").set("explore.always", "true"));
  auto evs = r.store->events("toy");
  EXPECT_EQ(evs.size(), 2u * 24u);  // every ready step but the last (no decision at the budget)
  for (const auto& e : evs) {
    EXPECT_EQ(e.kind, EventKind::explore);
    EXPECT_EQ(e.donor, -1);
  }
}

TEST(Worker, TargetScoreFinishesTheRun) {
  ToyRun r(toy().steps(1000).set("budget.target_score", "1.1"));
  auto info = r.store->experiment("toy");
  EXPECT_TRUE(info->finished);
  double best = -1e9;
  std::int64_t steps = 0;
  for (const auto& m : r.pop()) {
    best = std::max(best, *m.score);
    steps = std::max(steps, m.step);
  }
  EXPECT_GE(best, 1.1);
  EXPECT_LT(steps, 1000);
}

namespace {
// A trainable that misbehaves on purpose: member 1 diverges (NaN) or throws.
class Faulty : public Trainable {
 public:
  Faulty(int member, std::string mode) : member_(member), mode_(std::move(mode)) {}
  void apply(const Hyperparams& h) override { x_ = std::get<double>(h.at("x")); }
  void step(std::int64_t n) override {
    if (mode_ == "throw" && member_ == 1) throw std::runtime_error("CUDA out of memory (pretend)");
    steps_ += n;
  }
  Score eval() override {
    if (mode_ == "nan" && member_ == 1 && !copied_) return {std::nan(""), {}, {}};
    return {x_ + steps_ * 1e-3, {}, {}};
  }
  void save(CheckpointWriter& w) const override {
    w.write(steps_);
    w.write(copied_);
  }
  void load(CheckpointReader& r) override {
    steps_ = r.read<std::int64_t>();
    r.read<bool>();
    copied_ = true;  // loaded from someone: no longer the diverged model
  }

 private:
  int member_;
  std::string mode_;
  double x_ = 0;
  std::int64_t steps_ = 0;
  bool copied_ = false;
};

const char* kFaulty = R"(
name = "faulty"
population = 3
[trainable]
kind = "faulty"
mode = "MODE"
[budget]
steps = 12
[ready]
interval = 4
[exploit]
strategy = "truncation"
fraction = 0.34
[explore]
strategy = "none"
[space.x]
low = 0.0
high = 1.0
)";

void register_faulty() {
  register_trainable("faulty", [](const TrainableContext& ctx) {
    return std::make_unique<Faulty>(ctx.member, ctx.options.at("mode").get<std::string>());
  });
}
}  // namespace

TEST(Worker, NonFiniteScoreRanksLastAndGetsReplaced) {
  register_faulty();
  ToyRun r(replace(kFaulty, "MODE", "nan"));
  auto pop = r.pop("faulty");
  for (const auto& m : pop) EXPECT_TRUE(m.done);
  // Member 1's first copy replaced its NaN (ranked lowest); later copies, if any, are
  // ordinary truncation of a healthy model.
  bool replaced = false;
  for (const auto& e : r.store->events("faulty"))
    if (e.member == 1 && !replaced) {
      replaced = true;
      EXPECT_EQ(e.old_score, kDivergedScore);
      EXPECT_EQ(e.step, 4);  // at its first ready
    }
  EXPECT_TRUE(replaced);
  EXPECT_TRUE(std::isfinite(*pop[1].score));
}

TEST(Worker, ACrashingMemberIsRetriedThenMarkedFailedAndTheRestRunsOn) {
  register_faulty();
  ToyRun r(replace(kFaulty, "MODE", "throw"));
  EXPECT_EQ(r.stats.failed_intervals, 3);  // [workers] max_failures defaults to 3
  for (const auto& m : r.pop("faulty")) {
    if (m.id == 1) {
      EXPECT_TRUE(m.failed);
      EXPECT_FALSE(m.done);
      EXPECT_EQ(m.failures, 3);
      EXPECT_EQ(m.last_error, "CUDA out of memory (pretend)");
      EXPECT_EQ(m.step, 0);  // nothing of a failed interval is published
    } else {
      EXPECT_TRUE(m.done);
      EXPECT_EQ(m.step, 12);
    }
  }
  for (const auto& e : r.store->events("faulty")) EXPECT_NE(e.donor, 1);
}

// A copied score is the donor's evidence: until the recipient evaluates again it still
// ranks but is never copied, so no copy is ever made of a member at the step where that
// member had itself just copied (one worker runs the members in lockstep, so without
// this rule a later member would see the copy's inherited score and copy the copy).
// A donor is chosen on a score it earned itself: every exploit's donor score is one of the
// donor's own evals at the donor's step (a member decides at the start of its next interval,
// so no score that merely came with a copy is ever published in async mode).
TEST(Worker, ADonorIsChosenOnAScoreItEvaluatedItself) {
  ToyRun r(toy_from_the_prior().population(6).set("exploit.fraction", "0.34"));  // six members drawn from the prior
  std::set<std::tuple<int, std::int64_t, double>> evaluated;
  for (const auto& p : r.store->scores("toy")) evaluated.insert({p.member, p.step, p.score});
  int exploits = 0;
  for (const auto& e : r.store->events("toy")) {
    if (e.kind != EventKind::exploit) continue;
    exploits++;
    EXPECT_TRUE(evaluated.count({e.donor, e.donor_step, e.donor_score}))
        << "member " << e.member << " at step " << e.step << " copied member " << e.donor << " at step " << e.donor_step
        << " on a score it did not evaluate: " << e.donor_score;
    EXPECT_GT(e.donor_score, e.old_score) << "a copy needs a strictly better donor";
    EXPECT_GE(e.donor_step, e.step) << "a donor behind the member would throw its steps away";
  }
  EXPECT_GT(exploits, 10);
  // So no copy threw training away: every member's model was trained for all of its steps.
  const ExperimentConfig cfg = parse_config(toy_from_the_prior().population(6).text(), "test.toml");
  const Lineage lineage(r.store->events("toy"), initial_hyperparams(cfg));
  for (const auto& m : r.pop("toy")) {
    EXPECT_FALSE(m.metrics.contains("copied_from"));
    EXPECT_GE(lineage.trained_steps(m.id, m.step), m.step) << "member " << m.id;
  }
}

namespace {
// The toy behind a trainable that either goes on to serve another member in place (as a
// process trainer of protocol 1.2 does) or, with `switch = false`, declines: then the
// worker builds a new one, the old behaviour.
class Switching : public Trainable {
 public:
  explicit Switching(const TrainableContext& ctx) : agree_(ctx.options.at("switch").get<bool>()) { build(ctx); }
  bool switch_member(const TrainableContext& ctx) override {
    if (!agree_) return false;
    build(ctx);  // as new: nothing of the previous member's model remains
    return true;
  }
  void apply(const Hyperparams& h) override { toy_->apply(h); }
  void step(std::int64_t n) override { toy_->step(n); }
  Score eval() override { return toy_->eval(); }
  void save(CheckpointWriter& w) const override { toy_->save(w); }
  void load(CheckpointReader& r) override { toy_->load(r); }
  void copied(const Copied& from) override { toy_->copied(from); }

 private:
  void build(const TrainableContext& ctx) {
    TrainableContext c = ctx;
    c.options.erase("switch");
    toy_ = make_trainable("toy", c);
  }
  bool agree_;
  std::unique_ptr<Trainable> toy_;
};
}  // namespace

// With more members than workers, a trainable that agrees to switch members is built once
// for the whole run, and the run is the same, score for score, as one that builds a new
// trainable at every switch.
TEST(Worker, ATrainableThatSwitchesMembersIsBuiltOnceAndChangesNothing) {
  register_builtin_trainables();
  register_trainable("switching", [](const TrainableContext& ctx) { return std::make_unique<Switching>(ctx); });
  auto config = [](bool agree) {
    return ToyConfig()
        .seed(3)
        .population(4)
        .steps(40)
        .workers(1)
        .set("trainable.kind", ToyConfig::quoted("switching"))
        .set("trainable.switch", agree ? "true" : "false");
  };
  ToyRun switched(config(true)), rebuilt(config(false));
  EXPECT_EQ(switched.stats.trainables_built, 1);
  EXPECT_GT(switched.stats.member_switches, 0);
  EXPECT_GT(rebuilt.stats.trainables_built, 4) << "the old behaviour: a new trainable at (nearly) every switch";
  EXPECT_EQ(rebuilt.stats.member_switches, 0);
  EXPECT_EQ(switched.stats.intervals, rebuilt.stats.intervals);
  auto a = switched.pop(), b = rebuilt.pop();
  ASSERT_EQ(a.size(), 4u);
  ASSERT_EQ(b.size(), 4u);
  for (std::size_t i = 0; i < a.size(); ++i) {
    SCOPED_TRACE("member " + std::to_string(i));
    EXPECT_TRUE(a[i].done);
    EXPECT_EQ(a[i].step, b[i].step);
    ASSERT_TRUE(a[i].score && b[i].score);
    EXPECT_EQ(*a[i].score, *b[i].score);
    EXPECT_EQ(a[i].checkpoint, b[i].checkpoint) << "the same bytes: each member went on from its own state";
  }
  EXPECT_EQ(comparable(switched.store->events("toy")), comparable(rebuilt.store->events("toy")));
  EXPECT_EQ(switched.store->scores("toy").size(), rebuilt.store->scores("toy").size());
}
