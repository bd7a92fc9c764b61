#pragma once
// The SQLite store: the embedded default. One file, many processes on one machine.
//  - WAL journal, busy_timeout, BEGIN IMMEDIATE for every read-modify-write; transient
//    SQLITE_BUSY / SQLITE_LOCKED are retried with jittered backoff for a bounded time,
//    then reported as StoreError (path and SQLite's message).
//  - The clock is SQLite's: lease expiry is computed and compared inside SQL.
//  - Checkpoints over 64 KiB are files in a checkpoint directory beside the database
//    ("<path>.checkpoints/", checkpoint_dir.hpp): their row keeps an empty blob and the size.
//    Smaller ones stay in their row.
//  - One object may be used from several threads of one process (a mutex serializes
//    them). Do not carry an open SqliteStore across fork(): open a new one in the child.
#include <cstddef>
#include <memory>
#include <string>

#include "pbt/store.hpp"

namespace pbt {

class SqliteStore : public Store {
 public:
  static constexpr int kSchemaVersion = 1;

  struct Options {
    int busy_timeout_ms = 10000;  // SQLite's own wait for a lock, per attempt
    double retry_seconds = 30;    // how long transient errors are retried in all
    // SQLite's limit on one value (SQLITE_LIMIT_LENGTH: a checkpoint must fit in it); 0 keeps
    // the compiled-in limit (1,000,000,000 bytes by default). Only lowering it has an effect.
    int length_limit = 0;
    // Where checkpoint files go; empty: "<path>.checkpoints" beside the database.
    std::string checkpoint_dir;
    // Checkpoints of at most this many bytes stay in their row.
    std::size_t inline_max = 64 * 1024;
  };

  // Opens (or creates) the store in the file at `path`; throws StoreError naming the path
  // when it cannot be opened, is not a pbt store, or has another schema version.
  explicit SqliteStore(const std::string& path);
  SqliteStore(const std::string& path, Options options);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  const std::string& path() const;

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
  std::unique_ptr<CheckpointStager> stage_checkpoint() override;
  std::unique_ptr<CheckpointSource> open_checkpoint(const std::string& id) override;
  std::string scratch_dir() override;
  // The directory of the checkpoint files (it may not exist yet).
  const std::string& checkpoint_dir() const;
  std::vector<Event> events(const std::string& experiment) override;
  std::vector<ScorePoint> scores(const std::string& experiment) override;
  std::vector<Event> events_since(const std::string& experiment, std::int64_t from_step) override;
  std::vector<ScorePoint> scores_since(const std::string& experiment, std::int64_t from_step) override;

  std::size_t collect_garbage() override;
  double now() override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pbt
