#pragma once
// Who owns a file or directory that a process leaves behind while it works (a scratch
// directory, a checkpoint being written): the owner is named in the thing's own name,
// "HOSTTAG.PID.START.BOOTTAG", so that after a crash anyone on the same host can tell a
// dead owner's leftovers from a live one's, even when the pid was reused since.
#include <optional>
#include <string>

namespace pbt::process_owner {

// The first line of a file; "" when it cannot be read.
std::string read_first_line(const std::string& path);
// The start time of process `pid` (clock ticks since boot, /proc/PID/stat field 22); "" when unknown.
std::string start_time_of(long pid);
std::string host_name();
std::string boot_id();
// "host pid start boot", spelled out (for a marker file).
std::string owner_identity(long pid);
// A short, name-safe tag of a text (FNV-1a, 8 hex digits): the host and boot id in a name.
std::string tag_of(const std::string& text);
// "HOSTTAG.PID.START.BOOTTAG" of process `pid`.
std::string name_tag(long pid);
// name_tag(getpid()), worked out once per process (again after a fork).
const std::string& own_name_tag();
// Whether the process `pid` that started at `start` may still be running (false when it ran
// in another boot).
bool may_be_alive(long pid, const std::string& start, bool same_boot);

// A name tag read back.
struct Owner {
  std::string host_tag;
  long pid = 0;
  std::string start;
  std::string boot_tag;
};
std::optional<Owner> parse_name_tag(const std::string& tag);
// True when the owner is on this host and is surely no longer running (its leftovers may go).
bool is_dead_here(const Owner& owner);
// True when the owner is on another host (only age can tell about it).
bool is_elsewhere(const Owner& owner);

}  // namespace pbt::process_owner
