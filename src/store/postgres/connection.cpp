// A PostgreSQL store's connection (see connection.hpp), on libpq's C API.
#include "store/postgres/connection.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "store/postgres/uri.hpp"

namespace pbt::pg {

namespace {

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

// A connection failure that waiting will not cure (wrong password, no such database,
// a malformed URI): reported at once. Anything else (refused, starting up, timeout,
// too many clients) is retried.
bool permanent_connect_failure(const std::string& m) {
  for (const char* p : {"authentication failed", "does not exist", "no pg_hba.conf entry", "no password supplied",
                        "password is required", "invalid ", "could not translate host name", "unsupported",
                        "permission denied", "not permitted to log in", "certificate"})
    if (contains(m, p)) return true;
  return false;
}

}  // namespace

std::string quote_ident(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// ---- Params, Result ----

Params& Params::null() {
  items_.push_back(Item{"", nullptr, true, false});
  return *this;
}

Params& Params::bytes(const std::string& v) {
  items_.push_back(Item{"", &v, false, true});
  return *this;
}

Params& Params::push(std::string v, bool binary) {
  items_.push_back(Item{std::move(v), nullptr, false, binary});
  return *this;
}

std::string Params::format_double(double v) {
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

void Params::arrays(std::vector<const char*>& values, std::vector<int>& lengths, std::vector<int>& formats) const {
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

std::int64_t Result::i64(int row, int col) const { return std::strtoll(PQgetvalue(r_, row, col), nullptr, 10); }

double Result::real(int row, int col) const {
  return null(row, col) ? std::numeric_limits<double>::quiet_NaN() : std::strtod(PQgetvalue(r_, row, col), nullptr);
}

std::int64_t Result::affected() const {
  const char* s = PQcmdTuples(r_);
  return s && *s ? std::strtoll(s, nullptr, 10) : 0;
}

// ---- Connection ----

Connection::Connection(std::string name, std::string conninfo, const PostgresStore::Options& options)
    : where_(store_text(name)),
      conninfo_(std::move(conninfo)),
      connect_timeout_seconds_(options.connect_timeout_seconds),
      retry_seconds_(options.retry_seconds),
      schema_(options.schema) {}

Connection::~Connection() { disconnect(); }

void Connection::disconnect() {
  if (conn_) PQfinish(conn_);
  conn_ = nullptr;
  prepared_.clear();
}

void Connection::ensure_connected() {
  if (conn_ && PQstatus(conn_) == CONNECTION_OK) return;
  disconnect();
  const std::string timeout = std::to_string(std::max(1, static_cast<int>(std::ceil(connect_timeout_seconds_))));
  // Defaults first: whatever the URI says (the expanded dbname) overrides them.
  const char* keys[] = {"connect_timeout",  "keepalives",       "keepalives_idle", "keepalives_interval",
                        "keepalives_count", "application_name", "dbname",          nullptr};
  const char* values[] = {timeout.c_str(), "1", "10", "5", "3", "pbt", conninfo_.c_str(), nullptr};
  PGconn* c = PQconnectdbParams(keys, values, 1);
  if (!c) throw ConnectionLost{"libpq could not allocate a connection"};
  if (PQstatus(c) != CONNECTION_OK) {
    const std::string message = trim(PQerrorMessage(c));
    PQfinish(c);
    if (permanent_connect_failure(message)) throw StoreError("cannot connect to " + where_ + ": " + message);
    throw ConnectionLost{message};
  }
  PQsetNoticeProcessor(
      c, [](void*, const char*) {}, nullptr);
  conn_ = c;
  ++connections_;
  exec(
      ("SET search_path TO " + quote_ident(schema_) + "; SET extra_float_digits = 3; SET client_min_messages = warning")
          .c_str(),
      "setting up the session");
}

// Throws the right kind of failure for a result that is not a success.
void Connection::check(const Result& r, const std::string& what) {
  const ExecStatusType st = r.get() ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return;
  const char* state_p = r.get() ? PQresultErrorField(r.get(), PG_DIAG_SQLSTATE) : nullptr;
  const std::string state = state_p ? state_p : "";
  std::string message = r.get() ? PQresultErrorMessage(r.get()) : "";
  if (message.empty() && conn_) message = PQerrorMessage(conn_);
  message = trim(message);
  if (!conn_ || PQstatus(conn_) != CONNECTION_OK || state.compare(0, 2, "08") == 0 || state == "57P01" ||
      state == "57P02" || state == "57P03")
    throw ConnectionLost{message.empty() ? "the connection to the server was lost" : message};
  if (state == "40001" || state == "40P01") throw Transient{message};
  throw StoreError(where_ + ": " + what + ": " + message);
}

void Connection::exec(const char* sql, const std::string& what) {
  Result r(PQexec(conn_, sql));
  check(r, what);
}

Result Connection::query(const std::string& sql, const Params& p, const std::string& what, int result_format) {
  auto it = prepared_.find(sql);
  if (it == prepared_.end()) {
    const std::string statement = "pbt_" + std::to_string(prepared_.size() + 1);
    Result r(PQprepare(conn_, statement.c_str(), sql.c_str(), p.size(), nullptr));
    check(r, what);
    it = prepared_.emplace(sql, statement).first;
  }
  std::vector<const char*> values;
  std::vector<int> lengths, formats;
  p.arrays(values, lengths, formats);
  Result r(PQexecPrepared(conn_, it->second.c_str(), p.size(), values.data(), lengths.data(), formats.data(),
                          result_format));
  check(r, what);
  return r;
}

Result Connection::query_once(const std::string& sql, const Params& p, const std::string& what) {
  std::vector<const char*> values;
  std::vector<int> lengths, formats;
  p.arrays(values, lengths, formats);
  Result r(PQexecParams(conn_, sql.c_str(), p.size(), nullptr, values.data(), lengths.data(), formats.data(), 0));
  check(r, what);
  return r;
}

void Connection::rollback_quietly() {
  if (conn_ && PQstatus(conn_) == CONNECTION_OK && PQtransactionStatus(conn_) != PQTRANS_IDLE) {
    PGresult* r = PQexec(conn_, "ROLLBACK");
    if (r) PQclear(r);
  }
}

void Connection::commit(const std::string& what) {
  exec("COMMIT", what);
  int pending = lose_commit_replies_.load();
  while (pending > 0 && !lose_commit_replies_.compare_exchange_weak(pending, pending - 1)) {
  }
  if (pending > 0) {
    disconnect();
    throw ConnectionLost{"the reply to COMMIT was lost (test hook)"};
  }
}

}  // namespace pbt::pg
