#include "trainables/external/child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
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

// ---------------------------------------------------------------- the guard process
// Runs in a child of a possibly multithreaded worker: only async-signal-safe calls and
// raw system calls from here to the end of the section (no malloc, no C++ library).

// guard -> worker on the status pipe, one message per write (atomic: under PIPE_BUF).
struct GuardMsg {
  int kind;   // kGuardPid, kGuardExit or kGuardForkFailed
  int value;  // the child's pid, its wait status, or errno
};
constexpr int kGuardPid = 1, kGuardExit = 2, kGuardForkFailed = 3;
constexpr char kKillAll = 'K';  // worker -> guard before closing its end: an orderly stop

struct GuardPlan {
  const char* exe;
  char* const* argv;
  char* const* envp;
  const char* cwd;      // null: stay
  const char* scratch;  // null: nothing to remove
  int in_r, out_w, err_w, report_w, status_w, life_r;
};

volatile sig_atomic_t g_guard_term = 0;
extern "C" void guard_on_signal(int sig) {
  if (sig == SIGTERM) g_guard_term = 1;  // SIGCHLD only interrupts ppoll
}

struct Dirent64 {
  std::uint64_t d_ino;
  std::int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[1];
};

// A decimal number that is the whole string, or -1.
long parse_decimal(const char* s) {
  if (!*s) return -1;
  long v = 0;
  for (; *s; ++s) {
    if (*s < '0' || *s > '9' || v > 100000000) return -1;
    v = v * 10 + (*s - '0');
  }
  return v;
}

// Calls fn(name) for every entry of the open directory `fd` except "." and "..".
template <class F>
void each_entry(int fd, F&& fn) {
  alignas(8) char buf[4096];
  for (;;) {
    const long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
    if (n <= 0) return;
    for (long off = 0; off < n;) {
      auto* d = reinterpret_cast<Dirent64*>(buf + off);
      off += d->d_reclen;
      const char* name = d->d_name;
      if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'))) continue;
      fn(name);
    }
  }
}

void guard_send(int fd, int kind, int value) {
  GuardMsg m{kind, value};
  while (::write(fd, &m, sizeof m) < 0 && errno == EINTR) {
  }
}

// Nothing of the worker's leaks into the guard (and so into the child): a descriptor
// held here would keep another member's pipes open.
void close_fds_except(const int* keep, int n_keep) {
  auto kept = [&](long fd) {
    for (int i = 0; i < n_keep; ++i)
      if (keep[i] == fd) return true;
    return false;
  };
  const int dir = ::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) {
    for (int fd = 3; fd < 4096; ++fd)
      if (!kept(fd)) ::close(fd);
    return;
  }
  each_entry(dir, [&](const char* name) {
    const long fd = parse_decimal(name);
    if (fd > 2 && fd != dir && !kept(fd)) ::close(static_cast<int>(fd));
  });
  ::close(dir);
}

// SIGKILLs every process whose parent is `self` (from /proc/PID/stat).
void kill_children(pid_t self) {
  const int proc = ::open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (proc < 0) return;
  each_entry(proc, [&](const char* name) {
    const long pid = parse_decimal(name);
    if (pid <= 0) return;
    char path[64] = "/proc/";
    std::size_t at = 6;
    for (const char* c = name; *c && at < 40; ++c) path[at++] = *c;
    const char tail[] = "/stat";
    for (std::size_t i = 0; i < sizeof tail; ++i) path[at++] = tail[i];
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    char stat[256];
    const ssize_t n = ::read(fd, stat, sizeof stat - 1);
    ::close(fd);
    if (n <= 0) return;
    stat[n] = '\0';
    // "PID (comm) S PPID ...": comm may hold anything, so look after its last ')'.
    const char* close_paren = nullptr;
    for (const char* c = stat; *c; ++c)
      if (*c == ')') close_paren = c;
    if (!close_paren || close_paren[1] != ' ' || !close_paren[2] || close_paren[3] != ' ') return;
    long ppid = 0;
    for (const char* c = close_paren + 4; *c >= '0' && *c <= '9'; ++c) ppid = ppid * 10 + (*c - '0');
    if (ppid == self) ::kill(static_cast<pid_t>(pid), SIGKILL);
  });
  ::close(proc);
}

// rm -r with *at calls; never follows a symbolic link.
void remove_tree_at(int parent, const char* name, int depth) {
  if (::unlinkat(parent, name, 0) == 0 || errno == ENOENT) return;
  if (depth > 32) return;
  const int fd = ::openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return;
  for (int pass = 0; pass < 100; ++pass) {  // again from the top until empty
    bool any = false;
    ::lseek(fd, 0, SEEK_SET);
    each_entry(fd, [&](const char* entry) {
      any = true;
      remove_tree_at(fd, entry, depth + 1);
    });
    if (!any) break;
  }
  ::close(fd);
  ::unlinkat(parent, name, AT_REMOVEDIR);
}

[[noreturn]] void exec_child(const GuardPlan& g, pid_t guard) {
  setpgid(0, 0);                     // its own group: a kill takes its helpers too
  prctl(PR_SET_PDEATHSIG, SIGKILL);  // should the guard itself be killed
  if (getppid() != guard) _exit(127);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &dfl, nullptr);  // ignored ones survive exec
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  dup2(g.in_r, 0);
  dup2(g.out_w, 1);
  dup2(g.err_w, 2);
  ExecFailure f{0, 0};
  if (g.cwd && chdir(g.cwd) != 0) {
    f = {1, errno};
  } else {
    execve(g.exe, g.argv, g.envp);
    f = {2, errno};
  }
  ssize_t ignored = ::write(g.report_w, &f, sizeof f);
  (void)ignored;
  _exit(127);
}

[[noreturn]] void guard_main(const GuardPlan& g) {
  // Its own process group, so the terminal's Ctrl-C (meant for the worker, which stops
  // gracefully) does not reach it; it goes when the worker goes.
  setpgid(0, 0);
  struct sigaction sa {};
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = SIG_IGN;
  for (int sig : {SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGUSR1, SIGUSR2}) sigaction(sig, &sa, nullptr);
  sa.sa_handler = guard_on_signal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGCHLD, &sa, nullptr);
  sigset_t blocked;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGCHLD);
  sigaddset(&blocked, SIGTERM);
  sigprocmask(SIG_SETMASK, &blocked, nullptr);  // delivered only inside ppoll below

  const int keep[] = {g.in_r, g.out_w, g.err_w, g.report_w, g.status_w, g.life_r};
  close_fds_except(keep, 6);
  // Every orphan among the child's descendants (setsid, double fork) is reparented here.
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  const pid_t self = getpid();

  const pid_t child = fork();
  if (child == 0) exec_child(g, self);
  if (child < 0) {
    guard_send(g.status_w, kGuardForkFailed, errno);
    _exit(1);
  }
  setpgid(child, child);  // also from this side, so a kill right away reaches the group
  ::close(g.in_r);
  ::close(g.out_w);
  ::close(g.err_w);
  ::close(g.report_w);
  guard_send(g.status_w, kGuardPid, child);

  bool child_reaped = false, worker_gone = false;
  auto reap_some = [&]() {
    for (;;) {
      int st = 0;
      const pid_t r = waitpid(-1, &st, WNOHANG);
      if (r > 0) {
        if (r == child) {
          child_reaped = true;
          guard_send(g.status_w, kGuardExit, st);
        }
        continue;
      }
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return errno == ECHILD ? -1 : 0;
      return 0;  // children left, none ended
    }
  };
  for (;;) {
    reap_some();  // the child's own exit is reported at once; orphans that end are reaped
    if (g_guard_term) break;
    struct pollfd p = {g.life_r, POLLIN, 0};
    sigset_t open_mask;
    sigemptyset(&open_mask);
    if (ppoll(&p, 1, nullptr, &open_mask) <= 0) continue;  // EINTR: SIGCHLD or SIGTERM
    char c = 0;
    const ssize_t n = ::read(g.life_r, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    worker_gone = !(n == 1 && c == kKillAll);
    break;
  }

  // Kill it all: the child's group, then every descendant, each round the direct
  // children (orphans of the killed ones arrive here before their parent is reaped),
  // until there is nothing left to wait for.
  if (!child_reaped) {
    ::kill(-child, SIGKILL);
    ::kill(child, SIGKILL);
  }
  for (;;) {
    kill_children(self);
    if (reap_some() < 0) break;
    struct timespec pause = {0, 2 * 1000 * 1000};
    nanosleep(&pause, nullptr);
  }
  if (worker_gone && g.scratch) remove_tree_at(AT_FDCWD, g.scratch, 0);
  _exit(0);
}

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
  const std::string scratch = spec.remove_if_orphaned;

  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, report[2] = {-1, -1}, status[2] = {-1, -1},
      life[2] = {-1, -1};
  auto close_all = [&] {
    for (int* p : {in, out, err, report, status, life}) {
      if (p[0] >= 0) ::close(p[0]);
      if (p[1] >= 0) ::close(p[1]);
    }
  };
  try {
    make_pipe(in);
    make_pipe(out);
    make_pipe(err);
    make_pipe(report);
    make_pipe(status);
    // A socket, not a pipe: the worker writes to it with MSG_NOSIGNAL (no SIGPIPE if the guard is gone).
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, life) != 0)
      throw Error(std::string("cannot create a socket pair: ") + std::strerror(errno));
    life[0] = above_stdio(life[0]);
    life[1] = above_stdio(life[1]);
  } catch (...) {
    close_all();
    throw;
  }
  const GuardPlan plan{exe.c_str(),
                       argv.data(),
                       envp.data(),
                       cwd.empty() ? nullptr : cwd.c_str(),
                       scratch.empty() ? nullptr : scratch.c_str(),
                       in[0],
                       out[1],
                       err[1],
                       report[1],
                       status[1],
                       life[0]};

  guard_pid_ = fork();
  if (guard_pid_ < 0) {
    const int e = errno;
    close_all();
    throw Error(std::string("fork failed: ") + std::strerror(e));
  }
  if (guard_pid_ == 0) guard_main(plan);

  for (int fd : {in[0], out[1], err[1], report[1], status[1], life[0]}) ::close(fd);
  in_fd_ = in[1];
  out_fd_ = out[0];
  err_fd_ = err[0];
  status_fd_ = status[0];
  life_fd_ = life[1];

  // The guard names the child first (or says why it could not fork one).
  GuardMsg first{0, 0};
  ssize_t n;
  do {
    n = ::read(status_fd_, &first, sizeof first);
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof first) || first.kind != kGuardPid) {
    ::close(report[0]);
    kill_and_reap(std::chrono::milliseconds(0));
    close_fd(in_fd_);
    close_fd(out_fd_);
    close_fd(err_fd_);
    close_fd(status_fd_);
    if (n == static_cast<ssize_t>(sizeof first) && first.kind == kGuardForkFailed)
      throw Error(std::string("fork failed: ") + std::strerror(first.value));
    throw Error("the guard process ended before starting the trainer");
  }
  pid_ = first.value;

  ExecFailure f{0, 0};
  do {
    n = ::read(report[0], &f, sizeof f);
  } while (n < 0 && errno == EINTR);
  ::close(report[0]);
  if (n == static_cast<ssize_t>(sizeof f)) {
    kill_and_reap(std::chrono::milliseconds(0));
    close_fd(in_fd_);
    close_fd(out_fd_);
    close_fd(err_fd_);
    close_fd(status_fd_);
    if (f.stage == 1) throw Error("cannot change to the working directory '" + cwd + "': " + std::strerror(f.err));
    throw Error("cannot execute '" + exe + "': " + std::strerror(f.err));
  }
  set_nonblocking(in_fd_);
  set_nonblocking(out_fd_);
  set_nonblocking(err_fd_);
  set_nonblocking(status_fd_);
}

ChildProcess::~ChildProcess() {
  kill_and_reap(std::chrono::milliseconds(100));
  close_fd(in_fd_);
  close_fd(out_fd_);
  close_fd(err_fd_);
  close_fd(status_fd_);
  close_fd(life_fd_);
}

void ChildProcess::read_status() {
  if (status_fd_ < 0) return;
  char chunk[256];
  for (;;) {
    const ssize_t n = ::read(status_fd_, chunk, sizeof chunk);
    if (n > 0) {
      status_buf_.append(chunk, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    close_fd(status_fd_);  // the guard has exited
    break;
  }
  while (status_buf_.size() >= sizeof(GuardMsg)) {
    GuardMsg m;
    std::memcpy(&m, status_buf_.data(), sizeof m);
    status_buf_.erase(0, sizeof m);
    if (m.kind == kGuardExit && !child_exited_) {
      child_exited_ = true;
      child_status_ = m.value;
      exit_text_ = describe_wait_status(m.value);
    }
  }
  if (status_fd_ < 0 && !child_exited_) {
    // The guard is gone without a word (killed): its child went with it (PDEATHSIG).
    child_exited_ = true;
    exit_text_ = "ended (its guard process was killed)";
  }
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
      struct timespec zero {
        0, 0
      };
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
      // A child that exited while a process it started holds its stdin never reads it.
      read_status();
      if (child_exited_) {
        restore();
        return Put::Closed;
      }
      struct pollfd p[3] = {{in_fd_, POLLOUT, 0}, {err_fd_, POLLIN, 0}, {status_fd_, POLLIN, 0}};
      int timeout = ms_until(deadline);
      if (timeout == 0) {
        restore();
        return Put::Timeout;
      }
      int r = ::poll(p, 3, timeout);  // negative descriptors are skipped
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
    if (child_exited_) {
      // What it wrote before it exited is in the pipe by now; what a process it started
      // might still write is not a reply. The status came after the data, so drain once.
      read_into(out_fd_, out_buf_, false);
      nl = out_buf_.find('\n');
      if (nl != std::string::npos || out_buf_.size() > max_line_) continue;
      return Got::Eof;
    }
    if (Clock::now() >= deadline) return Got::Timeout;  // even if stderr never stops talking
    struct pollfd p[3] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}, {status_fd_, POLLIN, 0}};
    const int timeout = ms_until(deadline);
    int r = ::poll(p, 3, timeout);  // negative descriptors are skipped
    if (r < 0) {
      if (errno == EINTR) continue;
      throw Error(std::string("poll failed: ") + std::strerror(errno));
    }
    if (r > 0 && err_fd_ >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) pump_stderr(false);
    if (r > 0 && status_fd_ >= 0 && (p[2].revents & (POLLIN | POLLHUP | POLLERR))) read_status();
    if (r > 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
      read_into(out_fd_, out_buf_, false);
      continue;
    }
  }
}

void ChildProcess::close_stdin() { close_fd(in_fd_); }

bool ChildProcess::wait_exit(Clock::time_point deadline) {
  for (;;) {
    read_status();
    if (reaped_ || child_exited_) return true;
    if (Clock::now() >= deadline) return false;
    // Keep draining stderr while we wait (a child blocked on a full stderr pipe never exits).
    struct pollfd p[2] = {{status_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
    const int r = ::poll(p, 2, ms_until(deadline));
    if (r > 0 && err_fd_ >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) pump_stderr(false);
  }
}

std::string ChildProcess::kill_and_reap(std::chrono::milliseconds drain) {
  if (reaped_) return exit_text_;
  // The guard kills the child's group and every descendant, reaps them, reports the
  // child's status and exits.
  if (life_fd_ >= 0) {
    const char k = kKillAll;
    while (::send(life_fd_, &k, 1, MSG_NOSIGNAL) < 0 && errno == EINTR) {
    }
    close_fd(life_fd_);
  }
  int status = 0;
  pid_t r;
  do {
    r = waitpid(guard_pid_, &status, 0);
  } while (r < 0 && errno == EINTR);
  reaped_ = true;
  if (status_fd_ >= 0) fcntl(status_fd_, F_SETFL, fcntl(status_fd_, F_GETFL) | O_NONBLOCK);
  read_status();  // the guard has exited: all it said is in the pipe
  if (!child_exited_)
    exit_text_ = "ended (its status was lost: the guard process " + describe_wait_status(status) + ")";
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
  close_fd(status_fd_);
  return exit_text_;
}

}  // namespace pbt::external
