// open_store: the backend factory, chosen by URI.
#include <sys/stat.h>

#include <cctype>
#include <memory>
#include <string>

#include <sqlite3.h>

#include "pbt/error.hpp"
#include "pbt/store.hpp"
#include "store/memory_store.hpp"
#include "store/sqlite_store.hpp"
#include "store/uri_text.hpp"
#ifdef PBT_WITH_POSTGRES
#include "store/postgres/postgres_store.hpp"
#endif

namespace pbt {

namespace {

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

const char* const kAccepted =
    "accepted forms: \"memory:\", \"sqlite:PATH\", \"sqlite://PATH\", a path ending in .db, .sqlite or .sqlite3, "
    "or \"postgresql://USER@HOST:PORT/DB\"";

bool is_postgres(const std::string& uri) {
  return starts_with(uri, "postgresql://") || starts_with(uri, "postgres://");
}

}  // namespace

std::string redact_uri(const std::string& uri) {
  std::string out = uri;
  // user:password@ in the authority of a PostgreSQL URI. Like libpq, the user part ends
  // at the first '@' or '/' after "//".
  const auto scheme_end = out.find("://");
  if (scheme_end != std::string::npos && is_postgres(out)) {
    const std::size_t start = scheme_end + 3;
    const std::size_t end = out.find_first_of("@/", start);
    if (end != std::string::npos && out[end] == '@') {
      const std::size_t colon = out.find(':', start);
      if (colon < end) out.replace(colon + 1, end - colon - 1, "***");
    }
  }
  // password=... as a query parameter (?password=, &password=) or a key=value setting.
  for (std::size_t pos = 0; (pos = out.find("password", pos)) != std::string::npos;) {
    const bool at_key = pos == 0 || out[pos - 1] == '?' || out[pos - 1] == '&' || out[pos - 1] == ' ';
    std::size_t p = pos + 8;
    while (p < out.size() && out[p] == ' ') ++p;
    if (!at_key || p >= out.size() || out[p] != '=') {
      pos += 8;
      continue;
    }
    ++p;
    while (p < out.size() && out[p] == ' ') ++p;
    std::size_t end = p;
    if (end < out.size() && out[end] == '\'') {
      ++end;
      while (end < out.size() && out[end] != '\'') end += out[end] == '\\' ? 2 : 1;
      end = std::min(out.size(), end + 1);
    } else {
      while (end < out.size() && out[end] != '&' && out[end] != ' ') ++end;
    }
    out.replace(p, end - p, "***");
    pos = p + 3;
  }
  return out;
}

namespace {

// What keeps the SQLite file at `path` from being a pbt store (its experiments table), or ""
// when nothing does. Asked read-only, so that looking never changes the file.
std::string sqlite_store_problem(const std::string& path) {
  sqlite3* db = nullptr;
  std::string problem = "the file is not a pbt store";
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* st = nullptr;
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'experiments'", -1, &st,
                            nullptr);
  if (rc == SQLITE_OK) {
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) problem.clear();
  }
  if (rc != SQLITE_OK && rc != SQLITE_ROW && rc != SQLITE_DONE && (rc & 0xff) != SQLITE_NOTADB)
    problem = std::string("cannot read it: ") + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  sqlite3_finalize(st);
  sqlite3_close(db);
  return problem;
}

struct SqliteTarget {
  std::string path;
  SqliteStore::Options options;
};
SqliteTarget sqlite_target(const std::string& uri);

std::string sqlite_path(const std::string& uri) {
  std::string path;
  if (uri.find('?') != std::string::npos) return sqlite_target(uri).path;
  if (starts_with(uri, "sqlite://")) path = uri.substr(9);
  else if (starts_with(uri, "sqlite:")) path = uri.substr(7);
  else if (ends_with(uri, ".db") || ends_with(uri, ".sqlite") || ends_with(uri, ".sqlite3")) path = uri;
  else throw StoreError("store '" + redact_uri(uri) + "' is not a store URI I know; " + kAccepted);
  if (path.empty()) throw StoreError("store '" + uri + "' names no file; " + kAccepted);
  return path;
}

// A SQLite store URI: the file, and parameters after '?' ("sqlite:run/store.db?checkpoint_dir=/big/disk").
SqliteTarget sqlite_target(const std::string& uri) {
  SqliteTarget t;
  const auto q = uri.find('?');
  t.path = sqlite_path(uri.substr(0, q));
  if (q == std::string::npos) return t;
  for (const QueryParam& p : query_params(uri.substr(q + 1))) {
    if (p.key != "checkpoint_dir")
      throw StoreError("store '" + redact_uri(uri) + "': unknown parameter '" + p.key +
                       "' (a SQLite store takes checkpoint_dir=DIR)");
    if (p.value.empty()) throw StoreError("store '" + redact_uri(uri) + "': checkpoint_dir names no directory");
    t.options.checkpoint_dir = p.value;
  }
  return t;
}

}  // namespace

std::unique_ptr<Store> open_existing_store(const std::string& uri) {
  if (uri == "memory:" || uri == "memory://" || is_postgres(uri) || starts_with(uri, "postgresql:") ||
      starts_with(uri, "postgres:"))
    return open_store(uri);
  const std::string path = sqlite_path(uri);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw StoreError("no store at '" + path + "' (no such file)");
  if (!S_ISREG(st.st_mode)) throw StoreError("no store at '" + path + "' (not a regular file)");
  const std::string problem = sqlite_store_problem(path);
  if (!problem.empty()) throw StoreError("no store at '" + path + "' (" + problem + ")");
  return open_store(uri);
}

std::unique_ptr<Store> open_store(const std::string& uri) {
  if (uri == "memory:" || uri == "memory://") return std::make_unique<MemoryStore>();
  if (is_postgres(uri)) {
#ifdef PBT_WITH_POSTGRES
    return std::make_unique<PostgresStore>(uri);
#else
    throw StoreError("store '" + redact_uri(uri) +
                     "': this pbt was built without PostgreSQL (configure with -DPBT_WITH_POSTGRES=ON and libpq "
                     "installed)");
#endif
  }
  if (starts_with(uri, "postgresql:") || starts_with(uri, "postgres:"))
    throw StoreError("store '" + redact_uri(uri) +
                     "': a PostgreSQL store is named by a URI that starts with "
                     "postgresql:// or postgres://; " +
                     kAccepted);
  SqliteTarget t = sqlite_target(uri);
  return std::make_unique<SqliteStore>(t.path, std::move(t.options));
}

}  // namespace pbt
