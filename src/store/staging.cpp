// Streamed checkpoints for stores that keep them in memory or in rows (the defaults of
// Store::stage_checkpoint and Store::open_checkpoint), and StagedCheckpoint.
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "pbt/store.hpp"
#include "store/hash.hpp"

namespace pbt {

StagedCheckpoint::StagedCheckpoint(std::string id, std::uint64_t size, std::string bytes, std::string temp_file)
    : id_(std::move(id)), size_(size), bytes_(std::move(bytes)), temp_file_(std::move(temp_file)) {}

StagedCheckpoint::~StagedCheckpoint() {
  if (!temp_file_.empty()) ::unlink(temp_file_.c_str());  // gone already once published (renamed)
}

namespace {

class MemoryStager : public CheckpointStager {
 public:
  void write(const char* data, std::size_t n) override {
    checkpoint_in_memory("a checkpoint being written", bytes_.size() + n, [&] { bytes_.append(data, n); });
  }
  std::shared_ptr<StagedCheckpoint> finish() override {
    const std::uint64_t size = bytes_.size();
    std::string id = checkpoint_id(bytes_);
    return std::make_shared<StagedCheckpoint>(std::move(id), size, std::move(bytes_));
  }

 private:
  std::string bytes_;
};

// Bytes already verified by Store::checkpoint.
class MemorySource : public CheckpointSource {
 public:
  explicit MemorySource(std::string bytes) : bytes_(std::move(bytes)) {}
  std::uint64_t size() const override { return bytes_.size(); }
  std::size_t read(char* out, std::size_t n) override {
    n = std::min(n, bytes_.size() - pos_);
    std::memcpy(out, bytes_.data() + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  std::string bytes_;
  std::size_t pos_ = 0;
};

}  // namespace

std::unique_ptr<CheckpointStager> Store::stage_checkpoint() { return std::make_unique<MemoryStager>(); }

std::unique_ptr<CheckpointSource> Store::open_checkpoint(const std::string& id) {
  return std::make_unique<MemorySource>(checkpoint(id));
}

}  // namespace pbt
