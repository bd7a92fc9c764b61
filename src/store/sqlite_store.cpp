// The SQLite store (see sqlite_store.hpp).
#include "store/sqlite_store.hpp"

#include <sqlite3.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include "pbt/checkpoint_io.hpp"
#include "pbt/error.hpp"
#include "store/codec.hpp"

namespace pbt {

namespace {

// The store's clock: SQLite's, in seconds since the Unix epoch.
#define PBT_SQL_NOW "((julianday('now') - 2440587.5) * 86400.0)"

const char* const kSchema = R"sql(
CREATE TABLE IF NOT EXISTS experiments(
  name TEXT PRIMARY KEY,
  config TEXT NOT NULL,
  origin TEXT NOT NULL,
  population INTEGER NOT NULL,
  finished INTEGER NOT NULL DEFAULT 0,
  created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS members(
  experiment TEXT NOT NULL,
  id INTEGER NOT NULL,
  step INTEGER NOT NULL,
  last_ready_step INTEGER NOT NULL,
  score REAL,
  samples TEXT NOT NULL,
  h TEXT NOT NULL,
  checkpoint TEXT NOT NULL DEFAULT '',
  done INTEGER NOT NULL DEFAULT 0,
  failures INTEGER NOT NULL DEFAULT 0,
  failed INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  version INTEGER NOT NULL DEFAULT 0,
  owner TEXT NOT NULL DEFAULT '',
  lease_expires REAL NOT NULL DEFAULT 0,
  last_owner TEXT NOT NULL DEFAULT '',
  metrics TEXT NOT NULL,
  PRIMARY KEY(experiment, id));
CREATE INDEX IF NOT EXISTS members_by_checkpoint ON members(checkpoint);
CREATE TABLE IF NOT EXISTS checkpoints(
  id TEXT PRIMARY KEY,
  bytes BLOB NOT NULL,
  size INTEGER NOT NULL,
  created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS scores(
  experiment TEXT NOT NULL,
  member INTEGER NOT NULL,
  step INTEGER NOT NULL,
  score REAL);
CREATE INDEX IF NOT EXISTS scores_by_member ON scores(experiment, member, step);
CREATE TABLE IF NOT EXISTS events(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  experiment TEXT NOT NULL,
  member INTEGER NOT NULL,
  step INTEGER NOT NULL,
  kind TEXT NOT NULL,
  donor INTEGER NOT NULL,
  donor_step INTEGER NOT NULL,
  copied TEXT NOT NULL,
  donor_checkpoint TEXT NOT NULL,
  old_h TEXT NOT NULL,
  new_h TEXT NOT NULL,
  old_score REAL,
  donor_score REAL,
  new_score REAL,
  worker TEXT NOT NULL,
  time REAL NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_experiment ON events(experiment, seq);
)sql";

// A transient condition (another process holds the lock): the whole transaction is retried.
struct Transient {
  std::string message;
};

bool is_transient(int rc) {
  const int primary = rc & 0xff;
  return primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
}

using store_codec::dump;
using store_codec::lease_text;
using store_codec::samples_from_text;
using store_codec::samples_to_text;

}  // namespace

struct SqliteStore::Impl {
  std::string path;
  Options options;
  sqlite3* db = nullptr;
  std::mutex mutex;
  std::unordered_map<std::string, sqlite3_stmt*> statements;
  // Members as last read, by experiment and id; valid while their version is unchanged.
  std::unordered_map<std::string, std::map<int, MemberState>> population_cache;
  std::mt19937_64 rng{std::random_device{}()};
  std::int64_t max_length = 0;  // SQLite's limit on one value, in bytes

  ~Impl() {
    for (auto& [sql, s] : statements) sqlite3_finalize(s);
    if (db) sqlite3_close_v2(db);
  }

  [[noreturn]] void fail(int rc, const std::string& what) {
    std::string message = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    if (is_transient(rc)) throw Transient{message};
    if ((rc & 0xff) == SQLITE_NOTADB)
      throw StoreError("'" + path + "' is not an SQLite database, so not a pbt store (" + message + ")");
    // A full disk or a failing read/write is the store's condition, not this write's: the
    // same write may succeed later. Anything else (a malformed page, a missing table, a
    // value over SQLite's limits) fails the same way every time.
    const int primary = rc & 0xff;
    if (primary == SQLITE_FULL || primary == SQLITE_IOERR || primary == SQLITE_CANTOPEN)
      throw StoreUnavailable("SQLite store '" + path + "': " + what + ": " + message);
    throw StoreError("SQLite store '" + path + "': " + what + ": " + message);
  }

  void exec(const char* sql, const char* what) {
    int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) fail(rc, what);
  }

  // A prepared statement, reset when it goes out of scope.
  class Stmt {
   public:
    Stmt(Impl& impl, sqlite3_stmt* s) : impl_(impl), s_(s) {}
    ~Stmt() {
      sqlite3_reset(s_);
      sqlite3_clear_bindings(s_);
    }
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;
    void reset() {
      sqlite3_reset(s_);
      sqlite3_clear_bindings(s_);
    }

    Stmt& bind(int i, std::int64_t v) { return check(sqlite3_bind_int64(s_, i, v)); }
    Stmt& bind(int i, int v) { return check(sqlite3_bind_int64(s_, i, v)); }
    Stmt& bind(int i, bool v) { return check(sqlite3_bind_int64(s_, i, v ? 1 : 0)); }
    Stmt& bind(int i, double v) { return check(sqlite3_bind_double(s_, i, v)); }
    Stmt& bind(int i, const std::optional<double>& v) {
      return v ? bind(i, *v) : check(sqlite3_bind_null(s_, i));
    }
    Stmt& bind(int i, const std::string& v) {
      return check(sqlite3_bind_text64(s_, i, v.data(), v.size(), SQLITE_STATIC, SQLITE_UTF8));
    }
    Stmt& bind(int i, const char* v) { return check(sqlite3_bind_text(s_, i, v, -1, SQLITE_STATIC)); }
    Stmt& bind_blob(int i, const std::string& v) {
      return check(sqlite3_bind_blob64(s_, i, v.data(), v.size(), SQLITE_STATIC));
    }
    template <class... Args>
    Stmt& bind_all(const Args&... args) {
      int i = 0;
      (bind(++i, args), ...);
      return *this;
    }

    // True when a row is ready; false when the statement is done.
    bool step() {
      int rc = sqlite3_step(s_);
      if (rc == SQLITE_ROW) return true;
      if (rc == SQLITE_DONE) return false;
      impl_.fail(rc, std::string("running ") + sqlite3_sql(s_));
    }
    void run() {
      while (step()) {
      }
    }

    bool null(int c) { return sqlite3_column_type(s_, c) == SQLITE_NULL; }
    std::int64_t i64(int c) { return sqlite3_column_int64(s_, c); }
    double real(int c) { return null(c) ? std::numeric_limits<double>::quiet_NaN() : sqlite3_column_double(s_, c); }
    std::optional<double> opt_real(int c) {
      return null(c) ? std::nullopt : std::optional<double>(sqlite3_column_double(s_, c));
    }
    std::string text(int c) {
      const unsigned char* p = sqlite3_column_text(s_, c);
      return p ? std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(s_, c)) : std::string();
    }
    std::uint64_t size(int c) { return static_cast<std::uint64_t>(sqlite3_column_bytes(s_, c)); }
    std::string blob(int c) {
      const void* p = sqlite3_column_blob(s_, c);
      return p ? std::string(static_cast<const char*>(p), sqlite3_column_bytes(s_, c)) : std::string();
    }

   private:
    Stmt& check(int rc) {
      if (rc != SQLITE_OK) impl_.fail(rc, std::string("binding ") + sqlite3_sql(s_));
      return *this;
    }
    Impl& impl_;
    sqlite3_stmt* s_;
  };

  Stmt prepare(const std::string& sql) {
    auto it = statements.find(sql);
    if (it == statements.end()) {
      sqlite3_stmt* s = nullptr;
      int rc = sqlite3_prepare_v3(db, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr);
      if (rc != SQLITE_OK) fail(rc, "preparing " + sql);
      it = statements.emplace(sql, s).first;
    }
    return Stmt(*this, it->second);
  }

  std::int64_t changes() { return sqlite3_changes64(db); }

  enum class Tx { none, read, write };

  // Runs f under the mutex, inside a transaction of the given kind; retries the whole of it
  // with jittered backoff while SQLite reports a transient lock, for options.retry_seconds.
  template <class F>
  auto run(const char* what, Tx tx, F&& f) -> decltype(f()) {
    const auto start = std::chrono::steady_clock::now();
    double backoff = 0.002;
    for (int attempt = 1;; ++attempt) {
      try {
        std::lock_guard<std::mutex> lock(mutex);
        if (tx == Tx::read) exec("BEGIN", what);
        if (tx == Tx::write) exec("BEGIN IMMEDIATE", what);
        try {
          auto result = f();
          if (tx != Tx::none) exec("COMMIT", what);
          return result;
        } catch (...) {
          if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
          throw;
        }
      } catch (const Transient& t) {
        const double elapsed =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (elapsed >= options.retry_seconds)
        {
          char seconds[32];
          std::snprintf(seconds, sizeof seconds, "%.1f", elapsed);
          throw StoreUnavailable("SQLite store '" + path + "': " + what + ": still locked after " +
                           std::to_string(attempt) + " attempts in " + seconds + " s (" + t.message + ")");
        }
        std::uniform_real_distribution<double> jitter(0.5, 1.5);
        double pause;
        {
          std::lock_guard<std::mutex> lock(mutex);
          pause = backoff * jitter(rng);
        }
        std::this_thread::sleep_for(std::chrono::duration<double>(pause));
        backoff = std::min(backoff * 2, 0.25);
      }
    }
  }

  double now_sql() {
    auto s = prepare("SELECT " PBT_SQL_NOW);
    s.step();
    return s.real(0);
  }

  bool experiment_exists(const std::string& name) {
    auto s = prepare("SELECT 1 FROM experiments WHERE name = ?");
    s.bind_all(name);
    return s.step();
  }

  void require_experiment(const std::string& name) {
    if (!experiment_exists(name))
      throw StoreError("unknown experiment '" + name + "' in SQLite store '" + path + "'");
  }

  static constexpr const char* kMemberColumns =
      "id, step, last_ready_step, score, samples, h, checkpoint, done, version, owner, "
      "lease_expires, last_owner, metrics, failures, failed, last_error";

  MemberState read_member(Stmt& s, const std::string& experiment) {
    using store_codec::column;
    MemberState m;
    m.id = static_cast<int>(s.i64(0));
    const auto row = [&] {
      return "SQLite store '" + path + "': table members, experiment '" + experiment + "', member " +
             std::to_string(m.id);
    };
    m.step = s.i64(1);
    m.last_ready_step = s.i64(2);
    m.score = s.opt_real(3);
    m.samples = column(row, "samples", [&] { return samples_from_text(s.text(4)); });
    m.h = column(row, "h", [&] { return store_codec::h_from_text(s.text(5)); });
    m.checkpoint = s.text(6);
    m.done = s.i64(7) != 0;
    m.version = s.i64(8);
    m.owner = s.text(9);
    m.lease_expires = s.real(10);
    m.last_owner = s.text(11);
    m.metrics = column(row, "metrics", [&] { return nlohmann::json::parse(s.text(12)); });
    m.failures = static_cast<int>(s.i64(13));
    m.failed = s.i64(14) != 0;
    m.last_error = s.text(15);
    return m;
  }

  std::optional<MemberState> member(const std::string& experiment, int id) {
    auto s = prepare(std::string("SELECT ") + kMemberColumns + " FROM members WHERE experiment = ? AND id = ?");
    s.bind_all(experiment, id);
    if (!s.step()) return std::nullopt;
    return read_member(s, experiment);
  }

  std::string lease_lost(const Lease& lease, const std::string& what) {
    std::string now;
    auto m = member(lease.experiment, lease.member);
    if (!m) now = "the member is gone";
    else
      now = "it is at version " + std::to_string(m->version) + (m->owner.empty() ? ", free" : ", held by '" + m->owner + "'");
    return "lease lost: " + what + ": " + lease_text(lease) + " is no longer held by worker '" + lease.worker +
           "' at version " + std::to_string(lease.version) + " (" + now + ")";
  }

  // True when the schema is there at our version; false when the file is empty (of tables);
  // throws when it is another schema version or another application's database.
  bool check_schema() {
    bool has_meta;
    {
      auto m = prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'");
      has_meta = m.step();
    }
    if (has_meta) {
      auto s = prepare("SELECT value FROM meta WHERE key = 'schema_version'");
      if (s.step()) {
        const std::string found = s.text(0);
        if (found != std::to_string(kSchemaVersion))
          throw StoreError("SQLite store '" + path + "' has schema version " + found +
                           ", but this build of pbt supports schema version " + std::to_string(kSchemaVersion) +
                           " only");
        return true;
      }
    }
    auto other = prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT IN "
        "('meta', 'experiments', 'members', 'checkpoints', 'scores', 'events') LIMIT 1");
    if (other.step())
      throw StoreError("'" + path + "' is an SQLite database but not a pbt store (it has a table '" +
                       other.text(0) + "' and no schema version)");
    return false;
  }

  void open() {
    int rc = sqlite3_open_v2(path.c_str(), &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
    if (rc != SQLITE_OK) {
      std::string message = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
      throw StoreError("cannot open SQLite store '" + path + "': " + message);
    }
    sqlite3_extended_result_codes(db, 1);
    if (options.length_limit > 0) sqlite3_limit(db, SQLITE_LIMIT_LENGTH, options.length_limit);
    max_length = sqlite3_limit(db, SQLITE_LIMIT_LENGTH, -1);
    sqlite3_busy_timeout(db, options.busy_timeout_ms);
    // Look before changing anything (WAL mode is persistent): refuse foreign files first.
    const bool present = run("checking the schema", Tx::read, [&] { return check_schema(); });
    run("opening", Tx::none, [&] {
      auto s = prepare("PRAGMA journal_mode = WAL");
      s.run();
      return 0;
    });
    run("opening", Tx::none, [&] {
      exec("PRAGMA synchronous = NORMAL", "opening");
      return 0;
    });
    // Concurrent first openers: the first one in creates the schema, the others find it.
    if (!present) run("creating the schema", Tx::write, [&] {
      if (check_schema()) return 0;
      exec("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)", "creating the schema");
      exec(kSchema, "creating the schema");
      auto v = prepare("INSERT INTO meta(key, value) VALUES ('schema_version', ?)");
      v.bind_all(std::to_string(kSchemaVersion)).run();
      return 0;
    });
  }
};

SqliteStore::SqliteStore(const std::string& path) : SqliteStore(path, Options{}) {}

SqliteStore::SqliteStore(const std::string& path, Options options) : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  impl_->options = options;
  impl_->open();
}

SqliteStore::~SqliteStore() = default;

const std::string& SqliteStore::path() const { return impl_->path; }

void SqliteStore::create_experiment(const ExperimentInfo& info, const std::vector<MemberState>& members) {
  Impl& d = *impl_;
  d.run("creating an experiment", Impl::Tx::write, [&] {
    if (d.experiment_exists(info.name))
      throw StoreError("experiment '" + info.name + "' already exists in SQLite store '" + d.path + "'");
    const double created = info.created != 0 ? info.created : d.now_sql();
    const int population = info.population != 0 ? info.population : static_cast<int>(members.size());
    d.prepare("INSERT INTO experiments(name, config, origin, population, finished, created) VALUES (?, ?, ?, ?, ?, ?)")
        .bind_all(info.name, info.config, info.origin, population, info.finished, created)
        .run();
    for (const auto& m : members) {
      auto exists = d.prepare("SELECT 1 FROM members WHERE experiment = ? AND id = ?");
      exists.bind_all(info.name, m.id);
      if (exists.step())
        throw StoreError("experiment '" + info.name + "': member id " + std::to_string(m.id) + " given twice");
      d.prepare(
           "INSERT INTO members(experiment, id, step, last_ready_step, score, samples, h, checkpoint, done, "
           "version, owner, lease_expires, last_owner, metrics) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', 0, ?, ?)")
          .bind_all(info.name, m.id, m.step, m.last_ready_step, m.score, samples_to_text(m.samples),
                    dump(to_json(m.h)), m.checkpoint, m.done, m.version, m.last_owner, dump(m.metrics))
          .run();
    }
    return 0;
  });
}

std::optional<ExperimentInfo> SqliteStore::experiment(const std::string& name) {
  Impl& d = *impl_;
  return d.run("reading an experiment", Impl::Tx::none, [&]() -> std::optional<ExperimentInfo> {
    auto s = d.prepare("SELECT name, config, origin, population, finished, created FROM experiments WHERE name = ?");
    s.bind_all(name);
    if (!s.step()) return std::nullopt;
    ExperimentInfo info;
    info.name = s.text(0);
    info.config = s.text(1);
    info.origin = s.text(2);
    info.population = static_cast<int>(s.i64(3));
    info.finished = s.i64(4) != 0;
    info.created = s.real(5);
    return info;
  });
}

std::vector<std::string> SqliteStore::experiments() {
  Impl& d = *impl_;
  return d.run("listing experiments", Impl::Tx::none, [&] {
    std::vector<std::string> out;
    auto s = d.prepare("SELECT name FROM experiments ORDER BY name");
    while (s.step()) out.push_back(s.text(0));
    return out;
  });
}

std::optional<Leased> SqliteStore::lease(const std::string& experiment, const std::string& worker,
                                         double lease_seconds) {
  Impl& d = *impl_;
  return d.run("leasing a member", Impl::Tx::write, [&]() -> std::optional<Leased> {
    auto e = d.prepare("SELECT finished FROM experiments WHERE name = ?");
    e.bind_all(experiment);
    if (!e.step()) throw StoreError("unknown experiment '" + experiment + "' in SQLite store '" + d.path + "'");
    if (e.i64(0) != 0) return std::nullopt;
    int id;
    {
      auto s = d.prepare(
          "SELECT id FROM members WHERE experiment = ? AND done = 0 AND failed = 0 AND (owner = '' OR owner = ? OR lease_expires < "
          PBT_SQL_NOW ") ORDER BY step ASC, (last_owner = ?) DESC, id ASC LIMIT 1");
      s.bind_all(experiment, worker, worker);
      if (!s.step()) return std::nullopt;
      id = static_cast<int>(s.i64(0));
    }
    d.prepare("UPDATE members SET owner = ?, last_owner = ?, version = version + 1, lease_expires = " PBT_SQL_NOW
              " + ? WHERE experiment = ? AND id = ?")
        .bind_all(worker, worker, lease_seconds, experiment, id)
        .run();
    MemberState m = *d.member(experiment, id);
    return Leased{Lease{experiment, id, worker, m.version}, m};
  });
}

void SqliteStore::heartbeat(const Lease& lease, double lease_seconds) {
  Impl& d = *impl_;
  d.run("extending a lease", Impl::Tx::write, [&] {
    d.prepare("UPDATE members SET lease_expires = " PBT_SQL_NOW
              " + ? WHERE experiment = ? AND id = ? AND version = ? AND owner = ?")
        .bind_all(lease_seconds, lease.experiment, lease.member, lease.version, lease.worker)
        .run();
    if (d.changes() == 0) throw LeaseLost(d.lease_lost(lease, "heartbeat"));
    return 0;
  });
}

void SqliteStore::publish(Lease& lease, const Publication& pub) {
  Impl& d = *impl_;
  // SQLite refuses a value over its length limit with a bare "string or blob too big";
  // such a checkpoint never fits, however often the member is trained again.
  if (static_cast<std::int64_t>(pub.checkpoint_bytes.size()) > d.max_length)
    throw StoreError("SQLite store '" + d.path + "': " + lease_text(lease) + ": its checkpoint of " +
                     std::to_string(pub.checkpoint_bytes.size()) + " bytes is larger than SQLite's limit of " +
                     std::to_string(d.max_length) +
                     " bytes per value (SQLITE_MAX_LENGTH); use a PostgreSQL store with "
                     "checkpoint_dir= (checkpoints as files) or a smaller model");
  const std::string new_checkpoint = pub.checkpoint_bytes.empty() ? "" : checkpoint_id(pub.checkpoint_bytes);
  const std::string samples = samples_to_text(pub.samples);
  const std::string h = dump(to_json(pub.h));
  const std::string metrics = dump(pub.metrics);
  const std::int64_t version = d.run("publishing", Impl::Tx::write, [&] {
    std::string old_checkpoint;
    {
      auto s = d.prepare("SELECT version, owner, checkpoint FROM members WHERE experiment = ? AND id = ?");
      s.bind_all(lease.experiment, lease.member);
      if (!s.step() || s.i64(0) != lease.version || s.text(1) != lease.worker)
        throw LeaseLost(d.lease_lost(lease, "publish"));
      old_checkpoint = s.text(2);
    }
    const double t = d.now_sql();
    const std::string checkpoint = new_checkpoint.empty() ? old_checkpoint : new_checkpoint;
    if (!new_checkpoint.empty()) {
      auto s = d.prepare("INSERT OR IGNORE INTO checkpoints(id, bytes, size, created) VALUES (?, ?, ?, ?)");
      s.bind(1, new_checkpoint).bind_blob(2, pub.checkpoint_bytes);
      s.bind(3, static_cast<std::int64_t>(pub.checkpoint_bytes.size())).bind(4, t);
      s.run();
    }
    d.prepare("UPDATE members SET step = ?, last_ready_step = ?, score = ?, samples = ?, h = ?, checkpoint = ?, "
              "done = ?, metrics = ?, failures = 0, last_error = '', version = version + 1 "
              "WHERE experiment = ? AND id = ?")
        .bind_all(pub.step, pub.last_ready_step, pub.score, samples, h, checkpoint, pub.done, metrics,
                  lease.experiment, lease.member)
        .run();
    for (const auto& p : pub.scores)
      d.prepare("INSERT INTO scores(experiment, member, step, score) VALUES (?, ?, ?, ?)")
          .bind_all(lease.experiment, p.member, p.step, p.score)
          .run();
    for (const auto& ev : pub.events)
      d.prepare("INSERT INTO events(experiment, member, step, kind, donor, donor_step, copied, donor_checkpoint, "
                "old_h, new_h, old_score, donor_score, new_score, worker, time) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
          .bind_all(lease.experiment, ev.member, ev.step, to_string(ev.kind), ev.donor, ev.donor_step, to_string(ev.copied),
                    ev.donor_checkpoint,
                    dump(to_json(ev.old_h)), dump(to_json(ev.new_h)), ev.old_score, ev.donor_score, ev.new_score,
                    ev.worker.empty() ? lease.worker : ev.worker, t)
          .run();
    if (!old_checkpoint.empty() && old_checkpoint != checkpoint)
      d.prepare("DELETE FROM checkpoints WHERE id = ? AND NOT EXISTS (SELECT 1 FROM members WHERE checkpoint = ?)")
          .bind_all(old_checkpoint, old_checkpoint)
          .run();
    return lease.version + 1;
  });
  lease.version = version;
}

void SqliteStore::release(const Lease& lease) {
  Impl& d = *impl_;
  d.run("releasing a lease", Impl::Tx::write, [&] {
    d.prepare("UPDATE members SET owner = '', lease_expires = 0 WHERE experiment = ? AND id = ? AND version = ? "
              "AND owner = ?")
        .bind_all(lease.experiment, lease.member, lease.version, lease.worker)
        .run();
    return 0;
  });
}

bool SqliteStore::fail(const Lease& lease, const std::string& error, int max_failures) {
  Impl& d = *impl_;
  return d.run("recording a failed interval", Impl::Tx::write, [&] {
    d.prepare("UPDATE members SET failures = failures + 1, last_error = ?, failed = (failures + 1 >= ?), "
              "owner = '', lease_expires = 0, version = version + 1 "
              "WHERE experiment = ? AND id = ? AND version = ? AND owner = ?")
        .bind_all(error, max_failures, lease.experiment, lease.member, lease.version, lease.worker)
        .run();
    if (d.changes() == 0) throw LeaseLost(d.lease_lost(lease, "recording a failure"));
    auto s = d.prepare("SELECT failed FROM members WHERE experiment = ? AND id = ?");
    s.bind_all(lease.experiment, lease.member);
    return s.step() && s.i64(0) != 0;
  });
}

void SqliteStore::finish(const std::string& experiment) {
  Impl& d = *impl_;
  d.run("finishing an experiment", Impl::Tx::write, [&] {
    d.prepare("UPDATE experiments SET finished = 1 WHERE name = ?").bind_all(experiment).run();
    if (d.changes() == 0) throw StoreError("unknown experiment '" + experiment + "' in SQLite store '" + d.path + "'");
    return 0;
  });
}

std::vector<MemberState> SqliteStore::population(const std::string& experiment) {
  Impl& d = *impl_;
  return d.run("reading the population", Impl::Tx::read, [&] {
    d.require_experiment(experiment);
    // Every worker reads the whole population at every ready step. A member's row only
    // changes in its h, score, samples or checkpoint together with its version, so rows
    // whose version is unchanged come from this connection's cache and only the cheap
    // lease columns are read for them: a decision over 1,000 members stays well under 1 ms.
    auto& cache = d.population_cache[experiment];
    std::vector<MemberState> out;
    std::vector<int> stale;
    {
      auto s = d.prepare("SELECT id, version, owner, lease_expires, last_owner FROM members WHERE experiment = ? "
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
      auto s = d.prepare(std::string("SELECT ") + Impl::kMemberColumns +
                         " FROM members WHERE experiment = ? AND id = ?");
      std::size_t k = 0;
      for (auto& m : out) {
        if (k == stale.size() || m.id != stale[k]) continue;
        ++k;
        s.reset();
        s.bind_all(experiment, m.id);
        if (!s.step()) throw StoreError("member " + std::to_string(m.id) + " vanished while reading");
        m = d.read_member(s, experiment);
        cache[m.id] = m;
      }
    }
    return out;
  });
}

std::string SqliteStore::checkpoint(const std::string& id) {
  Impl& d = *impl_;
  std::optional<std::string> bytes = d.run("reading a checkpoint", Impl::Tx::none, [&]() -> std::optional<std::string> {
    auto s = d.prepare("SELECT bytes FROM checkpoints WHERE id = ?");
    s.bind_all(id);
    if (!s.step()) return std::nullopt;
    return checkpoint_in_memory("checkpoint " + id + " in SQLite store '" + d.path + "'", s.size(0),
                                [&] { return s.blob(0); });
  });
  if (!bytes) throw CheckpointError("checkpoint " + id + " is missing from SQLite store '" + d.path + "'");
  const std::string actual = checkpoint_id(*bytes);
  if (actual != id)
    throw CheckpointError("checkpoint " + id + " in SQLite store '" + d.path +
                          "' does not match its hash (its bytes hash to " + actual + ")");
  return std::move(*bytes);
}

std::vector<Event> SqliteStore::events(const std::string& experiment) {
  Impl& d = *impl_;
  return d.run("reading events", Impl::Tx::read, [&] {
    d.require_experiment(experiment);
    std::vector<Event> out;
    auto s = d.prepare(
        "SELECT member, step, kind, donor, copied, donor_checkpoint, old_h, new_h, old_score, donor_score, new_score, "
        "worker, time, donor_step FROM events WHERE experiment = ? ORDER BY seq");
    s.bind_all(experiment);
    while (s.step()) {
      Event ev;
      ev.member = static_cast<int>(s.i64(0));
      ev.step = s.i64(1);
      ev.kind = parse_event_kind(s.text(2));
      ev.donor = static_cast<int>(s.i64(3));
      ev.copied = parse_copy_mode(s.text(4));
      ev.donor_checkpoint = s.text(5);
      const auto row = [&] {
        return "SQLite store '" + d.path + "': table events, experiment '" + experiment + "', event of member " +
               std::to_string(ev.member) + " at step " + std::to_string(ev.step);
      };
      ev.old_h = store_codec::column(row, "old_h", [&] { return store_codec::h_from_text(s.text(6)); });
      ev.new_h = store_codec::column(row, "new_h", [&] { return store_codec::h_from_text(s.text(7)); });
      ev.old_score = s.real(8);
      ev.donor_score = s.real(9);
      ev.new_score = s.opt_real(10);
      ev.worker = s.text(11);
      ev.time = s.real(12);
      ev.donor_step = s.i64(13);
      out.push_back(std::move(ev));
    }
    return out;
  });
}

std::vector<ScorePoint> SqliteStore::scores(const std::string& experiment) {
  Impl& d = *impl_;
  return d.run("reading scores", Impl::Tx::read, [&] {
    d.require_experiment(experiment);
    std::vector<ScorePoint> out;
    auto s = d.prepare("SELECT member, step, score FROM scores WHERE experiment = ? ORDER BY member, step, rowid");
    s.bind_all(experiment);
    while (s.step()) out.push_back(ScorePoint{static_cast<int>(s.i64(0)), s.i64(1), s.real(2)});
    return out;
  });
}

std::size_t SqliteStore::collect_garbage() {
  Impl& d = *impl_;
  return d.run("collecting garbage", Impl::Tx::write, [&] {
    d.prepare("DELETE FROM checkpoints WHERE NOT EXISTS (SELECT 1 FROM members WHERE members.checkpoint = checkpoints.id)")
        .run();
    return static_cast<std::size_t>(d.changes());
  });
}

double SqliteStore::now() {
  Impl& d = *impl_;
  return d.run("reading the clock", Impl::Tx::none, [&] { return d.now_sql(); });
}

}  // namespace pbt
