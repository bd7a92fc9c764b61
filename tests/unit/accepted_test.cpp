// The h a trainable accepted (Trainable::accepted, the apply reply's "h" of protocol 1.3):
// checked against [space] with a message naming the hyperparameter, and recorded as the h in
// force (published, in the events); the apply reply's "h" as the engine reads it.
#include <gtest/gtest.h>

#include <cmath>

#include "pbt/pbt.hpp"
#include "trainables/external/process.hpp"

using namespace pbt;

namespace {

Param param(const std::string& name, Param::Kind kind, double low = 0, double high = 1) {
  Param p;
  p.name = name;
  p.kind = kind;
  p.low = low;
  p.high = high;
  return p;
}

SearchSpace batch_space() {
  Param act = param("act", Param::Kind::Categorical);
  act.choices = {"relu", "tanh"};
  return SearchSpace({param("batch", Param::Kind::Int, 16, 512), param("minibatch", Param::Kind::Int, 4, 256),
                      param("lr", Param::Kind::Float, 1e-4, 0.1), act});
}

Hyperparams good() {
  return {{"batch", std::int64_t{64}}, {"minibatch", std::int64_t{16}}, {"lr", 0.01}, {"act", "relu"}};
}

Hyperparams with(Hyperparams h, const std::string& name, Value v) {
  h[name] = std::move(v);
  return h;
}

}  // namespace

TEST(AcceptedH, FitsTheSpaceOrSaysWhichValueDoesNot) {
  const SearchSpace s = batch_space();
  EXPECT_EQ(s.problem(good()), "");
  EXPECT_EQ(s.problem(with(good(), "lr", std::int64_t{0})), "'lr' = 0 is outside its bounds [0.0001, 0.1]");
  EXPECT_EQ(s.problem(with(good(), "batch", std::int64_t{1024})), "'batch' = 1024 is outside its bounds [16, 512]");
  // The exact value: %.4g would show 0.1 for a value just past the bound.
  EXPECT_EQ(s.problem(with(good(), "lr", 0.1000001)), "'lr' = 0.1000001 is outside its bounds [0.0001, 0.1]");
  EXPECT_EQ(s.problem(with(good(), "batch", 64.0)), "'batch' = 64.0: expected an integer (an int), got a float");
  EXPECT_EQ(s.problem(with(good(), "act", std::int64_t{1})),
            "'act' = 1: expected a string (a categorical), got an integer");
  EXPECT_EQ(s.problem(with(good(), "act", "gelu")), "'act' = \"gelu\" is not one of its choices (relu, tanh)");
  EXPECT_EQ(s.problem(with(good(), "lr", "fast")), "'lr' = \"fast\": expected a number (a float), got a string");
  EXPECT_EQ(s.problem(with(good(), "momentum", 0.9)), "'momentum' = 0.9 is not a hyperparameter declared in [space]");
  Hyperparams missing = good();
  missing.erase("minibatch");
  EXPECT_EQ(s.problem(missing), "'minibatch' is missing (every hyperparameter of [space] must be given)");
  // An integer for a float is that number (the worker stores it as a float).
  EXPECT_EQ(s.problem(with(good(), "lr", std::int64_t{1})), "'lr' = 1 is outside its bounds [0.0001, 0.1]");
}

TEST(AcceptedH, TheApplyReplysHIsReadWhenGivenAndRefusedWhenMalformed) {
  using nlohmann::json;
  EXPECT_FALSE(protocol::read_apply(json::parse(R"({"id":3,"ok":true})")).has_value());
  const auto h = protocol::read_apply(json::parse(R"({"id":3,"ok":true,"h":{"batch":64,"lr":0.5,"act":"relu"}})"));
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(*h, (Hyperparams{{"batch", std::int64_t{64}}, {"lr", 0.5}, {"act", "relu"}}));
  try {
    protocol::read_apply(json::parse(R"({"id":3,"ok":true,"h":{"batch":64,"fused":true}})"));
    FAIL() << "a bool is no hyperparameter value";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "protocol error: the apply reply's \"h\" is refused: hyperparameter 'fused' has a value that is "
              "neither number nor string: true");
  }
  try {
    protocol::read_apply(json::parse(R"({"id":3,"ok":true,"h":[64]})"));
    FAIL() << "an array is no h";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the apply reply's \"h\" is not an object of hyperparameters"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(kProtocolMinor, 3);
  EXPECT_EQ(kAcceptedSinceMinor, 3);
}

namespace {

// A trainable with a rule of its own: batch >= 2 x minibatch. With `enforce`, apply() lowers
// the minibatch to fit and says so through accepted(); `bad` accepts a batch outside [space].
// Score: a member gains more per step the closer its minibatch is to 64 (so that members differ
// and truncation copies), kept in the checkpoint.
struct Rule {
  bool enforce = true;
  bool bad = false;
};
Rule rule;

class Ruled : public Trainable {
 public:
  void apply(const Hyperparams& h) override {
    accepted_ = h;
    const auto batch = std::get<std::int64_t>(h.at("batch"));
    auto minibatch = std::get<std::int64_t>(h.at("minibatch"));
    if (rule.enforce && batch < 2 * minibatch) minibatch = batch / 2;
    accepted_["minibatch"] = minibatch;
    if (rule.bad) accepted_["batch"] = std::int64_t{9999};
    minibatch_ = static_cast<double>(minibatch);
  }
  std::optional<Hyperparams> accepted() const override {
    if (!rule.enforce && !rule.bad) return std::nullopt;
    return accepted_;
  }
  void step(std::int64_t n) override { x_ += n * (1.0 - std::fabs(minibatch_ - 64) / 256); }
  Score eval() override { return {x_, {}, {}}; }
  void save(CheckpointWriter& out) const override { out.write(x_); }
  void load(CheckpointReader& in) override { x_ = in.read<double>(); }

 private:
  Hyperparams accepted_;
  double minibatch_ = 0, x_ = 0;
};

const char* kRuledConfig = R"(name = "ruled"
seed = 5
population = 4
[trainable]
kind = "ruled"
[budget]
steps = 40
[ready]
interval = 4
[exploit]
strategy = "truncation"
fraction = 0.25
[explore]
strategy = "perturb"
factors = [0.5, 2.0]
resample_probability = 0.25
[space.batch]
type = "int"
low = 16
high = 512
[space.minibatch]
type = "int"
low = 4
high = 256
[[initial]]
batch = 64
minibatch = 16
[[initial]]
batch = 128
minibatch = 32
[[initial]]
batch = 256
minibatch = 64
[[initial]]
batch = 512
minibatch = 128
)";

struct RuledRun {
  std::unique_ptr<Store> store = open_store("memory:");
  std::vector<MemberState> pop;
  std::vector<Event> events;
  explicit RuledRun(Rule r, bool sync = false) {
    rule = r;
    register_trainable("ruled", [](const TrainableContext&) { return std::make_unique<Ruled>(); });
    ExperimentConfig c = parse_config(kRuledConfig, "ruled.toml");
    c.ready.sync = sync;
    c.max_failures = 2;
    create_or_join(*store, c);
    WorkerOptions opt;
    opt.id = "w0";
    run_worker(*store, c.name, opt);
    pop = store->population(c.name);
    events = store->events(c.name);
  }
};

bool obeys(const Hyperparams& h) {
  return std::get<std::int64_t>(h.at("batch")) >= 2 * std::get<std::int64_t>(h.at("minibatch"));
}

}  // namespace

TEST(AcceptedH, WhatTheTrainableAcceptedIsTheHInForceInTheStoreAndTheEvents) {
  RuledRun r({/*enforce=*/true, /*bad=*/false});
  ASSERT_EQ(r.pop.size(), 4u);
  for (const auto& m : r.pop) {
    EXPECT_TRUE(m.done) << m.id << ": " << m.last_error;
    EXPECT_TRUE(obeys(m.h)) << m.id << ": " << to_string(m.h);
  }
  ASSERT_GT(r.events.size(), 3u);
  for (const auto& e : r.events) {
    EXPECT_TRUE(obeys(e.old_h)) << e.member << "@" << e.step << ": " << to_string(e.old_h);
    EXPECT_TRUE(obeys(e.new_h)) << e.member << "@" << e.step << ": " << to_string(e.new_h);
  }
}

TEST(AcceptedH, InSyncModeTheStoreHoldsWhatTheTrainableAccepted) {
  // A generation's events are written before its members train (docs/protocol.md): they keep
  // the h sent, and what each member publishes is what it accepted.
  RuledRun r({/*enforce=*/true, /*bad=*/false}, /*sync=*/true);
  for (const auto& m : r.pop) {
    EXPECT_TRUE(m.done) << m.id << ": " << m.last_error;
    EXPECT_TRUE(obeys(m.h)) << m.id << ": " << to_string(m.h);
  }
  for (const auto& e : r.events) EXPECT_TRUE(obeys(e.old_h)) << e.member << "@" << e.step << ": " << to_string(e.old_h);
}

TEST(AcceptedH, WithoutTheRuleExploreBreaksIt) {
  // The same run, the trainable silent: the events show perturbed h that break the rule, so
  // the test above can tell the difference.
  RuledRun r({/*enforce=*/false, /*bad=*/false});
  int broken = 0;
  for (const auto& e : r.events) broken += !obeys(e.new_h);
  EXPECT_GT(broken, 0);
}

TEST(AcceptedH, AnHOutsideTheSpaceFailsTheIntervalNamingTheValue) {
  RuledRun r({/*enforce=*/true, /*bad=*/true});
  for (const auto& m : r.pop) {
    EXPECT_TRUE(m.failed) << m.id;
    EXPECT_NE(m.last_error.find("the trainable accepted hyperparameters outside [space] ('batch' = 9999 is outside "
                                "its bounds [16, 512])"),
              std::string::npos)
        << m.last_error;
    EXPECT_EQ(m.step, 0) << "nothing is published from a refused h";
  }
}
