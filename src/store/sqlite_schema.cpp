// The SQLite store's tables (see sqlite_schema.hpp).
#include "store/sqlite_schema.hpp"

#include <string>

namespace pbt::sqlite {

namespace {

constexpr int kSchemaVersion = SqliteStore::kSchemaVersion;

const char* const kSchema = R"sql(
CREATE TABLE IF NOT EXISTS experiments(
  name TEXT PRIMARY KEY,
  config TEXT NOT NULL,
  origin TEXT NOT NULL,
  population INTEGER NOT NULL,
  finished INTEGER NOT NULL DEFAULT 0,
  created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS members(
  experiment TEXT NOT NULL,
  id INTEGER NOT NULL,
  step INTEGER NOT NULL,
  last_ready_step INTEGER NOT NULL,
  score REAL,
  samples TEXT NOT NULL,
  h TEXT NOT NULL,
  checkpoint TEXT NOT NULL DEFAULT '',
  done INTEGER NOT NULL DEFAULT 0,
  failures INTEGER NOT NULL DEFAULT 0,
  failed INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  version INTEGER NOT NULL DEFAULT 0,
  owner TEXT NOT NULL DEFAULT '',
  lease_expires REAL NOT NULL DEFAULT 0,
  last_owner TEXT NOT NULL DEFAULT '',
  metrics TEXT NOT NULL,
  PRIMARY KEY(experiment, id));
CREATE INDEX IF NOT EXISTS members_by_checkpoint ON members(checkpoint);
CREATE TABLE IF NOT EXISTS checkpoints(
  id TEXT PRIMARY KEY,
  bytes BLOB NOT NULL,
  size INTEGER NOT NULL,
  created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS scores(
  experiment TEXT NOT NULL,
  member INTEGER NOT NULL,
  step INTEGER NOT NULL,
  score REAL);
CREATE INDEX IF NOT EXISTS scores_by_member ON scores(experiment, member, step);
CREATE TABLE IF NOT EXISTS events(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  experiment TEXT NOT NULL,
  member INTEGER NOT NULL,
  step INTEGER NOT NULL,
  kind TEXT NOT NULL,
  donor INTEGER NOT NULL,
  donor_step INTEGER NOT NULL,
  copied TEXT NOT NULL,
  donor_checkpoint TEXT NOT NULL,
  old_h TEXT NOT NULL,
  new_h TEXT NOT NULL,
  old_score REAL,
  donor_score REAL,
  new_score REAL,
  worker TEXT NOT NULL,
  time REAL NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_experiment ON events(experiment, seq);
)sql";

// True when the schema is there at our version; false when the file is empty (of tables);
// throws when it is another schema version or another application's database.
bool check_schema(Database& db) {
  bool has_meta;
  {
    auto m = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'");
    has_meta = m.step();
  }
  if (has_meta) {
    auto s = db.prepare("SELECT value FROM meta WHERE key = 'schema_version'");
    if (s.step()) {
      const std::string found = s.text(0);
      if (found != std::to_string(kSchemaVersion))
        throw StoreError(db.where() + " has schema version " + found +
                         ", but this build of pbt supports schema version " + std::to_string(kSchemaVersion) + " only");
      return true;
    }
  }
  auto other = db.prepare(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT IN "
      "('meta', 'experiments', 'members', 'checkpoints', 'scores', 'events') LIMIT 1");
  if (other.step())
    throw StoreError("'" + db.path() + "' is an SQLite database but not a pbt store (it has a table '" + other.text(0) +
                     "' and no schema version)");
  return false;
}

}  // namespace

void open_schema(Database& db) {
  using Tx = Database::Tx;
  // Look before changing anything (WAL mode is persistent): refuse foreign files first.
  const bool present = db.run("checking the schema", Tx::read, [&] { return check_schema(db); });
  db.run("opening", Tx::none, [&] {
    auto s = db.prepare("PRAGMA journal_mode = WAL");
    s.run();
    return 0;
  });
  db.run("opening", Tx::none, [&] {
    db.exec("PRAGMA synchronous = NORMAL", "opening");
    return 0;
  });
  // Concurrent first openers: the first one in creates the schema, the others find it.
  if (!present)
    db.run("creating the schema", Tx::write, [&] {
      if (check_schema(db)) return 0;
      db.exec("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)", "creating the schema");
      db.exec(kSchema, "creating the schema");
      auto v = db.prepare("INSERT INTO meta(key, value) VALUES ('schema_version', ?)");
      v.bind_all(std::to_string(kSchemaVersion)).run();
      return 0;
    });
}

}  // namespace pbt::sqlite
