#include "core/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "pbt/error.hpp"

namespace pbt {

void write_file_atomically(const std::string& path, const std::string& bytes) {
  write_file_atomically(path, [&](const WritePiece& write) { write(bytes.data(), bytes.size()); });
}

void write_file_atomically(const std::string& path, const std::function<void(const WritePiece& write)>& produce) {
  namespace fs = std::filesystem;
  auto fail = [&](const std::string& what, int err) {
    throw Error("cannot write '" + path + "': " + what + ": " + std::strerror(err));
  };
  // The target may not be a directory: rename would replace an empty one.
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw Error("cannot write '" + path + "': it is a directory");

  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::string tmp = (dir / ("." + target.filename().string() + ".tmp-XXXXXX")).string();
  const int fd = mkstemp(tmp.data());
  if (fd < 0) fail("creating a temporary file in '" + dir.string() + "'", errno);
  auto abandon = [&](const std::string& what) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    fail(what, err);
  };
  // mkstemp makes the file 0600: keep the old file's mode, or give a new one 0644.
  struct stat old {};
  const mode_t mode = ::stat(path.c_str(), &old) == 0 ? (old.st_mode & 07777) : 0644;
  if (::fchmod(fd, mode) != 0) abandon("fchmod");
  try {
    produce([&](const char* data, std::size_t size) {
      for (std::size_t done = 0; done < size;) {
        const ssize_t n = ::write(fd, data + done, size - done);
        if (n < 0) {
          if (errno == EINTR) continue;
          fail("write", errno);  // closed and removed below
        }
        done += static_cast<std::size_t>(n);
      }
    });
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::fsync(fd) != 0) abandon("fsync");
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail("close", err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail("rename", err);
  }
}

}  // namespace pbt
