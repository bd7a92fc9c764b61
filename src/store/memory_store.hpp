#pragma once
// The in-memory store: one process, a mutex around plain containers. For unit tests
// (and "memory:" URIs). Same semantics as the SQLite store; its clock is the wall clock
// plus an offset that tests can move forward with advance_clock().
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "pbt/store.hpp"

namespace pbt {

class MemoryStore : public Store {
 public:
  MemoryStore() = default;

  void create_experiment(const ExperimentInfo& info, const std::vector<MemberState>& members) override;
  std::optional<ExperimentInfo> experiment(const std::string& name) override;
  std::vector<std::string> experiments() override;

  std::optional<Leased> lease(const std::string& experiment, const std::string& worker, double lease_seconds) override;
  void heartbeat(const Lease& lease, double lease_seconds) override;
  void publish(Lease& lease, const Publication& pub) override;
  void release(const Lease& lease) override;
  bool fail(const Lease& lease, const std::string& error, int max_failures) override;
  void decide(const std::string& experiment, const std::vector<Decision>& decisions) override;
  void finish(const std::string& experiment) override;

  std::vector<MemberState> population(const std::string& experiment) override;
  std::string checkpoint(const std::string& id) override;
  std::vector<Event> events(const std::string& experiment) override;
  std::vector<ScorePoint> scores(const std::string& experiment) override;
  std::vector<Event> events_since(const std::string& experiment, std::int64_t from_step) override;
  std::vector<ScorePoint> scores_since(const std::string& experiment, std::int64_t from_step) override;

  std::size_t collect_garbage() override;
  double now() override;

  // Moves this store's clock forward (tests: let leases expire without sleeping).
  void advance_clock(double seconds);
  // Test hooks: how many checkpoints are stored; store bytes that no member refers to
  // (returns their id); overwrite a stored checkpoint's bytes (to test verification).
  std::size_t checkpoint_count();
  std::string put_orphan_checkpoint(const std::string& bytes);
  void corrupt_checkpoint(const std::string& id, const std::string& bytes);

 private:
  struct Experiment {
    ExperimentInfo info;
    std::map<int, MemberState> members;
    std::vector<Event> events;
    std::vector<ScorePoint> scores;
  };

  double now_locked() const;
  Experiment& find(const std::string& name);
  bool referenced(const std::string& checkpoint) const;

  std::mutex mutex_;
  double offset_ = 0;
  std::map<std::string, Experiment> experiments_;
  std::map<std::string, std::string> checkpoints_;  // id -> bytes
};

}  // namespace pbt
