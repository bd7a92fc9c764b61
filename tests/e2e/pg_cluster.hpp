#pragma once
// A throwaway PostgreSQL cluster of a test's own (scripts/pg-server.sh), for tests that stop
// and start the server under the workers' feet.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include "process_util.hpp"

namespace e2e {

inline int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

// A throwaway PostgreSQL cluster of this test's own (scripts/pg-server.sh), stopped and
// removed with the object.
class Cluster {
 public:
  explicit Cluster(const std::string& dir) : dir_(dir + "/cluster"), log_(dir + "/pg-server.log") {}
  ~Cluster() {
    if (started_) script("stop " + dir_);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  // Empty on success, else why not.
  std::string start() {
    port_ = free_port();
    if (port_ <= 0) return "no free port on 127.0.0.1";
    if (script("start " + dir_ + " " + std::to_string(port_)) != 0)
      return "scripts/pg-server.sh could not start a cluster: " + read_file(log_);
    started_ = true;
    return "";
  }
  int stop() { return script("stop " + dir_); }
  int start_again() { return script("start " + dir_ + " " + std::to_string(port_)); }
  std::string uri() const { return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/postgres"; }
  const std::string& log() const { return log_; }

 private:
  int script(const std::string& args) {
    const std::string cmd =
        "bash '" + std::string(PBT_SOURCE_DIR) + "/scripts/pg-server.sh' " + args + " >>'" + log_ + "' 2>&1";
    const int rc = std::system(cmd.c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  }
  std::string dir_, log_;
  int port_ = -1;
  bool started_ = false;
};

// Waits for a process for at most `seconds`; kills it (and reports -9) when it overstays.
inline int wait_exit_within(pid_t pid, double seconds) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < until) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return -9;
}

}  // namespace e2e
