// Checkpoint files in a directory (see checkpoint_dir.hpp).
#include "store/checkpoint_dir.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "pbt/checkpoint_io.hpp"
#include "pbt/error.hpp"
#include "core/process_owner.hpp"
#include "store/hash.hpp"

namespace pbt {

namespace fs = std::filesystem;

namespace {

// The most bytes any one stream here holds at once (a read buffer).
constexpr std::size_t kChunk = 1u << 20;
// Dirty bytes of a checkpoint being written after which the kernel is asked to start writing them back.
constexpr std::uint64_t kWriteback = 8u << 20;
constexpr const char* kTempPrefix = ".tmp-";

std::string errno_text() { return std::strerror(errno); }

// An fd closed on every way out.
struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  void reset(int f = -1) {
    if (fd >= 0) ::close(fd);
    fd = f;
  }
};

// Writes all n bytes; false (errno set) when the system refuses.
bool write_all(int fd, const char* data, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return false;
    data += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

// Up to n bytes at `offset` (pread, so that two readers of one fd do not share a position);
// -1 with errno on failure.
ssize_t read_some(int fd, char* out, std::size_t n, std::uint64_t offset) {
  for (;;) {
    const ssize_t r = ::pread(fd, out, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    return r;
  }
}

void fsync_dir(const std::string& dir) {
  Fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d.fd >= 0) ::fsync(d.fd);
}

// Hashes bytes [from, to) of fd into h, reading on a second thread a few MiB ahead of the
// hashing: from the page cache a read costs about a sixth of hashing the same bytes, and
// this way the two overlap (a GB hashes in ~0.7 s instead of ~0.85 s here). Returns "" or
// why the bytes could not be read.
std::string hash_range(int fd, std::uint64_t from, std::uint64_t to, Sha256& h) {
  constexpr std::uint64_t kSlots = 4;
  std::vector<std::string> ring(kSlots);
  std::vector<std::size_t> lengths(kSlots, 0);
  std::mutex mu;
  std::condition_variable cv;
  std::uint64_t filled = 0, hashed = 0;  // chunks read, chunks hashed
  bool failed = false, done = false;
  std::string error;
  const std::uint64_t chunks = to > from ? (to - from + kChunk - 1) / kChunk : 0;
  std::thread reader([&] {
    for (std::uint64_t i = 0; i < chunks; ++i) {
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return i - hashed < kSlots || done; });
        if (done) return;
      }
      std::string& slot = ring[i % kSlots];
      const std::uint64_t at = from + i * kChunk;
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, to - at));
      if (slot.size() < want) slot.resize(kChunk);
      std::size_t got = 0;
      while (got < want) {
        const ssize_t r = read_some(fd, slot.data() + got, want - got, at + got);
        if (r <= 0) {
          std::lock_guard<std::mutex> lock(mu);
          error = r < 0 ? errno_text() : "its file ended at byte " + std::to_string(at + got);
          failed = true;
          cv.notify_all();
          return;
        }
        got += static_cast<std::size_t>(r);
      }
      std::lock_guard<std::mutex> lock(mu);
      lengths[i % kSlots] = got;
      ++filled;
      cv.notify_all();
    }
  });
  for (std::uint64_t i = 0; i < chunks; ++i) {
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return filled > i || failed; });
      if (filled <= i) break;
    }
    h.update(ring[i % kSlots].data(), lengths[i % kSlots]);
    std::lock_guard<std::mutex> lock(mu);
    ++hashed;
    cv.notify_all();
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
    cv.notify_all();
  }
  reader.join();
  return error;
}

// A file that another process (an external trainer) is writing front to back, hashed while
// it grows: reads follow the writes from the page cache, polling at the end of what is
// written so far, and the disk's writeback is started as they go. When the writer is done,
// finish() reads the rest, so an adopted file needs no second pass: the hash no longer waits
// for the write (a GB: ~0.7 s of SHA-256 after a ~0.25 s write, now side by side).
class GrowingFile {
 public:
  explicit GrowingFile(std::string path) : path_(std::move(path)) {
    thread_ = std::thread([this] { follow(); });
  }
  ~GrowingFile() { stop(/*abandon=*/true); }
  GrowingFile(const GrowingFile&) = delete;
  GrowingFile& operator=(const GrowingFile&) = delete;

  const std::string& path() const { return path_; }
  // The writer is done. True when the file now at path() is the one that was read (same
  // inode), read whole (its size is the bytes hashed): hash, fd and size are then the file's.
  bool finish() {
    stop(/*abandon=*/false);
    if (!error_.empty() || fd.fd < 0) return false;
    struct stat read {
    }, now{};
    if (::fstat(fd.fd, &read) != 0 || ::stat(path_.c_str(), &now) != 0) return false;
    return read.st_ino == now.st_ino && read.st_dev == now.st_dev && static_cast<std::uint64_t>(now.st_size) == size;
  }

  Sha256 hash;
  Fd fd;
  std::uint64_t size = 0;

 private:
  void stop(bool abandon) {
    if (!thread_.joinable()) return;
    (abandon ? abandon_ : done_).store(true, std::memory_order_release);
    thread_.join();
  }
  void follow() {
    std::string chunk(kChunk, '\0');
    std::uint64_t flushed = 0;
    while (!abandon_.load(std::memory_order_acquire)) {
      // Read after looking at done_: once the writer is done, an empty read is the end.
      const bool done = done_.load(std::memory_order_acquire);
      if (fd.fd < 0) {
        fd.reset(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
        if (fd.fd < 0) {
          if (errno != ENOENT || done) return;  // finish() says no; adopt_file reports the file
          std::this_thread::sleep_for(std::chrono::microseconds(500));
          continue;
        }
      }
      const ssize_t r = read_some(fd.fd, chunk.data(), chunk.size(), size);
      if (r > 0) {
        hash.update(chunk.data(), static_cast<std::size_t>(r));
        size += static_cast<std::uint64_t>(r);
        if (size - flushed >= kWriteback) {
          ::sync_file_range(fd.fd, static_cast<off_t>(flushed), static_cast<off_t>(size - flushed),
                            SYNC_FILE_RANGE_WRITE);
          flushed = size;
        }
        continue;
      }
      if (r < 0) {
        error_ = errno_text();
        return;
      }
      if (done) return;
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
  }

  std::string path_;
  std::thread thread_;
  std::atomic<bool> done_{false}, abandon_{false};
  std::string error_;  // set by the thread, read after the join
};

// A new temp file's name: its owner (process_owner.hpp) and a random part.
std::string temp_name(const std::string& dir) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char rnd[17];
  std::snprintf(rnd, sizeof rnd, "%016llx", static_cast<unsigned long long>(rng()));
  return (fs::path(dir) / (std::string(kTempPrefix) + process_owner::own_name_tag() + "-" + rnd)).string();
}

// The background removals of this process (CheckpointDir::remove). Never destroyed: a
// detached removal may still finish while the process exits.
constexpr int kMaxBackgroundRemovals = 4;
struct Removals {
  std::mutex mu;
  std::condition_variable done;
  int pending = 0;
};
Removals& removals() {
  static Removals* r = new Removals;
  return *r;
}

std::string mismatch_text(const std::string& id, const std::string& where, const std::string& actual) {
  return "checkpoint " + id + " in the " + where + " does not match its hash (its bytes hash to " + actual + ")";
}

// ---------------------------------------------------------------- staging

class FileStager : public CheckpointStager {
 public:
  FileStager(CheckpointDir dir, std::size_t inline_max) : dir_(std::move(dir)), inline_max_(inline_max) {}
  ~FileStager() override {
    stop_hasher(/*abandon=*/true);
    fd_.reset();
    if (!temp_.empty()) ::unlink(temp_.c_str());
  }

  void write(const char* data, std::size_t n) override {
    if (finished_ || adopted_) throw Error("a staged checkpoint takes no more bytes after finish() or adopt_file()");
    if (n == 0) return;
    if (fd_.fd < 0 && size_ + n <= inline_max_) {
      hash_.update(data, n);
      size_ += n;
      checkpoint_in_memory("a checkpoint being written", size_, [&] { bytes_.append(data, n); });
      return;
    }
    if (fd_.fd < 0) {
      open_temp();
      const std::uint64_t hashed = size_;
      put(bytes_.data(), bytes_.size());
      std::string().swap(bytes_);
      start_hasher(hashed);
    }
    size_ += n;
    put(data, n);  // large writes go straight to the file
  }

  void expect_file(const std::string& path) override {
    if (size_ != 0 || fd_.fd >= 0 || finished_ || adopted_ || growing_)
      throw Error("a checkpoint file can only be expected before anything else is written (" + path + ")");
    growing_ = std::make_unique<GrowingFile>(path);
  }

  void adopt_file(const std::string& path) override {
    if (size_ != 0 || fd_.fd >= 0 || finished_ || adopted_)
      throw Error("a checkpoint file can only be adopted before anything else is written (" + path + ")");
    if (adopt_grown(path)) return;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw Error("cannot read the checkpoint file " + path + ": " + errno_text());
    if (!S_ISREG(st.st_mode)) throw Error("the checkpoint file " + path + " is not a regular file");
    if (static_cast<std::uint64_t>(st.st_size) <= inline_max_) {  // small: kept in memory
      CheckpointSink::adopt_file(path);
      adopted_ = true;
      return;
    }
    if (!move_in(path)) {
      CheckpointSink::adopt_file(path);  // another filesystem: a streamed copy, hashed on the way
      adopted_ = true;
      return;
    }
    // Renamed: the bytes are hashed in one read pass (no copy) and made durable here; the
    // disk writes back what the trainer wrote while we hash it.
    fd_.reset(::open(temp_.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd_.fd < 0) throw StoreError(dir_.text() + ": cannot open '" + temp_ + "': " + errno_text());
    ::sync_file_range(fd_.fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    struct stat now {};
    if (::fstat(fd_.fd, &now) != 0) throw StoreError(dir_.text() + ": cannot read '" + temp_ + "': " + errno_text());
    const std::string error = hash_range(fd_.fd, 0, static_cast<std::uint64_t>(now.st_size), hash_);
    if (!error.empty()) throw StoreError(dir_.text() + ": cannot read '" + temp_ + "': " + error);
    size_ = static_cast<std::uint64_t>(now.st_size);
    adopted_ = true;
  }

  std::shared_ptr<StagedCheckpoint> finish() override {
    if (finished_) throw Error("a staged checkpoint was finished twice");
    finished_ = true;
    if (fd_.fd < 0) return std::make_shared<StagedCheckpoint>(hash_.hex(), size_, std::move(bytes_));
    ::fchmod(fd_.fd, 0444);  // checkpoints are immutable (best effort: an adopted file may be another user's)
    // The fsync and the hash's last bytes run side by side.
    const bool synced = ::fsync(fd_.fd) == 0;
    const std::string sync_error = synced ? "" : errno_text();
    stop_hasher(/*abandon=*/false);
    if (!synced) throw StoreError(dir_.text() + ": cannot sync '" + temp_ + "' to disk: " + sync_error);
    if (!hasher_error_.empty()) throw StoreError(dir_.text() + ": " + hasher_error_);
    std::string id = hash_.hex();
    const int fd = fd_.fd;
    fd_.fd = -1;
    if (::close(fd) != 0) throw StoreError(dir_.text() + ": cannot write '" + temp_ + "': " + errno_text());
    auto staged = std::make_shared<StagedCheckpoint>(std::move(id), size_, "", temp_);
    temp_.clear();  // the staged checkpoint owns it now
    return staged;
  }

 private:
  // adopt_file of the file expect_file announced: when it was hashed whole as it grew, it is
  // renamed into place with nothing left to read. False: adopt it the usual way (another
  // file, one replaced or truncated while it was read, a small one, another filesystem).
  bool adopt_grown(const std::string& path) {
    std::unique_ptr<GrowingFile> grown = std::move(growing_);
    if (!grown || grown->path() != path || !grown->finish() || grown->size <= inline_max_ || !move_in(path))
      return false;
    fd_.reset(grown->fd.fd);
    grown->fd.fd = -1;
    ::sync_file_range(fd_.fd, 0, 0, SYNC_FILE_RANGE_WRITE);  // the rest of the writeback
    hash_ = std::move(grown->hash);
    size_ = grown->size;
    adopted_ = true;
    return true;
  }

  // Renames the trainer's file into the directory under a new temp name (temp_). False when
  // it is on another filesystem (nothing moved); StoreError when the rename fails otherwise.
  bool move_in(const std::string& path) {
    dir_.create();
    std::string temp = temp_name(dir_.path());
    if (::rename(path.c_str(), temp.c_str()) != 0) {
      if (errno == EXDEV) return false;
      throw StoreError(dir_.text() + ": cannot move the checkpoint file " + path + " to '" + temp +
                       "': " + errno_text());
    }
    temp_ = std::move(temp);
    return true;
  }

  void open_temp() {
    dir_.create();
    temp_ = temp_name(dir_.path());
    fd_.reset(::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (fd_.fd < 0) {
      const std::string e = errno_text();
      temp_.clear();
      throw StoreError(dir_.text() + ": cannot create a checkpoint file there: " + e);
    }
  }
  void put(const char* data, std::size_t n) {
    if (!write_all(fd_.fd, data, n)) throw StoreError(dir_.text() + ": cannot write '" + temp_ + "': " + errno_text());
    written_ += n;
    start_writeback(false);
    if (hasher_.joinable()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        ready_ = written_;
      }
      cv_.notify_one();
    }
  }

  // The file's bytes are hashed on a thread of their own, reading behind the writes (from the
  // page cache), so that a save runs at the speed of writing, not of SHA-256 (~1.5 GB/s);
  // `from`: the bytes hash_ has already taken (kept in memory before the file was opened).
  void start_hasher(std::uint64_t from) {
    Fd in(::open(temp_.c_str(), O_RDONLY | O_CLOEXEC));
    if (in.fd < 0) throw StoreError(dir_.text() + ": cannot read back '" + temp_ + "': " + errno_text());
    ready_ = written_;
    hasher_ = std::thread([this, fd = in.fd, from] {
      std::string chunk(kChunk, '\0');
      std::uint64_t at = from;
      for (;;) {
        std::uint64_t upto = 0;
        bool closing = false;
        {
          std::unique_lock<std::mutex> lock(mu_);
          cv_.wait(lock, [&] { return ready_ > at || closing_ || abandon_; });
          if (abandon_) break;
          upto = ready_;
          closing = closing_;
        }
        while (at < upto) {
          const ssize_t r =
              read_some(fd, chunk.data(), static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, upto - at)), at);
          if (r <= 0) {
            hasher_error_ =
                "cannot read back '" + temp_ + "' to hash it: " + (r < 0 ? errno_text() : "it is shorter than written");
            ::close(fd);
            return;
          }
          hash_.update(chunk.data(), static_cast<std::size_t>(r));
          at += static_cast<std::uint64_t>(r);
        }
        if (closing) break;
      }
      ::close(fd);
    });
    in.fd = -1;  // the thread closes it
  }
  // Waits for the hash of everything written (or, `abandon`, stops it).
  void stop_hasher(bool abandon) {
    if (!hasher_.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      (abandon ? abandon_ : closing_) = true;
      ready_ = written_;
    }
    cv_.notify_one();
    hasher_.join();
  }
  // Asks the kernel to start writing what is dirty so far (without waiting), so the disk works
  // while the trainable produces and we hash the next bytes: finish()'s fsync then has little
  // left to do, and dirty pages do not pile up. Every kWriteback bytes, and once at the end.
  void start_writeback(bool all) {
    if (!all && written_ - flushed_ < kWriteback) return;
    ::sync_file_range(fd_.fd, static_cast<off_t>(flushed_), static_cast<off_t>(written_ - flushed_),
                      SYNC_FILE_RANGE_WRITE);
    flushed_ = written_;
  }

  CheckpointDir dir_;
  std::size_t inline_max_;
  Sha256 hash_;
  std::uint64_t size_ = 0;
  std::string bytes_;  // while within inline_max
  Fd fd_;
  std::string temp_;  // ours until finish() hands it over
  bool finished_ = false, adopted_ = false;
  std::uint64_t written_ = 0, flushed_ = 0;  // bytes written to the temp file; writeback started for
  std::thread hasher_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::uint64_t ready_ = 0;  // bytes written that the hasher may read (under mu_)
  bool closing_ = false, abandon_ = false;
  std::string hasher_error_;              // set by the hasher, read after the join
  std::unique_ptr<GrowingFile> growing_;  // expect_file's, until adopt_file
};

// ---------------------------------------------------------------- reading

class FileSource : public CheckpointSource {
 public:
  FileSource(std::string id, std::string file, std::string where, int fd, std::uint64_t size)
      : id_(std::move(id)), file_(std::move(file)), where_(std::move(where)), fd_(fd), size_(size) {}
  ~FileSource() override {
    if (check_.joinable()) check_.join();
  }

  std::uint64_t size() const override { return size_; }

  std::size_t read(char* out, std::size_t n) override {
    if (linked_) throw Error("checkpoint " + id_ + ": read after to_file");
    start_check();
    n = static_cast<std::size_t>(std::min<std::uint64_t>(n, size_ - pos_));
    if (n == 0) return 0;
    const ssize_t r = read_some(fd_.fd, out, n, pos_);
    if (r < 0) throw CheckpointError("cannot read checkpoint " + id_ + " from the " + where_ + ": " + errno_text());
    if (r == 0)
      throw CheckpointError("checkpoint " + id_ + " in the " + where_ + " is truncated: its file ended at byte " +
                            std::to_string(pos_) + " of " + std::to_string(size_));
    pos_ += static_cast<std::uint64_t>(r);
    return static_cast<std::size_t>(r);
  }

  void to_file(const std::string& path) override {
    if (pos_ != 0 || linked_ || check_.joinable())
      throw Error("checkpoint " + id_ + ": to_file after part of it was read");
    if (::link(file_.c_str(), path.c_str()) == 0) {
      linked_ = true;  // the reader gets the store's own file at once; it is checked meanwhile
      start_check();
      return;
    }
    if (errno != EXDEV && errno != EPERM && errno != EMLINK && errno != ENOTSUP && errno != EOPNOTSUPP)
      throw Error("cannot link checkpoint " + id_ + " from the " + where_ + " to " + path + ": " + errno_text());
    try {
      CheckpointSource::to_file(path);  // a streamed copy (checked meanwhile, as any read)
    } catch (...) {
      ::unlink(path.c_str());
      throw;
    }
  }

  void finish() override {
    start_check();  // nothing was read: the check still runs
    if (check_.joinable()) check_.join();
    if (!error_.empty()) throw CheckpointError(error_);
  }

 private:
  // The file is hashed on a thread of its own, on its own reads, while the bytes go to the
  // trainable (or while an external trainer reads its link): SHA-256 runs at ~1.5 GB/s, so
  // hashing on the way would make it the slowest part of a load. The file is read-only and
  // never rewritten under its id, so the bytes hashed are the bytes served; finish() joins.
  void start_check() {
    if (check_.joinable() || checked_) return;
    checked_ = true;
    check_ = std::thread([this] {
      try {
        Sha256 h;
        const std::string error = hash_range(fd_.fd, 0, size_, h);
        if (!error.empty()) {
          error_ = "checkpoint " + id_ + " in the " + where_ + " could not be read whole: " + error;
          return;
        }
        const std::string actual = h.hex();
        if (actual != id_) error_ = mismatch_text(id_, where_, actual);
      } catch (const std::exception& e) {
        error_ = "checkpoint " + id_ + " in the " + where_ + " could not be checked: " + e.what();
      }
    });
  }

  std::string id_, file_, where_;
  Fd fd_;
  std::uint64_t size_ = 0, pos_ = 0;
  bool linked_ = false, checked_ = false;
  std::thread check_;
  std::string error_;  // what the check found wrong (set by the check's thread, read after the join)
};

}  // namespace

bool valid_checkpoint_id(const std::string& id) {
  return id.size() == 64 &&
         std::all_of(id.begin(), id.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

CheckpointDir::CheckpointDir(std::string path, std::string owner) : path_(std::move(path)), owner_(std::move(owner)) {}

void CheckpointDir::create() const {
  std::error_code ec;
  if (fs::is_directory(path_, ec)) return;
  fs::create_directories(path_, ec);
  if (!fs::is_directory(path_))
    throw StoreError(owner_ + ": checkpoint directory '" + path_ + "' does not exist and cannot be created" +
                     (ec ? ": " + ec.message() : ""));
}

std::string CheckpointDir::file_of(const std::string& id) const { return (fs::path(path_) / id).string(); }

std::string CheckpointDir::text() const { return "checkpoint directory '" + path_ + "' of " + owner_; }

std::unique_ptr<CheckpointStager> CheckpointDir::stage(std::size_t inline_max) const {
  return std::make_unique<FileStager>(*this, inline_max);
}

bool CheckpointDir::has(const std::string& id, std::optional<std::uint64_t> size) const {
  struct stat st {};
  return ::stat(file_of(id).c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
         (!size || static_cast<std::uint64_t>(st.st_size) == *size);
}

void CheckpointDir::adopt(const StagedCheckpoint& staged) const {
  const std::string& id = staged.id();
  if (!valid_checkpoint_id(id)) throw StoreError(text() + ": '" + id + "' is not a checkpoint id");
  if (has(id, staged.size())) return;
  create();
  const std::string path = file_of(id);
  if (staged.temp_file().empty()) {                                              // bytes in memory
    if (!staged.bytes().empty()) return write(id, staged.bytes());               // staged to a file, then adopted
    Fd f(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0444));  // an empty checkpoint
    if (f.fd < 0) throw StoreError(text() + ": cannot create '" + path + "': " + errno_text());
    fsync_dir(path_);
    return;
  }
  for (int attempt = 0;; ++attempt) {
    if (::link(staged.temp_file().c_str(), path.c_str()) == 0) break;
    if (errno == EEXIST && attempt < 3) {  // a damaged file of another size: replaced
      ::unlink(path.c_str());
      continue;
    }
    if (errno == EPERM || errno == EMLINK || errno == ENOTSUP || errno == EOPNOTSUPP) {  // no hard links here
      if (::rename(staged.temp_file().c_str(), path.c_str()) == 0) break;
    }
    throw StoreError(text() + ": cannot put the checkpoint file '" + staged.temp_file() + "' in place as '" + path +
                     "': " + errno_text());
  }
  fsync_dir(path_);
}

void CheckpointDir::release_temp(const StagedCheckpoint& staged) {
  if (!staged.temp_file().empty()) ::unlink(staged.temp_file().c_str());
}

std::unique_ptr<CheckpointSource> CheckpointDir::open(const std::string& id, std::optional<std::uint64_t> size) const {
  if (!valid_checkpoint_id(id)) throw CheckpointError("'" + id + "' is not a checkpoint id (" + owner_ + ")");
  const std::string file = file_of(id);
  Fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.fd < 0) {
    if (errno == ENOENT) throw CheckpointError("checkpoint " + id + " is missing from the " + text());
    throw CheckpointError("cannot open checkpoint " + id + " in the " + text() + ": " + errno_text());
  }
  struct stat st {};
  if (::fstat(fd.fd, &st) != 0)
    throw CheckpointError("cannot read checkpoint " + id + " in the " + text() + ": " + errno_text());
  const auto actual = static_cast<std::uint64_t>(st.st_size);
  if (size && actual != *size)
    throw CheckpointError("checkpoint " + id + " in the " + text() + " is damaged or truncated: its file has " +
                          std::to_string(actual) + " bytes, the store recorded " + std::to_string(*size));
  const int raw = fd.fd;
  fd.fd = -1;
  return std::make_unique<FileSource>(id, file, text(), raw, actual);
}

void CheckpointDir::write(const std::string& id, const std::string& bytes) const {
  if (has(id, bytes.size())) return;
  auto stager = stage(0);
  stager->write(bytes.data(), bytes.size());
  const auto staged = stager->finish();
  if (staged->id() != id) throw StoreError(text() + ": bytes given as checkpoint " + id + " hash to " + staged->id());
  adopt(*staged);
}

std::string CheckpointDir::read(const std::string& id, std::optional<std::uint64_t> size) const {
  auto source = open(id, size);
  const std::uint64_t n = source->size();
  return checkpoint_in_memory("checkpoint " + id + " (file " + file_of(id) + ")", n, [&] {
    std::string bytes(static_cast<std::size_t>(n), '\0');
    std::size_t got = 0;
    while (got < bytes.size()) got += source->read(bytes.data() + got, bytes.size() - got);
    source->finish();
    return bytes;
  });
}

bool CheckpointDir::remove(const std::string& id) const {
  // Freeing the blocks of a large file takes ext4 ~0.15 s per GB, which would be paid inside
  // a publish (the member's previous checkpoint goes). The name goes now (a rename to a temp
  // name of this process); the blocks go on a thread of their own. A process that dies first
  // leaves that temp file to the next sweep, like a checkpoint it was writing.
  const std::string doomed = temp_name(path_);
  if (::rename(file_of(id).c_str(), doomed.c_str()) != 0) return false;
  Removals& r = removals();
  {
    // A few removals at a time on threads (a publish drops one checkpoint); past that (a
    // garbage collection of thousands) the rest go here, rather than a thread each.
    std::unique_lock<std::mutex> lock(r.mu);
    if (r.pending >= kMaxBackgroundRemovals) {
      lock.unlock();
      ::unlink(doomed.c_str());
      return true;
    }
    ++r.pending;
  }
  std::thread([doomed, &r] {
    ::unlink(doomed.c_str());
    std::lock_guard<std::mutex> lock(r.mu);
    if (--r.pending == 0) r.done.notify_all();
  }).detach();
  return true;
}

void CheckpointDir::wait_for_removals() {
  Removals& r = removals();
  std::unique_lock<std::mutex> lock(r.mu);
  r.done.wait(lock, [&] { return r.pending == 0; });
}

std::vector<std::string> CheckpointDir::ids() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(path_, ec)) {
    std::string name = entry.path().filename().string();
    if (valid_checkpoint_id(name)) out.push_back(std::move(name));
  }
  return out;
}

std::size_t CheckpointDir::remove_temp_files(std::chrono::seconds age) const {
  std::error_code ec;
  std::size_t removed = 0;
  const auto old = fs::file_time_type::clock::now() - age;
  for (const auto& entry : fs::directory_iterator(path_, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(kTempPrefix, 0) != 0) continue;
    // .tmp-OWNER-RANDOM; older versions wrote .tmp-ID-PID-RANDOM (no owner: judged by age).
    const std::size_t start = std::char_traits<char>::length(kTempPrefix), dash = name.rfind('-');
    const auto owner = dash > start ? process_owner::parse_name_tag(name.substr(start, dash - start)) : std::nullopt;
    bool gone = false;
    if (owner && !process_owner::is_elsewhere(*owner)) {
      gone = process_owner::is_dead_here(*owner);  // a live owner's file is still being written
    } else {
      std::error_code e2;
      const auto written = fs::last_write_time(entry.path(), e2);
      gone = !e2 && written < old;
    }
    std::error_code e3;
    if (gone && fs::remove(entry.path(), e3)) ++removed;
  }
  return removed;
}

}  // namespace pbt
