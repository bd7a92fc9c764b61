#pragma once
// A child process with pipes on its stdin, stdout and stderr, started with fork/execve
// (never through a shell) in a process group of its own, and driven with poll() and
// deadlines. Nothing here knows the protocol: it moves lines and kills processes.
//
// Between the worker and the child sits a small GUARD process (forked, never exec'd,
// raw system calls only). It is a child subreaper, so every process the child starts,
// even one that calls setsid() or double-forks, stays its descendant. It reports the
// child's exit status to the worker the moment the child exits (even while a grandchild
// still holds the child's stdout), and when the worker asks, or dies (its end of a pipe
// closes), it SIGKILLs the child's process group and then every descendant it has, reaps
// them all and exits. When the worker died it also removes `remove_if_orphaned`.
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace pbt::external {

using Clock = std::chrono::steady_clock;

struct ChildSpec {
  std::vector<std::string> argv;           // argv[0] is looked up in PATH when it has no '/'
  std::string cwd;                         // empty: the caller's
  std::map<std::string, std::string> env;  // added to (or replacing in) the caller's environment
  std::string remove_if_orphaned;          // a directory the guard removes if the worker dies
};

class ChildProcess {
 public:
  enum class Got { Line, Eof, Timeout, TooLong };
  enum class Put { Ok, Closed, Timeout };

  // Called with every complete line the child writes to its stderr (without the newline).
  using LineSink = std::function<void(const std::string&)>;

  // Starts the child. Throws pbt::Error when it cannot be started (executable not found,
  // cwd missing, exec failed): the message says which and why.
  ChildProcess(const ChildSpec& spec, LineSink on_stderr, std::size_t max_line = 16u << 20);
  ~ChildProcess();  // kills the process group and reaps the child
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }  // the child's (not the guard's)
  pid_t guard_pid() const { return guard_pid_; }
  bool running() const { return !reaped_; }
  // True once the child itself exited (its descendants may live on until kill_and_reap).
  bool exited() const { return child_exited_; }

  // Writes `data` to the child's stdin before `deadline` (stderr is drained meanwhile).
  // A child that closed its stdin or died gives Closed: never SIGPIPE.
  Put write(const std::string& data, Clock::time_point deadline);
  // The next line on the child's stdout (without the newline). Lines on stderr are
  // handed to the sink as they come. Eof: the child closed its stdout, or exited (even
  // if a process it started still holds its stdout) with no complete line left.
  Got read_line(std::string& line, Clock::time_point deadline);
  // What was read after the last complete stdout line (for messages about garbage).
  const std::string& pending_stdout() const { return out_buf_; }

  // Closes the child's stdin (a polite "no more requests").
  void close_stdin();
  // Waits until the child exits or `deadline` passes; true when it exited (not reaped yet).
  bool wait_exit(Clock::time_point deadline);
  // SIGKILLs the whole process group, reaps the child and drains what is left on its
  // stderr (up to `drain`). Idempotent. Returns a description of how it ended.
  std::string kill_and_reap(std::chrono::milliseconds drain = std::chrono::milliseconds(300));
  // "exited with code 3", "was killed by signal 9 (Killed)"; empty while running.
  const std::string& exit_description() const { return exit_text_; }

 private:
  void pump_stderr(bool final_flush);
  void read_status();  // what the guard reported: the child's pid, its exit
  bool read_into(int& fd, std::string& buf, bool is_stderr);
  void emit_stderr_lines(bool final_flush);

  pid_t pid_ = -1, guard_pid_ = -1;
  int in_fd_ = -1, out_fd_ = -1, err_fd_ = -1;
  int status_fd_ = -1;  // guard -> worker: the child's pid, then its wait status
  int life_fd_ = -1;    // worker -> guard: a byte then EOF = "kill it all"; EOF alone = the worker died
  std::string status_buf_;
  bool child_exited_ = false;
  int child_status_ = 0;
  std::string out_buf_, err_buf_;
  LineSink on_stderr_;
  std::size_t max_line_;
  bool reaped_ = false;
  std::string exit_text_;
};

// "exited with code 3" / "was killed by signal 11 (Segmentation fault)".
std::string describe_wait_status(int status);

}  // namespace pbt::external
