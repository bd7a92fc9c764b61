#pragma once
// Plugins: a shared library that registers trainable kinds, exploit or explore strategies into
// `pbt`, named by a config's `[trainable] plugin = "libmine.so"` (or `[exploit] plugin`,
// `[explore] plugin`: the same search and errors; any table may name any plugin, which registers
// whatever it has). Write one by defining a function that calls pbt::register_trainable (and
// pbt::register_hyperparams_check), pbt::register_exploit or pbt::register_explore, and naming
// it once:
//
//   #include "pbt/plugin.hpp"
//   #include "pbt/trainable.hpp"
//   void register_mine() { pbt::register_trainable("mine", make_mine, check_mine_options); }
//   PBT_PLUGIN(register_mine)
//
// Build it as a shared library against pbt's headers only (CMake: a MODULE library linking
// pbt_plugin_api): its pbt symbols resolve, when `pbt` loads it, to the executable's own
// copy, so it registers into the registry `pbt` reads. Plugins are C++ built with the same
// compiler and pbt version as `pbt`; the ABI version refuses one built against other headers.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

// Bumped whenever what a plugin sees of pbt changes incompatibly (the entry point's layout,
// or the registration functions and the types they take). 2: Trainable gained accepted()
// (a virtual function: the vtable a plugin's trainable is built with changed). 3: Exploit
// gained choose_in() and history_intervals() (FIRE reads the published history). 4: Exploit
// gained explores() and check(), TrainedInterval its donor (FIRE's evaluators).
#define PBT_PLUGIN_ABI_VERSION 4

extern "C" {
// What a plugin's entry point (pbt_plugin_entry) returns. abi_version comes first and stays
// first in every version, so any loader can read it and refuse another version.
struct PbtPluginEntry {
  int abi_version;  // PBT_PLUGIN_ABI_VERSION the plugin was built with
  // Registers the plugin's kinds. Returns 0, or nonzero with why written into `error`.
  int (*register_all)(char* error, unsigned long error_size);
};
typedef const struct PbtPluginEntry* (*PbtPluginEntryFn)(void);
}

// The entry point's name, looked up with dlsym.
#define PBT_PLUGIN_ENTRY_SYMBOL "pbt_plugin_entry"

// Defines the plugin's entry point around `fn` (a void() that registers). What `fn` throws is
// caught here and handed back as text: no exception crosses the C boundary.
#define PBT_PLUGIN(fn)                                                                         \
  static int pbt_plugin_register_all_(char* error, unsigned long error_size) {                 \
    try {                                                                                      \
      fn();                                                                                    \
      return 0;                                                                                \
    } catch (const std::exception& e) {                                                        \
      std::snprintf(error, error_size, "%s", e.what());                                        \
    } catch (...) {                                                                            \
      std::snprintf(error, error_size, "an exception that is not a std::exception");           \
    }                                                                                          \
    return 1;                                                                                  \
  }                                                                                            \
  extern "C" __attribute__((visibility("default"))) const PbtPluginEntry* pbt_plugin_entry() { \
    static const PbtPluginEntry entry = {PBT_PLUGIN_ABI_VERSION, pbt_plugin_register_all_};    \
    return &entry;                                                                             \
  }

namespace pbt {

// Loads the plugin at `path` (a file name, found as find_plugin says) once per process:
// dlopen, the entry point, its ABI version, then its registration, in which a kind (or a
// strategy name) that is already registered is refused, as is a plugin that registers
// nothing. Any failure is a ConfigError at `where` naming the file and the cause.
// `config_dir` anchors a relative path ("" for the working directory).
void load_plugin(const std::string& path, const std::string& config_dir, const std::string& where);

// Where a plugin named by a relative path is looked for, in order: the config's directory,
// then each directory of $PBT_PLUGIN_PATH (colon-separated), then pbt's own plugin
// directories (see add_plugin_dir). A path with a '/' is taken relative to the config only.
std::string find_plugin(const std::string& path, const std::string& config_dir, const std::string& where);

// Adds a directory where pbt's own plugins are (the command line adds the build tree's and the
// installed ones, next to the executable).
void add_plugin_dir(const std::string& dir);
std::vector<std::string> plugin_dirs();

// A kind that a plugin shipped with pbt provides: when a config names `kind` and no loaded
// code registered it, the plugin `file` (found on the search path) is loaded first. `what`
// says in the error how to get it when it was not built ("configure with -DPBT_WITH_TORCH=ON").
void add_builtin_plugin_kind(const std::string& kind, const std::string& file, const std::string& what);

// Loads the built-in plugin that provides `kind`, if one is declared for it and not loaded.
// Returns whether one was loaded. Throws ConfigError at `where` when it cannot be found.
bool load_builtin_plugin_for(const std::string& kind, const std::string& where);

// For commands that only read a run (status, best): a config's plugin is not loaded, and a kind
// no loaded code registered is taken unchecked (it was checked when the run was created), so
// they start without the plugin's code (LibTorch for rl). A trainable cannot be built then.
void set_plugins_deferred(bool deferred);
bool plugins_deferred();

}  // namespace pbt
