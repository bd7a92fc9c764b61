// The PostgreSQL store's tables (see schema.hpp).
#include "store/postgres/schema.hpp"

#include <cstdint>
#include <set>

namespace pbt::pg {

namespace {

// Advisory lock class (two-int form) for schema creation: 'pbts'.
constexpr std::int32_t kSchemaLockClass = 0x70627473;

const char* const kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(
  key text PRIMARY KEY,
  value text NOT NULL);
CREATE TABLE IF NOT EXISTS experiments(
  name text PRIMARY KEY,
  config text NOT NULL,
  origin text NOT NULL,
  population integer NOT NULL,
  finished boolean NOT NULL DEFAULT false,
  created double precision NOT NULL);
CREATE TABLE IF NOT EXISTS members(
  experiment text NOT NULL,
  id integer NOT NULL,
  step bigint NOT NULL,
  last_ready_step bigint NOT NULL,
  score double precision,
  samples text NOT NULL,
  h text NOT NULL,
  checkpoint text NOT NULL DEFAULT '',
  done boolean NOT NULL DEFAULT false,
  failures integer NOT NULL DEFAULT 0,
  failed boolean NOT NULL DEFAULT false,
  last_error text NOT NULL DEFAULT '',
  version bigint NOT NULL DEFAULT 0,
  owner text NOT NULL DEFAULT '',
  lease_expires double precision NOT NULL DEFAULT 0,
  last_owner text NOT NULL DEFAULT '',
  metrics text NOT NULL,
  publish_token text NOT NULL DEFAULT '',
  PRIMARY KEY(experiment, id));
CREATE INDEX IF NOT EXISTS members_by_checkpoint ON members(checkpoint);
CREATE TABLE IF NOT EXISTS checkpoints(
  id text PRIMARY KEY,
  bytes bytea,
  size bigint NOT NULL,
  created double precision NOT NULL);
CREATE TABLE IF NOT EXISTS scores(
  seq bigserial PRIMARY KEY,
  experiment text NOT NULL,
  member integer NOT NULL,
  step bigint NOT NULL,
  score double precision);
CREATE INDEX IF NOT EXISTS scores_by_member ON scores(experiment, member, step, seq);
CREATE TABLE IF NOT EXISTS events(
  seq bigserial PRIMARY KEY,
  experiment text NOT NULL,
  member integer NOT NULL,
  step bigint NOT NULL,
  kind text NOT NULL,
  donor integer NOT NULL,
  donor_step bigint NOT NULL,
  copied text NOT NULL,
  donor_checkpoint text NOT NULL,
  old_h text NOT NULL,
  new_h text NOT NULL,
  old_score double precision,
  donor_score double precision,
  new_score double precision,
  worker text NOT NULL,
  time double precision NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_experiment ON events(experiment, seq);
)sql";

// Schema version 2: every write to a member row stamps it with the writing transaction's
// id, so a reader can fetch only the rows changed since its last read (PostgresStore::population).
const char* const kMembersChanged = R"sql(
ALTER TABLE members ADD COLUMN IF NOT EXISTS changed xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE OR REPLACE FUNCTION pbt_member_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.changed := pg_current_xact_id();
  RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS members_changed ON members;
CREATE TRIGGER members_changed BEFORE INSERT OR UPDATE ON members
  FOR EACH ROW EXECUTE FUNCTION pbt_member_changed();
)sql";

const std::set<std::string> kTables = {"meta", "experiments", "members", "checkpoints", "scores", "events"};

// True when the schema is there at our version; false when it has none of pbt's tables
// yet (or is at version 1); throws when it holds another schema version or another
// application's tables.
bool check_schema(Connection& conn, const std::string& schema) {
  Result t = conn.query(
      "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY c.relname",
      Params::of(schema), "checking the schema");
  std::set<std::string> tables;
  for (int i = 0; i < t.rows(); ++i) tables.insert(t.text(i, 0));
  if (tables.count("meta")) {
    Result v = conn.query("SELECT value FROM meta WHERE key = 'schema_version'", Params(), "checking the schema");
    if (v.rows() > 0) {
      const std::string found = v.text(0, 0);
      if (found == "1") return false;  // upgraded under the schema lock (open_schema)
      if (found != std::to_string(kSchemaVersion))
        throw StoreError(conn.where() + " (schema '" + schema + "') has schema version " + found +
                         ", but this build of pbt supports schema versions 1 (upgraded in place) and " +
                         std::to_string(kSchemaVersion) + " only");
      return true;
    }
  }
  for (const auto& name : tables)
    if (!kTables.count(name))
      throw StoreError(conn.where() + ": schema '" + schema + "' holds a table '" + name +
                       "' and no pbt schema version, so it is not a pbt store (choose another schema with "
                       "?schema=NAME)");
  return false;
}

}  // namespace

void open_schema(Connection& conn, const std::string& schema) {
  // Concurrent first workers: the first one through the advisory lock creates the
  // schema, the others find it (DDL is transactional, so nobody sees half of it).
  conn.run("opening", Connection::Tx::write, [&] {
    if (check_schema(conn, schema)) return 0;
    conn.query("SELECT pg_advisory_xact_lock($1::int4, hashtext($2))", Params::of(kSchemaLockClass, schema),
               "creating the schema");
    if (check_schema(conn, schema)) return 0;
    Result s = conn.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", Params::of(schema), "creating the schema");
    if (s.rows() == 0) conn.exec(("CREATE SCHEMA " + quote_ident(schema)).c_str(), "creating the schema");
    // IF NOT EXISTS throughout, so this also upgrades a version-1 store.
    conn.exec((std::string(kSchema) + kMembersChanged).c_str(), "creating the schema");
    conn.query("INSERT INTO meta(key, value) VALUES ('schema_version', $1) ON CONFLICT (key) DO UPDATE SET value = $1",
               Params::of(std::to_string(kSchemaVersion)), "creating the schema");
    return 0;
  });
}

}  // namespace pbt::pg
