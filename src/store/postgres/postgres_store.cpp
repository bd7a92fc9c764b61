// The PostgreSQL store (see postgres_store.hpp), on libpq's C API.
#include "store/postgres/postgres_store.hpp"

#include <fcntl.h>
#include <libpq-fe.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "pbt/checkpoint_io.hpp"
#include "pbt/error.hpp"
#include "store/codec.hpp"

namespace pbt {

namespace {

namespace fs = std::filesystem;

// The store's clock: the server's, in seconds since the Unix epoch.
#define PBT_PG_NOW "extract(epoch from clock_timestamp())::float8"

// Advisory lock classes (two-int form): 'pbts' for schema creation, 'pbtc' for one
// checkpoint file (its first 32 bits as the second key).
constexpr std::int32_t kSchemaLockClass = 0x70627473;
constexpr std::int32_t kCheckpointLockClass = 0x70627463;

// Schema version 2 added members.changed (see kMembersChanged); a version-1 store is
// upgraded in place by the first worker that opens it.
constexpr int kPgSchemaVersion = 2;

// Every write to a member row stamps it with the writing transaction's id, so a reader can
// fetch only the rows changed since its last read (PostgresStore::population).
const char* const kMembersChanged = R"sql(
ALTER TABLE members ADD COLUMN IF NOT EXISTS changed xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE OR REPLACE FUNCTION pbt_member_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.changed := pg_current_xact_id();
  RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS members_changed ON members;
CREATE TRIGGER members_changed BEFORE INSERT OR UPDATE ON members
  FOR EACH ROW EXECUTE FUNCTION pbt_member_changed();
)sql";

const char* const kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(
  key text PRIMARY KEY,
  value text NOT NULL);
CREATE TABLE IF NOT EXISTS experiments(
  name text PRIMARY KEY,
  config text NOT NULL,
  origin text NOT NULL,
  population integer NOT NULL,
  finished boolean NOT NULL DEFAULT false,
  created double precision NOT NULL);
CREATE TABLE IF NOT EXISTS members(
  experiment text NOT NULL,
  id integer NOT NULL,
  step bigint NOT NULL,
  last_ready_step bigint NOT NULL,
  score double precision,
  samples text NOT NULL,
  h text NOT NULL,
  checkpoint text NOT NULL DEFAULT '',
  done boolean NOT NULL DEFAULT false,
  failures integer NOT NULL DEFAULT 0,
  failed boolean NOT NULL DEFAULT false,
  last_error text NOT NULL DEFAULT '',
  version bigint NOT NULL DEFAULT 0,
  owner text NOT NULL DEFAULT '',
  lease_expires double precision NOT NULL DEFAULT 0,
  last_owner text NOT NULL DEFAULT '',
  metrics text NOT NULL,
  publish_token text NOT NULL DEFAULT '',
  PRIMARY KEY(experiment, id));
CREATE INDEX IF NOT EXISTS members_by_checkpoint ON members(checkpoint);
CREATE TABLE IF NOT EXISTS checkpoints(
  id text PRIMARY KEY,
  bytes bytea,
  size bigint NOT NULL,
  created double precision NOT NULL);
CREATE TABLE IF NOT EXISTS scores(
  seq bigserial PRIMARY KEY,
  experiment text NOT NULL,
  member integer NOT NULL,
  step bigint NOT NULL,
  score double precision);
CREATE INDEX IF NOT EXISTS scores_by_member ON scores(experiment, member, step, seq);
CREATE TABLE IF NOT EXISTS events(
  seq bigserial PRIMARY KEY,
  experiment text NOT NULL,
  member integer NOT NULL,
  step bigint NOT NULL,
  kind text NOT NULL,
  donor integer NOT NULL,
  donor_step bigint NOT NULL,
  copied text NOT NULL,
  donor_checkpoint text NOT NULL,
  old_h text NOT NULL,
  new_h text NOT NULL,
  old_score double precision,
  donor_score double precision,
  new_score double precision,
  worker text NOT NULL,
  time double precision NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_experiment ON events(experiment, seq);
)sql";

const std::set<std::string> kTables = {"meta", "experiments", "members", "checkpoints", "scores", "events"};

// A serialization failure or deadlock: the whole transaction is retried.
struct Transient {
  std::string message;
};
// The connection is gone (or never came): reconnect, then retry the whole operation.
struct ConnectionLost {
  std::string message;
};

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  // libpq's multi-line messages (ERROR: ... / DETAIL: ...) read better on one line.
  std::string out;
  for (char c : s) {
    if (c == '\n' || c == '\t') c = ' ';
    if (c == ' ' && !out.empty() && out.back() == ' ') continue;
    out += c;
  }
  return out;
}

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

using store_codec::dump;
using store_codec::lease_text;
using store_codec::samples_from_text;
using store_codec::samples_to_text;

std::string quote_ident(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string percent_decode(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// pbt's own query parameters, taken out of the URI before libpq parses it (libpq refuses
// parameters it does not know).
struct SplitUri {
  std::string libpq;
  std::map<std::string, std::string> own;
};

SplitUri split_uri(const std::string& uri) {
  static const std::set<std::string> kOwn = {"checkpoint_dir", "retry_seconds", "schema"};
  SplitUri out;
  const auto q = uri.find('?');
  if (q == std::string::npos) {
    out.libpq = uri;
    return out;
  }
  std::string kept;
  std::string query = uri.substr(q + 1);
  std::size_t start = 0;
  while (start <= query.size()) {
    std::size_t end = query.find('&', start);
    if (end == std::string::npos) end = query.size();
    const std::string part = query.substr(start, end - start);
    start = end + 1;
    if (part.empty()) continue;
    const auto eq = part.find('=');
    const std::string key = part.substr(0, eq);
    if (kOwn.count(key)) {
      out.own[key] = eq == std::string::npos ? "" : percent_decode(part.substr(eq + 1));
    } else {
      kept += (kept.empty() ? "" : "&") + part;
    }
  }
  out.libpq = uri.substr(0, q) + (kept.empty() ? "" : "?" + kept);
  return out;
}

std::string format_double(double v) {
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// Query parameters: text format, except checkpoint bytes (binary). NaN is stored as NULL,
// as SQLite does (a NaN score is no score).
class Params {
 public:
  Params& add(const std::string& v) { return push(v, false); }
  Params& add(const char* v) { return push(v, false); }
  Params& add(std::int64_t v) { return push(std::to_string(v), false); }
  Params& add(int v) { return push(std::to_string(v), false); }
  Params& add(bool v) { return push(v ? "t" : "f", false); }
  Params& add(double v) { return std::isnan(v) ? null() : push(format_double(v), false); }
  Params& add(const std::optional<double>& v) { return v ? add(*v) : null(); }
  Params& null() {
    items_.push_back(Item{"", nullptr, true, false});
    return *this;
  }
  // Binary bytes, not copied: `v` must outlive the query.
  Params& bytes(const std::string& v) {
    items_.push_back(Item{"", &v, false, true});
    return *this;
  }
  template <class... Args>
  static Params of(const Args&... args) {
    Params p;
    (p.add(args), ...);
    return p;
  }

  int size() const { return static_cast<int>(items_.size()); }
  // Pointer arrays for libpq; valid while this object is unchanged.
  void arrays(std::vector<const char*>& values, std::vector<int>& lengths, std::vector<int>& formats) const {
    for (const auto& it : items_) {
      if (it.null) {
        values.push_back(nullptr);
        lengths.push_back(0);
      } else {
        const std::string& s = it.ref ? *it.ref : it.owned;
        values.push_back(s.data());
        lengths.push_back(static_cast<int>(s.size()));
      }
      formats.push_back(it.binary ? 1 : 0);
    }
  }

 private:
  struct Item {
    std::string owned;
    const std::string* ref;
    bool null;
    bool binary;
  };
  Params& push(std::string v, bool binary) {
    items_.push_back(Item{std::move(v), nullptr, false, binary});
    return *this;
  }
  std::vector<Item> items_;
};

// A query result, cleared with the object.
class Result {
 public:
  explicit Result(PGresult* r) : r_(r) {}
  ~Result() {
    if (r_) PQclear(r_);
  }
  Result(Result&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;

  PGresult* get() const { return r_; }
  int rows() const { return PQntuples(r_); }
  bool null(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
  std::string text(int row, int col) const {
    return std::string(PQgetvalue(r_, row, col), static_cast<std::size_t>(PQgetlength(r_, row, col)));
  }
  std::int64_t i64(int row, int col) const { return std::strtoll(PQgetvalue(r_, row, col), nullptr, 10); }
  double real(int row, int col) const {
    return null(row, col) ? std::numeric_limits<double>::quiet_NaN() : std::strtod(PQgetvalue(r_, row, col), nullptr);
  }
  std::optional<double> opt_real(int row, int col) const {
    return null(row, col) ? std::nullopt : std::optional<double>(std::strtod(PQgetvalue(r_, row, col), nullptr));
  }
  bool boolean(int row, int col) const { return PQgetvalue(r_, row, col)[0] == 't'; }
  std::int64_t affected() const {
    const char* s = PQcmdTuples(r_);
    return s && *s ? std::strtoll(s, nullptr, 10) : 0;
  }

 private:
  PGresult* r_;
};

bool valid_checkpoint_id(const std::string& id) {
  return id.size() == 64 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::string errno_text() { return std::strerror(errno); }

}  // namespace

struct PostgresStore::Impl {
  std::string name;      // the URI, password redacted: for messages
  std::string conninfo;  // the URI for libpq (pbt's own parameters taken out)
  Options options;
  PGconn* conn = nullptr;
  std::mutex mutex;
  std::unordered_map<std::string, std::string> prepared;  // SQL -> statement name (this connection)
  std::atomic<std::size_t> connections{0};
  std::atomic<int> lose_commit_replies{0};
  bool after_lost_connection = false;  // the current attempt follows a lost connection
  // Members as last read, by experiment, and the xmin of that read's snapshot: every
  // transaction below it had finished, so only rows changed at or above it can be news.
  struct PopulationCache {
    std::map<int, MemberState> members;
    std::string xmin = "0";
  };
  std::unordered_map<std::string, PopulationCache> population_cache;

  ~Impl() { disconnect(); }

  std::string where() const { return "PostgreSQL store '" + name + "'"; }

  void disconnect() {
    if (conn) PQfinish(conn);
    conn = nullptr;
    prepared.clear();
  }

  // ---- connection ----

  // A connection failure that waiting will not cure (wrong password, no such database,
  // a malformed URI): reported at once. Anything else (refused, starting up, timeout,
  // too many clients) is retried.
  static bool permanent_connect_failure(const std::string& m) {
    for (const char* p : {"authentication failed", "does not exist", "no pg_hba.conf entry", "no password supplied",
                          "password is required", "invalid ", "could not translate host name", "unsupported",
                          "permission denied", "not permitted to log in", "certificate"})
      if (contains(m, p)) return true;
    return false;
  }

  void ensure_connected() {
    if (conn && PQstatus(conn) == CONNECTION_OK) return;
    disconnect();
    const std::string timeout =
        std::to_string(std::max(1, static_cast<int>(std::ceil(options.connect_timeout_seconds))));
    // Defaults first: whatever the URI says (the expanded dbname) overrides them.
    const char* keys[] = {"connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval",
                          "keepalives_count", "application_name", "dbname", nullptr};
    const char* values[] = {timeout.c_str(), "1", "10", "5", "3", "pbt", conninfo.c_str(), nullptr};
    PGconn* c = PQconnectdbParams(keys, values, 1);
    if (!c) throw ConnectionLost{"libpq could not allocate a connection"};
    if (PQstatus(c) != CONNECTION_OK) {
      const std::string message = trim(PQerrorMessage(c));
      PQfinish(c);
      if (permanent_connect_failure(message)) throw StoreError("cannot connect to " + where() + ": " + message);
      throw ConnectionLost{message};
    }
    PQsetNoticeProcessor(c, [](void*, const char*) {}, nullptr);
    conn = c;
    ++connections;
    exec(("SET search_path TO " + quote_ident(options.schema) +
          "; SET extra_float_digits = 3; SET client_min_messages = warning")
             .c_str(),
         "setting up the session");
  }

  // Throws the right kind of failure for a result that is not a success.
  void check(const Result& r, const std::string& what) {
    const ExecStatusType st = r.get() ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return;
    const char* state_p = r.get() ? PQresultErrorField(r.get(), PG_DIAG_SQLSTATE) : nullptr;
    const std::string state = state_p ? state_p : "";
    std::string message = r.get() ? PQresultErrorMessage(r.get()) : "";
    if (message.empty() && conn) message = PQerrorMessage(conn);
    message = trim(message);
    if (!conn || PQstatus(conn) != CONNECTION_OK || state.compare(0, 2, "08") == 0 || state == "57P01" ||
        state == "57P02" || state == "57P03")
      throw ConnectionLost{message.empty() ? "the connection to the server was lost" : message};
    if (state == "40001" || state == "40P01") throw Transient{message};
    throw StoreError(where() + ": " + what + ": " + message);
  }

  void exec(const char* sql, const std::string& what) {
    Result r(PQexec(conn, sql));
    check(r, what);
  }

  Result query(const std::string& sql, const Params& p, const std::string& what, int result_format = 0) {
    auto it = prepared.find(sql);
    if (it == prepared.end()) {
      const std::string statement = "pbt_" + std::to_string(prepared.size() + 1);
      Result r(PQprepare(conn, statement.c_str(), sql.c_str(), p.size(), nullptr));
      check(r, what);
      it = prepared.emplace(sql, statement).first;
    }
    std::vector<const char*> values;
    std::vector<int> lengths, formats;
    p.arrays(values, lengths, formats);
    Result r(PQexecPrepared(conn, it->second.c_str(), p.size(), values.data(), lengths.data(), formats.data(),
                            result_format));
    check(r, what);
    return r;
  }

  // For statements whose text varies (multi-row inserts): not prepared.
  Result query_once(const std::string& sql, const Params& p, const std::string& what) {
    std::vector<const char*> values;
    std::vector<int> lengths, formats;
    p.arrays(values, lengths, formats);
    Result r(PQexecParams(conn, sql.c_str(), p.size(), nullptr, values.data(), lengths.data(), formats.data(), 0));
    check(r, what);
    return r;
  }

  void rollback_quietly() {
    if (conn && PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) != PQTRANS_IDLE) {
      PGresult* r = PQexec(conn, "ROLLBACK");
      if (r) PQclear(r);
    }
  }

  void commit(const std::string& what) {
    exec("COMMIT", what);
    int pending = lose_commit_replies.load();
    while (pending > 0 && !lose_commit_replies.compare_exchange_weak(pending, pending - 1)) {
    }
    if (pending > 0) {
      disconnect();
      throw ConnectionLost{"the reply to COMMIT was lost (test hook)"};
    }
  }

  enum class Tx { none, write };

  // Runs f under the mutex (inside a READ COMMITTED transaction for Tx::write). Serialization
  // failures and deadlocks retry the whole of it with jittered backoff; a lost connection is
  // reconnected and the whole of it retried, with backoff up to 1 s, for options.retry_seconds.
  template <class F>
  auto run(const std::string& what, Tx tx, F&& f) -> decltype(f()) {
    const auto start = std::chrono::steady_clock::now();
    double backoff = 0.005;
    bool lost_before = false;
    for (int attempt = 1;; ++attempt) {
      std::string failure;
      bool lost = false;
      try {
        std::lock_guard<std::mutex> lock(mutex);
        try {
          ensure_connected();
          after_lost_connection = lost_before;
          if (tx == Tx::write) exec("BEGIN ISOLATION LEVEL READ COMMITTED", what);
          try {
            auto result = f();
            if (tx == Tx::write) commit(what);
            return result;
          } catch (...) {
            rollback_quietly();
            throw;
          }
        } catch (const ConnectionLost&) {
          disconnect();
          throw;
        }
      } catch (const ConnectionLost& e) {
        failure = e.message;
        lost = true;
      } catch (const Transient& e) {
        failure = e.message;
      }
      lost_before = lost_before || lost;
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (elapsed >= options.retry_seconds) {
        char seconds[32];
        std::snprintf(seconds, sizeof seconds, "%.1f", elapsed);
        if (lost)
          throw StoreUnavailable(where() + ": " + what + ": no usable connection to the server after " +
                           std::to_string(attempt) + " attempts in " + seconds + " s (" + failure + ")");
        throw StoreUnavailable(where() + ": " + what + ": still conflicting after " + std::to_string(attempt) +
                         " attempts in " + seconds + " s (" + failure + ")");
      }
      thread_local std::mt19937_64 rng{std::random_device{}()};
      std::uniform_real_distribution<double> jitter(0.5, 1.5);
      const double pause = std::min(backoff * jitter(rng), std::max(0.0, options.retry_seconds - elapsed) + 0.001);
      std::this_thread::sleep_for(std::chrono::duration<double>(pause));
      backoff = std::min(backoff * 2, lost ? 1.0 : 0.25);
    }
  }

  // One attempt, no retry; false when it failed (for best-effort clean-up).
  template <class F>
  bool try_once(const std::string& what, F&& f) {
    std::lock_guard<std::mutex> lock(mutex);
    try {
      ensure_connected();
      exec("BEGIN ISOLATION LEVEL READ COMMITTED", what);
      try {
        f();
        exec("COMMIT", what);
        return true;
      } catch (...) {
        rollback_quietly();
        throw;
      }
    } catch (const ConnectionLost&) {
      disconnect();
    } catch (...) {
    }
    return false;
  }

  // ---- helpers inside an operation ----

  double now_sql() { return query("SELECT " PBT_PG_NOW, Params(), "reading the clock").real(0, 0); }

  bool experiment_exists(const std::string& experiment) {
    return query("SELECT 1 FROM experiments WHERE name = $1", Params::of(experiment), "reading an experiment").rows() > 0;
  }

  void require_experiment(const std::string& experiment) {
    if (!experiment_exists(experiment))
      throw StoreError("unknown experiment '" + experiment + "' in " + where());
  }

  static constexpr const char* kMemberColumns =
      "id, step, last_ready_step, score, samples, h, checkpoint, done, version, owner, "
      "lease_expires, last_owner, metrics, failures, failed, last_error";
  static constexpr const char* kMemberColumnsM =
      "m.id, m.step, m.last_ready_step, m.score, m.samples, m.h, m.checkpoint, m.done, m.version, m.owner, "
      "m.lease_expires, m.last_owner, m.metrics, m.failures, m.failed, m.last_error";

  MemberState read_member(const Result& r, int i, const std::string& experiment) const {
    using store_codec::column;
    MemberState m;
    m.id = static_cast<int>(r.i64(i, 0));
    const auto row = [&] {
      return where() + ": table members, experiment '" + experiment + "', member " + std::to_string(m.id);
    };
    m.step = r.i64(i, 1);
    m.last_ready_step = r.i64(i, 2);
    m.score = r.opt_real(i, 3);
    m.samples = column(row, "samples", [&] { return samples_from_text(r.text(i, 4)); });
    m.h = column(row, "h", [&] { return store_codec::h_from_text(r.text(i, 5)); });
    m.checkpoint = r.text(i, 6);
    m.done = r.boolean(i, 7);
    m.version = r.i64(i, 8);
    m.owner = r.text(i, 9);
    m.lease_expires = r.real(i, 10);
    m.last_owner = r.text(i, 11);
    m.metrics = column(row, "metrics", [&] { return nlohmann::json::parse(r.text(i, 12)); });
    m.failures = static_cast<int>(r.i64(i, 13));
    m.failed = r.boolean(i, 14);
    m.last_error = r.text(i, 15);
    return m;
  }

  std::string lease_lost(const Lease& lease, const std::string& what) {
    Result r = query("SELECT version, owner FROM members WHERE experiment = $1 AND id = $2",
                     Params::of(lease.experiment, lease.member), what);
    std::string now;
    if (r.rows() == 0) now = "the member is gone";
    else
      now = "it is at version " + std::to_string(r.i64(0, 0)) +
            (r.text(0, 1).empty() ? ", free" : ", held by '" + r.text(0, 1) + "'");
    return "lease lost: " + what + ": " + lease_text(lease) + " is no longer held by worker '" + lease.worker +
           "' at version " + std::to_string(lease.version) + " (" + now + ")";
  }

  // ---- schema ----

  // True when the schema is there at our version; false when it has none of pbt's tables
  // yet; throws when it holds another schema version or another application's tables.
  bool check_schema() {
    Result t = query(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY c.relname",
        Params::of(options.schema), "checking the schema");
    std::set<std::string> tables;
    for (int i = 0; i < t.rows(); ++i) tables.insert(t.text(i, 0));
    if (tables.count("meta")) {
      Result v = query("SELECT value FROM meta WHERE key = 'schema_version'", Params(), "checking the schema");
      if (v.rows() > 0) {
        const std::string found = v.text(0, 0);
        if (found == "1") return false;  // upgraded under the schema lock (open())
        if (found != std::to_string(kPgSchemaVersion))
          throw StoreError(where() + " (schema '" + options.schema + "') has schema version " + found +
                           ", but this build of pbt supports schema versions 1 (upgraded in place) and " +
                           std::to_string(kPgSchemaVersion) + " only");
        return true;
      }
    }
    for (const auto& table : tables)
      if (!kTables.count(table))
        throw StoreError(where() + ": schema '" + options.schema + "' holds a table '" + table +
                         "' and no pbt schema version, so it is not a pbt store (choose another schema with "
                         "?schema=NAME)");
    return false;
  }

  void open() {
    if (!options.checkpoint_dir.empty()) {
      std::error_code ec;
      fs::create_directories(options.checkpoint_dir, ec);
      if (!fs::is_directory(options.checkpoint_dir))
        throw StoreError(where() + ": checkpoint directory '" + options.checkpoint_dir +
                         "' does not exist and cannot be created" + (ec ? ": " + ec.message() : ""));
    }
    // Concurrent first workers: the first one through the advisory lock creates the
    // schema, the others find it (DDL is transactional, so nobody sees half of it).
    run("opening", Tx::write, [&] {
      if (check_schema()) return 0;
      query("SELECT pg_advisory_xact_lock($1::int4, hashtext($2))", Params::of(kSchemaLockClass, options.schema),
            "creating the schema");
      if (check_schema()) return 0;
      Result s = query("SELECT 1 FROM pg_namespace WHERE nspname = $1", Params::of(options.schema), "creating the schema");
      if (s.rows() == 0) exec(("CREATE SCHEMA " + quote_ident(options.schema)).c_str(), "creating the schema");
      // IF NOT EXISTS throughout, so this also upgrades a version-1 store.
      exec((std::string(kSchema) + kMembersChanged).c_str(), "creating the schema");
      query("INSERT INTO meta(key, value) VALUES ('schema_version', $1) ON CONFLICT (key) DO UPDATE SET value = $1",
            Params::of(std::to_string(kPgSchemaVersion)), "creating the schema");
      return 0;
    });
  }

  // ---- checkpoint files (checkpoint_dir mode) ----

  std::string file_of(const std::string& id) const { return (fs::path(options.checkpoint_dir) / id).string(); }

  std::string dir_text() const { return "checkpoint directory '" + options.checkpoint_dir + "' of " + where(); }

  // Writes the bytes under their id: a temp name, fsync, rename, fsync of the directory.
  // Skipped when a file of that size is already there (reads verify the hash anyway).
  void write_file(const std::string& id, const std::string& bytes) {
    const std::string path = file_of(id);
    struct stat st;
    if (::stat(path.c_str(), &st) == 0 && static_cast<std::size_t>(st.st_size) == bytes.size()) return;
    thread_local std::mt19937_64 rng{std::random_device{}()};
    const std::string tmp = (fs::path(options.checkpoint_dir) /
                             (".tmp-" + id + "-" + std::to_string(::getpid()) + "-" + std::to_string(rng() % 1000000000)))
                                .string();
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) throw StoreError(dir_text() + ": cannot create '" + tmp + "': " + errno_text());
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const std::string e = errno_text();
        ::close(fd);
        ::unlink(tmp.c_str());
        throw StoreError(dir_text() + ": cannot write '" + tmp + "': " + e);
      }
      done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
      const std::string e = errno_text();
      ::unlink(tmp.c_str());
      throw StoreError(dir_text() + ": cannot sync '" + tmp + "': " + e);
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      const std::string e = errno_text();
      ::unlink(tmp.c_str());
      throw StoreError(dir_text() + ": cannot rename '" + tmp + "' to '" + path + "': " + e);
    }
    int dfd = ::open(options.checkpoint_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
  }

  // Serializes work on one checkpoint's file across processes and hosts, until commit.
  void lock_file(const std::string& id) {
    const auto key = static_cast<std::int32_t>(static_cast<std::uint32_t>(std::stoul(id.substr(0, 8), nullptr, 16)));
    query("SELECT pg_advisory_xact_lock($1::int4, $2::int4)", Params::of(kCheckpointLockClass, static_cast<int>(key)),
          "locking a checkpoint file");
  }

  // Deletes the file of a checkpoint that has no row (any more), under its lock, so that a
  // publish that is bringing it back (and rewrites the file under the same lock) wins.
  bool remove_file_if_unreferenced(const std::string& id) {
    bool removed = false;
    try_once("removing a checkpoint file", [&] {
      lock_file(id);
      if (query("SELECT 1 FROM checkpoints WHERE id = $1", Params::of(id), "removing a checkpoint file").rows() == 0)
        removed = ::unlink(file_of(id).c_str()) == 0;
    });
    return removed;
  }

  // Inside a publish: makes the checkpoint row exist and holds a lock on it until commit,
  // so that nobody deletes it before our member refers to it. In checkpoint_dir mode the
  // file is checked (and rewritten if a clean-up removed it) under the file lock.
  void hold_checkpoint(const std::string& id, const std::string& bytes, double t) {
    const bool to_dir = !options.checkpoint_dir.empty();
    for (int i = 0; i < 20; ++i) {
      Result s = query("SELECT bytes IS NULL FROM checkpoints WHERE id = $1 FOR SHARE", Params::of(id), "publishing");
      bool held = s.rows() > 0;
      bool in_dir = held && s.boolean(0, 0);
      if (!held) {
        Params p;
        p.add(id);
        if (to_dir) p.null();
        else p.bytes(bytes);
        p.add(static_cast<std::int64_t>(bytes.size())).add(t);
        Result ins = query(
            "INSERT INTO checkpoints(id, bytes, size, created) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING "
            "RETURNING 1",
            p, "publishing");
        held = ins.rows() > 0;
        in_dir = to_dir;
      }
      if (!held) continue;  // it was being deleted, or inserted by someone else: look again
      if (to_dir && in_dir) {
        lock_file(id);
        struct stat st;
        if (::stat(file_of(id).c_str(), &st) != 0 || static_cast<std::size_t>(st.st_size) != bytes.size())
          write_file(id, bytes);
      }
      return;
    }
    throw Transient{"checkpoint " + id + " kept changing under a concurrent clean-up"};
  }

  std::string new_token() {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    char buf[40];
    std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(rng()),
                  static_cast<unsigned long long>(rng()));
    return buf;
  }
};

PostgresStore::PostgresStore(const std::string& uri) : PostgresStore(uri, Options{}) {}

PostgresStore::PostgresStore(const std::string& uri, Options options) : impl_(std::make_unique<Impl>()) {
  Impl& d = *impl_;
  d.name = redact_uri(uri);
  SplitUri split = split_uri(uri);
  d.conninfo = split.libpq;
  if (split.own.count("checkpoint_dir")) options.checkpoint_dir = split.own["checkpoint_dir"];
  if (split.own.count("schema")) options.schema = split.own["schema"];
  if (split.own.count("retry_seconds")) {
    const std::string& v = split.own["retry_seconds"];
    char* end = nullptr;
    const double seconds = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || !(seconds >= 0))
      throw StoreError(d.where() + ": retry_seconds must be a number of seconds >= 0, not '" + v + "'");
    options.retry_seconds = seconds;
  }
  if (options.schema.empty()) throw StoreError(d.where() + ": schema must not be empty");
  d.options = options;
  d.open();
}

PostgresStore::~PostgresStore() = default;

const std::string& PostgresStore::uri() const { return impl_->name; }
const PostgresStore::Options& PostgresStore::options() const { return impl_->options; }

void PostgresStore::create_experiment(const ExperimentInfo& info, const std::vector<MemberState>& members) {
  Impl& d = *impl_;
  std::set<int> ids;
  for (const auto& m : members)
    if (!ids.insert(m.id).second)
      throw StoreError("experiment '" + info.name + "': member id " + std::to_string(m.id) + " given twice");
  const int population = info.population != 0 ? info.population : static_cast<int>(members.size());
  d.run("creating an experiment", Impl::Tx::write, [&] {
    Result e = d.query("SELECT config, origin, population FROM experiments WHERE name = $1", Params::of(info.name),
                       "creating an experiment");
    if (e.rows() > 0) {
      // An earlier attempt whose COMMIT reply was lost: it is there, as we made it.
      if (d.after_lost_connection && e.text(0, 0) == info.config && e.text(0, 1) == info.origin &&
          e.i64(0, 2) == population)
        return 0;
      throw StoreError("experiment '" + info.name + "' already exists in " + d.where());
    }
    const double created = info.created != 0 ? info.created : d.now_sql();
    Result ins = d.query(
        "INSERT INTO experiments(name, config, origin, population, finished, created) VALUES ($1, $2, $3, $4, $5, $6) "
        "ON CONFLICT (name) DO NOTHING",
        Params::of(info.name, info.config, info.origin, population, info.finished, created), "creating an experiment");
    if (ins.affected() == 0) throw StoreError("experiment '" + info.name + "' already exists in " + d.where());
    constexpr std::size_t kBatch = 500;
    for (std::size_t first = 0; first < members.size(); first += kBatch) {
      const std::size_t last = std::min(members.size(), first + kBatch);
      std::string sql =
          "INSERT INTO members(experiment, id, step, last_ready_step, score, samples, h, checkpoint, done, version, "
          "owner, lease_expires, last_owner, metrics) VALUES ";
      Params p;
      p.add(info.name);
      int n = 1;
      for (std::size_t i = first; i < last; ++i) {
        const auto& m = members[i];
        sql += i == first ? "($1" : ", ($1";
        for (int k = 0; k < 13; ++k) sql += ", $" + std::to_string(++n);
        sql += ")";
        p.add(m.id).add(m.step).add(m.last_ready_step).add(m.score).add(samples_to_text(m.samples));
        p.add(dump(to_json(m.h))).add(m.checkpoint).add(m.done).add(m.version).add("").add(0.0);
        p.add(m.last_owner).add(dump(m.metrics));
      }
      d.query_once(sql, p, "creating an experiment");
    }
    return 0;
  });
}

std::optional<ExperimentInfo> PostgresStore::experiment(const std::string& name) {
  Impl& d = *impl_;
  return d.run("reading an experiment", Impl::Tx::none, [&]() -> std::optional<ExperimentInfo> {
    Result r = d.query("SELECT name, config, origin, population, finished, created FROM experiments WHERE name = $1",
                       Params::of(name), "reading an experiment");
    if (r.rows() == 0) return std::nullopt;
    ExperimentInfo info;
    info.name = r.text(0, 0);
    info.config = r.text(0, 1);
    info.origin = r.text(0, 2);
    info.population = static_cast<int>(r.i64(0, 3));
    info.finished = r.boolean(0, 4);
    info.created = r.real(0, 5);
    return info;
  });
}

std::vector<std::string> PostgresStore::experiments() {
  Impl& d = *impl_;
  return d.run("listing experiments", Impl::Tx::none, [&] {
    Result r = d.query("SELECT name FROM experiments ORDER BY name COLLATE \"C\"", Params(), "listing experiments");
    std::vector<std::string> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(r.text(i, 0));
    return out;
  });
}

std::optional<Leased> PostgresStore::lease(const std::string& experiment, const std::string& worker,
                                           double lease_seconds) {
  Impl& d = *impl_;
  return d.run("leasing a member", Impl::Tx::none, [&]() -> std::optional<Leased> {
    Result e = d.query("SELECT finished FROM experiments WHERE name = $1", Params::of(experiment), "leasing a member");
    if (e.rows() == 0) throw StoreError("unknown experiment '" + experiment + "' in " + d.where());
    if (e.boolean(0, 0)) return std::nullopt;
    // One statement: pick (skipping rows another transaction is taking right now) and take.
    Result r = d.query(std::string("WITH pick AS (SELECT id FROM members WHERE experiment = $1 AND NOT done AND NOT failed AND "
                                   "(owner = '' OR owner = $2 OR lease_expires < " PBT_PG_NOW
                                   ") ORDER BY step ASC, (last_owner = $2) DESC, id ASC LIMIT 1 "
                                   "FOR UPDATE SKIP LOCKED) "
                                   "UPDATE members m SET owner = $2, last_owner = $2, version = m.version + 1, "
                                   "lease_expires = " PBT_PG_NOW " + $3 FROM pick "
                                   "WHERE m.experiment = $1 AND m.id = pick.id RETURNING ") +
                           Impl::kMemberColumnsM,
                       Params::of(experiment, worker, lease_seconds), "leasing a member");
    if (r.rows() == 0) return std::nullopt;
    MemberState m = d.read_member(r, 0, experiment);
    return Leased{Lease{experiment, m.id, worker, m.version}, m};
  });
}

void PostgresStore::heartbeat(const Lease& lease, double lease_seconds) {
  Impl& d = *impl_;
  d.run("extending a lease", Impl::Tx::none, [&] {
    Result r = d.query("UPDATE members SET lease_expires = " PBT_PG_NOW
                       " + $1 WHERE experiment = $2 AND id = $3 AND version = $4 AND owner = $5",
                       Params::of(lease_seconds, lease.experiment, lease.member, lease.version, lease.worker),
                       "extending a lease");
    if (r.affected() == 0) throw LeaseLost(d.lease_lost(lease, "heartbeat"));
    return 0;
  });
}

void PostgresStore::publish(Lease& lease, const Publication& pub) {
  Impl& d = *impl_;
  const bool to_dir = !d.options.checkpoint_dir.empty();
  const std::string new_checkpoint = pub.checkpoint_bytes.empty() ? "" : checkpoint_id(pub.checkpoint_bytes);
  // checkpoint_dir: the file first (temp name, fsync, rename), then the transaction publishes its id.
  if (to_dir && !new_checkpoint.empty()) d.write_file(new_checkpoint, pub.checkpoint_bytes);
  const std::string samples = samples_to_text(pub.samples);
  const std::string h = dump(to_json(pub.h));
  const std::string metrics = dump(pub.metrics);
  // Left in the member's row by this publish: after a lost COMMIT reply, finding it there
  // (at version + 1, still ours) says the publish went through.
  const std::string token = d.new_token();
  std::vector<std::string> unlink;
  std::int64_t version = 0;
  try {
  version = d.run("publishing", Impl::Tx::write, [&]() -> std::int64_t {
    unlink.clear();
    Result r = d.query("SELECT version, owner, checkpoint, publish_token, " PBT_PG_NOW
                       " FROM members WHERE experiment = $1 AND id = $2 FOR UPDATE",
                       Params::of(lease.experiment, lease.member), "publishing");
    if (r.rows() > 0 && r.i64(0, 0) == lease.version + 1 && r.text(0, 1) == lease.worker && r.text(0, 3) == token)
      return lease.version + 1;
    if (r.rows() == 0 || r.i64(0, 0) != lease.version || r.text(0, 1) != lease.worker)
      throw LeaseLost(d.lease_lost(lease, "publish"));
    const std::string old_checkpoint = r.text(0, 2);
    const double t = r.real(0, 4);
    const std::string checkpoint = new_checkpoint.empty() ? old_checkpoint : new_checkpoint;
    const bool drop_old = !old_checkpoint.empty() && old_checkpoint != checkpoint;
    // Lock the checkpoint rows involved, in id order (no deadlock between two publishes):
    // the new one so that nobody deletes it before our member refers to it, the old one
    // so that nobody starts referring to it while we decide whether it goes.
    std::vector<std::string> order;
    if (!new_checkpoint.empty()) order.push_back(new_checkpoint);
    if (drop_old) order.push_back(old_checkpoint);
    std::sort(order.begin(), order.end());
    for (const auto& id : order) {
      if (id == new_checkpoint) d.hold_checkpoint(id, pub.checkpoint_bytes, t);
      else d.query("SELECT 1 FROM checkpoints WHERE id = $1 FOR UPDATE", Params::of(id), "publishing");
    }
    d.query("UPDATE members SET step = $1, last_ready_step = $2, score = $3, samples = $4, h = $5, checkpoint = $6, "
            "done = $7, metrics = $8, failures = 0, last_error = '', version = version + 1, publish_token = $9 "
            "WHERE experiment = $10 AND id = $11",
            Params::of(pub.step, pub.last_ready_step, pub.score, samples, h, checkpoint, pub.done, metrics, token,
                       lease.experiment, lease.member),
            "publishing");
    constexpr std::size_t kBatch = 1000;
    for (std::size_t first = 0; first < pub.scores.size(); first += kBatch) {
      const std::size_t last = std::min(pub.scores.size(), first + kBatch);
      std::string sql = "INSERT INTO scores(experiment, member, step, score) VALUES ";
      Params p;
      p.add(lease.experiment);
      int n = 1;
      for (std::size_t i = first; i < last; ++i) {
        sql += (i == first ? "($1, $" : ", ($1, $") + std::to_string(n + 1) + ", $" + std::to_string(n + 2) + ", $" +
               std::to_string(n + 3) + ")";
        n += 3;
        p.add(pub.scores[i].member).add(pub.scores[i].step).add(pub.scores[i].score);
      }
      d.query_once(sql, p, "publishing");
    }
    for (std::size_t first = 0; first < pub.events.size(); first += kBatch) {
      const std::size_t last = std::min(pub.events.size(), first + kBatch);
      std::string sql =
          "INSERT INTO events(experiment, time, member, step, kind, donor, donor_step, copied, donor_checkpoint, "
          "old_h, new_h, old_score, donor_score, new_score, worker) VALUES ";
      Params p;
      p.add(lease.experiment).add(t);
      int n = 2;
      for (std::size_t i = first; i < last; ++i) {
        const Event& ev = pub.events[i];
        sql += i == first ? "($1, $2" : ", ($1, $2";
        for (int k = 0; k < 13; ++k) sql += ", $" + std::to_string(++n);
        sql += ")";
        p.add(ev.member).add(ev.step).add(ev.kind).add(ev.donor).add(ev.donor_step).add(ev.copied);
        p.add(ev.donor_checkpoint);
        p.add(dump(to_json(ev.old_h))).add(dump(to_json(ev.new_h))).add(ev.old_score).add(ev.donor_score);
        p.add(ev.new_score).add(ev.worker.empty() ? lease.worker : ev.worker);
      }
      d.query_once(sql, p, "publishing");
    }
    if (drop_old) {
      Result del = d.query(
          "DELETE FROM checkpoints WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM members WHERE checkpoint = $1) "
          "RETURNING bytes IS NULL",
          Params::of(old_checkpoint), "publishing");
      if (del.rows() > 0 && del.boolean(0, 0)) unlink.push_back(old_checkpoint);
    }
    return lease.version + 1;
  });
  } catch (...) {
    // Nothing was published: the file written for it goes again, unless a row refers to it.
    if (to_dir && !new_checkpoint.empty()) d.remove_file_if_unreferenced(new_checkpoint);
    throw;
  }
  lease.version = version;
  // After the commit: the files of checkpoints that went (best effort; collect_garbage
  // sweeps what a crash leaves behind).
  if (to_dir)
    for (const auto& id : unlink) d.remove_file_if_unreferenced(id);
}

void PostgresStore::release(const Lease& lease) {
  Impl& d = *impl_;
  d.run("releasing a lease", Impl::Tx::none, [&] {
    d.query("UPDATE members SET owner = '', lease_expires = 0 WHERE experiment = $1 AND id = $2 AND version = $3 "
            "AND owner = $4",
            Params::of(lease.experiment, lease.member, lease.version, lease.worker), "releasing a lease");
    return 0;
  });
}

bool PostgresStore::fail(const Lease& lease, const std::string& error, int max_failures) {
  Impl& d = *impl_;
  const std::string token = d.new_token();  // as in publish: a lost COMMIT reply is recognised
  return d.run("recording a failed interval", Impl::Tx::write, [&] {
    Result r = d.query("SELECT version, owner, publish_token, failed FROM members WHERE experiment = $1 AND id = $2 "
                       "FOR UPDATE",
                       Params::of(lease.experiment, lease.member), "recording a failed interval");
    if (r.rows() > 0 && r.i64(0, 0) == lease.version + 1 && r.text(0, 1).empty() && r.text(0, 2) == token)
      return r.boolean(0, 3);
    if (r.rows() == 0 || r.i64(0, 0) != lease.version || r.text(0, 1) != lease.worker)
      throw LeaseLost(d.lease_lost(lease, "recording a failure"));
    Result u = d.query("UPDATE members SET failures = failures + 1, last_error = $1, failed = (failures + 1 >= $2), "
                       "owner = '', lease_expires = 0, version = version + 1, publish_token = $3 "
                       "WHERE experiment = $4 AND id = $5 RETURNING failed",
                       Params::of(error, max_failures, token, lease.experiment, lease.member),
                       "recording a failed interval");
    return u.rows() > 0 && u.boolean(0, 0);
  });
}

void PostgresStore::finish(const std::string& experiment) {
  Impl& d = *impl_;
  d.run("finishing an experiment", Impl::Tx::none, [&] {
    Result r = d.query("UPDATE experiments SET finished = true WHERE name = $1", Params::of(experiment),
                       "finishing an experiment");
    if (r.affected() == 0) throw StoreError("unknown experiment '" + experiment + "' in " + d.where());
    return 0;
  });
}

std::vector<MemberState> PostgresStore::population(const std::string& experiment) {
  Impl& d = *impl_;
  return d.run("reading the population", Impl::Tx::none, [&] {
    // Every worker reads the whole population at every ready step: at 1,000 members even
    // the lease columns of every row cost over a millisecond. Each row carries the id of
    // the transaction that last wrote it (a trigger sets it), so a read fetches only rows
    // written by transactions at or above the previous read's snapshot xmin. Transactions
    // below that xmin had all finished when the previous snapshot was taken, so their writes
    // are already in the cache, whatever order they committed in. One statement: the rows
    // and the xmin of the very snapshot that read them.
    auto& cache = d.population_cache[experiment];
    Result r = d.query(std::string("SELECT ") + Impl::kMemberColumnsM +
                           ", s.xmin::text FROM (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) s "
                           "LEFT JOIN members m ON m.experiment = $1 AND m.changed >= $2::xid8",
                       Params::of(experiment, cache.xmin), "reading the population");
    std::vector<MemberState> changed;  // parsed in full before the cache is touched
    std::string xmin = cache.xmin;
    for (int i = 0; i < r.rows(); ++i) {
      xmin = r.text(i, 16);
      if (r.null(i, 0)) continue;  // nothing changed: the one row is the snapshot's xmin alone
      changed.push_back(d.read_member(r, i, experiment));
    }
    if (cache.members.empty() && changed.empty()) d.require_experiment(experiment);
    for (auto& m : changed) cache.members[m.id] = std::move(m);
    cache.xmin = xmin;
    std::vector<MemberState> out;
    out.reserve(cache.members.size());
    for (const auto& [id, m] : cache.members) out.push_back(m);
    return out;
  });
}

std::string PostgresStore::checkpoint(const std::string& id) {
  Impl& d = *impl_;
  // 0: missing, 1: bytes here, 2: in the checkpoint directory.
  auto [where, bytes] = d.run("reading a checkpoint", Impl::Tx::none, [&]() -> std::pair<int, std::string> {
    Result r = d.query("SELECT bytes FROM checkpoints WHERE id = $1", Params::of(id), "reading a checkpoint", 1);
    if (r.rows() == 0) return {0, ""};
    if (r.null(0, 0)) return {2, ""};
    return {1, checkpoint_in_memory("checkpoint " + id + " in " + d.where(),
                                    static_cast<std::uint64_t>(PQgetlength(r.get(), 0, 0)),
                                    [&] { return r.text(0, 0); })};
  });
  if (where == 0) throw CheckpointError("checkpoint " + id + " is missing from " + d.where());
  if (where == 2) {
    if (d.options.checkpoint_dir.empty())
      throw CheckpointError("checkpoint " + id + " is kept in a checkpoint directory, but " + d.where() +
                            " was opened without checkpoint_dir=");
    if (!valid_checkpoint_id(id)) throw CheckpointError("'" + id + "' is not a checkpoint id (" + d.where() + ")");
    std::ifstream in(d.file_of(id), std::ios::binary);
    if (!in) throw CheckpointError("checkpoint " + id + " is missing from the " + d.dir_text());
    std::error_code ec;
    const auto size = std::filesystem::file_size(d.file_of(id), ec);
    bytes = checkpoint_in_memory("checkpoint " + id + " (file " + d.file_of(id) + ")", ec ? 0 : size, [&] {
      std::ostringstream ss;
      ss << in.rdbuf();
      return ss.str();
    });
  }
  const std::string actual = checkpoint_id(bytes);
  if (actual != id)
    throw CheckpointError("checkpoint " + id + " in " + (where == 2 ? "the " + d.dir_text() : d.where()) +
                          " does not match its hash (its bytes hash to " + actual + ")");
  return std::move(bytes);
}

std::vector<Event> PostgresStore::events(const std::string& experiment) {
  Impl& d = *impl_;
  return d.run("reading events", Impl::Tx::none, [&] {
    Result r = d.query(
        "SELECT member, step, kind, donor, copied, donor_checkpoint, old_h, new_h, old_score, donor_score, new_score, "
        "worker, time, donor_step FROM events WHERE experiment = $1 ORDER BY seq",
        Params::of(experiment), "reading events");
    if (r.rows() == 0) d.require_experiment(experiment);
    std::vector<Event> out;
    for (int i = 0; i < r.rows(); ++i) {
      Event ev;
      ev.member = static_cast<int>(r.i64(i, 0));
      ev.step = r.i64(i, 1);
      ev.kind = r.text(i, 2);
      ev.donor = static_cast<int>(r.i64(i, 3));
      ev.copied = r.text(i, 4);
      ev.donor_checkpoint = r.text(i, 5);
      const auto row = [&] {
        return d.where() + ": table events, experiment '" + experiment + "', event of member " +
               std::to_string(ev.member) + " at step " + std::to_string(ev.step);
      };
      ev.old_h = store_codec::column(row, "old_h", [&] { return store_codec::h_from_text(r.text(i, 6)); });
      ev.new_h = store_codec::column(row, "new_h", [&] { return store_codec::h_from_text(r.text(i, 7)); });
      ev.old_score = r.real(i, 8);
      ev.donor_score = r.real(i, 9);
      ev.new_score = r.opt_real(i, 10);
      ev.worker = r.text(i, 11);
      ev.time = r.real(i, 12);
      ev.donor_step = r.i64(i, 13);
      out.push_back(std::move(ev));
    }
    return out;
  });
}

std::vector<ScorePoint> PostgresStore::scores(const std::string& experiment) {
  Impl& d = *impl_;
  return d.run("reading scores", Impl::Tx::none, [&] {
    Result r = d.query("SELECT member, step, score FROM scores WHERE experiment = $1 ORDER BY member, step, seq",
                       Params::of(experiment), "reading scores");
    if (r.rows() == 0) d.require_experiment(experiment);
    std::vector<ScorePoint> out;
    out.reserve(static_cast<std::size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i) out.push_back(ScorePoint{static_cast<int>(r.i64(i, 0)), r.i64(i, 1), r.real(i, 2)});
    return out;
  });
}

std::size_t PostgresStore::collect_garbage() {
  Impl& d = *impl_;
  std::vector<std::string> files;
  const std::size_t rows = d.run("collecting garbage", Impl::Tx::write, [&]() -> std::size_t {
    files.clear();
    // Lock the candidates first (skipping any a publish holds), then delete those that are
    // still unreferenced by a fresh look: a publish that committed a reference meanwhile wins.
    Result c = d.query(
        "SELECT id FROM checkpoints c WHERE NOT EXISTS (SELECT 1 FROM members m WHERE m.checkpoint = c.id) "
        "FOR UPDATE SKIP LOCKED",
        Params(), "collecting garbage");
    if (c.rows() == 0) return 0;
    std::string ids = "{";
    for (int i = 0; i < c.rows(); ++i) ids += (i ? "," : "") + c.text(i, 0);
    ids += "}";
    Result del = d.query(
        "DELETE FROM checkpoints c WHERE c.id = ANY($1::text[]) AND NOT EXISTS "
        "(SELECT 1 FROM members m WHERE m.checkpoint = c.id) RETURNING c.id, c.bytes IS NULL",
        Params::of(ids), "collecting garbage");
    for (int i = 0; i < del.rows(); ++i)
      if (del.boolean(i, 1)) files.push_back(del.text(i, 0));
    return static_cast<std::size_t>(del.rows());
  });
  if (d.options.checkpoint_dir.empty()) return rows;
  for (const auto& id : files) d.remove_file_if_unreferenced(id);
  // Files no row refers to (a crash between a publish's commit and its clean-up, or a
  // publish that failed after writing its file), and temp files left by a crash.
  std::size_t swept = 0;
  std::vector<std::string> candidates;
  std::error_code ec;
  const auto old = fs::file_time_type::clock::now() - std::chrono::hours(1);
  for (const auto& entry : fs::directory_iterator(d.options.checkpoint_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (valid_checkpoint_id(name)) {
      if (std::find(files.begin(), files.end(), name) == files.end()) candidates.push_back(name);
    } else if (name.rfind(".tmp-", 0) == 0) {
      std::error_code e2;
      if (fs::last_write_time(entry.path(), e2) < old && !e2) fs::remove(entry.path(), e2);
    }
  }
  if (!candidates.empty()) {
    std::string ids = "{";
    for (std::size_t i = 0; i < candidates.size(); ++i) ids += (i ? "," : "") + candidates[i];
    ids += "}";
    std::set<std::string> known = d.run("collecting garbage", Impl::Tx::none, [&] {
      Result r = d.query("SELECT id FROM checkpoints WHERE id = ANY($1::text[])", Params::of(ids), "collecting garbage");
      std::set<std::string> out;
      for (int i = 0; i < r.rows(); ++i) out.insert(r.text(i, 0));
      return out;
    });
    for (const auto& id : candidates)
      if (!known.count(id) && d.remove_file_if_unreferenced(id)) ++swept;
  }
  return rows + swept;
}

double PostgresStore::now() {
  Impl& d = *impl_;
  return d.run("reading the clock", Impl::Tx::none, [&] { return d.now_sql(); });
}

int PostgresStore::backend_pid() {
  Impl& d = *impl_;
  return d.run("reading the backend pid", Impl::Tx::none, [&] { return PQbackendPID(d.conn); });
}

std::size_t PostgresStore::connections() const { return impl_->connections.load(); }

void PostgresStore::lose_next_commit_reply() { impl_->lose_commit_replies.fetch_add(1); }

}  // namespace pbt
