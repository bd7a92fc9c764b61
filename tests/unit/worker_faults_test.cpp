// A store that is briefly unreachable loses nothing: injected StoreUnavailable errors before
// and after commits still leave exactly one score point per member and step. A store that
// refuses the same write every time does not make a member train forever. A heartbeat
// never spins, whatever the lease.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <limits>
#include <map>
#include <set>
#include <thread>

#include "pbt/pbt.hpp"
#include "common/toy_config.hpp"

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
  void decide(const std::string& e, const std::vector<Decision>& d) override { inner_->decide(e, d); }
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
      throw StoreUnavailable(std::string("injected: store unreachable during ") + what);
    }
  }
  void fail_after(const char* what) {
    if (enabled && ++after_ % 11 == 0) {
      ++failures;
      throw StoreUnavailable(std::string("injected: connection dropped after ") + what);
    }
  }
  std::unique_ptr<Store> inner_;
  int calls_ = 0, after_ = 0;
};

const std::string kConfig = test::ToyConfig("flaky")
                                .seed(2)
                                .population(3)
                                .steps(24)
                                .set("ready.eval_every", "1")
                                .set("exploit.fraction", "0.34")
                                .lease_seconds("5");

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
  // Without exploit, every member goes on from its own checkpoint (a member that decides to
  // copy loads its donor's instead, and never reads its own).
  ExperimentConfig c =
      parse_config(test::ToyConfig("flaky").seed(2).population(3).steps(24).set("exploit.strategy", "\"none\"").text(),
                   "flaky.toml");
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
    if (e.kind == EventKind::recover) {
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

namespace {

// A store that refuses every publish the same way (as SQLite refuses a checkpoint over its
// length limit, or a malformed page every write that touches it). Optionally it refuses to
// record the failure too.
class RefusingStore : public MemoryStore {
 public:
  std::map<int, int> publishes;  // attempts, by member
  bool refuse_fail = false;
  std::atomic<bool> stop{false};

  void publish(Lease& lease, const Publication&) override {
    // Hang guard: before the fix the worker retried forever; end the test instead.
    if (++publishes[lease.member] >= 50) stop = true;
    throw StoreError("injected: the checkpoint of member " + std::to_string(lease.member) + " is too big");
  }
  bool fail(const Lease& lease, const std::string& error, int max_failures) override {
    if (refuse_fail) throw StoreError("injected: cannot record a failure either");
    return MemoryStore::fail(lease, error, max_failures);
  }
};

}  // namespace

TEST(WorkerFaults, APublishRefusedEveryTimeMarksTheMemberFailedAfterMaxFailures) {
  RefusingStore store;
  ExperimentConfig c = parse_config(kConfig, "flaky.toml");
  create_or_join(store, c);
  WorkerOptions opt;
  opt.id = "w";
  opt.store_retry_seconds = 0.001;
  opt.stop = &store.stop;
  WorkerStats stats = run_worker(store, "flaky", opt);
  EXPECT_FALSE(store.stop.load()) << "the worker kept retraining members whose publish always fails";
  for (const auto& m : store.population("flaky")) {
    EXPECT_TRUE(m.failed) << "member " << m.id;
    EXPECT_EQ(store.publishes[m.id], c.max_failures) << "member " << m.id;
    EXPECT_NE(m.last_error.find("injected: the checkpoint of member " + std::to_string(m.id) + " is too big"),
              std::string::npos)
        << m.last_error;
  }
  EXPECT_EQ(stats.failed_intervals, 3 * c.max_failures);
  EXPECT_EQ(stats.intervals, 0);
}

TEST(WorkerFaults, WhenEvenRecordingTheFailureIsRefusedTheWorkerStopsWithTheStoreError) {
  RefusingStore store;
  store.refuse_fail = true;
  ExperimentConfig c = parse_config(kConfig, "flaky.toml");
  create_or_join(store, c);
  WorkerOptions opt;
  opt.id = "w";
  opt.store_retry_seconds = 0.001;
  opt.stop = &store.stop;
  std::string message;
  try {
    run_worker(store, "flaky", opt);
  } catch (const StoreError& e) {
    message = e.what();
  }
  EXPECT_FALSE(store.stop.load()) << "the worker kept retraining a member whose publish always fails";
  EXPECT_NE(message.find("member 0"), std::string::npos) << message;
  EXPECT_NE(message.find("injected: the checkpoint of member 0 is too big"), std::string::npos) << message;
  EXPECT_NE(message.find("could not mark the member failed"), std::string::npos) << message;
  EXPECT_EQ(store.publishes[0], c.max_failures);
}

TEST(WorkerFaults, TransientPublishFailuresAreRetriedNotCountedAsFailures) {
  // The store refuses member 0's first 5 publishes as unavailable (more than max_failures):
  // the member is still not failed, and nothing is lost.
  class Busy : public MemoryStore {
   public:
    int refused = 0;
    void publish(Lease& lease, const Publication& pub) override {
      if (lease.member == 0 && refused < 5) {
        ++refused;
        throw StoreUnavailable("injected: store busy");
      }
      MemoryStore::publish(lease, pub);
    }
  } store;
  ExperimentConfig c = parse_config(kConfig, "flaky.toml");
  create_or_join(store, c);
  WorkerOptions opt;
  opt.id = "w";
  opt.store_retry_seconds = 0.001;
  WorkerStats stats = run_worker(store, "flaky", opt);
  EXPECT_EQ(store.refused, 5);
  EXPECT_EQ(stats.failed_intervals, 0);
  for (const auto& m : store.population("flaky")) {
    EXPECT_FALSE(m.failed) << "member " << m.id;
    EXPECT_TRUE(m.done) << "member " << m.id;
  }
}

TEST(WorkerFaults, ALeaseTheStoreAnswersWithAnErrorStopsTheWorkerAfterAFewTries) {
  // A garbled row or a dropped table: the store answers, with the same error every time. The
  // worker used to take it for an unreachable store and retry for a minute; it now stops
  // after a few tries with the store's message (exit 1 from `pbt worker`).
  class Garbled : public MemoryStore {
   public:
    int leases = 0;
    std::optional<Leased> lease(const std::string&, const std::string&, double) override {
      ++leases;
      throw StoreError("injected: table members, member 1, column h: invalid JSON");
    }
  } store;
  ExperimentConfig c = parse_config(kConfig, "flaky.toml");
  create_or_join(store, c);
  WorkerOptions opt;
  opt.id = "w";
  opt.store_retry_seconds = 0.001;
  std::string message;
  try {
    run_worker(store, "flaky", opt);
  } catch (const StoreError& e) {
    message = e.what();
  }
  EXPECT_NE(message.find("column h: invalid JSON"), std::string::npos) << message;
  EXPECT_GE(store.leases, 2);
  EXPECT_LE(store.leases, 5) << "an error the store gives every time is not worth a minute of retries";
}

#include "core/heartbeat.hpp"

namespace {

class CountingStore : public MemoryStore {
 public:
  std::atomic<int> heartbeats{0};
  void heartbeat(const Lease&, double) override { ++heartbeats; }
};

}  // namespace

TEST(Heartbeat, AHugeOrInfiniteLeaseMakesABoundedNumberOfHeartbeats) {
  // lease_seconds / 3 beyond ~3e9 s overflowed std::chrono: wait_for returned at once and the
  // thread committed heartbeats in a tight loop (100% CPU, the store hammered).
  for (double lease : {std::numeric_limits<double>::infinity(), 1e300, 1e11, 3e10}) {
    CountingStore store;
    std::function<void(const std::string&)> log;
    Heartbeat hb(store, Lease{"e", 0, "w", 1}, lease, log);
    std::this_thread::sleep_for(std::chrono::seconds(1));
    // Checked before stop(): the spinning thread also held its mutex, so stop() never returned.
    EXPECT_LE(store.heartbeats.load(), 1) << "lease_seconds " << lease;
    hb.stop();
  }
}

TEST(Heartbeat, PeriodIsAThirdOfTheLeaseClampedToASaneRange) {
  using ms = std::chrono::milliseconds;
  EXPECT_EQ(Heartbeat::period(30), ms(10000));
  EXPECT_EQ(Heartbeat::period(0.6), ms(200));
  EXPECT_EQ(Heartbeat::period(std::numeric_limits<double>::infinity()), ms(3600 * 1000));
  EXPECT_EQ(Heartbeat::period(1e300), ms(3600 * 1000));
  EXPECT_EQ(Heartbeat::period(0), ms(50));
  EXPECT_EQ(Heartbeat::period(-1), ms(50));
  EXPECT_EQ(Heartbeat::period(std::numeric_limits<double>::quiet_NaN()), ms(50));
}

TEST(Heartbeat, AShortLeaseIsStillKeptAlive) {
  CountingStore store;
  std::function<void(const std::string&)> log;
  Heartbeat hb(store, Lease{"e", 0, "w", 1}, 0.6, log);                               // every 0.2 s
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);  // hang guard only
  while (store.heartbeats.load() < 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  hb.stop();
  EXPECT_GE(store.heartbeats.load(), 3);
}

TEST(CheckpointInMemory, ACheckpointTooBigForMemoryIsNamedWithItsSize) {
#ifdef __SANITIZE_ADDRESS__
  GTEST_SKIP() << "AddressSanitizer's operator new stops the program instead of throwing std::bad_alloc";
#endif
  // Before: a bare "std::bad_alloc" naming neither the checkpoint nor its size.
  const std::uint64_t size = std::string().max_size() / 2;  // no machine holds this
  std::string m;
  try {
    checkpoint_in_memory("checkpoint abc in SQLite store 'x.db'", size,
                         [&] { return std::string(static_cast<std::size_t>(size), '\0'); });
  } catch (const CheckpointError& e) {
    ADD_FAILURE() << "the bytes are fine: not a CheckpointError: " << e.what();
  } catch (const Error& e) {
    m = e.what();
  }
  EXPECT_NE(m.find("checkpoint abc in SQLite store 'x.db'"), std::string::npos) << m;
  EXPECT_NE(m.find(std::to_string(size) + " bytes"), std::string::npos) << m;
  EXPECT_NE(m.find("memory"), std::string::npos) << m;
}
