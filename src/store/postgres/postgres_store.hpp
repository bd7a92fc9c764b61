#pragma once
// The PostgreSQL store: one database server that workers on many hosts reach.
// Same guarantees as the SQLite store (store.hpp), by these means:
//  - a publish is one transaction; the member row is locked (FOR UPDATE) and its version
//    and owner checked (compare-and-set) before anything is written;
//  - lease: SELECT ... FOR UPDATE SKIP LOCKED picks the member, in the same order as SQLite
//    (fewest steps, then the last owner, then the lowest id); heartbeats and expiry are
//    stamped by the server's clock (clock_timestamp());
//  - serialization failures (40001) and deadlocks (40P01) are retried with jittered backoff;
//  - a dropped connection (server restart, terminated backend, network) is reconnected and
//    the operation retried with backoff for `retry_seconds`, then reported as StoreError.
//    A publish whose COMMIT reply was lost is looked up after reconnecting (it leaves a
//    token in the member's row) and is never applied twice nor lost;
//  - checkpoint rows are locked while referenced by a publish in flight, so deleting an
//    unreferenced checkpoint never races with a publish that starts referring to it.
//  - the schema lives in its own PostgreSQL schema ("pbt" unless ?schema= says otherwise),
//    created by the first worker under an advisory lock, versioned in its meta table
//    (schema.hpp).
//
// URI: postgresql://[user[:password]@][host][:port][/dbname][?param=value&...] (or postgres://).
// Whatever the URI leaves out comes from libpq's environment (PGHOST, PGUSER, PGPASSWORD, ...)
// and ~/.pgpass. These query parameters are pbt's own (taken out before libpq sees the URI):
//   checkpoint_dir=/shared/path  checkpoint bytes in files on a shared filesystem
//                                (checkpoint_dir.hpp), not in the database: every
//                                checkpoint is streamed to a temp file there, then
//                                linked into place by its publish
//   retry_seconds=60             how long one operation keeps reconnecting / retrying
//   schema=pbt                   the PostgreSQL schema that holds pbt's tables
// Messages never show the password (redact_uri).
//
// One object may be used from several threads of one process (a mutex serializes them).
// Do not carry an open PostgresStore across fork(): open a new one in the child.
#include <cstddef>
#include <memory>
#include <string>

#include "pbt/store.hpp"

namespace pbt {

class PostgresStore : public Store {
 public:
  struct Options {
    double retry_seconds = 60;            // reconnect / retry transient errors for this long per operation
    double connect_timeout_seconds = 10;  // one connection attempt (libpq's connect_timeout)
    std::string checkpoint_dir;           // empty: checkpoint bytes in the database
    std::string schema = "pbt";           // the PostgreSQL schema holding the tables
  };

  // Connects, creating the schema when the database has none; throws StoreError (the URI
  // redacted) when the server cannot be reached within retry_seconds, refuses the
  // credentials, or holds another schema version. Query parameters override `options`.
  explicit PostgresStore(const std::string& uri);
  PostgresStore(const std::string& uri, Options options);
  ~PostgresStore() override;
  PostgresStore(const PostgresStore&) = delete;
  PostgresStore& operator=(const PostgresStore&) = delete;

  // The URI as given, password redacted.
  const std::string& uri() const;
  const Options& options() const;

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
  std::vector<Event> events(const std::string& experiment) override;
  std::vector<ScorePoint> scores(const std::string& experiment) override;
  std::vector<Event> events_since(const std::string& experiment, std::int64_t from_step) override;
  std::vector<ScorePoint> scores_since(const std::string& experiment, std::int64_t from_step) override;

  std::size_t collect_garbage() override;
  double now() override;

  // Test hooks. The server process id of the current connection (to terminate it from
  // another session); how many times this store (re)connected; make the next COMMIT go
  // through but report its reply as lost (the connection dropped), as a network failure
  // at the worst moment would.
  int backend_pid();
  std::size_t connections() const;
  void lose_next_commit_reply();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pbt
