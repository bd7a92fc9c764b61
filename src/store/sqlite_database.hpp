#pragma once
// The SQLite store's database file: one connection, its prepared statements, and the loop
// that runs every operation in a transaction, retrying while another process holds the lock.
// Knows nothing of pbt's tables.
#include <sqlite3.h>

#include <cstdint>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_map>

#include "pbt/error.hpp"
#include "store/retry.hpp"
#include "store/rows.hpp"
#include "store/sqlite_store.hpp"

namespace pbt::sqlite {

// A transient condition (another process holds the lock): the whole transaction is retried.
struct Transient {
  std::string message;
};

class Database {
 public:
  // Opens (or creates) the file; throws StoreError when it cannot.
  Database(std::string path, const SqliteStore::Options& options);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  const std::string& path() const { return path_; }
  // "SQLite store 'PATH'", for messages.
  const std::string& where() const { return where_; }
  // SQLite's limit on one value, in bytes.
  std::int64_t max_length() const { return max_length_; }

  // A prepared statement, reset when it goes out of scope.
  class Stmt : public store_codec::Row {
   public:
    Stmt(Database& db, sqlite3_stmt* s) : db_(db), s_(s) {}
    ~Stmt() override {
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
    Stmt& bind(int i, const std::optional<double>& v) { return v ? bind(i, *v) : check(sqlite3_bind_null(s_, i)); }
    Stmt& bind(int i, const std::string& v) {
      return check(sqlite3_bind_text64(s_, i, v.data(), v.size(), SQLITE_STATIC, SQLITE_UTF8));
    }
    Stmt& bind(int i, const char* v) { return check(sqlite3_bind_text(s_, i, v, -1, SQLITE_STATIC)); }
    Stmt& bind_blob(int i, const std::string& v) {
      return check(sqlite3_bind_blob64(s_, i, v.data(), v.size(), SQLITE_STATIC));
    }
    // Binds the arguments from the first parameter on; a tuple (store_codec's *_values)
    // binds each of its values.
    template <class... Args>
    Stmt& bind_all(const Args&... args) {
      int i = 0;
      (bind_next(i, args), ...);
      return *this;
    }

    // True when a row is ready; false when the statement is done.
    bool step() {
      int rc = sqlite3_step(s_);
      if (rc == SQLITE_ROW) return true;
      if (rc == SQLITE_DONE) return false;
      db_.fail(rc, std::string("running ") + sqlite3_sql(s_));
    }
    void run() {
      while (step()) {
      }
    }

    bool null(int c) const override { return sqlite3_column_type(s_, c) == SQLITE_NULL; }
    std::int64_t i64(int c) const override { return sqlite3_column_int64(s_, c); }
    double real(int c) const override {
      return null(c) ? std::numeric_limits<double>::quiet_NaN() : sqlite3_column_double(s_, c);
    }
    bool boolean(int c) const override { return i64(c) != 0; }
    std::string text(int c) const override {
      const unsigned char* p = sqlite3_column_text(s_, c);
      return p ? std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(s_, c)) : std::string();
    }
    std::uint64_t size(int c) { return static_cast<std::uint64_t>(sqlite3_column_bytes(s_, c)); }
    std::string blob(int c) {
      const void* p = sqlite3_column_blob(s_, c);
      return p ? std::string(static_cast<const char*>(p), sqlite3_column_bytes(s_, c)) : std::string();
    }

   private:
    template <class T>
    void bind_next(int& i, const T& v) {
      bind(++i, v);
    }
    template <class... T>
    void bind_next(int& i, const std::tuple<T...>& row) {
      store_codec::each(row, [&](const auto& v) { bind(++i, v); });
    }
    Stmt& check(int rc) {
      if (rc != SQLITE_OK) db_.fail(rc, std::string("binding ") + sqlite3_sql(s_));
      return *this;
    }
    Database& db_;
    sqlite3_stmt* s_;
  };

  // Inside run(): a statement prepared once, by its text.
  Stmt prepare(const std::string& sql);
  void exec(const char* sql, const char* what);
  // Rows changed by the last statement.
  std::int64_t changes() { return sqlite3_changes64(db_); }
  // Throws the error SQLite's result code `rc` stands for.
  [[noreturn]] void fail(int rc, const std::string& what);

  enum class Tx { none, read, write };

  // Runs f under the mutex, inside a transaction of the given kind; retries the whole of it
  // with jittered backoff while SQLite reports a transient lock, for retry_seconds.
  template <class F>
  auto run(const char* what, Tx tx, F&& f) -> decltype(f()) {
    store_codec::Retry retry(retry_seconds_, 0.002);
    for (;;) {
      try {
        std::lock_guard<std::mutex> lock(mutex_);
        if (tx == Tx::read) exec("BEGIN", what);
        if (tx == Tx::write) exec("BEGIN IMMEDIATE", what);
        try {
          auto result = f();
          if (tx != Tx::none) exec("COMMIT", what);
          return result;
        } catch (...) {
          if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
          throw;
        }
      } catch (const Transient& t) {
        if (!retry.wait(0.25))
          throw StoreUnavailable(where_ + ": " + what + ": still locked after " + retry.spent() + " (" + t.message +
                                 ")");
      }
    }
  }

 private:
  const std::string path_;
  const std::string where_;
  const double retry_seconds_;
  sqlite3* db_ = nullptr;
  std::mutex mutex_;
  std::unordered_map<std::string, sqlite3_stmt*> statements_;
  std::int64_t max_length_ = 0;
};

}  // namespace pbt::sqlite
