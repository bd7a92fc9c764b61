#pragma once
// Checkpoint bytes as files in one directory, each named by its id (the hex SHA-256 of its
// bytes), so that a database keeps only references to them. Any backend can keep its
// checkpoints here; it decides when a file may go (no member refers to it) and serializes
// that decision with publishes that bring the same checkpoint back.
//
// Checkpoints stream in and out through a buffer of at most 1 MiB, whatever their size:
// stage() writes a temp file in the directory (named after its owner process, so that a
// crash's leftovers can be told from a live writer's), adopt() links it into place under
// its id, open() reads a file back and checks it against its id as it goes.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pbt/store.hpp"

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

  // A sink for one checkpoint: bytes stay in memory while there are at most `inline_max` of
  // them, past that they go to a temp file here (the directory is created when missing).
  // Its finish() fsyncs the file and hands it over to the StagedCheckpoint (which removes it
  // unless adopt() put it in place first).
  std::unique_ptr<CheckpointStager> stage(std::size_t inline_max) const;
  // Makes the staged checkpoint's file exist under its id (a hard link to the temp file, or a
  // rename where the filesystem has no links; read-only), fsyncing the directory; nothing
  // when a file of that size is there already. The temp file stays until the staged
  // checkpoint is released (release_temp or its destructor), so that a transaction retried
  // after a clean-up can adopt it again. Throws StoreError.
  void adopt(const StagedCheckpoint& staged) const;
  // The staged checkpoint's temp file, once adopted and committed, goes.
  static void release_temp(const StagedCheckpoint& staged);

  // Checkpoint `id` streamed from its file, verified against its id as it is read (when
  // the last byte is read, or by finish()); `size`: what the store expects (a file of
  // another size is truncated or damaged). Throws CheckpointError.
  std::unique_ptr<CheckpointSource> open(const std::string& id, std::optional<std::uint64_t> size = {}) const;
  // Whether checkpoint `id` has a file here (of `size` bytes, when given).
  bool has(const std::string& id, std::optional<std::uint64_t> size = {}) const;

  // Writes the bytes under their id (staged in a temp file, then adopted). Skipped when a
  // file of that size is already there (reads verify the hash). Throws StoreError.
  void write(const std::string& id, const std::string& bytes) const;
  // The bytes of checkpoint `id`, verified against it (and against `size`, when given);
  // throws CheckpointError.
  std::string read(const std::string& id, std::optional<std::uint64_t> size = {}) const;
  // Deletes the file of checkpoint `id`; false when there was none. Its name goes at once,
  // its blocks on a thread of their own (see wait_for_removals).
  bool remove(const std::string& id) const;
  // Waits until the blocks of every file this process removed are freed (a store does it
  // when it closes, so a clean exit leaves no temp file behind).
  static void wait_for_removals();

  // The ids of the checkpoints held here (for garbage collection).
  std::vector<std::string> ids() const;
  // Deletes temp files left by a crash: at once when their owner (named in the file's name)
  // is a process of this host that is gone, after `age` when it is of another host (or the
  // name names none). Returns how many went.
  std::size_t remove_temp_files(std::chrono::seconds age) const;

 private:
  std::string path_;
  std::string owner_;
};

// True when `id` has the form of a checkpoint id (64 lowercase hex digits).
bool valid_checkpoint_id(const std::string& id);

}  // namespace pbt
