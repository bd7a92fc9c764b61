#pragma once
// The config's settings, each declared once (config_settings.cpp): key, value and check,
// default, and one line on what it is. The parser reads through the declarations
// (config.cpp) and the reference (config_reference(), README.md's "Config reference") is
// rendered from them, so neither can name a key, a default or a check the other lacks.
#include <functional>
#include <string>
#include <vector>

#include "pbt/config.hpp"
#include "pbt/options.hpp"

namespace pbt {

// One setting of a table, read into a `Target` (the config, or one [space] parameter).
template <class Target>
struct Setting {
  std::string key;
  std::string value;         // its type and check in words: "integer, 1 to 100000"
  std::string default_text;  // as TOML, or "required", or "none" (optional, no default)
  std::string what;          // one line
  // Reads the key from the table into the target, checked (throws ConfigError).
  std::function<void(Options& table, Target& target)> read;
  // When it applies (empty: always); a key that does not apply is refused as unknown.
  std::function<bool(const Target& target)> applies;
};

// A table of the config: "" for the top level, "budget", "space.NAME", "initial" (an array
// of tables). Keys not declared are handed on or refused: `other_keys` says which.
template <class Target>
struct TableSettings {
  std::string name;
  std::vector<Setting<Target>> settings;
  std::string other_keys;  // what its other keys are; "": refused as unknown
};

// The tables of ExperimentConfig, in the reference's order.
const std::vector<TableSettings<ExperimentConfig>>& config_tables();
const TableSettings<ExperimentConfig>& config_table(const std::string& name);
// [space.NAME]: one hyperparameter.
const TableSettings<Param>& param_table();

// Reads the settings that apply, in their order.
template <class Target>
void read_settings(Options& table, const TableSettings<Target>& decl, Target& target) {
  for (const auto& s : decl.settings)
    if (!s.applies || s.applies(target)) s.read(table, target);
}

}  // namespace pbt
