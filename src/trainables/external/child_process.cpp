#include "trainables/external/child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "pbt/error.hpp"

extern char** environ;

namespace pbt::external {

namespace {

constexpr std::size_t kMaxStderrLine = 4000;  // longer stderr lines are cut for the log

int ms_until(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) return 0;
  return left > 60000 ? 60000 : static_cast<int>(left) + 1;  // wake at least once a minute
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// Pipe ends must not be 0, 1 or 2, or the child's dup2 calls would clobber each other.
int above_stdio(int fd) {
  if (fd > 2) return fd;
  int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  ::close(fd);
  if (moved < 0) throw Error(std::string("cannot move a pipe descriptor: ") + std::strerror(errno));
  return moved;
}

void make_pipe(int fds[2]) {
  if (pipe2(fds, O_CLOEXEC) != 0) throw Error(std::string("cannot create a pipe: ") + std::strerror(errno));
  fds[0] = above_stdio(fds[0]);
  fds[1] = above_stdio(fds[1]);
}

void set_nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

bool is_executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// What execvp would run, found before fork (execvp itself is not async-signal-safe).
std::string resolve_executable(const std::string& file, const std::string& path_var) {
  if (file.find('/') != std::string::npos) return file;  // relative to cwd, as execve sees it
  std::size_t start = 0;
  while (start <= path_var.size()) {
    std::size_t end = path_var.find(':', start);
    if (end == std::string::npos) end = path_var.size();
    std::string dir = path_var.substr(start, end - start);
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + file;
    if (is_executable_file(candidate)) return candidate;
    start = end + 1;
  }
  throw Error("'" + file + "' was not found in PATH (" + path_var + ")");
}

// Reports why the child could not exec, through a close-on-exec pipe.
struct ExecFailure {
  int stage;  // 1: chdir, 2: execve
  int err;
};

}  // namespace

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* name = strsignal(sig);
    std::string s = "was killed by signal " + std::to_string(sig) + (name ? std::string(" (") + name + ")" : "");
#ifdef WCOREDUMP
    if (WCOREDUMP(status)) s += ", core dumped";
#endif
    return s;
  }
  return "ended with wait status " + std::to_string(status);
}

ChildProcess::ChildProcess(const ChildSpec& spec, LineSink on_stderr, std::size_t max_line)
    : on_stderr_(std::move(on_stderr)), max_line_(max_line) {
  if (spec.argv.empty() || spec.argv[0].empty()) throw Error("argv is empty");

  // Everything the child needs is built before fork: after it, only async-signal-safe calls.
  std::map<std::string, std::string> env_overrides = spec.env;
  std::vector<std::string> env_strings;
  std::set<std::string> overridden;
  for (const auto& [k, v] : env_overrides) overridden.insert(k);
  for (char** e = environ; e && *e; ++e) {
    std::string entry(*e);
    std::string key = entry.substr(0, entry.find('='));
    if (!overridden.count(key)) env_strings.push_back(entry);
  }
  for (const auto& [k, v] : env_overrides) env_strings.push_back(k + "=" + v);
  std::string path_var;
  if (auto it = env_overrides.find("PATH"); it != env_overrides.end()) {
    path_var = it->second;
  } else if (const char* p = std::getenv("PATH")) {
    path_var = p;
  } else {
    path_var = "/usr/local/bin:/usr/bin:/bin";
  }
  const std::string exe = resolve_executable(spec.argv[0], path_var);

  std::vector<std::string> argv_copy = spec.argv;
  std::vector<char*> argv;
  for (auto& a : argv_copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  const std::string cwd = spec.cwd;

  int in[2], out[2], err[2], report[2];
  make_pipe(in);
  make_pipe(out);
  make_pipe(err);
  make_pipe(report);
  const pid_t parent = getpid();

  pid_ = fork();
  if (pid_ < 0) {
    const int e = errno;
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1], report[0], report[1]}) ::close(fd);
    throw Error(std::string("fork failed: ") + std::strerror(e));
  }
  if (pid_ == 0) {
    // The child: its own process group (so a kill takes its helpers too), dies with its
    // parent, default signal handling, pipes on 0/1/2, then exec. No shell anywhere.
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD}) signal(sig, SIG_DFL);
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    ExecFailure f{0, 0};
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) {
      f = {1, errno};
    } else {
      execve(exe.c_str(), argv.data(), envp.data());
      f = {2, errno};
    }
    ssize_t ignored = ::write(report[1], &f, sizeof f);
    (void)ignored;
    _exit(127);
  }

  setpgid(pid_, pid_);  // also from this side, so a kill right away reaches the group
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  ::close(report[1]);
  in_fd_ = in[1];
  out_fd_ = out[0];
  err_fd_ = err[0];

  ExecFailure f{0, 0};
  ssize_t n;
  do {
    n = ::read(report[0], &f, sizeof f);
  } while (n < 0 && errno == EINTR);
  ::close(report[0]);
  if (n == static_cast<ssize_t>(sizeof f)) {
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
    close_fd(in_fd_);
    close_fd(out_fd_);
    close_fd(err_fd_);
    if (f.stage == 1) throw Error("cannot change to the working directory '" + cwd + "': " + std::strerror(f.err));
    throw Error("cannot execute '" + exe + "': " + std::strerror(f.err));
  }
  set_nonblocking(in_fd_);
  set_nonblocking(out_fd_);
  set_nonblocking(err_fd_);
}

ChildProcess::~ChildProcess() {
  kill_and_reap(std::chrono::milliseconds(100));
  close_fd(in_fd_);
  close_fd(out_fd_);
  close_fd(err_fd_);
}

bool ChildProcess::read_into(int& fd, std::string& buf, bool is_stderr) {
  char chunk[65536];
  bool got = false;
  for (;;) {
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n > 0) {
      buf.append(chunk, static_cast<std::size_t>(n));
      got = true;
      if (is_stderr) emit_stderr_lines(false);
      else if (buf.size() > max_line_ + 1) return got;  // read_line reports it
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return got;
    close_fd(fd);  // EOF or a read error: nothing more will come
    if (is_stderr) emit_stderr_lines(true);
    return got;
  }
}

void ChildProcess::emit_stderr_lines(bool final_flush) {
  std::size_t start = 0;
  for (;;) {
    std::size_t nl = err_buf_.find('\n', start);
    if (nl == std::string::npos) break;
    std::string line = err_buf_.substr(start, nl - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.size() > kMaxStderrLine) line = line.substr(0, kMaxStderrLine) + " [line cut]";
    if (on_stderr_) on_stderr_(line);
    start = nl + 1;
  }
  err_buf_.erase(0, start);
  if ((final_flush && !err_buf_.empty()) || err_buf_.size() > 4 * kMaxStderrLine) {
    std::string line = err_buf_.substr(0, kMaxStderrLine);
    if (err_buf_.size() > kMaxStderrLine) line += " [line cut]";
    if (on_stderr_) on_stderr_(line);
    err_buf_.clear();
  }
}

void ChildProcess::pump_stderr(bool final_flush) {
  if (err_fd_ >= 0) read_into(err_fd_, err_buf_, true);
  if (final_flush) emit_stderr_lines(true);
}

ChildProcess::Put ChildProcess::write(const std::string& data, Clock::time_point deadline) {
  if (in_fd_ < 0) return Put::Closed;
  // A write to a pipe nobody reads raises SIGPIPE, which would kill the worker: block it
  // in this thread for the write and consume the one a failed write leaves pending.
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  auto restore = [&] {
    sigset_t pending;
    sigpending(&pending);
    if (sigismember(&pending, SIGPIPE) && !sigismember(&old, SIGPIPE)) {
      struct timespec zero {0, 0};
      sigtimedwait(&pipe_set, nullptr, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  };

  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(in_fd_, data.data() + done, data.size() - done);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      struct pollfd p[2] = {{in_fd_, POLLOUT, 0}, {err_fd_, POLLIN, 0}};
      int timeout = ms_until(deadline);
      if (timeout == 0) {
        restore();
        return Put::Timeout;
      }
      int r = ::poll(p, err_fd_ >= 0 ? 2 : 1, timeout);
      if (r < 0 && errno != EINTR) {
        restore();
        return Put::Closed;
      }
      if (r > 0 && err_fd_ >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) pump_stderr(false);
      continue;
    }
    restore();
    close_fd(in_fd_);  // EPIPE (the child is gone or closed its stdin) or another error
    return Put::Closed;
  }
  restore();
  return Put::Ok;
}

ChildProcess::Got ChildProcess::read_line(std::string& line, Clock::time_point deadline) {
  for (;;) {
    std::size_t nl = out_buf_.find('\n');
    if (nl != std::string::npos) {
      if (nl > max_line_) return Got::TooLong;
      line = out_buf_.substr(0, nl);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      out_buf_.erase(0, nl + 1);
      return Got::Line;
    }
    if (out_buf_.size() > max_line_) return Got::TooLong;
    if (out_fd_ < 0) return Got::Eof;
    if (Clock::now() >= deadline) return Got::Timeout;  // even if stderr never stops talking
    struct pollfd p[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
    const int timeout = ms_until(deadline);
    int r = ::poll(p, err_fd_ >= 0 ? 2 : 1, timeout);
    if (r < 0) {
      if (errno == EINTR) continue;
      throw Error(std::string("poll failed: ") + std::strerror(errno));
    }
    if (r > 0 && err_fd_ >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) pump_stderr(false);
    if (r > 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
      read_into(out_fd_, out_buf_, false);
      continue;
    }
  }
}

void ChildProcess::close_stdin() { close_fd(in_fd_); }

bool ChildProcess::wait_exit(Clock::time_point deadline) {
  if (reaped_) return true;
  for (;;) {
    siginfo_t info;
    std::memset(&info, 0, sizeof info);
    if (waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
      if (errno == EINTR) continue;
      return true;  // ECHILD: already reaped elsewhere
    }
    if (info.si_pid == pid_) return true;
    if (Clock::now() >= deadline) return false;
    // Keep draining stderr while we wait (a child blocked on a full stderr pipe never exits).
    if (err_fd_ >= 0) {
      struct pollfd p = {err_fd_, POLLIN, 0};
      if (::poll(&p, 1, 10) > 0) pump_stderr(false);
    } else {
      ::usleep(10000);
    }
  }
}

std::string ChildProcess::kill_and_reap(std::chrono::milliseconds drain) {
  if (reaped_) return exit_text_;
  // The leader is not reaped yet, so its pid (= the group id) cannot have been reused.
  ::kill(-pid_, SIGKILL);
  ::kill(pid_, SIGKILL);
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, 0);
  } while (r < 0 && errno == EINTR);
  reaped_ = true;
  exit_text_ = r == pid_ ? describe_wait_status(status) : "ended (its status was collected elsewhere)";
  close_fd(in_fd_);
  // What the child wrote before it died: its last words are often the most useful.
  const auto until = Clock::now() + drain;
  while (err_fd_ >= 0) {
    struct pollfd p = {err_fd_, POLLIN, 0};
    int left = ms_until(until);
    if (left == 0 || ::poll(&p, 1, left) <= 0) break;
    pump_stderr(false);
  }
  pump_stderr(true);
  if (out_fd_ >= 0) read_into(out_fd_, out_buf_, false);
  close_fd(out_fd_);
  close_fd(err_fd_);
  return exit_text_;
}

}  // namespace pbt::external
