// Checkpoint writers and readers, in memory or streamed (see checkpoint_io.hpp).
#include "pbt/checkpoint_io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <istream>
#include <ostream>
#include <streambuf>

namespace pbt {

namespace {

// Bytes a streamed writer gathers before passing them on, and a streamed reader asks for at once.
constexpr std::size_t kChunk = 1u << 20;

std::string errno_text() { return std::strerror(errno); }

// An fd closed on every way out.
struct Fd {
  int fd;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Writes all n bytes to fd (the checkpoint file `path`); throws Error naming it.
void write_all(int fd, const char* data, std::size_t n, const std::string& path) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) throw Error("cannot write the checkpoint file " + path + ": " + errno_text());
    data += w;
    n -= static_cast<std::size_t>(w);
  }
}

}  // namespace

void CheckpointSink::adopt_file(const std::string& path) {
  Fd in(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.fd < 0) throw Error("cannot open the checkpoint file " + path + ": " + errno_text());
  std::string chunk(kChunk, '\0');
  for (;;) {
    const ssize_t n = ::read(in.fd, chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error("cannot read the checkpoint file " + path + ": " + errno_text());
    if (n == 0) break;
    write(chunk.data(), static_cast<std::size_t>(n));
  }
}

void CheckpointSource::to_file(const std::string& path) {
  Fd out(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (out.fd < 0) throw Error("cannot create the checkpoint file " + path + ": " + errno_text());
  std::string chunk(kChunk, '\0');
  for (;;) {
    const std::size_t n = read(chunk.data(), chunk.size());
    if (n == 0) break;
    write_all(out.fd, chunk.data(), n, path);
  }
}

// ---------------------------------------------------------------- writer

class CheckpointWriter::Buf : public std::streambuf {
 public:
  explicit Buf(CheckpointWriter& w) : w_(w) {}

 protected:
  int_type overflow(int_type c) override {
    if (traits_type::eq_int_type(c, traits_type::eof())) return traits_type::not_eof(c);
    const char ch = traits_type::to_char_type(c);
    w_.write_bytes(&ch, 1);
    return c;
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    w_.write_bytes(s, static_cast<std::size_t>(n));
    return n;
  }

 private:
  CheckpointWriter& w_;
};

CheckpointWriter::CheckpointWriter() = default;
CheckpointWriter::CheckpointWriter(CheckpointSink& sink) : sink_(&sink) {}
CheckpointWriter::~CheckpointWriter() = default;

void CheckpointWriter::write_bytes(const void* data, std::size_t n) {
  if (adopted_) throw Error("a checkpoint given as a file (write_file) cannot have more bytes written after it");
  const char* p = static_cast<const char*>(data);
  size_ += n;
  if (!sink_) {
    bytes_.append(p, n);
    return;
  }
  if (bytes_.size() + n < kChunk) {
    bytes_.append(p, n);
    return;
  }
  flush();
  if (n >= kChunk) sink_->write(p, n);
  else bytes_.append(p, n);
}

void CheckpointWriter::write_file(const std::string& path) {
  if (size_ != 0 || adopted_) throw Error("a checkpoint given as a file (write_file) must be the whole checkpoint");
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw Error("cannot read the checkpoint file " + path + ": " + errno_text());
  if (sink_) {
    sink_->adopt_file(path);
  } else {
    // In memory: read it whole.
    checkpoint_in_memory("the checkpoint file " + path, static_cast<std::uint64_t>(st.st_size), [&] {
      struct Gather : CheckpointSink {
        std::string& out;
        explicit Gather(std::string& o) : out(o) {}
        void write(const char* d, std::size_t k) override { out.append(d, k); }
      } gather(bytes_);
      bytes_.reserve(static_cast<std::size_t>(st.st_size));
      gather.adopt_file(path);
      return 0;
    });
  }
  size_ = static_cast<std::uint64_t>(st.st_size);
  adopted_ = true;
}

void CheckpointWriter::expect_file(const std::string& path) {
  if (size_ != 0 || adopted_) throw Error("a checkpoint given as a file (write_file) must be the whole checkpoint");
  if (sink_) sink_->expect_file(path);
}

std::ostream& CheckpointWriter::stream() {
  if (!stream_) {
    buf_ = std::make_unique<Buf>(*this);
    stream_ = std::make_unique<std::ostream>(buf_.get());
  }
  return *stream_;
}

void CheckpointWriter::flush() {
  if (stream_) stream_->flush();
  if (sink_ && !bytes_.empty()) {
    sink_->write(bytes_.data(), bytes_.size());
    bytes_.clear();
  }
}

const std::string& CheckpointWriter::bytes() const {
  if (sink_) throw Error("CheckpointWriter::bytes(): this writer streams to a sink");
  return bytes_;
}

std::string CheckpointWriter::take() {
  if (sink_) throw Error("CheckpointWriter::take(): this writer streams to a sink");
  size_ = 0;
  return std::move(bytes_);
}

// ---------------------------------------------------------------- reader

class CheckpointReader::Buf : public std::streambuf {
 public:
  explicit Buf(CheckpointReader& r) : r_(r) {}

 protected:
  int_type underflow() override {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(r_.remaining(), sizeof chunk_));
    if (n == 0) return traits_type::eof();
    r_.read_bytes(chunk_, n);
    setg(chunk_, chunk_, chunk_ + n);
    return traits_type::to_int_type(chunk_[0]);
  }

 private:
  CheckpointReader& r_;
  char chunk_[1 << 16];
};

CheckpointReader::CheckpointReader(const std::string& bytes) : bytes_(&bytes), size_(bytes.size()) {}
CheckpointReader::CheckpointReader(CheckpointSource& source) : source_(&source), size_(source.size()) {}
CheckpointReader::~CheckpointReader() = default;

void CheckpointReader::refill() {
  buffer_.resize(static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, remaining())));
  std::size_t got = 0;
  while (got < buffer_.size()) {
    const std::size_t n = source_->read(buffer_.data() + got, buffer_.size() - got);
    if (n == 0) break;
    got += n;
  }
  if (got < buffer_.size())
    throw CheckpointError("checkpoint is truncated: it ended at offset " + std::to_string(pos_ + got) + " of " +
                          std::to_string(size_));
  buffer_pos_ = 0;
}

void CheckpointReader::read_bytes(void* out, std::size_t n) {
  if (n > remaining())
    throw CheckpointError("checkpoint is truncated: wanted " + std::to_string(n) + " bytes at offset " +
                          std::to_string(pos_) + " of " + std::to_string(size_));
  if (bytes_) {
    std::memcpy(out, bytes_->data() + pos_, n);
    pos_ += n;
    return;
  }
  char* p = static_cast<char*>(out);
  while (n > 0) {
    if (buffer_pos_ == buffer_.size()) {
      if (n >= kChunk) {  // a large read goes straight to the caller's memory
        std::size_t got = 0;
        while (got < n) {
          const std::size_t k = source_->read(p + got, n - got);
          if (k == 0)
            throw CheckpointError("checkpoint is truncated: it ended at offset " + std::to_string(pos_ + got) + " of " +
                                  std::to_string(size_));
          got += k;
        }
        pos_ += n;
        return;
      }
      refill();
    }
    const std::size_t k = std::min(n, buffer_.size() - buffer_pos_);
    std::memcpy(p, buffer_.data() + buffer_pos_, k);
    buffer_pos_ += k;
    pos_ += k;
    p += k;
    n -= k;
  }
}

std::string CheckpointReader::read_string() {
  auto n = read<std::uint64_t>();
  if (n > remaining()) throw CheckpointError("checkpoint string length runs past its end");
  std::string s = checkpoint_in_memory("a string in the checkpoint", n, [&] { return std::string(n, '\0'); });
  if (n) read_bytes(s.data(), n);
  return s;
}

void CheckpointReader::to_file(const std::string& path) {
  if (pos_ != 0) throw Error("CheckpointReader::to_file: part of the checkpoint was already read");
  if (source_) {
    source_->to_file(path);
  } else {
    Fd out(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (out.fd < 0) throw Error("cannot create the checkpoint file " + path + ": " + errno_text());
    write_all(out.fd, bytes_->data(), bytes_->size(), path);
  }
  pos_ = size_;
}

std::istream& CheckpointReader::stream() {
  if (!stream_) {
    buf_ = std::make_unique<Buf>(*this);
    stream_ = std::make_unique<std::istream>(buf_.get());
  }
  return *stream_;
}

}  // namespace pbt
