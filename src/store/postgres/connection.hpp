#pragma once
// One libpq connection of a PostgreSQL store, and the loop that runs every operation on it:
// reconnecting when the connection is lost, retrying what failed transiently, and turning
// libpq's failures into pbt's errors. Knows nothing of pbt's tables.
#include <libpq-fe.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "pbt/error.hpp"
#include "store/postgres/postgres_store.hpp"
#include "store/retry.hpp"
#include "store/rows.hpp"

namespace pbt::pg {

// A serialization failure or deadlock: the whole transaction is retried.
struct Transient {
  std::string message;
};
// The connection is gone (or never came): reconnect, then retry the whole operation.
struct ConnectionLost {
  std::string message;
};

std::string quote_ident(const std::string& name);

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
  Params& null();
  // Binary bytes, not copied: `v` must outlive the query.
  Params& bytes(const std::string& v);
  // Every value of a row (store_codec's *_values), in order.
  template <class... T>
  Params& add(const std::tuple<T...>& row) {
    store_codec::each(row, [&](const auto& v) { add(v); });
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
  void arrays(std::vector<const char*>& values, std::vector<int>& lengths, std::vector<int>& formats) const;

 private:
  struct Item {
    std::string owned;
    const std::string* ref;
    bool null;
    bool binary;
  };
  static std::string format_double(double v);
  Params& push(std::string v, bool binary);
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
  std::size_t length(int row, int col) const { return static_cast<std::size_t>(PQgetlength(r_, row, col)); }
  std::string text(int row, int col) const { return std::string(PQgetvalue(r_, row, col), length(row, col)); }
  std::int64_t i64(int row, int col) const;
  double real(int row, int col) const;  // NaN when NULL
  bool boolean(int row, int col) const { return PQgetvalue(r_, row, col)[0] == 't'; }
  std::int64_t affected() const;

  // Row `i`, for store_codec's row mapping.
  class Row : public store_codec::Row {
   public:
    Row(const Result& r, int i) : r_(r), i_(i) {}
    bool null(int c) const override { return r_.null(i_, c); }
    std::int64_t i64(int c) const override { return r_.i64(i_, c); }
    double real(int c) const override { return r_.real(i_, c); }
    std::string text(int c) const override { return r_.text(i_, c); }
    bool boolean(int c) const override { return r_.boolean(i_, c); }

   private:
    const Result& r_;
    int i_;
  };
  Row row(int i) const { return Row(*this, i); }

 private:
  PGresult* r_;
};

class Connection {
 public:
  // `name` is the URI, password redacted (for messages); `conninfo` what libpq gets.
  Connection(std::string name, std::string conninfo, const PostgresStore::Options& options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // "PostgreSQL store 'NAME'", for messages.
  const std::string& where() const { return where_; }

  // Inside run(): one statement.
  void exec(const char* sql, const std::string& what);
  // Prepared once per connection, by its text.
  Result query(const std::string& sql, const Params& p, const std::string& what, int result_format = 0);
  // For statements whose text varies (multi-row inserts): not prepared.
  Result query_once(const std::string& sql, const Params& p, const std::string& what);
  // The current attempt follows a lost connection (an earlier one may have committed).
  bool after_lost_connection() const { return after_lost_connection_; }
  int backend_pid() const { return PQbackendPID(conn_); }

  enum class Tx { none, write };

  // Runs f under the mutex (inside a READ COMMITTED transaction for Tx::write). Serialization
  // failures and deadlocks retry the whole of it with jittered backoff; a lost connection is
  // reconnected and the whole of it retried, with backoff up to 1 s, for retry_seconds.
  template <class F>
  auto run(const std::string& what, Tx tx, F&& f) -> decltype(f()) {
    store_codec::Retry retry(retry_seconds_, 0.005);
    bool lost_before = false;
    for (;;) {
      std::string failure;
      bool lost = false;
      try {
        std::lock_guard<std::mutex> lock(mutex_);
        try {
          ensure_connected();
          after_lost_connection_ = lost_before;
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
      if (!retry.wait(lost ? 1.0 : 0.25)) {
        if (lost)
          throw StoreUnavailable(where_ + ": " + what + ": no usable connection to the server after " + retry.spent() +
                                 " (" + failure + ")");
        throw StoreUnavailable(where_ + ": " + what + ": still conflicting after " + retry.spent() + " (" + failure +
                               ")");
      }
    }
  }

  // One attempt in a transaction, no retry; false when it failed (for best-effort clean-up).
  template <class F>
  bool try_once(const std::string& what, F&& f) {
    std::lock_guard<std::mutex> lock(mutex_);
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

  // Test hooks (see PostgresStore).
  std::size_t connections() const { return connections_.load(); }
  void lose_next_commit_reply() { lose_commit_replies_.fetch_add(1); }

 private:
  void ensure_connected();
  void disconnect();
  void check(const Result& r, const std::string& what);
  void rollback_quietly();
  void commit(const std::string& what);

  const std::string where_;
  const std::string conninfo_;
  const double connect_timeout_seconds_;
  const double retry_seconds_;
  const std::string schema_;
  PGconn* conn_ = nullptr;
  std::mutex mutex_;
  std::unordered_map<std::string, std::string> prepared_;  // SQL -> statement name (this connection)
  std::atomic<std::size_t> connections_{0};
  std::atomic<int> lose_commit_replies_{0};
  bool after_lost_connection_ = false;
};

}  // namespace pbt::pg
