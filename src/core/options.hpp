#pragma once
// Reads a strategy's or trainable's options (a JSON object converted from the TOML
// table), checking types, and refuses keys that nobody read, naming them.
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pbt/error.hpp"

namespace pbt {

class Options {
 public:
  Options(const nlohmann::json& j, std::string where) : j_(j), where_(std::move(where)) {
    if (!j_.is_object()) throw ConfigError(where_, "expected a table");
  }
  double number(const std::string& key, double def) {
    used_.insert(key);
    if (!j_.contains(key)) return def;
    const auto& v = j_.at(key);
    if (!v.is_number()) throw ConfigError(path(key), "expected a number, got " + v.dump());
    return v.get<double>();
  }
  std::int64_t integer(const std::string& key, std::int64_t def) {
    used_.insert(key);
    if (!j_.contains(key)) return def;
    const auto& v = j_.at(key);
    if (!v.is_number_integer()) throw ConfigError(path(key), "expected an integer, got " + v.dump());
    return v.get<std::int64_t>();
  }
  std::string string(const std::string& key, const std::string& def) {
    used_.insert(key);
    if (!j_.contains(key)) return def;
    const auto& v = j_.at(key);
    if (!v.is_string()) throw ConfigError(path(key), "expected a string, got " + v.dump());
    return v.get<std::string>();
  }
  std::vector<double> numbers(const std::string& key, std::vector<double> def) {
    used_.insert(key);
    if (!j_.contains(key)) return def;
    const auto& v = j_.at(key);
    if (!v.is_array()) throw ConfigError(path(key), "expected an array of numbers, got " + v.dump());
    std::vector<double> out;
    for (const auto& x : v) {
      if (!x.is_number()) throw ConfigError(path(key), "expected an array of numbers, got " + v.dump());
      out.push_back(x.get<double>());
    }
    return out;
  }
  // Call once every option was read: any key left is unknown.
  void finish() const {
    for (const auto& [k, v] : j_.items())
      if (!used_.count(k)) throw ConfigError(path(k), "unknown key");
  }
  std::string path(const std::string& key) const { return where_ + "." + key; }

 private:
  const nlohmann::json& j_;
  std::string where_;
  std::set<std::string> used_;
};

}  // namespace pbt
