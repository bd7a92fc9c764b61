// The SQLite store's operations (see sqlite_store.hpp). The database file, its statements
// and retry loop are in sqlite_database.cpp, the tables in sqlite_schema.cpp.
#include "store/sqlite_store.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <tuple>
#include <unordered_map>

#include "pbt/checkpoint_io.hpp"
#include "pbt/error.hpp"
#include "store/checkpoint_dir.hpp"
#include "store/codec.hpp"
#include "store/rows.hpp"
#include "store/sqlite_database.hpp"
#include "store/sqlite_schema.hpp"

namespace pbt {

namespace {

// The store's clock: SQLite's, in seconds since the Unix epoch.
#define PBT_SQL_NOW "((julianday('now') - 2440587.5) * 86400.0)"

using store_codec::lease_text;

}  // namespace

struct SqliteStore::Impl {
  using Tx = sqlite::Database::Tx;

  Impl(const std::string& path, const Options& options)
      : db(path, options),
        files(options.checkpoint_dir.empty() ? path + ".checkpoints" : options.checkpoint_dir, db.where()),
        inline_max(options.inline_max) {}

  sqlite::Database db;
  // Checkpoints over inline_max bytes: files here, their rows hold an empty blob (a real
  // checkpoint is never empty) and the size.
  CheckpointDir files;
  std::size_t inline_max;
  // Members as last read, by experiment and id; valid while their version is unchanged.
  std::unordered_map<std::string, std::map<int, MemberState>> population_cache;

  const std::string& where() const { return db.where(); }

  double now_sql() {
    auto s = db.prepare("SELECT " PBT_SQL_NOW);
    s.step();
    return s.real(0);
  }

  bool experiment_exists(const std::string& name) {
    auto s = db.prepare("SELECT 1 FROM experiments WHERE name = ?");
    s.bind_all(name);
    return s.step();
  }

  void require_experiment(const std::string& name) {
    if (!experiment_exists(name)) throw StoreError("unknown experiment '" + name + "' in " + where());
  }

  std::optional<MemberState> member(const std::string& experiment, int id) {
    auto s = db.prepare(std::string("SELECT ") + store_codec::kMemberColumns +
                        " FROM members WHERE experiment = ? AND id = ?");
    s.bind_all(experiment, id);
    if (!s.step()) return std::nullopt;
    return store_codec::member_from_row(s, where(), experiment);
  }

  // The events of a publish or a decision, stamped with the store's time `t`; `worker` stands in
  // for an event that names none.
  void insert_events(const std::string& experiment, double t, const std::vector<Event>& events,
                     const std::string& worker) {
    for (const auto& ev : events) {
      const auto values = store_codec::event_values(ev, worker);
      static const std::string kEvent = std::string("INSERT INTO events(experiment, time, ") +
                                        store_codec::kEventColumns + ") VALUES (?, ?, " +
                                        store_codec::placeholders(std::tuple_size_v<decltype(values)>, 0) + ")";
      db.prepare(kEvent).bind_all(experiment, t, values).run();
    }
  }

  struct Stored {
    bool in_file = false;
    std::uint64_t size = 0;
  };
  // Inside a transaction: checkpoint `id`'s row (without reading its bytes).
  std::optional<Stored> stored(const std::string& id) {
    auto s = db.prepare("SELECT length(bytes), size FROM checkpoints WHERE id = ?");
    s.bind_all(id);
    if (!s.step()) return std::nullopt;
    return Stored{s.i64(0) == 0 && s.i64(1) > 0, static_cast<std::uint64_t>(s.i64(1))};
  }

  // Deletes a checkpoint that a member stopped referring to, unless another still does;
  // true when it was a file checkpoint (its file is to go: remove_files).
  bool drop_if_unreferenced(const std::string& id) {
    const auto st = stored(id);
    db.prepare("DELETE FROM checkpoints WHERE id = ? AND NOT EXISTS (SELECT 1 FROM members WHERE checkpoint = ?)")
        .bind_all(id, id)
        .run();
    return db.changes() > 0 && st && st->in_file;
  }

  // Deletes the files of checkpoints that have no row, in a write transaction of its own
  // after the one that deleted the rows committed. SQLite serializes writers, so no publish
  // that brings the checkpoint back runs meanwhile (it would find the row, or adopt its
  // file again after we are done). Not inside the deleting transaction: a crash or a failed
  // COMMIT after the unlink would roll the member back onto a checkpoint without its file;
  // this way the worst a crash leaves is a file without a row, which collect_garbage sweeps.
  // Best effort for the same reason.
  void remove_files(const std::vector<std::string>& ids) {
    if (ids.empty()) return;
    try {
      db.run("removing checkpoint files", Tx::write, [&] {
        for (const auto& id : ids)
          if (!stored(id)) files.remove(id);
        return 0;
      });
    } catch (const StoreError&) {
    }
  }

  // Files (with no row) of checkpoints, left by a crash or a failed publish; `done`: just
  // removed by remove_files. Returns how many others went.
  std::size_t sweep_files(const std::vector<std::string>& done) {
    const std::size_t swept = db.run("collecting garbage", Tx::write, [&] {
      std::size_t n = 0;
      for (const auto& id : files.ids())
        if (!stored(id) && files.remove(id) && std::find(done.begin(), done.end(), id) == done.end()) ++n;
      return n;
    });
    files.remove_temp_files(std::chrono::hours(1));
    return swept;
  }

  std::string lease_lost(const Lease& lease, const std::string& what) {
    auto m = member(lease.experiment, lease.member);
    if (!m) return store_codec::lease_lost_text(lease, what, std::nullopt, "");
    return store_codec::lease_lost_text(lease, what, m->version, m->owner);
  }
};

SqliteStore::SqliteStore(const std::string& path) : SqliteStore(path, Options{}) {}

SqliteStore::SqliteStore(const std::string& path, Options options) : impl_(std::make_unique<Impl>(path, options)) {
  sqlite::open_schema(impl_->db);
}

SqliteStore::~SqliteStore() { CheckpointDir::wait_for_removals(); }

const std::string& SqliteStore::path() const { return impl_->db.path(); }

void SqliteStore::create_experiment(const ExperimentInfo& info, const std::vector<MemberState>& members) {
  Impl& d = *impl_;
  d.db.run("creating an experiment", Impl::Tx::write, [&] {
    if (d.experiment_exists(info.name))
      throw StoreError("experiment '" + info.name + "' already exists in " + d.where());
    const double created = info.created != 0 ? info.created : d.now_sql();
    const int population = info.population != 0 ? info.population : static_cast<int>(members.size());
    d.db.prepare(std::string("INSERT INTO experiments(") + store_codec::kExperimentColumns +
                 ") VALUES (?, ?, ?, ?, ?, ?)")
        .bind_all(store_codec::experiment_values(info, population, created))
        .run();
    for (const auto& m : members) {
      auto exists = d.db.prepare("SELECT 1 FROM members WHERE experiment = ? AND id = ?");
      exists.bind_all(info.name, m.id);
      if (exists.step())
        throw StoreError("experiment '" + info.name + "': member id " + std::to_string(m.id) + " given twice");
      const auto values = store_codec::new_member_values(m);
      d.db.prepare(std::string("INSERT INTO members(experiment, ") + store_codec::kNewMemberColumns + ") VALUES (?, " +
                   store_codec::placeholders(std::tuple_size_v<decltype(values)>, 0) + ")")
          .bind_all(info.name, values)
          .run();
    }
    return 0;
  });
}

std::optional<ExperimentInfo> SqliteStore::experiment(const std::string& name) {
  Impl& d = *impl_;
  return d.db.run("reading an experiment", Impl::Tx::none, [&]() -> std::optional<ExperimentInfo> {
    auto s =
        d.db.prepare(std::string("SELECT ") + store_codec::kExperimentColumns + " FROM experiments WHERE name = ?");
    s.bind_all(name);
    if (!s.step()) return std::nullopt;
    return store_codec::experiment_from_row(s);
  });
}

std::vector<std::string> SqliteStore::experiments() {
  Impl& d = *impl_;
  return d.db.run("listing experiments", Impl::Tx::none, [&] {
    std::vector<std::string> out;
    auto s = d.db.prepare("SELECT name FROM experiments ORDER BY name");
    while (s.step()) out.push_back(s.text(0));
    return out;
  });
}

std::optional<Leased> SqliteStore::lease(const std::string& experiment, const std::string& worker,
                                         double lease_seconds) {
  Impl& d = *impl_;
  return d.db.run("leasing a member", Impl::Tx::write, [&]() -> std::optional<Leased> {
    auto e = d.db.prepare("SELECT finished FROM experiments WHERE name = ?");
    e.bind_all(experiment);
    if (!e.step()) throw StoreError("unknown experiment '" + experiment + "' in " + d.where());
    if (e.i64(0) != 0) return std::nullopt;
    int id;
    {
      auto s = d.db.prepare(
          "SELECT id FROM members WHERE experiment = ? AND done = 0 AND failed = 0 AND (owner = '' OR owner = ? OR "
          "lease_expires < " PBT_SQL_NOW ") ORDER BY step ASC, (last_owner = ?) DESC, id ASC LIMIT 1");
      s.bind_all(experiment, worker, worker);
      if (!s.step()) return std::nullopt;
      id = static_cast<int>(s.i64(0));
    }
    d.db.prepare("UPDATE members SET owner = ?, last_owner = ?, version = version + 1, lease_expires = " PBT_SQL_NOW
                 " + ? WHERE experiment = ? AND id = ?")
        .bind_all(worker, worker, lease_seconds, experiment, id)
        .run();
    MemberState m = *d.member(experiment, id);
    return Leased{Lease{experiment, id, worker, m.version}, m};
  });
}

void SqliteStore::heartbeat(const Lease& lease, double lease_seconds) {
  Impl& d = *impl_;
  d.db.run("extending a lease", Impl::Tx::write, [&] {
    d.db.prepare("UPDATE members SET lease_expires = " PBT_SQL_NOW
                 " + ? WHERE experiment = ? AND id = ? AND version = ? AND owner = ?")
        .bind_all(lease_seconds, lease.experiment, lease.member, lease.version, lease.worker)
        .run();
    if (d.db.changes() == 0) throw LeaseLost(d.lease_lost(lease, "heartbeat"));
    return 0;
  });
}

void SqliteStore::publish(Lease& lease, const Publication& pub) {
  Impl& d = *impl_;
  // The checkpoint as staged; bytes given in memory (checkpoint_bytes) past inline_max go to a file too.
  std::shared_ptr<StagedCheckpoint> staged = pub.checkpoint;
  if (!staged && pub.checkpoint_bytes.size() > d.inline_max) {
    auto stager = d.files.stage(d.inline_max);
    stager->write(pub.checkpoint_bytes.data(), pub.checkpoint_bytes.size());
    staged = stager->finish();
  }
  const bool in_file = staged && !staged->temp_file().empty();
  const std::string& bytes = staged ? staged->bytes() : pub.checkpoint_bytes;  // what goes in the row
  // SQLite refuses a value over its length limit with a bare "string or blob too big";
  // such a checkpoint never fits, however often the member is trained again.
  if (static_cast<std::int64_t>(bytes.size()) > d.db.max_length())
    throw StoreError(d.where() + ": " + lease_text(lease) + ": its checkpoint of " + std::to_string(bytes.size()) +
                     " bytes is larger than SQLite's limit of " + std::to_string(d.db.max_length()) +
                     " bytes per value (SQLITE_MAX_LENGTH); let it go to a checkpoint file (checkpoint_dir=) "
                     "or use a smaller model");
  const std::string new_checkpoint = staged ? staged->id() : store_codec::publication_checkpoint_id(pub);
  const auto published = store_codec::published_values(pub);
  static const std::string kUpdate = "UPDATE members SET " +
                                     store_codec::assignments(store_codec::kPublishedColumns, 0) +
                                     ", checkpoint = ?, failures = 0, last_error = '', version = version + 1 "
                                     "WHERE experiment = ? AND id = ?";
  std::vector<std::string> unlink;  // files of checkpoints that went
  std::int64_t version = 0;
  try {
    version = d.db.run("publishing", Impl::Tx::write, [&] {
      unlink.clear();
      std::string old_checkpoint;
      {
        auto s = d.db.prepare("SELECT version, owner, checkpoint FROM members WHERE experiment = ? AND id = ?");
        s.bind_all(lease.experiment, lease.member);
        if (!s.step() || s.i64(0) != lease.version || s.text(1) != lease.worker)
          throw LeaseLost(d.lease_lost(lease, "publish"));
        old_checkpoint = s.text(2);
      }
      const double t = d.now_sql();
      const std::string checkpoint = new_checkpoint.empty() ? old_checkpoint : new_checkpoint;
      if (in_file) {
        // The file in place before its row: also when the row is there but its file went missing.
        const auto st = d.stored(new_checkpoint);
        if (!st || st->in_file) d.files.adopt(*staged);
        if (!st)
          d.db.prepare("INSERT INTO checkpoints(id, bytes, size, created) VALUES (?, X'', ?, ?)")
              .bind_all(new_checkpoint, static_cast<std::int64_t>(staged->size()), t)
              .run();
      } else if (!new_checkpoint.empty()) {
        auto s = d.db.prepare("INSERT OR IGNORE INTO checkpoints(id, bytes, size, created) VALUES (?, ?, ?, ?)");
        s.bind(1, new_checkpoint).bind_blob(2, bytes);
        s.bind(3, static_cast<std::int64_t>(bytes.size())).bind(4, t);
        s.run();
      }
      d.db.prepare(kUpdate).bind_all(published, checkpoint, lease.experiment, lease.member).run();
      static const std::string kScore =
          std::string("INSERT INTO scores(experiment, ") + store_codec::kScoreColumns + ") VALUES (?, ?, ?, ?)";
      for (const auto& p : pub.scores)
        d.db.prepare(kScore).bind_all(lease.experiment, store_codec::score_values(p)).run();
      d.insert_events(lease.experiment, t, pub.events, lease.worker);
      if (!old_checkpoint.empty() && old_checkpoint != checkpoint && d.drop_if_unreferenced(old_checkpoint))
        unlink.push_back(old_checkpoint);
      return lease.version + 1;
    });
  } catch (...) {
    // Nothing was published: a file adopted for it goes again, unless a row refers to it.
    if (in_file) d.remove_files({new_checkpoint});
    throw;
  }
  lease.version = version;
  if (in_file) CheckpointDir::release_temp(*staged);
  d.remove_files(unlink);
}

void SqliteStore::release(const Lease& lease) {
  Impl& d = *impl_;
  d.db.run("releasing a lease", Impl::Tx::write, [&] {
    d.db.prepare(
            "UPDATE members SET owner = '', lease_expires = 0 WHERE experiment = ? AND id = ? AND version = ? "
            "AND owner = ?")
        .bind_all(lease.experiment, lease.member, lease.version, lease.worker)
        .run();
    return 0;
  });
}

bool SqliteStore::fail(const Lease& lease, const std::string& error, int max_failures) {
  Impl& d = *impl_;
  return d.db.run("recording a failed interval", Impl::Tx::write, [&] {
    d.db.prepare(
            "UPDATE members SET failures = failures + 1, last_error = ?, failed = (failures + 1 >= ?), "
            "owner = '', lease_expires = 0, version = version + 1 "
            "WHERE experiment = ? AND id = ? AND version = ? AND owner = ?")
        .bind_all(error, max_failures, lease.experiment, lease.member, lease.version, lease.worker)
        .run();
    if (d.db.changes() == 0) throw LeaseLost(d.lease_lost(lease, "recording a failure"));
    auto s = d.db.prepare("SELECT failed FROM members WHERE experiment = ? AND id = ?");
    s.bind_all(lease.experiment, lease.member);
    return s.step() && s.i64(0) != 0;
  });
}

void SqliteStore::decide(const std::string& experiment, const std::vector<Decision>& decisions) {
  if (decisions.empty()) return;
  Impl& d = *impl_;
  store_codec::check_decisions(d.where(), experiment, decisions);
  static const std::string kUpdate = "UPDATE members SET " + store_codec::assignments(store_codec::kDecidedColumns, 0) +
                                     ", checkpoint = ?, owner = '', lease_expires = 0, version = version + 1 "
                                     "WHERE experiment = ? AND id = ?";
  std::vector<std::string> unlink;  // files of checkpoints that went
  d.db.run("applying decisions", Impl::Tx::write, [&] {
    d.require_experiment(experiment);
    // Every check before any change (all or nothing; the write lock keeps what we read).
    std::vector<std::string> checkpoints;  // each member's checkpoint after the decision
    std::vector<std::string> dropped;      // checkpoints members stop referring to
    unlink.clear();
    for (const auto& dec : decisions) {
      auto s =
          d.db.prepare("SELECT step, last_ready_step, failed, checkpoint FROM members WHERE experiment = ? AND id = ?");
      s.bind_all(experiment, dec.member);
      if (!s.step()) throw LeaseLost(store_codec::stale_decision_text(d.where(), experiment, dec, nullptr));
      MemberState now;
      now.step = s.i64(0);
      now.last_ready_step = s.i64(1);
      now.failed = s.boolean(2);
      if (now.failed || now.step != dec.step || now.last_ready_step != dec.last_ready_step)
        throw LeaseLost(store_codec::stale_decision_text(d.where(), experiment, dec, &now));
      checkpoints.push_back(s.text(3));  // its own, for now
    }
    for (std::size_t i = 0; i < decisions.size(); ++i) {  // (staleness first: it says another worker won)
      const Decision& dec = decisions[i];
      if (dec.checkpoint.empty() || dec.checkpoint == checkpoints[i]) continue;
      const auto st = d.stored(dec.checkpoint);
      if (!st) throw StoreError(store_codec::unknown_checkpoint_text(d.where(), experiment, dec));
      if (st->in_file && !d.files.has(dec.checkpoint, st->size))
        throw StoreError(store_codec::unknown_checkpoint_text(d.where(), experiment, dec) +
                         " (its file is missing from the " + d.files.text() + ")");
      if (!checkpoints[i].empty()) dropped.push_back(checkpoints[i]);
      checkpoints[i] = dec.checkpoint;
    }
    const double t = d.now_sql();
    for (std::size_t i = 0; i < decisions.size(); ++i) {
      const Decision& dec = decisions[i];
      d.db.prepare(kUpdate).bind_all(store_codec::decided_values(dec), checkpoints[i], experiment, dec.member).run();
      d.insert_events(experiment, t, dec.events, "");
    }
    for (const auto& id : dropped)
      if (d.drop_if_unreferenced(id)) unlink.push_back(id);
    return 0;
  });
  d.remove_files(unlink);
}

void SqliteStore::finish(const std::string& experiment) {
  Impl& d = *impl_;
  d.db.run("finishing an experiment", Impl::Tx::write, [&] {
    d.db.prepare("UPDATE experiments SET finished = 1 WHERE name = ?").bind_all(experiment).run();
    if (d.db.changes() == 0) throw StoreError("unknown experiment '" + experiment + "' in " + d.where());
    return 0;
  });
}

std::vector<MemberState> SqliteStore::population(const std::string& experiment) {
  Impl& d = *impl_;
  return d.db.run("reading the population", Impl::Tx::read, [&] {
    d.require_experiment(experiment);
    // Every worker reads the whole population at every ready step. A member's row only
    // changes in its h, score, samples or checkpoint together with its version, so rows
    // whose version is unchanged come from this connection's cache and only the cheap
    // lease columns are read for them: a decision over 1,000 members stays well under 1 ms.
    auto& cache = d.population_cache[experiment];
    std::vector<MemberState> out;
    std::vector<int> stale;
    {
      auto s = d.db.prepare(
          "SELECT id, version, owner, lease_expires, last_owner FROM members WHERE experiment = ? "
          "ORDER BY id");
      s.bind_all(experiment);
      while (s.step()) {
        const int id = static_cast<int>(s.i64(0));
        auto it = cache.find(id);
        if (it == cache.end() || it->second.version != s.i64(1)) {
          stale.push_back(id);
          out.emplace_back();
          out.back().id = id;
          continue;
        }
        it->second.owner = s.text(2);
        it->second.lease_expires = s.real(3);
        it->second.last_owner = s.text(4);
        out.push_back(it->second);
      }
    }
    if (!stale.empty()) {
      auto s = d.db.prepare(std::string("SELECT ") + store_codec::kMemberColumns +
                            " FROM members WHERE experiment = ? AND id = ?");
      std::size_t k = 0;
      for (auto& m : out) {
        if (k == stale.size() || m.id != stale[k]) continue;
        ++k;
        s.reset();
        s.bind_all(experiment, m.id);
        if (!s.step()) throw StoreError("member " + std::to_string(m.id) + " vanished while reading");
        m = store_codec::member_from_row(s, d.where(), experiment);
        cache[m.id] = m;
      }
    }
    return out;
  });
}

std::string SqliteStore::checkpoint(const std::string& id) {
  Impl& d = *impl_;
  std::optional<Impl::Stored> file;
  std::optional<std::string> bytes =
      d.db.run("reading a checkpoint", Impl::Tx::read, [&]() -> std::optional<std::string> {
        file = d.stored(id);
        if (!file) return std::nullopt;
        if (file->in_file) return std::string();
        file.reset();
        auto s = d.db.prepare("SELECT bytes FROM checkpoints WHERE id = ?");
        s.bind_all(id);
        if (!s.step()) return std::nullopt;
        return checkpoint_in_memory("checkpoint " + id + " in " + d.where(), s.size(0), [&] { return s.blob(0); });
      });
  if (!bytes) throw CheckpointError("checkpoint " + id + " is missing from " + d.where());
  if (file) return d.files.read(id, file->size);
  store_codec::verify_checkpoint(id, *bytes, d.where());
  return std::move(*bytes);
}

std::unique_ptr<CheckpointStager> SqliteStore::stage_checkpoint() { return impl_->files.stage(impl_->inline_max); }

std::unique_ptr<CheckpointSource> SqliteStore::open_checkpoint(const std::string& id) {
  Impl& d = *impl_;
  const auto st =
      d.db.run("reading a checkpoint", Impl::Tx::none, [&]() -> std::optional<Impl::Stored> { return d.stored(id); });
  if (!st) throw CheckpointError("checkpoint " + id + " is missing from " + d.where());
  if (st->in_file) return d.files.open(id, st->size);
  return Store::open_checkpoint(id);  // in its row: small
}

std::string SqliteStore::scratch_dir() {
  Impl& d = *impl_;
  const std::string dir = (std::filesystem::path(d.files.path()) / "scratch").string();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (!std::filesystem::is_directory(dir))
    throw StoreError(d.where() + ": cannot create the scratch directory '" + dir + "'" +
                     (ec ? ": " + ec.message() : ""));
  return dir;
}

const std::string& SqliteStore::checkpoint_dir() const { return impl_->files.path(); }

std::vector<Event> SqliteStore::events(const std::string& experiment) { return events_since(experiment, kAllSteps); }

std::vector<Event> SqliteStore::events_since(const std::string& experiment, std::int64_t from_step) {
  Impl& d = *impl_;
  return d.db.run("reading events", Impl::Tx::read, [&] {
    d.require_experiment(experiment);
    std::vector<Event> out;
    auto s = d.db.prepare(std::string("SELECT ") + store_codec::kEventColumns +
                          ", time FROM events WHERE experiment = ? AND step >= ? ORDER BY seq");
    s.bind_all(experiment, from_step);
    while (s.step()) out.push_back(store_codec::event_from_row(s, d.where(), experiment));
    return out;
  });
}

std::vector<ScorePoint> SqliteStore::scores(const std::string& experiment) {
  return scores_since(experiment, kAllSteps);
}

std::vector<ScorePoint> SqliteStore::scores_since(const std::string& experiment, std::int64_t from_step) {
  Impl& d = *impl_;
  return d.db.run("reading scores", Impl::Tx::read, [&] {
    d.require_experiment(experiment);
    std::vector<ScorePoint> out;
    auto s = d.db.prepare(std::string("SELECT ") + store_codec::kScoreColumns +
                          " FROM scores WHERE experiment = ? AND step >= ? ORDER BY member, step, rowid");
    s.bind_all(experiment, from_step);
    while (s.step()) out.push_back(store_codec::score_from_row(s));
    return out;
  });
}

std::size_t SqliteStore::collect_garbage() {
  Impl& d = *impl_;
  std::vector<std::string> unlink;  // files of checkpoints that went
  const std::size_t rows = d.db.run("collecting garbage", Impl::Tx::write, [&] {
    unlink.clear();
    auto s = d.db.prepare(
        "SELECT id FROM checkpoints WHERE length(bytes) = 0 AND size > 0 AND NOT EXISTS "
        "(SELECT 1 FROM members WHERE members.checkpoint = checkpoints.id)");
    while (s.step()) unlink.push_back(s.text(0));
    d.db.prepare(
            "DELETE FROM checkpoints WHERE NOT EXISTS (SELECT 1 FROM members WHERE members.checkpoint = "
            "checkpoints.id)")
        .run();
    return static_cast<std::size_t>(d.db.changes());
  });
  d.remove_files(unlink);
  return rows + d.sweep_files(unlink);
}

double SqliteStore::now() {
  Impl& d = *impl_;
  return d.db.run("reading the clock", Impl::Tx::none, [&] { return d.now_sql(); });
}

}  // namespace pbt
