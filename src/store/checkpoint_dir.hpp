#pragma once
// Checkpoint bytes as files in one directory, each named by its id (the hex SHA-256 of its
// bytes), so that a database keeps only references to them. Any backend can keep its
// checkpoints here; it decides when a file may go (no member refers to it) and serializes
// that decision with publishes that bring the same checkpoint back.
#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace pbt {

class CheckpointDir {
 public:
  // `owner` names the store for messages ("PostgreSQL store 'postgresql://...'").
  CheckpointDir(std::string path, std::string owner);

  // Creates the directory when it is missing; throws StoreError when it cannot.
  void create() const;

  const std::string& path() const { return path_; }
  std::string file_of(const std::string& id) const;
  // "checkpoint directory 'PATH' of OWNER", for messages.
  std::string text() const;

  // Writes the bytes under their id atomically (a temp name, fsync, rename, fsync of the
  // directory). Skipped when a file of that size is already there (reads verify the hash).
  // Throws StoreError.
  void write(const std::string& id, const std::string& bytes) const;
  // The bytes of checkpoint `id`, verified against it; throws CheckpointError.
  std::string read(const std::string& id) const;
  // Deletes the file of checkpoint `id`; false when there was none.
  bool remove(const std::string& id) const;

  // The ids of the checkpoints held here (for garbage collection).
  std::vector<std::string> ids() const;
  // Deletes temp files older than `age` (left by a crash between writing and renaming).
  void remove_temp_files(std::chrono::seconds age) const;

 private:
  std::string path_;
  std::string owner_;
};

// True when `id` has the form of a checkpoint id (64 lowercase hex digits).
bool valid_checkpoint_id(const std::string& id);

}  // namespace pbt
