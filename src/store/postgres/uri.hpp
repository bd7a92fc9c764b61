#pragma once
// A PostgreSQL store URI: libpq's part, and the query parameters that are pbt's own
// (checkpoint_dir, retry_seconds, schema), taken out before libpq sees the URI (libpq
// refuses parameters it does not know).
#include <string>

#include "store/postgres/postgres_store.hpp"

namespace pbt::pg {

struct Target {
  std::string name;      // the URI, password redacted: for messages
  std::string conninfo;  // the URI for libpq
  PostgresStore::Options options;
};

// Reads the URI; its parameters override `options`. Throws StoreError for a bad value.
Target parse_uri(const std::string& uri, PostgresStore::Options options);

// The store's name in messages: "PostgreSQL store 'NAME'".
std::string store_text(const std::string& name);

}  // namespace pbt::pg
