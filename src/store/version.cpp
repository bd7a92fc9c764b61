// pbt::version_text (pbt/version.hpp): here because the store knows the schema versions.
#include "pbt/version.hpp"

#include "store/sqlite_store.hpp"
#include "trainables/external/process.hpp"
#ifdef PBT_WITH_POSTGRES
#include "store/postgres/schema.hpp"
#endif

namespace pbt {

std::string version_text() {
  std::string s = std::string("pbt ") + PBT_VERSION_STRING + " (process protocol " + std::to_string(kProtocolMajor) +
                  "." + std::to_string(kProtocolMinor) + ", SQLite schema " +
                  std::to_string(SqliteStore::kSchemaVersion);
#ifdef PBT_WITH_POSTGRES
  s += ", PostgreSQL schema " + std::to_string(pg::kSchemaVersion);
#else
  s += ", PostgreSQL: not built";
#endif
  return s + ")";
}

}  // namespace pbt
