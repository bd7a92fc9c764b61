#include "pbt/options.hpp"

#include <cmath>
#include <sstream>

namespace pbt {

const char* json_type_name(const nlohmann::json& v) {
  if (v.is_object()) return "a table";
  if (v.is_array()) return "an array";
  if (v.is_string()) return "a string";
  if (v.is_number_integer()) return "an integer";
  if (v.is_number()) return "a float";
  if (v.is_boolean()) return "a boolean";
  return "a date or time";
}

Options::Options(const nlohmann::json& j, std::string where, bool top_level)
    : j_(j), where_(std::move(where)), top_level_(top_level) {
  if (!j_.is_object()) throw ConfigError(where_, "expected a table");
}

double Options::number(const std::string& key, std::optional<double> def) {
  const auto* v = get(key);
  if (!v) return required(key, def);
  if (!v->is_number()) throw wrong(key, "a number", *v);
  const double x = v->get<double>();
  if (!std::isfinite(x)) throw ConfigError(path(key), "expected a finite number, got " + number_text(x));
  return x;
}

double Options::number_in(const std::string& key, std::optional<double> def, double lo, double hi) {
  const double x = number(key, def);
  if (!(x >= lo && x <= hi))
    throw ConfigError(path(key),
                      "must be between " + number_text(lo) + " and " + number_text(hi) + ", got " + number_text(x));
  return x;
}

std::int64_t Options::integer(const std::string& key, std::optional<std::int64_t> def) {
  const auto* v = get(key);
  if (!v) return required(key, def);
  if (!v->is_number_integer()) throw wrong(key, "an integer", *v);
  return v->get<std::int64_t>();
}

std::int64_t Options::integer_in(const std::string& key, std::optional<std::int64_t> def, std::int64_t lo,
                                 std::int64_t hi) {
  const std::int64_t x = integer(key, def);
  if (x < lo || x > hi)
    throw ConfigError(path(key), "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " +
                                     std::to_string(x));
  return x;
}

std::string Options::string(const std::string& key, std::optional<std::string> def) {
  const auto* v = get(key);
  if (!v) return required(key, def);
  if (!v->is_string()) throw wrong(key, "a string", *v);
  return v->get<std::string>();
}

bool Options::boolean(const std::string& key, bool def) {
  const auto* v = get(key);
  if (!v) return def;
  if (!v->is_boolean()) throw wrong(key, "true or false", *v);
  return v->get<bool>();
}

std::vector<double> Options::numbers(const std::string& key, std::vector<double> def) {
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

std::vector<std::string> Options::strings(const std::string& key) {
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

Options Options::table(const std::string& key) {
  static const nlohmann::json empty = nlohmann::json::object();
  const auto* v = get(key);
  if (v && !v->is_object()) throw wrong(key, "a table", *v);
  return Options(v ? *v : empty, path(key));
}

const nlohmann::json* Options::raw(const std::string& key) { return get(key); }

nlohmann::json Options::rest(const std::set<std::string>& skip) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [k, v] : j_.items()) {
    used_.insert(k);
    if (!skip.count(k)) out[k] = v;
  }
  return out;
}

void Options::finish() const {
  for (const auto& [k, v] : j_.items())
    if (!used_.count(k)) throw ConfigError(path(k), "unknown key");
}

std::string Options::number_text(double x) {
  std::ostringstream o;
  o << x;
  return o.str();
}

const nlohmann::json* Options::get(const std::string& key) {
  used_.insert(key);
  auto it = j_.find(key);
  return it == j_.end() ? nullptr : &*it;
}

ConfigError Options::wrong(const std::string& key, const char* expected, const nlohmann::json& got) const {
  return ConfigError(path(key), std::string("expected ") + expected + ", got " + json_type_name(got));
}

}  // namespace pbt
