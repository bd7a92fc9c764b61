#pragma once
// The reader of options: a table of the config (its top level, [exploit], [explore], the
// options of a trainable or strategy) read key by key. It checks each value's type (and
// range, for the *_in readers), names the field at fault ("exp.toml: exploit.fraction:
// must be ..."), and finish() refuses any key that nobody read. The built-in trainables
// and strategies read their options with it; an out-of-tree one does the same, so its
// options are checked, and its errors worded, like theirs.
//
// A trainable's options check (register_trainable's `check`, and its factory):
//
//   struct MyOptions { double lr; std::int64_t layers; std::string data; };
//
//   MyOptions read_my_options(const nlohmann::json& options, const std::string& where) {
//     pbt::Options o(options, where);              // where: "exp.toml: trainable"
//     MyOptions m;
//     m.lr = o.number_in("lr", 1e-3, 0.0, 1.0);    // default 1e-3; "must be between 0 and 1, got 2"
//     m.layers = o.integer_in("layers", 2, 1, 64);
//     m.data = o.string("data", std::nullopt);     // required: "exp.toml: trainable.data: missing (required)"
//     if (m.data.empty()) throw pbt::ConfigError(o.path("data"), "must not be empty");
//     o.finish();                                  // "exp.toml: trainable.dtaa: unknown key"
//     return m;
//   }
//
// Numbers are finite (TOML allows inf and nan; no option means anything by them). Reading a
// key marks it read even when it is absent, so finish() only refuses keys the config has
// and nobody asked for. An Options refers to its JSON: keep that alive while reading.
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pbt/error.hpp"

namespace pbt {

// "a table", "an array", "a string", "an integer", "a float", "a boolean" or "a date or
// time": the JSON value's type in TOML's words, for messages.
const char* json_type_name(const nlohmann::json& v);

class Options {
 public:
  // `where` names the table: "exp.toml: exploit"; for the file's top level it is the
  // file itself ("exp.toml") and `top_level` is true. Throws unless `j` is a table.
  Options(const nlohmann::json& j, std::string where, bool top_level = false);

  bool has(const std::string& key) const { return j_.contains(key); }

  // Each reader returns the value, or `def` when the key is absent; with no default
  // (std::nullopt) the key is required.
  double number(const std::string& key, std::optional<double> def);
  double number_in(const std::string& key, std::optional<double> def, double lo, double hi);  // in [lo, hi]
  std::int64_t integer(const std::string& key, std::optional<std::int64_t> def);
  // An integer in [lo, hi], checked as int64 before any narrowing (an int would wrap).
  std::int64_t integer_in(const std::string& key, std::optional<std::int64_t> def, std::int64_t lo, std::int64_t hi);
  std::string string(const std::string& key, std::optional<std::string> def);
  bool boolean(const std::string& key, bool def);
  std::vector<double> numbers(const std::string& key, std::vector<double> def);
  std::vector<std::string> strings(const std::string& key);  // required
  // A sub-table (absent: an empty one), to read the same way.
  Options table(const std::string& key);
  // The raw value of a key (marked as read), or null: for shapes the readers above lack.
  const nlohmann::json* raw(const std::string& key);
  // Everything except `skip`, all marked as read: options handed on to a strategy or trainable.
  nlohmann::json rest(const std::set<std::string>& skip);
  const nlohmann::json& json() const { return j_; }

  // Call once every option was read: any key left is unknown.
  void finish() const;

  // The field's name for a message of your own: "exp.toml: trainable.lr".
  std::string path(const std::string& key) const { return where_ + (top_level_ ? ": " : ".") + key; }
  const std::string& where() const { return where_; }
  // A number as the messages write it (6 significant digits: 0.5, 1e+12).
  static std::string number_text(double x);

 private:
  const nlohmann::json* get(const std::string& key);
  template <class T>
  T required(const std::string& key, const std::optional<T>& def) const {
    if (def) return *def;
    throw ConfigError(path(key), "missing (required)");
  }
  ConfigError wrong(const std::string& key, const char* expected, const nlohmann::json& got) const;

  const nlohmann::json& j_;
  std::string where_;
  bool top_level_;
  std::set<std::string> used_;
};

}  // namespace pbt
