// Plugins (trainable kinds, exploit and explore strategies): find, dlopen, check and
// register, once per process (pbt/plugin.hpp).
#include "pbt/plugin.hpp"

#include <dlfcn.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>

#include "pbt/error.hpp"
#include "pbt/trainable.hpp"
#include "core/plugin_loading.hpp"

namespace fs = std::filesystem;

namespace pbt {

namespace {

struct BuiltinPlugin {
  std::string file, what;
};

struct State {
  std::recursive_mutex mutex;  // a plugin's registration may look a kind up
  std::vector<std::string> dirs;
  std::map<std::string, BuiltinPlugin> builtin;  // kind -> plugin
  std::set<std::string> loaded;                  // canonical paths, tried (loaded or refused)
  std::string loading;                           // the plugin registering now ("" if none)
  std::set<std::string> loading_kinds;           // what it registered so far: "what:name"
};

State& state() {
  static State s;
  return s;
}

std::atomic<bool> deferred{false};

bool is_file(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::vector<std::string> search_dirs(const std::string& config_dir) {
  std::vector<std::string> dirs;
  dirs.push_back(config_dir.empty() ? "." : config_dir);
  if (const char* env = std::getenv("PBT_PLUGIN_PATH")) {
    std::string s = env;
    for (std::size_t start = 0;;) {
      const std::size_t colon = s.find(':', start);
      std::string d = s.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
      if (!d.empty()) dirs.push_back(d);
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
  }
  for (const auto& d : plugin_dirs()) dirs.push_back(d);
  return dirs;
}

}  // namespace

namespace detail {

void check_plugin_registers(const std::string& what, const std::string& name, bool exists) {
  State& s = state();
  if (s.loading.empty()) return;
  const std::string key = what + ":" + name;
  if (exists && !s.loading_kinds.count(key))
    throw Error("it registers the " + what + " '" + name +
                "', which already exists (built in or from another plugin); give it another name");
  s.loading_kinds.insert(key);
}

}  // namespace detail

void set_plugins_deferred(bool d) { deferred = d; }
bool plugins_deferred() { return deferred; }

void add_plugin_dir(const std::string& dir) {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  state().dirs.push_back(dir);
}

std::vector<std::string> plugin_dirs() {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  return state().dirs;
}

std::string find_plugin(const std::string& path, const std::string& config_dir, const std::string& where) {
  if (path.empty()) throw ConfigError(where, "must name a shared library, got an empty string");
  const fs::path p(path);
  if (p.is_absolute()) return path;
  if (path.find('/') != std::string::npos) return (fs::path(config_dir.empty() ? "." : config_dir) / p).string();
  std::string looked;
  for (const auto& d : search_dirs(config_dir)) {
    const std::string candidate = (fs::path(d) / p).string();
    if (is_file(candidate)) return candidate;
    looked += (looked.empty() ? "" : ", ") + d;
  }
  throw ConfigError(where, "plugin '" + path + "': no such file in " + looked +
                               " (the config's directory, $PBT_PLUGIN_PATH, pbt's plugin directories)");
}

void load_plugin(const std::string& path, const std::string& config_dir, const std::string& where) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  const std::string file = find_plugin(path, config_dir, where);
  const auto fail = [&](const std::string& why) { throw ConfigError(where, "plugin " + file + ": " + why); };
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) fail("no such file");
  if (!S_ISREG(st.st_mode)) fail("not a regular file");
  std::error_code ec;
  const std::string canonical = fs::canonical(file, ec).string();
  if (ec) fail("cannot resolve its path: " + ec.message());
  if (!s.loaded.insert(canonical).second) return;  // once per process

  // Built-ins first, so a plugin cannot slip a kind in before them.
  register_builtin_trainables();
  // RTLD_NOW: a symbol the plugin needs and pbt lacks is reported here, naming the file.
  void* handle = ::dlopen(canonical.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* e = ::dlerror();
    fail(std::string("cannot be loaded as a shared library: ") + (e ? e : "unknown dlopen error"));
  }
  void* sym = ::dlsym(handle, PBT_PLUGIN_ENTRY_SYMBOL);
  if (!sym) {
    ::dlclose(handle);
    fail("has no entry point " PBT_PLUGIN_ENTRY_SYMBOL " (define one with PBT_PLUGIN(fn) from pbt/plugin.hpp)");
  }
  const auto entry_fn = reinterpret_cast<PbtPluginEntryFn>(sym);
  const PbtPluginEntry* entry = entry_fn();
  if (!entry) fail(PBT_PLUGIN_ENTRY_SYMBOL " returned nothing");
  if (entry->abi_version != PBT_PLUGIN_ABI_VERSION) {
    const int v = entry->abi_version;
    ::dlclose(handle);
    fail("built for plugin ABI version " + std::to_string(v) + ", this pbt loads version " +
         std::to_string(PBT_PLUGIN_ABI_VERSION) + " (rebuild it against this pbt's headers)");
  }
  // Not closed from here on: what it registered points into it.
  s.loading = canonical;
  s.loading_kinds.clear();
  char error[1024] = {0};
  const int rc = entry->register_all(error, sizeof error);
  s.loading.clear();
  if (rc != 0) fail(std::string("failed while registering: ") + error);
  if (s.loading_kinds.empty()) fail("registered nothing (no trainable kind, exploit or explore strategy)");
}

void add_builtin_plugin_kind(const std::string& kind, const std::string& file, const std::string& what) {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  state().builtin[kind] = {file, what};
}

bool load_builtin_plugin_for(const std::string& kind, const std::string& where) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  const auto it = s.builtin.find(kind);
  if (it == s.builtin.end()) return false;
  const BuiltinPlugin b = it->second;
  std::string file;
  for (const auto& d : plugin_dirs()) {
    const std::string candidate = (fs::path(d) / b.file).string();
    if (is_file(candidate)) {
      file = candidate;
      break;
    }
  }
  if (file.empty()) {
    std::string looked;
    for (const auto& d : plugin_dirs()) looked += (looked.empty() ? "" : ", ") + d;
    throw ConfigError(where, "the trainable kind '" + kind + "' comes from pbt's plugin " + b.file +
                                 ", which was not built or installed (looked in " +
                                 (looked.empty() ? "no directory" : looked) + "): " + b.what);
  }
  load_plugin(file, "", where);
  return true;
}

}  // namespace pbt
