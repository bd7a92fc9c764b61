#pragma once
// The `process` trainable: a trainer in any language, run as a child process that speaks
// the line-delimited JSON protocol of docs/protocol.md on its stdin/stdout. Its stderr
// goes to the worker's log, tagged with the member. The child lives as long as this
// object: the worker keeps the trainable of the member it worked on last, so a member that
// stays with its worker keeps its process across intervals; when the worker moves on to
// another member, a trainer of protocol 1.2 or later is told to serve it (`member`), an
// older one is replaced by a new process, as is any trainer after a failure.
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pbt/error.hpp"
#include "pbt/trainable.hpp"

namespace pbt {

namespace external {
class ChildProcess;
}

// The protocol version this engine speaks. A trainer whose major version differs is refused.
inline constexpr int kProtocolMajor = 1;
inline constexpr int kProtocolMinor = 3;
// The first minor version whose trainers receive `copied` after a load of another member's
// checkpoint; older trainers never see the op.
inline constexpr int kCopiedSinceMinor = 1;
// The first minor version whose trainers receive `member` (serve another member from now
// on, in the same process); older trainers are restarted instead.
inline constexpr int kSwitchSinceMinor = 2;
// The first minor version whose trainers' apply reply may carry "h", the hyperparameters the
// trainer accepted (the engine's h in force from then on); an older trainer's "h" is ignored.
inline constexpr int kAcceptedSinceMinor = 3;

struct ProcessOptions {
  std::vector<std::string> argv;           // required; argv[0] is looked up in PATH
  std::string cwd;                         // empty: the worker's working directory
  std::map<std::string, std::string> env;  // extra environment variables
  struct Timeouts {                        // seconds per request
    double start = 60;                     // launch until the reply to init
    double apply = 60;
    double step = 3600;  // one step request, whatever its n
    double eval = 600;
    double save = 300;
    double load = 300;
    double shutdown = 10;  // a polite exit before the process group is killed
  } timeouts;
  bool fail_on_non_finite = true;  // on_non_finite = "fail" (default) | "rank_last"
  // Where checkpoint files pass; empty: the store's scratch directory when it has one (so
  // that a saved file is adopted by rename and a load is a hard link), else $TMPDIR or /tmp.
  std::string scratch_dir;
};

// What the engine reads from a trainer, checked without a trainer attached (the worker
// uses these on every line; the protocol fuzzer feeds them mutated lines). Each either
// accepts the line or throws a pbt::Error whose message is the cause, never anything else.
namespace protocol {

inline constexpr std::size_t kMaxLine = 16u << 20;   // bytes in a reply line
inline constexpr int kMaxDepth = 64;                 // nesting of arrays and objects in a line
inline constexpr std::size_t kTracebackKept = 8192;  // the end of a traceback, in bytes
inline constexpr std::size_t kErrorKept = 2000;      // the first line of an error message, in bytes

// An "ok": false reply: the trainer is alive and said why it failed.
class TrainerError : public Error {
 public:
  TrainerError(const std::string& message, std::string traceback)
      : Error("the trainer reported an error: " + message + (traceback.empty() ? "" : "\n" + traceback)),
        traceback_(std::move(traceback)) {}
  const std::string& traceback() const { return traceback_; }  // already cut to kTracebackKept

 private:
  std::string traceback_;
};

// "" when `line` nests at most `max_depth` deep; otherwise what is too deep, for a message.
std::string too_deep(const std::string& line, int max_depth = kMaxDepth);
// What a trainer's hello states.
struct Hello {
  int minor = 0;                 // the minor version (what it may be sent)
  bool sequential_save = false;  // it writes save files front to back (read while they grow)
};
// The hello (the first line); throws when it is not one or states another major version.
Hello check_hello(const std::string& line);
// A reply to request `id`: the parsed object when "ok" is true; TrainerError when false.
nlohmann::json parse_reply(const std::string& line, std::int64_t id);
// The h of an apply reply (1.3), if it has one: an object of numbers and strings, else an
// Error naming the hyperparameter. Whether h fits [space] is the worker's check.
std::optional<Hyperparams> read_apply(const nlohmann::json& reply);
// The score of an eval reply (may be non-finite: the caller decides).
Score read_eval(const nlohmann::json& reply);
// An error message's first line and a traceback's end, cut to the limits above.
std::string cut_error_message(const std::string& message);
std::string cut_traceback(const std::string& traceback);

}  // namespace protocol

// Reads and checks the [trainable] options of kind "process"; ConfigErrors name the field.
ProcessOptions read_process_options(const nlohmann::json& options, const std::string& where);

class ProcessTrainable : public Trainable {
 public:
  // Starts the child and completes the handshake (hello, init); throws pbt::Error if not.
  ProcessTrainable(ProcessOptions options, const TrainableContext& ctx);
  ~ProcessTrainable() override;  // asks the child to shut down, then kills its process group

  void apply(const Hyperparams& h) override;
  // What the trainer's last apply reply said it accepted (protocol 1.3 or later), if it said.
  std::optional<Hyperparams> accepted() const override;
  void step(std::int64_t n) override;
  Score eval() override;
  void save(CheckpointWriter& out) const override;
  void load(CheckpointReader& in) override;
  // Sends `copied` to a trainer of protocol 1.1 or later; nothing to an older one.
  void copied(const Copied& from) override;
  // Sends `member` to a running trainer of protocol 1.2 or later and returns true (the
  // trainer rebuilt itself for ctx.member); false for an older trainer, a dead one, or
  // other options, which the worker then replaces by a new process. A failed op throws.
  bool switch_member(const TrainableContext& ctx) override;

  int pid() const;  // the child's pid (-1 when it is not running): for tests

 private:
  nlohmann::json request(const std::string& what, nlohmann::json message, double timeout_s) const;
  void handshake();
  [[noreturn]] void fail(const std::string& what, const std::string& cause, bool kill) const;
  std::string stderr_tail() const;
  std::string scratch_file(const char* prefix) const;

  ProcessOptions opt_;
  nlohmann::json options_;  // as the config gave them: a switch serves the same options only
  int member_;
  std::uint64_t seed_;
  int trainer_minor_ = 0;                // the minor protocol version the trainer's hello stated
  bool sequential_save_ = false;         // its hello promised save files written front to back
  std::optional<Hyperparams> accepted_;  // from the last apply reply
  std::function<void(const std::string&)> log_;
  std::string scratch_;
  std::string label_;  // "member 3 (trainer: python3 train.py)" for messages
  mutable std::unique_ptr<external::ChildProcess> child_;
  mutable std::deque<std::string> tail_;
  mutable std::int64_t next_id_ = 1;
  mutable int files_ = 0;
  mutable std::string dead_;  // why the child is gone, once it is
};

void register_process_trainable();

}  // namespace pbt
