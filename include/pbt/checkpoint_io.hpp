#pragma once
// Checkpoint bytes go through small writer/reader objects, so a trainable's save/load
// does not care whether the bytes end in a file, a buffer or a database row.
#include <cstdint>
#include <cstring>
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

class CheckpointWriter {
 public:
  void write_bytes(const void* data, std::size_t n) { bytes_.append(static_cast<const char*>(data), n); }
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
  const std::string& bytes() const { return bytes_; }
  std::string take() { return std::move(bytes_); }

 private:
  std::string bytes_;
};

class CheckpointReader {
 public:
  explicit CheckpointReader(const std::string& bytes) : bytes_(bytes) {}
  void read_bytes(void* out, std::size_t n) {
    if (n > bytes_.size() - pos_)
      throw CheckpointError("checkpoint is truncated: wanted " + std::to_string(n) + " bytes at offset " +
                            std::to_string(pos_) + " of " + std::to_string(bytes_.size()));
    std::memcpy(out, bytes_.data() + pos_, n);
    pos_ += n;
  }
  template <class T>
  T read() {
    static_assert(std::is_trivially_copyable_v<T>, "read() takes plain values");
    T v;
    read_bytes(&v, sizeof v);
    return v;
  }
  std::string read_string() {
    auto n = read<std::uint64_t>();
    if (n > remaining()) throw CheckpointError("checkpoint string length runs past its end");
    std::string s(bytes_.data() + pos_, n);
    pos_ += n;
    return s;
  }
  template <class T>
  std::vector<T> read_vector() {
    auto n = read<std::uint64_t>();
    if (n > remaining() / sizeof(T)) throw CheckpointError("checkpoint vector length runs past its end");
    std::vector<T> v(n);
    if (n) read_bytes(v.data(), n * sizeof(T));
    return v;
  }
  std::size_t remaining() const { return bytes_.size() - pos_; }

 private:
  const std::string& bytes_;
  std::size_t pos_ = 0;
};

}  // namespace pbt
