// The PostgreSQL store's checkpoints (see checkpoints.hpp).
#include "store/postgres/checkpoints.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <set>

#include "pbt/checkpoint_io.hpp"
#include "pbt/error.hpp"
#include "store/codec.hpp"

namespace pbt::pg {

namespace {

// Advisory lock class (two-int form) for one checkpoint file: 'pbtc', its id's first 32
// bits as the second key.
constexpr std::int32_t kCheckpointLockClass = 0x70627463;

std::string id_array(const std::vector<std::string>& ids) {
  std::string out = "{";
  for (std::size_t i = 0; i < ids.size(); ++i) out += (i ? "," : "") + ids[i];
  return out + "}";
}

}  // namespace

Checkpoints::Checkpoints(Connection& conn, const std::string& dir) : conn_(conn) {
  if (!dir.empty()) files_.emplace(dir, conn.where());
}

void Checkpoints::open() const {
  if (files_) files_->create();
}

std::unique_ptr<CheckpointStager> Checkpoints::stage() const { return files_ ? files_->stage(0) : nullptr; }

std::shared_ptr<StagedCheckpoint> Checkpoints::stage_bytes(const std::string& bytes) const {
  auto stager = stage();
  stager->write(bytes.data(), bytes.size());
  return stager->finish();
}

std::string Checkpoints::scratch_dir() const {
  if (!files_) return "";
  const std::string dir = (std::filesystem::path(files_->path()) / "scratch").string();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (!std::filesystem::is_directory(dir))
    throw StoreError(conn_.where() + ": cannot create the scratch directory '" + dir + "'" +
                     (ec ? ": " + ec.message() : ""));
  return dir;
}

// Serializes work on one checkpoint's file across processes and hosts, until commit.
void Checkpoints::lock_file(const std::string& id) {
  const auto key = static_cast<std::int32_t>(static_cast<std::uint32_t>(std::stoul(id.substr(0, 8), nullptr, 16)));
  conn_.query("SELECT pg_advisory_xact_lock($1::int4, $2::int4)",
              Params::of(kCheckpointLockClass, static_cast<int>(key)), "locking a checkpoint file");
}

// Under the file's lock, so that a publish that is bringing the checkpoint back (and
// rewrites the file under the same lock) wins.
bool Checkpoints::remove_file(const std::string& id) {
  if (!files_) return false;
  bool removed = false;
  conn_.try_once("removing a checkpoint file", [&] {
    lock_file(id);
    if (conn_.query("SELECT 1 FROM checkpoints WHERE id = $1", Params::of(id), "removing a checkpoint file").rows() ==
        0)
      removed = files_->remove(id);
  });
  return removed;
}

void Checkpoints::hold(const std::string& id, const StagedCheckpoint* staged, const std::string& bytes, double t) {
  const std::uint64_t size = staged ? staged->size() : bytes.size();
  for (int i = 0; i < 20; ++i) {
    Result s =
        conn_.query("SELECT bytes IS NULL FROM checkpoints WHERE id = $1 FOR SHARE", Params::of(id), "publishing");
    bool held = s.rows() > 0;
    bool in_dir = held && s.boolean(0, 0);
    if (!held) {
      Params p;
      p.add(id);
      if (files_) p.null();
      else p.bytes(bytes);
      p.add(static_cast<std::int64_t>(size)).add(t);
      Result ins = conn_.query(
          "INSERT INTO checkpoints(id, bytes, size, created) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING "
          "RETURNING 1",
          p, "publishing");
      held = ins.rows() > 0;
      in_dir = files_.has_value();
    }
    if (!held) continue;  // it was being deleted, or inserted by someone else: look again
    if (files_ && in_dir) {
      lock_file(id);
      if (staged) files_->adopt(*staged);  // a no-op when the file is there
      else files_->write(id, bytes);
    }
    return;
  }
  throw Transient{"checkpoint " + id + " kept changing under a concurrent clean-up"};
}

bool Checkpoints::lock(const std::string& id) {
  return conn_.query("SELECT 1 FROM checkpoints WHERE id = $1 FOR UPDATE", Params::of(id), "publishing").rows() > 0;
}

bool Checkpoints::share(const std::string& id) {
  Result r = conn_.query("SELECT bytes IS NULL, size FROM checkpoints WHERE id = $1 FOR SHARE", Params::of(id),
                         "applying decisions");
  if (r.rows() == 0) return false;
  // A checkpoint in the directory is there only with its file (a member must be able to load it).
  return !r.boolean(0, 0) || !files_ || files_->has(id, static_cast<std::uint64_t>(r.i64(0, 1)));
}

bool Checkpoints::drop_if_unreferenced(const std::string& id) {
  Result del = conn_.query(
      "DELETE FROM checkpoints WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM members WHERE checkpoint = $1) "
      "RETURNING bytes IS NULL",
      Params::of(id), "publishing");
  return del.rows() > 0 && del.boolean(0, 0);
}

std::string Checkpoints::read(const std::string& id) {
  // 0: missing, 1: bytes here, 2: in the checkpoint directory.
  auto [where, bytes] = conn_.run("reading a checkpoint", Connection::Tx::none, [&]() -> std::pair<int, std::string> {
    Result r = conn_.query("SELECT bytes FROM checkpoints WHERE id = $1", Params::of(id), "reading a checkpoint", 1);
    if (r.rows() == 0) return {0, ""};
    if (r.null(0, 0)) return {2, ""};
    return {1, checkpoint_in_memory("checkpoint " + id + " in " + conn_.where(), r.length(0, 0),
                                    [&] { return r.text(0, 0); })};
  });
  if (where == 0) throw CheckpointError("checkpoint " + id + " is missing from " + conn_.where());
  if (where == 2) {
    if (!files_)
      throw CheckpointError("checkpoint " + id + " is kept in a checkpoint directory, but " + conn_.where() +
                            " was opened without checkpoint_dir=");
    return files_->read(id);
  }
  store_codec::verify_checkpoint(id, bytes, conn_.where());
  return std::move(bytes);
}

std::unique_ptr<CheckpointSource> Checkpoints::open_file(const std::string& id) {
  // 0: missing, 1: bytes here, 2: in the checkpoint directory.
  auto [where, size] = conn_.run("reading a checkpoint", Connection::Tx::none, [&]() -> std::pair<int, std::int64_t> {
    Result r = conn_.query("SELECT bytes IS NULL, size FROM checkpoints WHERE id = $1", Params::of(id),
                           "reading a checkpoint");
    if (r.rows() == 0) return {0, 0};
    return {r.boolean(0, 0) ? 2 : 1, r.i64(0, 1)};
  });
  if (where == 0) throw CheckpointError("checkpoint " + id + " is missing from " + conn_.where());
  if (where == 1) return nullptr;
  if (!files_)
    throw CheckpointError("checkpoint " + id + " is kept in a checkpoint directory, but " + conn_.where() +
                          " was opened without checkpoint_dir=");
  return files_->open(id, static_cast<std::uint64_t>(size));
}

std::size_t Checkpoints::collect_garbage() {
  std::vector<std::string> files;
  const std::size_t rows = conn_.run("collecting garbage", Connection::Tx::write, [&]() -> std::size_t {
    files.clear();
    // Lock the candidates first (skipping any a publish holds), then delete those that are
    // still unreferenced by a fresh look: a publish that committed a reference meanwhile wins.
    Result c = conn_.query(
        "SELECT id FROM checkpoints c WHERE NOT EXISTS (SELECT 1 FROM members m WHERE m.checkpoint = c.id) "
        "FOR UPDATE SKIP LOCKED",
        Params(), "collecting garbage");
    if (c.rows() == 0) return 0;
    std::vector<std::string> ids;
    for (int i = 0; i < c.rows(); ++i) ids.push_back(c.text(i, 0));
    Result del = conn_.query(
        "DELETE FROM checkpoints c WHERE c.id = ANY($1::text[]) AND NOT EXISTS "
        "(SELECT 1 FROM members m WHERE m.checkpoint = c.id) RETURNING c.id, c.bytes IS NULL",
        Params::of(id_array(ids)), "collecting garbage");
    for (int i = 0; i < del.rows(); ++i)
      if (del.boolean(i, 1)) files.push_back(del.text(i, 0));
    return static_cast<std::size_t>(del.rows());
  });
  if (!files_) return rows;
  for (const auto& id : files) remove_file(id);
  return rows + sweep_files(files);
}

// Files no row refers to (a crash between a publish's commit and its clean-up, or a
// publish that failed after writing its file), and temp files left by a crash; `done`
// were just handled. Returns how many went.
std::size_t Checkpoints::sweep_files(const std::vector<std::string>& done) {
  std::vector<std::string> candidates;
  for (auto& id : files_->ids())
    if (std::find(done.begin(), done.end(), id) == done.end()) candidates.push_back(std::move(id));
  files_->remove_temp_files(std::chrono::hours(1));
  if (candidates.empty()) return 0;
  std::set<std::string> known = conn_.run("collecting garbage", Connection::Tx::none, [&] {
    Result r = conn_.query("SELECT id FROM checkpoints WHERE id = ANY($1::text[])", Params::of(id_array(candidates)),
                           "collecting garbage");
    std::set<std::string> out;
    for (int i = 0; i < r.rows(); ++i) out.insert(r.text(i, 0));
    return out;
  });
  std::size_t swept = 0;
  for (const auto& id : candidates)
    if (!known.count(id) && remove_file(id)) ++swept;
  return swept;
}

}  // namespace pbt::pg
