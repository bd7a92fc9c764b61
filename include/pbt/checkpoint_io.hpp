#pragma once
// Checkpoint bytes go through small writer/reader objects, so a trainable's save/load
// does not care whether the bytes end in a file, a buffer or a database row. A store
// streams them: a checkpoint of 10 GB passes through a buffer of 1 MiB, never through
// memory whole (unless the trainable itself reads it whole, e.g. with read_string).
#include <cstdint>
#include <cstring>
#include <iosfwd>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <vector>

#include "pbt/error.hpp"

namespace pbt {

// Runs f, which holds a checkpoint of `size` bytes in memory at once (reads it whole).
// Running out of memory then says which checkpoint and how big, not a bare "std::bad_alloc".
// An Error, not a CheckpointError: the bytes are fine, this process cannot hold them.
template <class F>
auto checkpoint_in_memory(const std::string& what, std::uint64_t size, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    throw Error(what + ": " + std::to_string(size) + " bytes (" + std::to_string(size >> 20) +
                " MiB) do not fit in this process's memory; free memory, raise the memory limit, or "
                "use a smaller model");
  } catch (const std::length_error&) {
    throw Error(what + ": " + std::to_string(size) + " bytes are more than this process can hold");
  }
}

// Where a streamed checkpoint's bytes go (a store writes them to a file, hashing them on the way).
class CheckpointSink {
 public:
  virtual ~CheckpointSink() = default;
  virtual void write(const char* data, std::size_t n) = 0;
  // The whole checkpoint is the file at `path` (an external trainer wrote it), given before
  // anything was written. A sink may take the file itself (rename or link it) instead of
  // copying it, so `path` may be gone afterwards. Default: streams the file through write().
  virtual void adopt_file(const std::string& path);
  // Announces that another process is about to write the whole checkpoint to `path`, front to
  // back (never rewriting a byte it wrote), and that adopt_file(path) follows once it is done.
  // A sink may read and hash the file while it grows, so that the hash does not wait for the
  // write. Default: nothing (adopt_file does all the work).
  virtual void expect_file(const std::string& /*path*/) {}
};

// Where a streamed checkpoint's bytes come from (a store's file, verified as it is read).
class CheckpointSource {
 public:
  virtual ~CheckpointSource() = default;
  virtual std::uint64_t size() const = 0;
  // Up to n bytes, fewer only at the end; throws CheckpointError (a file gone, bytes that do
  // not match the checkpoint's id when the end is reached).
  virtual std::size_t read(char* out, std::size_t n) = 0;
  // Puts the whole checkpoint at `path` (a file that must not exist yet) for a reader that
  // takes files (an external trainer), before anything was read: a hard link where the
  // filesystem allows (the reader must not write to it), a copy where not.
  // Default: streams the bytes through read() into the file.
  virtual void to_file(const std::string& path);
  // Called by the engine once the trainable has loaded: reads what it left unread and checks
  // the whole checkpoint against its id; throws CheckpointError when it does not match.
  virtual void finish() {}
};

class CheckpointWriter {
 public:
  CheckpointWriter();                               // into memory: bytes(), take()
  explicit CheckpointWriter(CheckpointSink& sink);  // streamed into sink (call flush() at the end)
  ~CheckpointWriter();
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;

  void write_bytes(const void* data, std::size_t n);
  template <class T>
  void write(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>, "write() takes plain values");
    write_bytes(&v, sizeof v);
  }
  void write_string(const std::string& s) {
    write<std::uint64_t>(s.size());
    write_bytes(s.data(), s.size());
  }
  template <class T>
  void write_vector(const std::vector<T>& v) {
    write<std::uint64_t>(v.size());
    if (!v.empty()) write_bytes(v.data(), v.size() * sizeof(T));
  }
  // The checkpoint is the file at `path`, whole (nothing else may be written): a streamed
  // writer's sink may adopt the file itself, so it may be gone afterwards.
  void write_file(const std::string& path);
  // Before write_file(path): the file is about to be written there front to back by another
  // process (an external trainer that promised sequential writes); see CheckpointSink.
  void expect_file(const std::string& path);
  // The bytes as an std::ostream, for libraries that write to one (torch::save).
  std::ostream& stream();
  // Passes buffered bytes on to the sink (the engine calls it after save()).
  void flush();
  std::uint64_t size() const { return size_; }  // bytes written so far

  // In-memory writers only (Error otherwise).
  const std::string& bytes() const;
  std::string take();

 private:
  class Buf;
  CheckpointSink* sink_ = nullptr;
  std::string bytes_;  // the bytes (in memory) or the buffer (streamed)
  std::uint64_t size_ = 0;
  bool adopted_ = false;
  std::unique_ptr<Buf> buf_;
  std::unique_ptr<std::ostream> stream_;
};

class CheckpointReader {
 public:
  explicit CheckpointReader(const std::string& bytes);  // bytes in memory (kept by the caller)
  explicit CheckpointReader(CheckpointSource& source);  // streamed from source
  ~CheckpointReader();
  CheckpointReader(const CheckpointReader&) = delete;
  CheckpointReader& operator=(const CheckpointReader&) = delete;

  void read_bytes(void* out, std::size_t n);
  template <class T>
  T read() {
    static_assert(std::is_trivially_copyable_v<T>, "read() takes plain values");
    T v;
    read_bytes(&v, sizeof v);
    return v;
  }
  std::string read_string();
  template <class T>
  std::vector<T> read_vector() {
    auto n = read<std::uint64_t>();
    if (n > remaining() / sizeof(T)) throw CheckpointError("checkpoint vector length runs past its end");
    std::vector<T> v(n);
    if (n) read_bytes(v.data(), n * sizeof(T));
    return v;
  }
  std::uint64_t remaining() const { return size_ - pos_; }
  std::uint64_t size() const { return size_; }
  // Puts the whole checkpoint at `path` (a new file), before anything was read: a link to
  // the store's file where possible (do not write to it), a copy where not.
  void to_file(const std::string& path);
  // The bytes as an std::istream (not seekable when streamed), for libraries that read one.
  std::istream& stream();

 private:
  class Buf;
  void refill();
  const std::string* bytes_ = nullptr;  // in memory
  CheckpointSource* source_ = nullptr;  // streamed
  std::string buffer_;                  // streamed: bytes read from the source, not yet consumed
  std::size_t buffer_pos_ = 0;
  std::uint64_t size_ = 0, pos_ = 0;
  std::unique_ptr<Buf> buf_;
  std::unique_ptr<std::istream> stream_;
};

}  // namespace pbt
