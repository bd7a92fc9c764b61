// The PostgreSQL store's operations (see postgres_store.hpp). The connection and retry loop
// are in connection.cpp, the tables in schema.cpp, the URI in uri.cpp, checkpoint rows and
// files in checkpoints.cpp.
#include "store/postgres/postgres_store.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <unordered_map>

#include "pbt/error.hpp"
#include "store/codec.hpp"
#include "store/postgres/checkpoints.hpp"
#include "store/postgres/connection.hpp"
#include "store/postgres/schema.hpp"
#include "store/postgres/uri.hpp"
#include "store/rows.hpp"

namespace pbt {

namespace {

using pg::Connection;
using pg::Params;
using pg::Result;
using store_codec::kMemberColumns;

// The store's clock: the server's, in seconds since the Unix epoch.
#define PBT_PG_NOW "extract(epoch from clock_timestamp())::float8"

const std::string& member_columns_m() {
  static const std::string columns = store_codec::qualified(kMemberColumns, "m");
  return columns;
}

}  // namespace

struct PostgresStore::Impl {
  explicit Impl(const pg::Target& t)
      : target(t), conn(t.name, t.conninfo, t.options), checkpoints(conn, t.options.checkpoint_dir) {}

  pg::Target target;
  Connection conn;
  pg::Checkpoints checkpoints;
  // Members as last read, by experiment, and the xmin of that read's snapshot: every
  // transaction below it had finished, so only rows changed at or above it can be news.
  struct PopulationCache {
    std::map<int, MemberState> members;
    std::string xmin = "0";
  };
  std::unordered_map<std::string, PopulationCache> population_cache;

  const std::string& where() const { return conn.where(); }

  double now_sql() { return conn.query("SELECT " PBT_PG_NOW, Params(), "reading the clock").real(0, 0); }

  void require_experiment(const std::string& experiment) {
    if (conn.query("SELECT 1 FROM experiments WHERE name = $1", Params::of(experiment), "reading an experiment")
            .rows() == 0)
      throw StoreError("unknown experiment '" + experiment + "' in " + where());
  }

  std::string lease_lost(const Lease& lease, const std::string& what) {
    Result r = conn.query("SELECT version, owner FROM members WHERE experiment = $1 AND id = $2",
                          Params::of(lease.experiment, lease.member), what);
    if (r.rows() == 0) return store_codec::lease_lost_text(lease, what, std::nullopt, "");
    return store_codec::lease_lost_text(lease, what, r.i64(0, 0), r.text(0, 1));
  }

  // Inside a transaction: the events, stamped with the store's time `t`; `worker` stands
  // in for an event that names none.
  void insert_events(const std::string& experiment, double t, const std::vector<Event>& events,
                     const std::string& worker, const std::string& what) {
    constexpr std::size_t kBatch = 1000;
    for (std::size_t first = 0; first < events.size(); first += kBatch) {
      const std::size_t last = std::min(events.size(), first + kBatch);
      std::string sql = std::string("INSERT INTO events(experiment, time, ") + store_codec::kEventColumns + ") VALUES ";
      Params p;
      p.add(experiment).add(t);
      int n = 2;
      for (std::size_t i = first; i < last; ++i) {
        const auto values = store_codec::event_values(events[i], worker);
        constexpr int k = std::tuple_size_v<decltype(values)>;
        sql += (i == first ? "($1, $2, " : ", ($1, $2, ") + store_codec::placeholders(k, n + 1) + ")";
        n += k;
        p.add(values);
      }
      conn.query_once(sql, p, what);
    }
  }

  std::string new_token() {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    char buf[40];
    std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(rng()),
                  static_cast<unsigned long long>(rng()));
    return buf;
  }
};

PostgresStore::PostgresStore(const std::string& uri) : PostgresStore(uri, Options{}) {}

PostgresStore::PostgresStore(const std::string& uri, Options options)
    : impl_(std::make_unique<Impl>(pg::parse_uri(uri, std::move(options)))) {
  impl_->checkpoints.open();
  pg::open_schema(impl_->conn, impl_->target.options.schema);
}

PostgresStore::~PostgresStore() { CheckpointDir::wait_for_removals(); }

const std::string& PostgresStore::uri() const { return impl_->target.name; }
const PostgresStore::Options& PostgresStore::options() const { return impl_->target.options; }

void PostgresStore::create_experiment(const ExperimentInfo& info, const std::vector<MemberState>& members) {
  Impl& d = *impl_;
  std::set<int> ids;
  for (const auto& m : members)
    if (!ids.insert(m.id).second)
      throw StoreError("experiment '" + info.name + "': member id " + std::to_string(m.id) + " given twice");
  const int population = info.population != 0 ? info.population : static_cast<int>(members.size());
  d.conn.run("creating an experiment", Connection::Tx::write, [&] {
    Result e = d.conn.query("SELECT config, origin, population FROM experiments WHERE name = $1", Params::of(info.name),
                            "creating an experiment");
    if (e.rows() > 0) {
      // An earlier attempt whose COMMIT reply was lost: it is there, as we made it.
      if (d.conn.after_lost_connection() && e.text(0, 0) == info.config && e.text(0, 1) == info.origin &&
          e.i64(0, 2) == population)
        return 0;
      throw StoreError("experiment '" + info.name + "' already exists in " + d.where());
    }
    const double created = info.created != 0 ? info.created : d.now_sql();
    Result ins =
        d.conn.query(std::string("INSERT INTO experiments(") + store_codec::kExperimentColumns +
                         ") VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING",
                     Params::of(store_codec::experiment_values(info, population, created)), "creating an experiment");
    if (ins.affected() == 0) throw StoreError("experiment '" + info.name + "' already exists in " + d.where());
    constexpr std::size_t kBatch = 500;
    for (std::size_t first = 0; first < members.size(); first += kBatch) {
      const std::size_t last = std::min(members.size(), first + kBatch);
      std::string sql = std::string("INSERT INTO members(experiment, ") + store_codec::kNewMemberColumns + ") VALUES ";
      Params p;
      p.add(info.name);
      int n = 1;
      for (std::size_t i = first; i < last; ++i) {
        const auto values = store_codec::new_member_values(members[i]);
        constexpr int k = std::tuple_size_v<decltype(values)>;
        sql += (i == first ? "($1, " : ", ($1, ") + store_codec::placeholders(k, n + 1) + ")";
        n += k;
        p.add(values);
      }
      d.conn.query_once(sql, p, "creating an experiment");
    }
    return 0;
  });
}

std::optional<ExperimentInfo> PostgresStore::experiment(const std::string& name) {
  Impl& d = *impl_;
  return d.conn.run("reading an experiment", Connection::Tx::none, [&]() -> std::optional<ExperimentInfo> {
    Result r =
        d.conn.query(std::string("SELECT ") + store_codec::kExperimentColumns + " FROM experiments WHERE name = $1",
                     Params::of(name), "reading an experiment");
    if (r.rows() == 0) return std::nullopt;
    return store_codec::experiment_from_row(r.row(0));
  });
}

std::vector<std::string> PostgresStore::experiments() {
  Impl& d = *impl_;
  return d.conn.run("listing experiments", Connection::Tx::none, [&] {
    Result r =
        d.conn.query("SELECT name FROM experiments ORDER BY name COLLATE \"C\"", Params(), "listing experiments");
    std::vector<std::string> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(r.text(i, 0));
    return out;
  });
}

std::optional<Leased> PostgresStore::lease(const std::string& experiment, const std::string& worker,
                                           double lease_seconds) {
  Impl& d = *impl_;
  return d.conn.run("leasing a member", Connection::Tx::none, [&]() -> std::optional<Leased> {
    Result e =
        d.conn.query("SELECT finished FROM experiments WHERE name = $1", Params::of(experiment), "leasing a member");
    if (e.rows() == 0) throw StoreError("unknown experiment '" + experiment + "' in " + d.where());
    if (e.boolean(0, 0)) return std::nullopt;
    // One statement: pick (skipping rows another transaction is taking right now) and take.
    Result r = d.conn.query(
        "WITH pick AS (SELECT id FROM members WHERE experiment = $1 AND NOT done AND NOT failed AND "
        "(owner = '' OR owner = $2 OR lease_expires < " PBT_PG_NOW
        ") ORDER BY step ASC, (last_owner = $2) DESC, id ASC LIMIT 1 FOR UPDATE SKIP LOCKED) "
        "UPDATE members m SET owner = $2, last_owner = $2, version = m.version + 1, "
        "lease_expires = " PBT_PG_NOW " + $3 FROM pick WHERE m.experiment = $1 AND m.id = pick.id RETURNING " +
            member_columns_m(),
        Params::of(experiment, worker, lease_seconds), "leasing a member");
    if (r.rows() == 0) return std::nullopt;
    MemberState m = store_codec::member_from_row(r.row(0), d.where(), experiment);
    return Leased{Lease{experiment, m.id, worker, m.version}, m};
  });
}

void PostgresStore::heartbeat(const Lease& lease, double lease_seconds) {
  Impl& d = *impl_;
  d.conn.run("extending a lease", Connection::Tx::none, [&] {
    Result r = d.conn.query("UPDATE members SET lease_expires = " PBT_PG_NOW
                            " + $1 WHERE experiment = $2 AND id = $3 AND version = $4 AND owner = $5",
                            Params::of(lease_seconds, lease.experiment, lease.member, lease.version, lease.worker),
                            "extending a lease");
    if (r.affected() == 0) throw LeaseLost(d.lease_lost(lease, "heartbeat"));
    return 0;
  });
}

void PostgresStore::publish(Lease& lease, const Publication& pub) {
  Impl& d = *impl_;
  const std::string new_checkpoint = store_codec::publication_checkpoint_id(pub);
  // checkpoint_dir: the file first (a temp file, fsynced), then the transaction puts it in
  // place under its id and publishes the id. A checkpoint staged by stage_checkpoint() is that file already.
  std::shared_ptr<StagedCheckpoint> staged = pub.checkpoint;
  if (d.checkpoints.in_files() && !new_checkpoint.empty() && (!staged || staged->temp_file().empty()))
    staged = d.checkpoints.stage_bytes(store_codec::publication_bytes(pub));
  const auto published = store_codec::published_values(pub);
  static const std::string kUpdate =
      "UPDATE members SET checkpoint = $1, publish_token = $2, failures = 0, last_error = '', "
      "version = version + 1, " +
      store_codec::assignments(store_codec::kPublishedColumns, 5) + " WHERE experiment = $3 AND id = $4";
  // Left in the member's row by this publish: after a lost COMMIT reply, finding it there
  // (at version + 1, still ours) says the publish went through.
  const std::string token = d.new_token();
  std::vector<std::string> unlink;
  std::int64_t version = 0;
  try {
    version = d.conn.run("publishing", Connection::Tx::write, [&]() -> std::int64_t {
      unlink.clear();
      Result r = d.conn.query("SELECT version, owner, checkpoint, publish_token, " PBT_PG_NOW
                              " FROM members WHERE experiment = $1 AND id = $2 FOR UPDATE",
                              Params::of(lease.experiment, lease.member), "publishing");
      if (r.rows() > 0 && r.i64(0, 0) == lease.version + 1 && r.text(0, 1) == lease.worker && r.text(0, 3) == token)
        return lease.version + 1;
      if (r.rows() == 0 || r.i64(0, 0) != lease.version || r.text(0, 1) != lease.worker)
        throw LeaseLost(d.lease_lost(lease, "publish"));
      const std::string old_checkpoint = r.text(0, 2);
      const double t = r.real(0, 4);
      const std::string checkpoint = new_checkpoint.empty() ? old_checkpoint : new_checkpoint;
      const bool drop_old = !old_checkpoint.empty() && old_checkpoint != checkpoint;
      // Lock the checkpoint rows involved, in id order (no deadlock between two publishes):
      // the new one so that nobody deletes it before our member refers to it, the old one
      // so that nobody starts referring to it while we decide whether it goes.
      std::vector<std::string> order;
      if (!new_checkpoint.empty()) order.push_back(new_checkpoint);
      if (drop_old) order.push_back(old_checkpoint);
      std::sort(order.begin(), order.end());
      for (const auto& id : order) {
        if (id == new_checkpoint)
          d.checkpoints.hold(id, d.checkpoints.in_files() ? staged.get() : nullptr, store_codec::publication_bytes(pub),
                             t);
        else d.checkpoints.lock(id);
      }
      d.conn.query(kUpdate, Params::of(checkpoint, token, lease.experiment, lease.member, published), "publishing");
      constexpr std::size_t kBatch = 1000;
      for (std::size_t first = 0; first < pub.scores.size(); first += kBatch) {
        const std::size_t last = std::min(pub.scores.size(), first + kBatch);
        std::string sql = std::string("INSERT INTO scores(experiment, ") + store_codec::kScoreColumns + ") VALUES ";
        Params p;
        p.add(lease.experiment);
        int n = 1;
        for (std::size_t i = first; i < last; ++i) {
          const auto values = store_codec::score_values(pub.scores[i]);
          constexpr int k = std::tuple_size_v<decltype(values)>;
          sql += (i == first ? "($1, " : ", ($1, ") + store_codec::placeholders(k, n + 1) + ")";
          n += k;
          p.add(values);
        }
        d.conn.query_once(sql, p, "publishing");
      }
      d.insert_events(lease.experiment, t, pub.events, lease.worker, "publishing");
      if (drop_old && d.checkpoints.drop_if_unreferenced(old_checkpoint)) unlink.push_back(old_checkpoint);
      return lease.version + 1;
    });
  } catch (...) {
    // Nothing was published: the file written for it goes again, unless a row refers to it.
    if (!new_checkpoint.empty()) d.checkpoints.remove_file(new_checkpoint);
    throw;
  }
  lease.version = version;
  if (staged) CheckpointDir::release_temp(*staged);
  // After the commit: the files of checkpoints that went (best effort; collect_garbage
  // sweeps what a crash leaves behind).
  for (const auto& id : unlink) d.checkpoints.remove_file(id);
}

void PostgresStore::release(const Lease& lease) {
  Impl& d = *impl_;
  d.conn.run("releasing a lease", Connection::Tx::none, [&] {
    d.conn.query(
        "UPDATE members SET owner = '', lease_expires = 0 WHERE experiment = $1 AND id = $2 AND version = $3 "
        "AND owner = $4",
        Params::of(lease.experiment, lease.member, lease.version, lease.worker), "releasing a lease");
    return 0;
  });
}

bool PostgresStore::fail(const Lease& lease, const std::string& error, int max_failures) {
  Impl& d = *impl_;
  const std::string token = d.new_token();  // as in publish: a lost COMMIT reply is recognised
  return d.conn.run("recording a failed interval", Connection::Tx::write, [&] {
    Result r = d.conn.query(
        "SELECT version, owner, publish_token, failed FROM members WHERE experiment = $1 AND id = $2 FOR UPDATE",
        Params::of(lease.experiment, lease.member), "recording a failed interval");
    if (r.rows() > 0 && r.i64(0, 0) == lease.version + 1 && r.text(0, 1).empty() && r.text(0, 2) == token)
      return r.boolean(0, 3);
    if (r.rows() == 0 || r.i64(0, 0) != lease.version || r.text(0, 1) != lease.worker)
      throw LeaseLost(d.lease_lost(lease, "recording a failure"));
    Result u = d.conn.query(
        "UPDATE members SET failures = failures + 1, last_error = $1, failed = (failures + 1 >= $2), "
        "owner = '', lease_expires = 0, version = version + 1, publish_token = $3 "
        "WHERE experiment = $4 AND id = $5 RETURNING failed",
        Params::of(error, max_failures, token, lease.experiment, lease.member), "recording a failed interval");
    return u.rows() > 0 && u.boolean(0, 0);
  });
}

void PostgresStore::decide(const std::string& experiment, const std::vector<Decision>& decisions) {
  if (decisions.empty()) return;
  Impl& d = *impl_;
  store_codec::check_decisions(d.where(), experiment, decisions);
  std::string ids = "{";
  for (const auto& dec : decisions) ids += (ids.size() > 1 ? "," : "") + std::to_string(dec.member);
  ids += "}";
  static const std::string kUpdate =
      "UPDATE members SET checkpoint = $1, publish_token = $2, owner = '', lease_expires = 0, "
      "version = version + 1, " +
      store_codec::assignments(store_codec::kDecidedColumns, 5) + " WHERE experiment = $3 AND id = $4";
  // Left in every decided member's row: after a lost COMMIT reply, finding it in all of them
  // says the decisions went through (as in publish).
  const std::string token = d.new_token();
  std::vector<std::string> unlink, committed_unlink;
  d.conn.run("applying decisions", Connection::Tx::write, [&] {
    unlink.clear();
    // The members' rows, locked in id order (two deciding workers never deadlock), and read
    // under the lock: every check before any change.
    Result r = d.conn.query(
        "SELECT id, step, last_ready_step, failed, checkpoint, publish_token FROM members "
        "WHERE experiment = $1 AND id = ANY($2::int[]) ORDER BY id FOR UPDATE",
        Params::of(experiment, ids), "applying decisions");
    std::map<int, int> row_of;  // member id -> result row
    bool ours = r.rows() == static_cast<int>(decisions.size());
    for (int i = 0; i < r.rows(); ++i) {
      row_of[static_cast<int>(r.i64(i, 0))] = i;
      ours = ours && r.text(i, 5) == token;
    }
    if (ours) {  // an earlier attempt committed
      unlink = committed_unlink;
      return 0;
    }
    if (r.rows() < static_cast<int>(decisions.size())) d.require_experiment(experiment);
    std::vector<std::string> checkpoints;  // each member's checkpoint after its decision
    std::set<std::string> taken, dropped;  // checkpoints members start / stop referring to
    for (const auto& dec : decisions) {
      auto it = row_of.find(dec.member);
      if (it == row_of.end()) throw LeaseLost(store_codec::stale_decision_text(d.where(), experiment, dec, nullptr));
      const int i = it->second;
      MemberState now;
      now.step = r.i64(i, 1);
      now.last_ready_step = r.i64(i, 2);
      now.failed = r.boolean(i, 3);
      if (now.failed || now.step != dec.step || now.last_ready_step != dec.last_ready_step)
        throw LeaseLost(store_codec::stale_decision_text(d.where(), experiment, dec, &now));
      const std::string own = r.text(i, 4);
      if (!dec.checkpoint.empty() && dec.checkpoint != own) {
        taken.insert(dec.checkpoint);
        if (!own.empty()) dropped.insert(own);
      }
      checkpoints.push_back(dec.checkpoint.empty() ? own : dec.checkpoint);
    }
    // Lock the checkpoint rows involved, in id order (as publish does): those taken so that
    // nobody deletes them before our members refer to them, those dropped so that nobody
    // starts referring to them while we decide whether they go.
    std::set<std::string> involved = taken;
    involved.insert(dropped.begin(), dropped.end());
    for (const auto& id : involved) {
      const bool there = dropped.count(id) ? d.checkpoints.lock(id) : d.checkpoints.share(id);
      if (!there && taken.count(id))
        for (const auto& dec : decisions)
          if (dec.checkpoint == id) throw StoreError(store_codec::unknown_checkpoint_text(d.where(), experiment, dec));
    }
    const double t = d.now_sql();
    std::vector<Event> events;
    for (std::size_t i = 0; i < decisions.size(); ++i) {
      const Decision& dec = decisions[i];
      d.conn.query(kUpdate, Params::of(checkpoints[i], token, experiment, dec.member, store_codec::decided_values(dec)),
                   "applying decisions");
      events.insert(events.end(), dec.events.begin(), dec.events.end());
    }
    d.insert_events(experiment, t, events, "", "applying decisions");
    for (const auto& id : dropped)
      if (d.checkpoints.drop_if_unreferenced(id)) unlink.push_back(id);
    committed_unlink = unlink;
    return 0;
  });
  // After the commit: the files of checkpoints that went (best effort, as after a publish).
  for (const auto& id : unlink) d.checkpoints.remove_file(id);
}

void PostgresStore::finish(const std::string& experiment) {
  Impl& d = *impl_;
  d.conn.run("finishing an experiment", Connection::Tx::none, [&] {
    Result r = d.conn.query("UPDATE experiments SET finished = true WHERE name = $1", Params::of(experiment),
                            "finishing an experiment");
    if (r.affected() == 0) throw StoreError("unknown experiment '" + experiment + "' in " + d.where());
    return 0;
  });
}

std::vector<MemberState> PostgresStore::population(const std::string& experiment) {
  Impl& d = *impl_;
  return d.conn.run("reading the population", Connection::Tx::none, [&] {
    // Every worker reads the whole population at every ready step: at 1,000 members even
    // the lease columns of every row cost over a millisecond. Each row carries the id of
    // the transaction that last wrote it (a trigger sets it), so a read fetches only rows
    // written by transactions at or above the previous read's snapshot xmin. Transactions
    // below that xmin had all finished when the previous snapshot was taken, so their writes
    // are already in the cache, whatever order they committed in. One statement: the rows
    // and the xmin of the very snapshot that read them.
    auto& cache = d.population_cache[experiment];
    Result r = d.conn.query("SELECT " + member_columns_m() +
                                ", s.xmin::text FROM (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) s "
                                "LEFT JOIN members m ON m.experiment = $1 AND m.changed >= $2::xid8",
                            Params::of(experiment, cache.xmin), "reading the population");
    std::vector<MemberState> changed;  // parsed in full before the cache is touched
    std::string xmin = cache.xmin;
    for (int i = 0; i < r.rows(); ++i) {
      xmin = r.text(i, 16);
      if (r.null(i, 0)) continue;  // nothing changed: the one row is the snapshot's xmin alone
      changed.push_back(store_codec::member_from_row(r.row(i), d.where(), experiment));
    }
    if (cache.members.empty() && changed.empty()) d.require_experiment(experiment);
    for (auto& m : changed) cache.members[m.id] = std::move(m);
    cache.xmin = xmin;
    std::vector<MemberState> out;
    out.reserve(cache.members.size());
    for (const auto& [id, m] : cache.members) out.push_back(m);
    return out;
  });
}

std::string PostgresStore::checkpoint(const std::string& id) { return impl_->checkpoints.read(id); }

std::unique_ptr<CheckpointStager> PostgresStore::stage_checkpoint() {
  auto stager = impl_->checkpoints.stage();
  return stager ? std::move(stager) : Store::stage_checkpoint();
}

std::unique_ptr<CheckpointSource> PostgresStore::open_checkpoint(const std::string& id) {
  auto source = impl_->checkpoints.open_file(id);
  return source ? std::move(source) : Store::open_checkpoint(id);
}

std::string PostgresStore::scratch_dir() { return impl_->checkpoints.scratch_dir(); }

std::vector<Event> PostgresStore::events(const std::string& experiment) { return events_since(experiment, kAllSteps); }

std::vector<Event> PostgresStore::events_since(const std::string& experiment, std::int64_t from_step) {
  Impl& d = *impl_;
  return d.conn.run("reading events", Connection::Tx::none, [&] {
    Result r = d.conn.query(std::string("SELECT ") + store_codec::kEventColumns +
                                ", time FROM events WHERE experiment = $1 AND step >= $2 ORDER BY seq",
                            Params::of(experiment, from_step), "reading events");
    if (r.rows() == 0) d.require_experiment(experiment);
    std::vector<Event> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(store_codec::event_from_row(r.row(i), d.where(), experiment));
    return out;
  });
}

std::vector<ScorePoint> PostgresStore::scores(const std::string& experiment) {
  return scores_since(experiment, kAllSteps);
}

std::vector<ScorePoint> PostgresStore::scores_since(const std::string& experiment, std::int64_t from_step) {
  Impl& d = *impl_;
  return d.conn.run("reading scores", Connection::Tx::none, [&] {
    Result r = d.conn.query(std::string("SELECT ") + store_codec::kScoreColumns +
                                " FROM scores WHERE experiment = $1 AND step >= $2 ORDER BY member, step, seq",
                            Params::of(experiment, from_step), "reading scores");
    if (r.rows() == 0) d.require_experiment(experiment);
    std::vector<ScorePoint> out;
    out.reserve(static_cast<std::size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i) out.push_back(store_codec::score_from_row(r.row(i)));
    return out;
  });
}

std::size_t PostgresStore::collect_garbage() { return impl_->checkpoints.collect_garbage(); }

double PostgresStore::now() {
  Impl& d = *impl_;
  return d.conn.run("reading the clock", Connection::Tx::none, [&] { return d.now_sql(); });
}

int PostgresStore::backend_pid() {
  Impl& d = *impl_;
  return d.conn.run("reading the backend pid", Connection::Tx::none, [&] { return d.conn.backend_pid(); });
}

std::size_t PostgresStore::connections() const { return impl_->conn.connections(); }

void PostgresStore::lose_next_commit_reply() { impl_->conn.lose_next_commit_reply(); }

}  // namespace pbt
