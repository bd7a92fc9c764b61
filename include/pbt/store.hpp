#pragma once
// The store: the only state the workers share. One interface, several backends
// (memory for unit tests, SQLite on one machine, PostgreSQL for many hosts), chosen by URI.
//
// Guarantees every backend keeps:
//  1. publish is atomic: score, h, step, checkpoint, score points and events of one
//     interval become visible in one transaction;
//  2. checkpoints are immutable and content-addressed (SHA-256 of the bytes), verified on read;
//  3. hyperparameters live in the store; the store's h is the h in force;
//  4. a checkpoint is deleted only when no member refers to it (reference, not "last N");
//  5. leases carry a version; every write checks it (compare-and-set), heartbeats
//     extend the lease by the store's clock, an expired lease can be taken over;
//  6. the schema version is recorded and checked when the store is opened.
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pbt/checkpoint_io.hpp"
#include "pbt/event.hpp"
#include "pbt/hyperparams.hpp"

namespace pbt {

struct MemberState {
  int id = 0;
  std::int64_t step = 0;             // training steps done and published
  std::int64_t last_ready_step = 0;  // step at which the member was last ready
  std::optional<double> score;       // last published score (none before the first interval)
  std::vector<double> samples;       // the t-test's window for this member
  Hyperparams h;                     // the hyperparameters in force
  std::string checkpoint;            // checkpoint id (hex SHA-256); empty before the first publish
  bool done = false;                 // reached the budget
  int failures = 0;                  // failed intervals since its last publish
  bool failed = false;               // gave up after too many failures: nobody leases it
  std::string last_error;            // why its last interval failed
  std::int64_t version = 0;          // bumped by every lease and publish
  std::string owner;                 // worker holding the lease; empty when free
  double lease_expires = 0;          // store clock, seconds since the epoch
  std::string last_owner;            // the last worker that held it (for affinity)
  nlohmann::json metrics = nlohmann::json::object();
};

// The member with the highest published score that has not diverged (the first of equal
// ones); null when no member has such a score. What `pbt best`, the report and replay call "best".
const MemberState* best_member(const std::vector<MemberState>& population);

// Proof of holding a member. `version` is what the next write must find.
struct Lease {
  std::string experiment;
  int member = 0;
  std::string worker;
  std::int64_t version = 0;
};

struct Leased {
  Lease lease;
  MemberState member;
};

// One eval result (for score curves): every eval, not only the published ones.
struct ScorePoint {
  int member = 0;
  std::int64_t step = 0;
  double score = 0;
};

// One lineage entry: an exploit (copy, then explore) or an explore without a copy.
struct Event {
  int member = 0;
  std::int64_t step = 0;
  EventKind kind = EventKind::explore;
  int donor = -1;                    // member copied from; -1 when nothing was copied
  std::int64_t donor_step = 0;       // the donor's step when copied (its lineage up to there is ours)
  CopyMode copied = CopyMode::none;  // what the copy took (recover: weights)
  std::string donor_checkpoint;
  Hyperparams old_h, new_h;
  double old_score = 0;             // the member's own score before the copy
  double donor_score = 0;           // the donor's published score
  std::optional<double> new_score;  // eval after explore
  std::string worker;
  double time = 0;  // store clock, set by the store on publish
};

// A checkpoint written and hashed for a publish, not yet visible to anyone (see
// Store::stage_checkpoint). Small ones (and every one of a store without checkpoint files)
// keep their bytes here; a large one is a temp file in the store's checkpoint directory,
// already fsynced, that publish renames into place. One never published removes its file.
class StagedCheckpoint {
 public:
  StagedCheckpoint(std::string id, std::uint64_t size, std::string bytes, std::string temp_file = "");
  ~StagedCheckpoint();  // removes the temp file, if it is still there
  StagedCheckpoint(const StagedCheckpoint&) = delete;
  StagedCheckpoint& operator=(const StagedCheckpoint&) = delete;

  const std::string& id() const { return id_; }  // hex SHA-256 of the bytes
  std::uint64_t size() const { return size_; }
  const std::string& bytes() const { return bytes_; }          // empty when in a file
  const std::string& temp_file() const { return temp_file_; }  // empty when in bytes

 private:
  std::string id_;
  std::uint64_t size_ = 0;
  std::string bytes_;
  std::string temp_file_;
};

// A sink for one checkpoint to publish: bytes are hashed as they come and, in a store with
// checkpoint files, streamed to a temp file (fsynced by finish()).
class CheckpointStager : public CheckpointSink {
 public:
  // Ends the writing; throws StoreError when the bytes cannot be made durable.
  virtual std::shared_ptr<StagedCheckpoint> finish() = 0;
};

// Everything one interval produces, published at once.
struct Publication {
  std::int64_t step = 0;
  std::int64_t last_ready_step = 0;
  double score = 0;
  std::vector<double> samples;
  Hyperparams h;
  std::string checkpoint_bytes;                  // stored under its hash (the small-blob form)
  std::shared_ptr<StagedCheckpoint> checkpoint;  // or this, from Store::stage_checkpoint
  bool done = false;
  nlohmann::json metrics = nlohmann::json::object();
  std::vector<ScorePoint> scores;
  std::vector<Event> events;
};

// One member's exploit/explore decision in a synchronous generation ([ready] mode = "sync").
// When every live member has reached the generation's step, any worker decides for all of
// them against the same snapshot and applies the decisions at once (Store::decide): a copy
// of weights points the member at its donor's checkpoint (checkpoints are immutable and
// content-addressed, so nothing is moved).
struct Decision {
  int member = 0;
  // Where the decision saw the member: it must still be at `step` with `last_ready_step`
  // (undecided), or the decision is stale.
  std::int64_t step = 0;
  std::int64_t last_ready_step = 0;
  // What it becomes: decided at `step` (its new last_ready_step), under `h`, with the donor's
  // checkpoint id when weights were copied (empty: keeps its own), and score, samples and
  // metrics to show until it publishes again (the donor's when it copied).
  Hyperparams h;
  std::string checkpoint;
  double score = 0;
  std::vector<double> samples;
  nlohmann::json metrics = nlohmann::json::object();
  std::vector<Event> events;  // recorded with the store's time, as in a publish
};

// A from_step before every step: Store::events_since(e, kAllSteps) is Store::events(e).
constexpr std::int64_t kAllSteps = std::numeric_limits<std::int64_t>::min();

struct ExperimentInfo {
  std::string name;
  std::string config;  // the config's TOML text, as given
  std::string origin;  // where it came from (a file path), for messages
  int population = 0;
  bool finished = false;  // a member reached the target score: nobody leases any more
  double created = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  // Creates the experiment and its members (with their initial h). Throws if it exists.
  virtual void create_experiment(const ExperimentInfo& info, const std::vector<MemberState>& members) = 0;
  virtual std::optional<ExperimentInfo> experiment(const std::string& name) = 0;
  virtual std::vector<std::string> experiments() = 0;

  // Leases the member furthest behind (fewest steps) that is not done and not held by a
  // live lease, preferring one this worker held last; none when nothing is free.
  // A worker holds one lease at a time, so a live lease under its own id is one it lost
  // track of (a publish that committed but reported an error): it may take it again.
  virtual std::optional<Leased> lease(const std::string& experiment, const std::string& worker,
                                      double lease_seconds) = 0;
  // Extends the lease; throws LeaseLost when the member has moved on.
  virtual void heartbeat(const Lease& lease, double lease_seconds) = 0;
  // Publishes one interval atomically and keeps the lease; throws LeaseLost (and changes
  // nothing) when the lease's version is no longer current. Updates lease.version.
  virtual void publish(Lease& lease, const Publication& pub) = 0;
  // Gives the member back; a lost lease is not an error here.
  virtual void release(const Lease& lease) = 0;
  // Records a failed interval and gives the member back (its published state is kept).
  // After `max_failures` failures in a row the member is marked failed and never leased
  // again. Returns true when it is now failed; throws LeaseLost like publish.
  virtual bool fail(const Lease& lease, const std::string& error, int max_failures) = 0;
  // Applies the decisions of one synchronous generation atomically. Every member must still
  // be at its decision's step and last_ready_step and not failed, and a checkpoint named must
  // exist; otherwise throws LeaseLost (stale: another worker decided first) or StoreError,
  // and changes nothing. Frees the members' leases (a worker waiting at the generation's
  // barrier holds one only to look) and bumps their versions; old checkpoints no member
  // refers to any more are deleted, as after a publish.
  virtual void decide(const std::string& experiment, const std::vector<Decision>& decisions) = 0;
  // Marks the experiment finished (target reached): no more leases are granted.
  virtual void finish(const std::string& experiment) = 0;

  virtual std::vector<MemberState> population(const std::string& experiment) = 0;
  // The bytes of a checkpoint, verified against its id; throws CheckpointError. Holds the
  // checkpoint in memory whole: the engine streams with open_checkpoint instead.
  virtual std::string checkpoint(const std::string& id) = 0;

  // Streamed checkpoints. A sink for the next publish's checkpoint (Publication::checkpoint);
  // the default keeps the bytes in memory.
  virtual std::unique_ptr<CheckpointStager> stage_checkpoint();
  // Checkpoint `id` as a stream, verified as it is read (the end is checked when the last
  // byte is read, or by CheckpointSource::finish); throws CheckpointError when it is missing.
  // The default reads checkpoint(id).
  virtual std::unique_ptr<CheckpointSource> open_checkpoint(const std::string& id);
  // A directory on the filesystem of the store's checkpoint files, where a trainable may
  // write files that the store then adopts by rename (and links files into, to hand them
  // over); empty when the store keeps no checkpoint files.
  virtual std::string scratch_dir() { return ""; }
  virtual std::vector<Event> events(const std::string& experiment) = 0;
  virtual std::vector<ScorePoint> scores(const std::string& experiment) = 0;
  // The same, only those at `from_step` or later (by the event's or the score's step), in the
  // same order: what a model-based explore (PB2) reads of the recent past at every decision.
  // The defaults filter the full reads; the stores read only those rows.
  virtual std::vector<Event> events_since(const std::string& experiment, std::int64_t from_step);
  virtual std::vector<ScorePoint> scores_since(const std::string& experiment, std::int64_t from_step);

  // Deletes checkpoints no member refers to; returns how many went.
  virtual std::size_t collect_garbage() = 0;
  // The store's clock, in seconds since the epoch (leases are judged by it).
  virtual double now() = 0;
};

// "memory:" (this process only), "sqlite:PATH" or a path ending in .db / .sqlite, or
// "postgresql://user:password@host:port/db" (also "postgres://"; see postgres_store.hpp).
std::unique_ptr<Store> open_store(const std::string& uri);
// The same, for readers: a SQLite store must already exist (a file holding a pbt store);
// a typo is "no store at PATH", not a new empty store. Throws StoreError.
std::unique_ptr<Store> open_existing_store(const std::string& uri);

// The URI with its password replaced by "***" (user:***@host, password=***): what any
// message, log line or status output shows of a store URI.
std::string redact_uri(const std::string& uri);

// Hex SHA-256 of bytes: the id of a checkpoint.
std::string checkpoint_id(const std::string& bytes);

}  // namespace pbt
