// The engine side of the process protocol (docs/protocol.md, version 1.3).
#include "trainables/external/process.hpp"

#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "pbt/error.hpp"
#include "pbt/options.hpp"
#include "core/process_owner.hpp"
#include "trainables/external/child_process.hpp"

namespace pbt {

using external::ChildProcess;
using external::ChildSpec;
using external::Clock;
using nlohmann::json;

namespace {

constexpr std::size_t kTailLines = 12;  // stderr lines quoted in an error message

double check_seconds(Options& t, const std::string& key, double def) {
  double v = t.number(key, def);
  if (!std::isfinite(v) || v <= 0 || v > 1e7)
    throw ConfigError(t.path(key), "must be a number of seconds in (0, 10000000]");
  return v;
}

Clock::time_point after(double seconds) {
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

std::string seconds_text(double s) {
  std::ostringstream o;
  o << s << " s";
  return o.str();
}

// A line the trainer wrote, quoted for a message: cut, control bytes and non-ASCII shown as \xNN.
std::string quote(const std::string& s, std::size_t max = 160) {
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < max; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (s.size() > max) out += "... (" + std::to_string(s.size()) + " bytes)";
  return "'" + out + "'";
}

std::string shown_argv(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) {
    if (!s.empty()) s += ' ';
    s += a;
    if (s.size() > 100) return s.substr(0, 100) + "...";
  }
  return s;
}

// Scores travel as JSON numbers; JSON has no NaN or infinity, so those travel as the
// strings "NaN", "Infinity", "-Infinity" (the spellings Python's json uses), or null.
bool to_number(const json& v, double& out) {
  if (v.is_number()) {
    out = v.get<double>();
    return true;
  }
  if (v.is_null()) {
    out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (s == "NaN" || s == "nan") out = std::numeric_limits<double>::quiet_NaN();
    else if (s == "Infinity" || s == "inf") out = HUGE_VAL;
    else if (s == "-Infinity" || s == "-inf") out = -HUGE_VAL;
    else return false;
    return true;
  }
  return false;
}

// The protocol version a hello states: "1.0", "1" or 1 -> (major, minor).
bool parse_version(const json& v, int& major, int& minor) {
  if (v.is_number_integer()) {
    major = v.get<int>();
    minor = 0;
    return true;
  }
  if (!v.is_string()) return false;
  const std::string s = v.get<std::string>();
  char* end = nullptr;
  long ma = std::strtol(s.c_str(), &end, 10);
  if (end == s.c_str()) return false;
  long mi = 0;
  if (*end == '.') {
    const char* start = end + 1;
    mi = std::strtol(start, &end, 10);
    if (end == start) return false;
  }
  if (*end != '\0') return false;
  major = static_cast<int>(ma);
  minor = static_cast<int>(mi);
  return true;
}

// Who owns a scratch directory, in the marker file inside it: "host pid start boot", the
// worker's start time (clock ticks since boot) telling it from a later process with its pid.
constexpr const char* kOwnerFile = ".pbt-owner";

using process_owner::boot_id;
using process_owner::host_name;
using process_owner::may_be_alive;
using process_owner::name_tag;
using process_owner::owner_identity;
using process_owner::read_first_line;
using process_owner::tag_of;

// Scratch directories whose worker is gone (its guard removes them, unless it was killed
// too): a directory of this host whose owner is not the running process it names, by its
// name's tag or, for one without, by its marker file.
void sweep_stale_scratch(const std::string& base) {
  std::error_code ec;
  std::filesystem::directory_iterator it(base, ec);
  if (ec) return;
  const std::string host = host_name();
  const std::string boot = boot_id();
  for (const auto& e : it) {
    const std::string name = e.path().filename().string();
    if (name.rfind("pbt-member", 0) != 0 || !e.is_directory(ec) || e.is_symlink(ec)) continue;
    struct stat st {};
    if (::lstat(e.path().c_str(), &st) != 0 || st.st_uid != ::getuid()) continue;  // another user's
    long pid = 0;
    std::string start;
    bool same_boot = false;
    // pbt-member<m>-<hosttag>.<pid>.<start>.<boottag>-XXXXXX
    const auto first = name.find('-'), last = name.rfind('-');
    std::string tag = first != last ? name.substr(first + 1, last - first - 1) : "";
    const auto dash = tag.find('-');
    if (dash != std::string::npos) tag = tag.substr(dash + 1);
    std::istringstream fields(tag);
    std::string h, p, b;
    if (std::getline(fields, h, '.') && std::getline(fields, p, '.') && std::getline(fields, start, '.') &&
        std::getline(fields, b, '.') && h.size() == 8 && b.size() == 8) {
      if (h != tag_of(host)) continue;  // another host's
      pid = std::atol(p.c_str());
      same_boot = b == tag_of(boot);
    } else {
      std::istringstream owner(read_first_line((e.path() / kOwnerFile).string()));
      std::string marker_boot;
      if (!(owner >> h >> pid >> start >> marker_boot) || h != host) continue;  // not ours to judge
      same_boot = marker_boot == boot;
    }
    if (pid <= 0 || may_be_alive(pid, start, same_boot)) continue;
    std::filesystem::remove_all(e.path(), ec);
  }
}

// A directory of our own for the checkpoint files that pass between engine and trainer.
std::string make_scratch(const std::string& base_in, int member) {
  std::string base = base_in;
  if (base.empty()) {
    const char* t = std::getenv("TMPDIR");
    base = t && *t ? t : "/tmp";
  }
  std::error_code ec;
  std::filesystem::create_directories(base, ec);
  sweep_stale_scratch(base);
  std::string templ = base + "/pbt-member" + std::to_string(member) + "-" + name_tag(getpid()) + "-XXXXXX";
  if (!mkdtemp(templ.data()))
    throw Error("member " + std::to_string(member) + ": cannot create a scratch directory in '" + base +
                "': " + std::strerror(errno));
  std::ofstream(templ + "/" + kOwnerFile) << owner_identity(getpid()) << "\n";
  return templ;
}

}  // namespace

// ---------------------------------------------------------------- reading what a trainer writes

namespace protocol {

std::string too_deep(const std::string& line, int max_depth) {
  // A scan of the brackets outside strings, before any parser sees the line: a
  // recursive parse (or copy, or destruction) of 100,000 levels overflows the stack.
  int depth = 0;
  bool in_string = false, escaped = false;
  std::size_t string_start = 0, key_start = std::string::npos, key_end = 0;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
        if (depth == 1) {  // at the top level, the last string before a nested value is its key
          key_start = string_start;
          key_end = i;
        }
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
      string_start = i + 1;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) {
        const std::string where = key_start == std::string::npos
                                      ? std::string("the line")
                                      : quote(line.substr(key_start, key_end - key_start), 60);
        return where + " nests arrays and objects more than " + std::to_string(max_depth) + " levels deep";
      }
    } else if (c == '}' || c == ']') {
      if (depth > 0) --depth;
    }
  }
  return "";
}

std::string cut_error_message(const std::string& message) {
  std::string first = message.substr(0, message.find('\n'));
  if (!first.empty() && first.back() == '\r') first.pop_back();
  std::size_t dropped = message.size() - first.size();
  if (first.size() > kErrorKept) {
    std::size_t keep = kErrorKept;
    while (keep > 0 && (static_cast<unsigned char>(first[keep]) & 0xC0) == 0x80) --keep;  // whole UTF-8 characters
    dropped += first.size() - keep;
    first.resize(keep);
  }
  if (dropped > 0) first += " ... (" + std::to_string(dropped) + " bytes cut)";
  return first;
}

std::string cut_traceback(const std::string& traceback) {
  std::string tb = traceback;
  while (!tb.empty() && (tb.back() == '\n' || tb.back() == '\r')) tb.pop_back();
  if (tb.size() <= kTracebackKept) return tb;
  // Its end is what matters: the innermost frames and the exception.
  std::size_t from = tb.size() - kTracebackKept;
  while (from < tb.size() && (static_cast<unsigned char>(tb[from]) & 0xC0) == 0x80) ++from;
  return "... (" + std::to_string(from) + " bytes cut)\n" + tb.substr(from);
}

Hello check_hello(const std::string& line) {
  const std::string deep = too_deep(line);
  if (!deep.empty()) throw Error("protocol error: the hello is refused: " + deep + " (docs/protocol.md, Limits)");
  json hello = json::parse(line, nullptr, false);
  if (hello.is_discarded() || !hello.is_object() || !hello.contains("hello") || !hello.contains("protocol"))
    throw Error("the first line on stdout is not a protocol hello ({\"hello\": ..., \"protocol\": \"1.0\"}): " +
                quote(line));
  int major = 0, minor = 0;
  if (!parse_version(hello["protocol"], major, minor))
    throw Error("the hello states no readable protocol version: " + quote(line));
  if (major != kProtocolMajor)
    throw Error("the trainer speaks protocol version " + std::to_string(major) + "." + std::to_string(minor) +
                "; this engine speaks version " + std::to_string(kProtocolMajor) + "." +
                std::to_string(kProtocolMinor) + " (docs/protocol.md) and refuses another major version");
  Hello h;
  h.minor = minor;
  if (hello.contains("sequential_save")) {
    if (!hello["sequential_save"].is_boolean())
      throw Error("the hello's \"sequential_save\" must be true or false: " + quote(line));
    h.sequential_save = hello["sequential_save"].get<bool>();
  }
  return h;
}

json parse_reply(const std::string& reply, std::int64_t id) {
  const std::string deep = too_deep(reply);
  if (!deep.empty()) throw Error("protocol error: the reply is refused: " + deep + " (docs/protocol.md, Limits)");
  json j = json::parse(reply, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    throw Error("wrote a line on stdout that is not a JSON object: " + quote(reply) +
                " (stdout is for protocol messages only; print logs to stderr)");
  if (!j.contains("id") || j["id"] != id)
    throw Error("protocol error: the reply's id is " + (j.contains("id") ? quote(j["id"].dump(), 40) : "missing") +
                ", expected " + std::to_string(id) + ": " + quote(reply));
  if (!j.contains("ok") || !j["ok"].is_boolean())
    throw Error("protocol error: the reply has no boolean \"ok\": " + quote(reply));
  if (!j["ok"].get<bool>()) {
    const std::string error = j.contains("error") && j["error"].is_string() ? j["error"].get<std::string>()
                                                                            : std::string("(no error message)");
    std::string tb;
    if (j.contains("traceback") && j["traceback"].is_string()) tb = cut_traceback(j["traceback"].get<std::string>());
    throw TrainerError(cut_error_message(error), tb);
  }
  return j;
}

Score read_eval(const json& r) {
  Score s;
  if (!r.contains("score") || !to_number(r["score"], s.value))
    throw Error("protocol error: the reply has no numeric \"score\": " +
                quote(r.dump(-1, ' ', false, json::error_handler_t::replace)));
  if (r.contains("samples")) {
    const json& smp = r["samples"];
    if (!smp.is_array()) throw Error("protocol error: \"samples\" is not an array");
    for (const auto& x : smp) {
      double v;
      if (!to_number(x, v)) throw Error("protocol error: \"samples\" holds a value that is not a number");
      s.samples.push_back(v);
    }
  }
  if (r.contains("metrics")) {
    if (!r["metrics"].is_object()) throw Error("protocol error: \"metrics\" is not an object");
    s.metrics = r["metrics"];
  }
  return s;
}

std::optional<Hyperparams> read_apply(const json& r) {
  if (!r.contains("h")) return std::nullopt;
  const json& h = r["h"];
  if (!h.is_object())
    throw Error("protocol error: the apply reply's \"h\" is not an object of hyperparameters: " +
                quote(h.dump(-1, ' ', false, json::error_handler_t::replace)));
  try {
    return hyperparams_from_json(h);
  } catch (const Error& e) {
    throw Error(std::string("protocol error: the apply reply's \"h\" is refused: ") + e.what());
  }
}

}  // namespace protocol

ProcessOptions read_process_options(const json& j, const std::string& where) {
  Options o(j, where);
  ProcessOptions p;
  p.argv = o.strings("argv");
  if (p.argv.empty())
    throw ConfigError(o.path("argv"), "must name the program, e.g. argv = [\"python3\", \"train.py\"]");
  if (p.argv[0].empty()) throw ConfigError(o.path("argv"), "argv[0] (the program) is empty");
  for (std::size_t i = 0; i < p.argv.size(); ++i)
    if (p.argv[i].find('\0') != std::string::npos)
      throw ConfigError(o.path("argv"), "argv[" + std::to_string(i) + "] contains a NUL character");

  if (o.has("cwd")) {
    p.cwd = o.string("cwd", "");
    if (p.cwd.empty()) throw ConfigError(o.path("cwd"), "is empty (leave it out to use the worker's directory)");
  }

  if (const json* env = o.raw("env")) {
    if (!env->is_object())
      throw ConfigError(o.path("env"), std::string("expected a table of strings, got ") + json_type_name(*env));
    for (const auto& [k, v] : env->items()) {
      const std::string field = o.path("env") + "." + k;
      if (k.empty() || k.find('=') != std::string::npos || k.find('\0') != std::string::npos)
        throw ConfigError(field, "is not a valid environment variable name");
      if (!v.is_string()) throw ConfigError(field, std::string("expected a string, got ") + json_type_name(v));
      const std::string value = v.get<std::string>();
      if (value.find('\0') != std::string::npos) throw ConfigError(field, "contains a NUL character");
      p.env[k] = value;
    }
  }

  Options t = o.table("timeouts");
  p.timeouts.start = check_seconds(t, "start", p.timeouts.start);
  p.timeouts.apply = check_seconds(t, "apply", p.timeouts.apply);
  p.timeouts.step = check_seconds(t, "step", p.timeouts.step);
  p.timeouts.eval = check_seconds(t, "eval", p.timeouts.eval);
  p.timeouts.save = check_seconds(t, "save", p.timeouts.save);
  p.timeouts.load = check_seconds(t, "load", p.timeouts.load);
  p.timeouts.shutdown = check_seconds(t, "shutdown", p.timeouts.shutdown);
  t.finish();

  const std::string nf = o.string("on_non_finite", "fail");
  if (nf != "fail" && nf != "rank_last")
    throw ConfigError(o.path("on_non_finite"), "must be \"fail\" or \"rank_last\", got \"" + nf + "\"");
  p.fail_on_non_finite = nf == "fail";

  if (o.has("scratch_dir")) {
    p.scratch_dir = o.string("scratch_dir", "");
    if (p.scratch_dir.empty()) throw ConfigError(o.path("scratch_dir"), "is empty");
  }
  o.finish();
  return p;
}

ProcessTrainable::ProcessTrainable(ProcessOptions options, const TrainableContext& ctx)
    : opt_(std::move(options)), options_(ctx.options), member_(ctx.member), seed_(ctx.seed), log_(ctx.log) {
  if (!log_) log_ = [](const std::string&) {};
  label_ = "member " + std::to_string(member_) + " (trainer: " + shown_argv(opt_.argv) + ")";
  // On the store's filesystem when it has a scratch directory: a saved file is then adopted
  // by rename and a loaded one is a hard link, no checkpoint copied.
  scratch_ = make_scratch(!opt_.scratch_dir.empty() ? opt_.scratch_dir : ctx.scratch_dir, member_);

  ChildSpec spec;
  spec.argv = opt_.argv;
  spec.cwd = opt_.cwd;
  spec.env = opt_.env;
  spec.remove_if_orphaned = scratch_;
  spec.env["PBT_MEMBER"] = std::to_string(member_);
  spec.env["PBT_SEED"] = std::to_string(seed_);
  spec.env["PBT_PROTOCOL"] = std::to_string(kProtocolMajor) + "." + std::to_string(kProtocolMinor);
  auto sink = [this](const std::string& line) {
    tail_.push_back(line);
    if (tail_.size() > kTailLines) tail_.pop_front();
    log_("trainer: " + line);
  };
  try {
    child_ = std::make_unique<ChildProcess>(spec, sink);
    log_("started trainer pid " + std::to_string(child_->pid()) + ": " + shown_argv(opt_.argv));
    handshake();
  } catch (const Error& e) {
    child_.reset();
    std::error_code ec;
    std::filesystem::remove_all(scratch_, ec);
    if (std::string(e.what()).rfind(label_, 0) == 0) throw;
    throw Error(label_ + ", start: " + e.what());
  }
}

ProcessTrainable::~ProcessTrainable() {
  try {
    if (child_ && child_->running()) {
      // Politely first: a shutdown request, then end of input; the process group is
      // killed in any case, so nothing the trainer started outlives it.
      const auto deadline = after(opt_.timeouts.shutdown);
      json bye = {{"id", next_id_++}, {"op", "shutdown"}};
      if (child_->write(bye.dump() + "\n", deadline) == ChildProcess::Put::Ok) {
        std::string line;
        child_->read_line(line, deadline);
      }
      child_->close_stdin();
      child_->wait_exit(deadline);
      const int pid = child_->pid();
      log_("trainer pid " + std::to_string(pid) + " stopped: it " + child_->kill_and_reap());
    }
  } catch (...) {
  }
  child_.reset();
  std::error_code ec;
  std::filesystem::remove_all(scratch_, ec);
}

int ProcessTrainable::pid() const { return child_ && child_->running() ? child_->pid() : -1; }

std::string ProcessTrainable::stderr_tail() const {
  if (tail_.empty()) return " (the trainer wrote nothing on stderr)";
  std::string s = "\n  the trainer's stderr ends with:";
  for (const auto& l : tail_) s += "\n    | " + l;
  return s;
}

void ProcessTrainable::fail(const std::string& what, const std::string& cause, bool kill) const {
  if (kill && child_) {
    child_->kill_and_reap();
    dead_ = what + ": " + cause;
    child_.reset();
  }
  throw Error(label_ + ", " + what + ": " + cause + stderr_tail());
}

std::string ProcessTrainable::scratch_file(const char* prefix) const {
  return scratch_ + "/" + prefix + "-" + std::to_string(files_++) + ".ckpt";
}

json ProcessTrainable::request(const std::string& what, json message, double timeout_s) const {
  if (!child_) throw Error(label_ + ", " + what + ": the trainer is not running (" + dead_ + ")");
  const auto deadline = after(timeout_s);
  const std::int64_t id = next_id_++;
  message["id"] = id;
  const std::string line = message.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";

  // The child is gone (closed its stdout or stdin): say how it ended.
  auto died = [&]() {
    std::string how;
    if (child_->wait_exit(after(2.0))) {
      how = "the trainer " + child_->kill_and_reap();
    } else {
      child_->kill_and_reap();
      how = "the trainer closed its stdout (its process group was killed)";
    }
    fail(what, how + " before replying", true);
  };

  switch (child_->write(line, deadline)) {
    case ChildProcess::Put::Ok: break;
    case ChildProcess::Put::Timeout:
      fail(what,
           "timed out after " + seconds_text(timeout_s) +
               " sending the request (the trainer does not read its stdin); its process group was killed",
           true);
    case ChildProcess::Put::Closed: died();
  }

  std::string reply;
  switch (child_->read_line(reply, deadline)) {
    case ChildProcess::Got::Line: break;
    case ChildProcess::Got::Timeout:
      fail(what, "timed out after " + seconds_text(timeout_s) + "; its process group was killed", true);
    case ChildProcess::Got::TooLong:
      fail(what, "wrote a line longer than 16 MiB on stdout (the limit for a protocol line)", true);
    case ChildProcess::Got::Eof:
      if (!child_->pending_stdout().empty())
        fail(what, "wrote " + quote(child_->pending_stdout()) + " on stdout and then ended without a newline", true);
      died();
  }

  try {
    return protocol::parse_reply(reply, id);
  } catch (const protocol::TrainerError& e) {
    // The traceback goes into the log line by line (cut, as in the error).
    std::istringstream in(e.traceback());
    std::string l;
    while (std::getline(in, l)) log_("trainer traceback: " + l);
    // The trainer answered, so it is alive; the worker drops this trainable anyway.
    throw Error(label_ + ", " + what + ": " + e.what());
  } catch (const Error& e) {
    fail(what, e.what(), true);
  }
}

void ProcessTrainable::handshake() {
  const auto deadline = after(opt_.timeouts.start);
  std::string line;
  switch (child_->read_line(line, deadline)) {
    case ChildProcess::Got::Line: break;
    case ChildProcess::Got::Timeout:
      fail("start", "no hello within " + seconds_text(opt_.timeouts.start) + "; its process group was killed", true);
    case ChildProcess::Got::TooLong: fail("start", "wrote a line longer than 16 MiB instead of a hello", true);
    case ChildProcess::Got::Eof: {
      std::string how = child_->wait_exit(after(2.0)) ? child_->kill_and_reap() : "closed its stdout";
      fail("start", "the trainer " + how + " before saying hello", true);
    }
  }
  try {
    const protocol::Hello hello = protocol::check_hello(line);
    trainer_minor_ = hello.minor;
    sequential_save_ = hello.sequential_save;
  } catch (const Error& e) {
    fail("start", e.what(), true);
  }
  const double left = std::chrono::duration<double>(deadline - Clock::now()).count();
  json init = {{"op", "init"},
               {"protocol", std::to_string(kProtocolMajor) + "." + std::to_string(kProtocolMinor)},
               {"member", member_},
               {"seed", seed_}};
  request("init", init, std::max(left, 0.001));
}

void ProcessTrainable::apply(const Hyperparams& h) {
  accepted_.reset();
  json r = request("apply", {{"op", "apply"}, {"h", to_json(h)}}, opt_.timeouts.apply);
  // Before 1.3 a reply's "h" meant nothing: an older trainer's is ignored, as it always was.
  if (trainer_minor_ < kAcceptedSinceMinor) return;
  try {
    accepted_ = protocol::read_apply(r);
  } catch (const Error& e) {
    fail("apply", e.what(), false);
  }
}

std::optional<Hyperparams> ProcessTrainable::accepted() const { return accepted_; }

void ProcessTrainable::step(std::int64_t n) {
  request("step (n=" + std::to_string(n) + ")", {{"op", "step"}, {"n", n}}, opt_.timeouts.step);
}

Score ProcessTrainable::eval() {
  json r = request("eval", {{"op", "eval"}}, opt_.timeouts.eval);
  Score s;
  try {
    s = protocol::read_eval(r);
  } catch (const Error& e) {
    fail("eval", e.what(), true);
  }
  if (!std::isfinite(s.value) && opt_.fail_on_non_finite) {
    std::ostringstream v;
    v << s.value;
    fail("eval",
         "the trainer returned a non-finite score (" + v.str() +
             "); the interval fails (set on_non_finite = \"rank_last\" to rank such a member last instead)",
         false);
  }
  return s;
}

namespace {
// Removes a checkpoint file of the scratch directory when it goes out of scope (whatever
// happened): the file is ours, or a link to the store's, or already adopted and gone.
struct RemovedAtEnd {
  const std::string& path;
  ~RemovedAtEnd() {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
};
}  // namespace

void ProcessTrainable::save(CheckpointWriter& out) const {
  const std::string path = scratch_file("save");
  RemovedAtEnd removed{path};
  std::error_code ec;
  std::filesystem::remove(path, ec);
  // A trainer that writes front to back has its file hashed while it writes it.
  if (sequential_save_) out.expect_file(path);
  request("save", {{"op", "save"}, {"path", path}}, opt_.timeouts.save);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    fail("save", "the trainer replied ok but wrote nothing: " + path + " does not exist", false);
  if (!S_ISREG(st.st_mode)) fail("save", "the trainer wrote " + path + " but it is not a regular file", false);
  if (st.st_size == 0)
    fail("save", "the trainer wrote an empty file " + path + " (a checkpoint cannot be empty)", false);
  // The file is the checkpoint: a store adopts it by rename (same filesystem) or streams it;
  // nothing of it passes through this process's memory whole.
  try {
    out.write_file(path);
  } catch (const CheckpointError&) {
    throw;
  } catch (const Error& e) {
    throw Error(label_ + ", save: " + e.what());
  }
}

void ProcessTrainable::load(CheckpointReader& in) {
  const std::string path = scratch_file("load");
  RemovedAtEnd removed{path};
  // A hard link to the store's file where the filesystem allows (the trainer only reads
  // it), else a copy streamed through a small buffer.
  try {
    in.to_file(path);
  } catch (const CheckpointError&) {
    throw;
  } catch (const Error& e) {
    throw Error(label_ + ", load: " + e.what());
  }
  request("load", {{"op", "load"}, {"path", path}}, opt_.timeouts.load);
}

void ProcessTrainable::copied(const Copied& from) {
  // A 1.0 trainer would refuse an op it does not know, failing every exploit: it keeps
  // the donor's random stream, as before 1.1.
  if (trainer_minor_ < kCopiedSinceMinor) return;
  request("copied (from member " + std::to_string(from.donor) + ")",
          {{"op", "copied"}, {"donor", from.donor}, {"donor_step", from.donor_step}, {"seed", from.seed}},
          opt_.timeouts.load);
}

bool ProcessTrainable::switch_member(const TrainableContext& ctx) {
  // An older trainer would refuse the op (failing the interval): it is restarted instead.
  if (trainer_minor_ < kSwitchSinceMinor || !child_ || !child_->running() || child_->exited() ||
      ctx.options != options_)
    return false;
  const int from = member_;
  // From here on the trainer is the new member's: its stderr goes to that member's log,
  // its errors name that member (a failed switch is that member's failed interval).
  member_ = ctx.member;
  seed_ = ctx.seed;
  if (ctx.log) log_ = ctx.log;
  label_ = "member " + std::to_string(member_) + " (trainer: " + shown_argv(opt_.argv) + ")";
  tail_.clear();
  log_("trainer pid " + std::to_string(child_->pid()) + " goes on from member " + std::to_string(from) + " to member " +
       std::to_string(member_));
  // Rebuilding the model is what init does, so it gets the start time limit.
  request("member (from member " + std::to_string(from) + ")", {{"op", "member"}, {"member", member_}, {"seed", seed_}},
          opt_.timeouts.start);
  return true;
}

void register_process_trainable() {
  register_trainable(
      "process",
      [](const TrainableContext& ctx) {
        return std::make_unique<ProcessTrainable>(read_process_options(ctx.options, "trainable"), ctx);
      },
      [](const json& j, const std::string& where) { read_process_options(j, where); });
}

}  // namespace pbt
