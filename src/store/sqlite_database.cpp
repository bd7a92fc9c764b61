// The SQLite store's database file (see sqlite_database.hpp).
#include "store/sqlite_database.hpp"

namespace pbt::sqlite {

namespace {

bool is_transient(int rc) {
  const int primary = rc & 0xff;
  return primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
}

}  // namespace

Database::Database(std::string path, const SqliteStore::Options& options)
    : path_(std::move(path)), where_("SQLite store '" + path_ + "'"), retry_seconds_(options.retry_seconds) {
  int rc =
      sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    if (db_) sqlite3_close_v2(db_);
    throw StoreError("cannot open SQLite store '" + path_ + "': " + message);
  }
  sqlite3_extended_result_codes(db_, 1);
  if (options.length_limit > 0) sqlite3_limit(db_, SQLITE_LIMIT_LENGTH, options.length_limit);
  max_length_ = sqlite3_limit(db_, SQLITE_LIMIT_LENGTH, -1);
  sqlite3_busy_timeout(db_, options.busy_timeout_ms);
}

Database::~Database() {
  for (auto& [sql, s] : statements_) sqlite3_finalize(s);
  if (db_) sqlite3_close_v2(db_);
}

void Database::fail(int rc, const std::string& what) {
  std::string message = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  if (is_transient(rc)) throw Transient{message};
  if ((rc & 0xff) == SQLITE_NOTADB)
    throw StoreError("'" + path_ + "' is not an SQLite database, so not a pbt store (" + message + ")");
  // A full disk or a failing read/write is the store's condition, not this write's: the
  // same write may succeed later. Anything else (a malformed page, a missing table, a
  // value over SQLite's limits) fails the same way every time.
  const int primary = rc & 0xff;
  if (primary == SQLITE_FULL || primary == SQLITE_IOERR || primary == SQLITE_CANTOPEN)
    throw StoreUnavailable(where_ + ": " + what + ": " + message);
  throw StoreError(where_ + ": " + what + ": " + message);
}

void Database::exec(const char* sql, const char* what) {
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) fail(rc, what);
}

Database::Stmt Database::prepare(const std::string& sql) {
  auto it = statements_.find(sql);
  if (it == statements_.end()) {
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr);
    if (rc != SQLITE_OK) fail(rc, "preparing " + sql);
    it = statements_.emplace(sql, s).first;
  }
  return Stmt(*this, it->second);
}

}  // namespace pbt::sqlite
