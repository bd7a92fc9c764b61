// Synchronous (generational) PBT, [ready] mode = "sync": a ready member waits until every live
// member has reached its step; then the whole generation decides against one snapshot.
#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include "pbt/pbt.hpp"
#include "common/toy_config.hpp"

using namespace pbt;
using pbt::test::ToyConfig;

namespace {

// The toy, except that one member's every step fails (a trainer that crashes for good).
class FailingToy : public Trainable {
 public:
  FailingToy(std::unique_ptr<Trainable> toy, bool fails) : toy_(std::move(toy)), fails_(fails) {}
  void apply(const Hyperparams& h) override { toy_->apply(h); }
  void step(std::int64_t n) override {
    if (fails_) throw std::runtime_error("this member's trainer crashes");
    toy_->step(n);
  }
  Score eval() override { return toy_->eval(); }
  void save(CheckpointWriter& out) const override { toy_->save(out); }
  void load(CheckpointReader& in) override { toy_->load(in); }

 private:
  std::unique_ptr<Trainable> toy_;
  bool fails_;
};

constexpr int kFailing = 2;

void register_failing_toy() {
  register_builtin_trainables();
  register_trainable("failing_toy", [](const TrainableContext& ctx) {
    return std::make_unique<FailingToy>(make_trainable("toy", ctx), ctx.member == kFailing);
  });
}

// Wraps a store and records every publish, in the order the store took them.
class RecordingStore : public Store {
 public:
  explicit RecordingStore(std::unique_ptr<Store> inner) : inner_(std::move(inner)) {}
  std::vector<std::pair<int, std::int64_t>> published() {
    std::lock_guard<std::mutex> lock(mutex_);
    return published_;
  }

  void create_experiment(const ExperimentInfo& i, const std::vector<MemberState>& m) override {
    inner_->create_experiment(i, m);
  }
  std::optional<ExperimentInfo> experiment(const std::string& n) override { return inner_->experiment(n); }
  std::vector<std::string> experiments() override { return inner_->experiments(); }
  std::optional<Leased> lease(const std::string& e, const std::string& w, double s) override {
    return inner_->lease(e, w, s);
  }
  void heartbeat(const Lease& l, double s) override { inner_->heartbeat(l, s); }
  void publish(Lease& l, const Publication& p) override {
    std::lock_guard<std::mutex> lock(mutex_);  // the record's order is the store's
    inner_->publish(l, p);
    published_.push_back({l.member, p.step});
  }
  void release(const Lease& l) override { inner_->release(l); }
  void decide(const std::string& e, const std::vector<Decision>& d) override { inner_->decide(e, d); }
  void finish(const std::string& e) override { inner_->finish(e); }
  bool fail(const Lease& l, const std::string& error, int max_failures) override {
    return inner_->fail(l, error, max_failures);
  }
  std::vector<MemberState> population(const std::string& e) override { return inner_->population(e); }
  std::string checkpoint(const std::string& id) override { return inner_->checkpoint(id); }
  std::vector<Event> events(const std::string& e) override { return inner_->events(e); }
  std::vector<ScorePoint> scores(const std::string& e) override { return inner_->scores(e); }
  std::size_t collect_garbage() override { return inner_->collect_garbage(); }
  double now() override { return inner_->now(); }

 private:
  std::unique_ptr<Store> inner_;
  std::mutex mutex_;
  std::vector<std::pair<int, std::int64_t>> published_;
};

ToyConfig sync_toy(int population) {
  return ToyConfig("sync")
      .seed(7)
      .population(population)
      .steps(40)
      .set("ready.mode", "\"sync\"")
      .set("ready.eval_every", "1")
      .set("exploit.fraction", "0.34");
}

// Runs `workers` workers (threads of this process) to the end.
void run_workers(Store& store, const std::string& experiment, int workers) {
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w)
    threads.emplace_back([&store, &experiment, w] {
      WorkerOptions opt;
      opt.id = "w" + std::to_string(w);
      opt.idle_sleep_seconds = 0.001;
      run_worker(store, experiment, opt);
    });
  for (auto& t : threads) t.join();
}

// What two runs must agree on: the events, less the worker and the time.
nlohmann::json comparable(const std::vector<Event>& evs) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& e : evs)
    j.push_back({e.member, e.step, to_string(e.kind), e.donor, e.donor_step, to_string(e.copied), to_json(e.old_h),
                 to_json(e.new_h), e.old_score, e.donor_score, e.donor_checkpoint});
  return j;
}

nlohmann::json run_alone(const std::string& config, std::int64_t stop_after = -1) {
  auto store = open_store("memory:");
  create_or_join(*store, parse_config(config, "sync.toml"));
  WorkerOptions opt;
  opt.id = "only";
  if (stop_after >= 0) {  // a worker stopped mid-generation, then another one resumes
    opt.max_intervals = stop_after;
    run_worker(*store, "sync", opt);
    opt.id = "resumer";
    opt.max_intervals = -1;
  }
  run_worker(*store, "sync", opt);
  for (const auto& m : store->population("sync")) EXPECT_TRUE(m.done) << "member " << m.id;
  return comparable(store->events("sync"));
}

}  // namespace

TEST(Sync, NoMemberTrainsPastAGenerationUntilEveryMemberHasReachedIt) {
  RecordingStore store(open_store("memory:"));
  const ExperimentConfig cfg = parse_config(sync_toy(6).text(), "sync.toml");
  create_or_join(store, cfg);
  run_workers(store, "sync", 3);

  std::map<int, std::int64_t> at;  // each member's published step, in publish order
  for (int m = 0; m < 6; ++m) at[m] = 0;
  for (const auto& [member, step] : store.published()) {
    const std::int64_t generation = step - cfg.ready.interval;  // where it decided before training
    for (const auto& [other, other_step] : at)
      EXPECT_GE(other_step, generation) << "member " << member << " published step " << step << " while member "
                                        << other << " was still at step " << other_step;
    at[member] = step;
  }
  std::map<std::pair<int, std::int64_t>, double> evaluated;
  for (const auto& p : store.scores("sync")) evaluated[{p.member, p.step}] = p.score;
  int copies = 0;
  for (const auto& e : store.events("sync")) {
    if (e.kind != EventKind::exploit) continue;
    copies++;
    // One snapshot: the recipient's and the donor's scores are both their evals at this step.
    EXPECT_EQ(e.donor_step, e.step);
    EXPECT_EQ(e.old_score, evaluated.at({e.member, e.step}));
    EXPECT_EQ(e.donor_score, evaluated.at({e.donor, e.step}));
    EXPECT_GT(e.donor_score, e.old_score);
  }
  EXPECT_GT(copies, 5);
  for (const auto& m : store.population("sync")) {
    EXPECT_TRUE(m.done);
    EXPECT_EQ(m.step, 40);
  }
}

// One worker with a fixed seed replays exactly, and so does a run stopped in the middle of a
// generation (some members at its step, some behind) and resumed by a new worker.
TEST(Sync, OneWorkerGivesTheSameEventLogEveryTimeAndAcrossAResume) {
  const std::string config = sync_toy(5).text();
  const nlohmann::json first = run_alone(config);
  ASSERT_GT(first.size(), 5u);
  EXPECT_EQ(run_alone(config), first);
  for (std::int64_t stop : {2, 7, 13}) EXPECT_EQ(run_alone(config, stop), first) << "stopped after " << stop;
}

TEST(Sync, AFailedMemberIsLeftOutAndTheOthersGoOn) {
  register_failing_toy();
  auto store = open_store("memory:");
  const std::string config = sync_toy(5).set("trainable.kind", "\"failing_toy\"").text();
  create_or_join(*store, parse_config(config, "sync.toml"));
  run_workers(*store, "sync", 2);
  int copies = 0;
  for (const auto& m : store->population("sync")) {
    if (m.id == kFailing) {
      EXPECT_TRUE(m.failed);
      EXPECT_EQ(m.step, 0);
      continue;
    }
    EXPECT_TRUE(m.done) << "member " << m.id;
    EXPECT_EQ(m.step, 40);
  }
  for (const auto& e : store->events("sync")) {
    EXPECT_NE(e.member, kFailing);
    EXPECT_NE(e.donor, kFailing);
    copies += e.kind == EventKind::exploit;
  }
  EXPECT_GT(copies, 0);
}

// A copy in a generation points the member at its donor's checkpoint; the trainable that
// loads it is told, with a seed of the member's own, so two copies of one donor differ.
TEST(Sync, ACopyIsToldItIsANewMember) {
  struct Told {
    std::mutex mutex;
    std::vector<std::pair<int, Copied>> copies;  // (member, what it was told)
  };
  static Told told;
  class Listening : public Trainable {
   public:
    Listening(std::unique_ptr<Trainable> toy, int member) : toy_(std::move(toy)), member_(member) {}
    void apply(const Hyperparams& h) override { toy_->apply(h); }
    void step(std::int64_t n) override { toy_->step(n); }
    Score eval() override { return toy_->eval(); }
    void save(CheckpointWriter& out) const override { toy_->save(out); }
    void load(CheckpointReader& in) override { toy_->load(in); }
    void copied(const Copied& from) override {
      std::lock_guard<std::mutex> lock(told.mutex);
      told.copies.push_back({member_, from});
    }

   private:
    std::unique_ptr<Trainable> toy_;
    int member_;
  };
  register_builtin_trainables();
  register_trainable("listening_toy", [](const TrainableContext& ctx) {
    return std::make_unique<Listening>(make_trainable("toy", ctx), ctx.member);
  });
  for (const char* mode : {"sync", "async"}) {
    told.copies.clear();
    auto store = open_store("memory:");
    create_or_join(*store, parse_config(sync_toy(6)
                                            .set("ready.mode", std::string("\"") + mode + "\"")
                                            .set("trainable.kind", "\"listening_toy\"")
                                            .text(),
                                        "sync.toml"));
    run_workers(*store, "sync", 1);
    std::map<std::pair<int, std::int64_t>, int> copied_at;  // (member, step) -> donor, from the events
    const ExperimentConfig cfg = parse_config(sync_toy(6).text(), "sync.toml");
    for (const auto& e : store->events("sync"))
      if (e.kind == EventKind::exploit) copied_at[{e.member, e.step}] = e.donor;
    ASSERT_FALSE(copied_at.empty()) << mode;
    EXPECT_EQ(told.copies.size(), copied_at.size()) << mode;  // told once per copy of weights
    std::set<std::uint64_t> seeds;
    for (const auto& [member, from] : told.copies) {
      bool found = false;
      for (const auto& [at, donor] : copied_at)
        if (at.first == member && donor == from.donor && from.seed == derive_seed(cfg.seed, member, at.second, kCopy))
          found = true;
      EXPECT_TRUE(found) << mode << ": member " << member << " told of a copy of member " << from.donor
                         << " that the events do not show";
      seeds.insert(from.seed);
    }
    EXPECT_EQ(seeds.size(), told.copies.size()) << mode << ": every copy draws a seed of its own";
  }
}
