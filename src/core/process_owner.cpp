// Owners of leftovers, named in their names (see process_owner.hpp).
#include "core/process_owner.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>

namespace pbt::process_owner {

std::string read_first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

std::string start_time_of(long pid) {
  const std::string stat = read_first_line("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return "";
  std::istringstream rest(stat.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i) {  // field 22 is starttime
    if (i == 22) return field;
  }
  return "";
}

std::string host_name() {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  return host;
}

std::string boot_id() { return read_first_line("/proc/sys/kernel/random/boot_id"); }

std::string owner_identity(long pid) {
  return host_name() + " " + std::to_string(pid) + " " + start_time_of(pid) + " " + boot_id();
}

std::string tag_of(const std::string& text) {
  std::uint32_t h = 2166136261u;
  for (unsigned char c : text) h = (h ^ c) * 16777619u;
  char out[9];
  std::snprintf(out, sizeof out, "%08x", h);
  return out;
}

std::string name_tag(long pid) {
  return tag_of(host_name()) + "." + std::to_string(pid) + "." + start_time_of(pid) + "." + tag_of(boot_id());
}

const std::string& own_name_tag() {
  static std::mutex mutex;
  static long pid = 0;
  static std::string tag;
  std::lock_guard<std::mutex> lock(mutex);
  if (pid != static_cast<long>(::getpid())) {
    pid = ::getpid();
    tag = name_tag(pid);
  }
  return tag;
}

bool may_be_alive(long pid, const std::string& start, bool same_boot) {
  if (!same_boot) return false;
  const std::string now = start_time_of(pid);
  if (!now.empty()) return now == start;
  // Its start time unreadable (/proc hidden) while the pid exists: keep it, to be safe.
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

std::optional<Owner> parse_name_tag(const std::string& tag) {
  std::istringstream fields(tag);
  Owner o;
  std::string pid;
  if (!std::getline(fields, o.host_tag, '.') || !std::getline(fields, pid, '.') ||
      !std::getline(fields, o.start, '.') || !std::getline(fields, o.boot_tag, '.') || o.host_tag.size() != 8 ||
      o.boot_tag.size() != 8 || fields.peek() != std::char_traits<char>::eof())
    return std::nullopt;
  char* end = nullptr;
  o.pid = std::strtol(pid.c_str(), &end, 10);
  if (pid.empty() || *end != '\0' || o.pid <= 0) return std::nullopt;
  return o;
}

bool is_elsewhere(const Owner& owner) { return owner.host_tag != tag_of(host_name()); }

bool is_dead_here(const Owner& owner) {
  if (is_elsewhere(owner)) return false;
  return !may_be_alive(owner.pid, owner.start, owner.boot_tag == tag_of(boot_id()));
}

}  // namespace pbt::process_owner
