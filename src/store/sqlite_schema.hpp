#pragma once
// The SQLite store's tables: created by the first process that opens the file, versioned
// in its meta table (SqliteStore::kSchemaVersion).
#include "store/sqlite_database.hpp"

namespace pbt::sqlite {

// Makes sure the file holds pbt's tables at kSchemaVersion, creating them in an empty file,
// and sets the journal mode (WAL); throws StoreError when the file holds another version or
// another application's tables.
void open_schema(Database& db);

}  // namespace pbt::sqlite
