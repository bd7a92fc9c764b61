#pragma once
// Runs the real `pbt` binary for end-to-end tests: fork/exec with output to files.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace e2e {

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline pid_t spawn(const std::vector<std::string>& args, const std::string& out_path, const std::string& err_path,
                   const std::string& cwd = "") {
  pid_t pid = fork();
  if (pid == 0) {
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(126);
    int in = open("/dev/null", O_RDONLY);
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    std::vector<char*> argv;
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

struct Result {
  int code = -1;
  std::string out, err;
};

inline int wait_exit(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Runs `pbt ARGS...` to completion.
inline Result run_pbt(const std::vector<std::string>& args, const std::string& dir) {
  std::vector<std::string> full = {PBT_BINARY};
  full.insert(full.end(), args.begin(), args.end());
  const std::string out = dir + "/cmd.out", err = dir + "/cmd.err";
  pid_t pid = spawn(full, out, err);
  Result r;
  r.code = wait_exit(pid);
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

// The directories temp_dir made, removed when the test program ends, unless a test
// failed (then they are kept for a look, and their paths are in the failure messages).
class TempDirs {
 public:
  static TempDirs& instance() {
    static TempDirs dirs;
    return dirs;
  }
  void add(const std::string& dir) { dirs_.push_back(dir); }
  ~TempDirs() {
    if (::testing::UnitTest::GetInstance()->Failed()) return;
    std::error_code ec;
    for (const auto& d : dirs_) std::filesystem::remove_all(d, ec);
  }

 private:
  std::vector<std::string> dirs_;
};

inline std::string temp_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("pbt-e2e-" + name + "-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  TempDirs::instance().add(dir.string());
  return dir.string();
}

}  // namespace e2e
