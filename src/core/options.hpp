#pragma once
// One reader for every table of the config: the top level, [exploit], [explore],
// [trainable] options and the rest. It checks types, names the field at fault
// ("exp.toml: exploit.fraction"), and refuses keys that nobody read.
#include <cmath>
#include <cstdint>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pbt/error.hpp"

namespace pbt {

inline const char* json_type_name(const nlohmann::json& v) {
  if (v.is_object()) return "a table";
  if (v.is_array()) return "an array";
  if (v.is_string()) return "a string";
  if (v.is_number_integer()) return "an integer";
  if (v.is_number()) return "a float";
  if (v.is_boolean()) return "a boolean";
  return "a date or time";
}

class Options {
 public:
  // `where` names the table: "exp.toml: exploit"; for the file's top level it is the
  // file itself ("exp.toml") and `top_level` is true.
  Options(const nlohmann::json& j, std::string where, bool top_level = false)
      : j_(j), where_(std::move(where)), top_level_(top_level) {
    if (!j_.is_object()) throw ConfigError(where_, "expected a table");
  }

  bool has(const std::string& key) const { return j_.contains(key); }

  // Numbers are finite: no setting means anything by inf or nan (TOML allows both).
  double number(const std::string& key, std::optional<double> def) {
    const auto* v = get(key);
    if (!v) return required(key, def);
    if (!v->is_number()) throw wrong(key, "a number", *v);
    const double x = v->get<double>();
    if (!std::isfinite(x)) throw ConfigError(path(key), "expected a finite number, got " + number_text(x));
    return x;
  }
  // A number in [lo, hi].
  double number_in(const std::string& key, std::optional<double> def, double lo, double hi) {
    const double x = number(key, def);
    if (!(x >= lo && x <= hi))
      throw ConfigError(path(key), "must be between " + number_text(lo) + " and " + number_text(hi) + ", got " +
                                       number_text(x));
    return x;
  }
  std::int64_t integer(const std::string& key, std::optional<std::int64_t> def) {
    const auto* v = get(key);
    if (!v) return required(key, def);
    if (!v->is_number_integer()) throw wrong(key, "an integer", *v);
    return v->get<std::int64_t>();
  }
  // An integer in [lo, hi], checked as int64 before any narrowing (an int would wrap).
  std::int64_t integer_in(const std::string& key, std::optional<std::int64_t> def, std::int64_t lo, std::int64_t hi) {
    const std::int64_t x = integer(key, def);
    if (x < lo || x > hi)
      throw ConfigError(path(key), "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " +
                                       std::to_string(x));
    return x;
  }
  std::string string(const std::string& key, std::optional<std::string> def) {
    const auto* v = get(key);
    if (!v) return required(key, def);
    if (!v->is_string()) throw wrong(key, "a string", *v);
    return v->get<std::string>();
  }
  bool boolean(const std::string& key, bool def) {
    const auto* v = get(key);
    if (!v) return def;
    if (!v->is_boolean()) throw wrong(key, "true or false", *v);
    return v->get<bool>();
  }
  std::vector<double> numbers(const std::string& key, std::vector<double> def) {
    const auto* v = get(key);
    if (!v) return def;
    std::vector<double> out;
    if (!v->is_array()) throw wrong(key, "an array of numbers", *v);
    for (const auto& x : *v) {
      if (!x.is_number()) throw wrong(key, "an array of numbers", x);
      if (!std::isfinite(x.get<double>()))
        throw ConfigError(path(key), "expected finite numbers, got " + number_text(x.get<double>()));
      out.push_back(x.get<double>());
    }
    return out;
  }
  std::vector<std::string> strings(const std::string& key) {
    const auto* v = get(key);
    if (!v) throw ConfigError(path(key), "missing (required)");
    std::vector<std::string> out;
    if (!v->is_array()) throw wrong(key, "an array of strings", *v);
    for (const auto& x : *v) {
      if (!x.is_string()) throw wrong(key, "an array of strings", x);
      out.push_back(x.get<std::string>());
    }
    return out;
  }
  // A sub-table (absent: an empty one).
  Options table(const std::string& key) {
    const auto* v = get(key);
    if (v && !v->is_object()) throw wrong(key, "a table", *v);
    return Options(v ? *v : empty(), path(key));
  }
  // The raw value of a key (marked as read), or null.
  const nlohmann::json* raw(const std::string& key) { return get(key); }
  // Everything except `skip`, marked as read: options handed on to a strategy or trainable.
  nlohmann::json rest(const std::set<std::string>& skip) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [k, v] : j_.items()) {
      used_.insert(k);
      if (!skip.count(k)) out[k] = v;
    }
    return out;
  }
  const nlohmann::json& json() const { return j_; }

  // Call once every option was read: any key left is unknown.
  void finish() const {
    for (const auto& [k, v] : j_.items())
      if (!used_.count(k)) throw ConfigError(path(k), "unknown key");
  }
  static std::string number_text(double x) {
    std::ostringstream o;
    o << x;
    return o.str();
  }
  std::string path(const std::string& key) const { return where_ + (top_level_ ? ": " : ".") + key; }
  const std::string& where() const { return where_; }

 private:
  static const nlohmann::json& empty() {
    static const nlohmann::json e = nlohmann::json::object();
    return e;
  }
  const nlohmann::json* get(const std::string& key) {
    used_.insert(key);
    auto it = j_.find(key);
    return it == j_.end() ? nullptr : &*it;
  }
  template <class T>
  T required(const std::string& key, const std::optional<T>& def) const {
    if (def) return *def;
    throw ConfigError(path(key), "missing (required)");
  }
  ConfigError wrong(const std::string& key, const char* expected, const nlohmann::json& got) const {
    return ConfigError(path(key), std::string("expected ") + expected + ", got " + json_type_name(got));
  }

  const nlohmann::json& j_;
  std::string where_;
  bool top_level_;
  std::set<std::string> used_;
};

}  // namespace pbt
