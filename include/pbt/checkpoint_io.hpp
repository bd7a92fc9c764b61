#pragma once
// Checkpoint bytes go through small writer/reader objects, so a trainable's save/load
// does not care whether the bytes end in a file, a buffer or a database row.
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "pbt/error.hpp"

namespace pbt {

class CheckpointWriter {
 public:
  void write_bytes(const void* data, std::size_t n) {
    bytes_.append(static_cast<const char*>(data), n);
  }
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
      throw CheckpointError("checkpoint is truncated: wanted " + std::to_string(n) +
                            " bytes at offset " + std::to_string(pos_) + " of " +
                            std::to_string(bytes_.size()));
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
