#include "pbt/hyperparams.hpp"

#include <cstdio>
#include <sstream>

#include "pbt/error.hpp"

namespace pbt {

double as_double(const Value& v) {
  if (auto d = std::get_if<double>(&v)) return *d;
  if (auto i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
  throw Error("categorical value '" + std::get<std::string>(v) + "' has no numeric value");
}

std::string to_string(const Value& v) {
  if (auto d = std::get_if<double>(&v)) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4g", *d);
    return buf;
  }
  if (auto i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  return std::get<std::string>(v);
}

std::string to_string(const Hyperparams& h) {
  std::ostringstream out;
  bool first = true;
  for (const auto& [k, v] : h) {
    if (!first) out << ' ';
    first = false;
    out << k << '=' << to_string(v);
  }
  return out.str();
}

nlohmann::json to_json(const Hyperparams& h) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : h) std::visit([&](const auto& x) { j[k] = x; }, v);
  return j;
}

Hyperparams hyperparams_from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw Error("hyperparameters must be a JSON object, got: " + j.dump());
  Hyperparams h;
  for (const auto& [k, v] : j.items()) {
    if (v.is_number_integer()) h[k] = v.get<std::int64_t>();
    else if (v.is_number()) h[k] = v.get<double>();
    else if (v.is_string()) h[k] = v.get<std::string>();
    else throw Error("hyperparameter '" + k + "' has a value that is neither number nor string: " + v.dump());
  }
  return h;
}

}  // namespace pbt
