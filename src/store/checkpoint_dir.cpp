// Checkpoint files in a directory (see checkpoint_dir.hpp).
#include "store/checkpoint_dir.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "pbt/checkpoint_io.hpp"
#include "pbt/error.hpp"
#include "store/codec.hpp"

namespace pbt {

namespace fs = std::filesystem;

namespace {

std::string errno_text() { return std::strerror(errno); }

}  // namespace

bool valid_checkpoint_id(const std::string& id) {
  return id.size() == 64 &&
         std::all_of(id.begin(), id.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

CheckpointDir::CheckpointDir(std::string path, std::string owner) : path_(std::move(path)), owner_(std::move(owner)) {}

void CheckpointDir::create() const {
  std::error_code ec;
  fs::create_directories(path_, ec);
  if (!fs::is_directory(path_))
    throw StoreError(owner_ + ": checkpoint directory '" + path_ + "' does not exist and cannot be created" +
                     (ec ? ": " + ec.message() : ""));
}

std::string CheckpointDir::file_of(const std::string& id) const { return (fs::path(path_) / id).string(); }

std::string CheckpointDir::text() const { return "checkpoint directory '" + path_ + "' of " + owner_; }

void CheckpointDir::write(const std::string& id, const std::string& bytes) const {
  const std::string path = file_of(id);
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && static_cast<std::size_t>(st.st_size) == bytes.size()) return;
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const std::string tmp =
      (fs::path(path_) / (".tmp-" + id + "-" + std::to_string(::getpid()) + "-" + std::to_string(rng() % 1000000000)))
          .string();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw StoreError(text() + ": cannot create '" + tmp + "': " + errno_text());
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string e = errno_text();
      ::close(fd);
      ::unlink(tmp.c_str());
      throw StoreError(text() + ": cannot write '" + tmp + "': " + e);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const std::string e = errno_text();
    ::unlink(tmp.c_str());
    throw StoreError(text() + ": cannot sync '" + tmp + "': " + e);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string e = errno_text();
    ::unlink(tmp.c_str());
    throw StoreError(text() + ": cannot rename '" + tmp + "' to '" + path + "': " + e);
  }
  int dfd = ::open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

std::string CheckpointDir::read(const std::string& id) const {
  if (!valid_checkpoint_id(id)) throw CheckpointError("'" + id + "' is not a checkpoint id (" + owner_ + ")");
  const std::string file = file_of(id);
  std::ifstream in(file, std::ios::binary);
  if (!in) throw CheckpointError("checkpoint " + id + " is missing from the " + text());
  std::error_code ec;
  const auto size = fs::file_size(file, ec);
  std::string bytes = checkpoint_in_memory("checkpoint " + id + " (file " + file + ")", ec ? 0 : size, [&] {
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  });
  store_codec::verify_checkpoint(id, bytes, "the " + text());
  return bytes;
}

bool CheckpointDir::remove(const std::string& id) const { return ::unlink(file_of(id).c_str()) == 0; }

std::vector<std::string> CheckpointDir::ids() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(path_, ec)) {
    std::string name = entry.path().filename().string();
    if (valid_checkpoint_id(name)) out.push_back(std::move(name));
  }
  return out;
}

void CheckpointDir::remove_temp_files(std::chrono::seconds age) const {
  std::error_code ec;
  const auto old = fs::file_time_type::clock::now() - age;
  for (const auto& entry : fs::directory_iterator(path_, ec)) {
    if (entry.path().filename().string().rfind(".tmp-", 0) != 0) continue;
    std::error_code e2;
    if (fs::last_write_time(entry.path(), e2) < old && !e2) fs::remove(entry.path(), e2);
  }
}

}  // namespace pbt
