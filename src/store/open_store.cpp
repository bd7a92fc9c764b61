// open_store: the backend factory, chosen by URI.
#include <memory>
#include <string>

#include "pbt/error.hpp"
#include "pbt/store.hpp"
#include "store/memory_store.hpp"
#include "store/sqlite_store.hpp"

namespace pbt {

namespace {

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

const char* const kAccepted =
    "accepted forms: \"memory:\", \"sqlite:PATH\", \"sqlite://PATH\", or a path ending in .db, .sqlite or .sqlite3";

}  // namespace

std::unique_ptr<Store> open_store(const std::string& uri) {
  if (uri == "memory:" || uri == "memory://") return std::make_unique<MemoryStore>();
  if (starts_with(uri, "postgresql:") || starts_with(uri, "postgres:"))
    throw StoreError("store '" + uri + "': PostgreSQL is not built into this pbt yet; " + kAccepted);
  std::string path;
  if (starts_with(uri, "sqlite://")) path = uri.substr(9);
  else if (starts_with(uri, "sqlite:")) path = uri.substr(7);
  else if (ends_with(uri, ".db") || ends_with(uri, ".sqlite") || ends_with(uri, ".sqlite3")) path = uri;
  else throw StoreError("store '" + uri + "' is not a store URI I know; " + kAccepted);
  if (path.empty()) throw StoreError("store '" + uri + "' names no file; " + kAccepted);
  return std::make_unique<SqliteStore>(path);
}

}  // namespace pbt
