// A store that is briefly unreachable loses nothing: injected StoreErrors before and
// after commits still leave exactly one score point per member and step.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "pbt/pbt.hpp"

using namespace pbt;

namespace {

// Wraps a store and fails some calls: before delegating (nothing happened) or after
// (it happened, but the caller is told it failed, as with a dropped connection).
class FlakyStore : public Store {
 public:
  explicit FlakyStore(std::unique_ptr<Store> inner) : inner_(std::move(inner)) {}
  int failures = 0;
  bool enabled = true;

  void create_experiment(const ExperimentInfo& i, const std::vector<MemberState>& m) override {
    inner_->create_experiment(i, m);
  }
  std::optional<ExperimentInfo> experiment(const std::string& n) override { return inner_->experiment(n); }
  std::vector<std::string> experiments() override { return inner_->experiments(); }
  std::optional<Leased> lease(const std::string& e, const std::string& w, double s) override {
    fail_before("lease");
    auto r = inner_->lease(e, w, s);
    fail_after("lease");
    return r;
  }
  void heartbeat(const Lease& l, double s) override { inner_->heartbeat(l, s); }
  void publish(Lease& l, const Publication& p) override {
    fail_before("publish");
    inner_->publish(l, p);
    fail_after("publish");
  }
  void release(const Lease& l) override {
    fail_before("release");
    inner_->release(l);
  }
  void finish(const std::string& e) override { inner_->finish(e); }
  bool fail(const Lease& l, const std::string& error, int max_failures) override {
    return inner_->fail(l, error, max_failures);
  }
  std::vector<MemberState> population(const std::string& e) override {
    fail_before("population");
    return inner_->population(e);
  }
  std::string checkpoint(const std::string& id) override {
    fail_before("checkpoint");
    return inner_->checkpoint(id);
  }
  std::vector<Event> events(const std::string& e) override { return inner_->events(e); }
  std::vector<ScorePoint> scores(const std::string& e) override { return inner_->scores(e); }
  std::size_t collect_garbage() override { return inner_->collect_garbage(); }
  double now() override { return inner_->now(); }

 private:
  // Every 7th call of any kind fails before, every 11th after.
  void fail_before(const char* what) {
    if (enabled && ++calls_ % 7 == 0) {
      ++failures;
      throw StoreError(std::string("injected: store unreachable during ") + what);
    }
  }
  void fail_after(const char* what) {
    if (enabled && ++after_ % 11 == 0) {
      ++failures;
      throw StoreError(std::string("injected: connection dropped after ") + what);
    }
  }
  std::unique_ptr<Store> inner_;
  int calls_ = 0, after_ = 0;
};

const char* kConfig = R"(
name = "flaky"
seed = 2
population = 3
[trainable]
kind = "toy"
[budget]
steps = 24
[ready]
interval = 4
eval_every = 1
[exploit]
strategy = "truncation"
fraction = 0.34
[explore]
strategy = "perturb"
[space.h0]
low = 0.0
high = 1.0
[space.h1]
low = 0.0
high = 1.0
[workers]
lease_seconds = 5
)";

}  // namespace

TEST(WorkerFaults, TransientStoreErrorsLoseNothingAndDuplicateNothing) {
  FlakyStore store(open_store("memory:"));
  ExperimentConfig c = parse_config(kConfig, "flaky.toml");
  create_or_join(store, c);
  WorkerOptions opt;
  opt.id = "w";
  opt.store_retry_seconds = 0.001;
  std::vector<std::string> log;
  opt.log = [&](const std::string& l) { log.push_back(l); };
  WorkerStats stats = run_worker(store, "flaky", opt);
  store.enabled = false;

  EXPECT_GT(store.failures, 5);
  std::map<int, std::multiset<std::int64_t>> seen;
  for (const auto& p : store.scores("flaky")) seen[p.member].insert(p.step);
  for (const auto& m : store.population("flaky")) {
    EXPECT_TRUE(m.done);
    EXPECT_EQ(m.step, 24);
    ASSERT_EQ(seen[m.id].size(), 24u) << "member " << m.id;
    for (int s = 1; s <= 24; ++s) EXPECT_EQ(seen[m.id].count(s), 1u) << "member " << m.id << " step " << s;
  }
  bool logged = false;
  for (const auto& l : log) logged |= l.find("injected") != std::string::npos;
  EXPECT_TRUE(logged);
  EXPECT_EQ(stats.failed_intervals, 0);
}

#include "store/memory_store.hpp"

TEST(WorkerFaults, ACorruptCheckpointIsNamedAndTheMemberRecoversFromTheBest) {
  MemoryStore store;
  ExperimentConfig c = parse_config(kConfig, "flaky.toml");
  create_or_join(store, c);
  WorkerOptions opt;
  opt.id = "w";
  opt.max_intervals = 3;  // one interval per member: every member has a checkpoint
  run_worker(store, "flaky", opt);
  auto before = store.population("flaky");
  store.corrupt_checkpoint(before[1].checkpoint, "not what was written");

  std::vector<std::string> log;
  opt.max_intervals = -1;
  opt.log = [&](const std::string& l) { log.push_back(l); };
  run_worker(store, "flaky", opt);  // a new worker process would start like this: nothing cached

  bool named = false;
  for (const auto& l : log) named |= l.find("member 1: its checkpoint " + before[1].checkpoint) != std::string::npos;
  EXPECT_TRUE(named);
  // Every member that pointed at the corrupt bytes (a copy shares its donor's checkpoint)
  // recovers once, from a member whose checkpoint loads, keeping its own h.
  std::set<int> sharing;
  for (const auto& m : before)
    if (m.checkpoint == before[1].checkpoint) sharing.insert(m.id);
  std::set<int> recovered;
  for (const auto& e : store.events("flaky"))
    if (e.kind == "recover") {
      EXPECT_TRUE(recovered.insert(e.member).second) << "member " << e.member << " recovered twice";
      EXPECT_NE(e.donor_checkpoint, before[1].checkpoint);
      EXPECT_EQ(e.new_h, before[e.member].h);  // the store's h is the h in force
    }
  EXPECT_EQ(recovered, sharing);
  EXPECT_LT(sharing.size(), before.size());
  for (const auto& m : store.population("flaky")) {
    EXPECT_TRUE(m.done);
    EXPECT_EQ(m.step, 24);
  }
}
