#pragma once
// The PostgreSQL store's checkpoints: rows of the checkpoints table holding the bytes, or
// (checkpoint_dir mode) holding none, the bytes in a CheckpointDir on a shared filesystem.
// Rows are locked while a publish refers to them and files are changed under an advisory
// lock per checkpoint, so deleting an unreferenced checkpoint never races with a publish
// that starts referring to it.
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "store/checkpoint_dir.hpp"
#include "store/postgres/connection.hpp"

namespace pbt::pg {

class Checkpoints {
 public:
  // `dir`: the checkpoint directory; empty when the bytes are kept in the database.
  Checkpoints(Connection& conn, const std::string& dir);

  // Creates the checkpoint directory when it is missing (checkpoint_dir mode).
  void open() const;
  bool in_files() const { return files_.has_value(); }

  // checkpoint_dir mode: a sink that streams every checkpoint to a temp file there (null
  // without a checkpoint directory).
  std::unique_ptr<CheckpointStager> stage() const;
  // Before a publish's transaction (checkpoint_dir mode): bytes given in memory, staged as a file.
  std::shared_ptr<StagedCheckpoint> stage_bytes(const std::string& bytes) const;
  // Inside a publish: makes the row of the new checkpoint exist and holds a lock on it
  // until commit, and (checkpoint_dir mode) its file, adopted from the staged temp file
  // under the checkpoint's advisory lock (again if a clean-up removed it); `t` is the
  // store's clock. `staged` may be null when the bytes are kept in the database.
  void hold(const std::string& id, const StagedCheckpoint* staged, const std::string& bytes, double t);
  // Inside a publish or a decision: locks the row of a checkpoint a member stops referring
  // to (FOR UPDATE); false when there is no such row.
  bool lock(const std::string& id);
  // Inside a decision: holds the row of a checkpoint that a member starts referring to (it
  // is there already: the donor's) until commit, so that nobody deletes it meanwhile;
  // false when the store has no such checkpoint (or, in checkpoint_dir mode, not its file).
  bool share(const std::string& id);
  // Inside a publish or a decision: deletes that row when no member refers to it any more; true when its
  // file is to go after the commit (remove_file).
  bool drop_if_unreferenced(const std::string& id);
  // After a transaction (own, best effort): deletes the file of a checkpoint that has no row.
  bool remove_file(const std::string& id);

  // The bytes, verified against the id; throws CheckpointError.
  std::string read(const std::string& id);
  // The checkpoint streamed from its file (checkpoint_dir mode), or null when it is kept in
  // the database; throws CheckpointError when there is no such checkpoint.
  std::unique_ptr<CheckpointSource> open_file(const std::string& id);
  // checkpoint_dir mode: <dir>/scratch, created when missing; "" otherwise.
  std::string scratch_dir() const;
  // Deletes the checkpoints no member refers to, their files, and files no row refers to.
  std::size_t collect_garbage();

 private:
  void lock_file(const std::string& id);
  std::size_t sweep_files(const std::vector<std::string>& done);

  Connection& conn_;
  std::optional<CheckpointDir> files_;
};

}  // namespace pbt::pg
