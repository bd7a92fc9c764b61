#pragma once
// The PostgreSQL store's tables: created in their own PostgreSQL schema by the first worker,
// versioned in its meta table, upgraded in place from version 1.
#include <string>

#include "store/postgres/connection.hpp"

namespace pbt::pg {

// Version 2 added members.changed (the writing transaction's id, for incremental reads of
// the population); a version-1 store is upgraded in place by the first worker that opens it.
constexpr int kSchemaVersion = 2;

// Makes sure `schema` holds pbt's tables at kSchemaVersion, creating or upgrading them
// (one worker at a time); throws StoreError when it holds another version or another
// application's tables.
void open_schema(Connection& conn, const std::string& schema);

}  // namespace pbt::pg
