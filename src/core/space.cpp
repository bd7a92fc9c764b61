#include "pbt/space.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include "pbt/error.hpp"

namespace pbt {

namespace {
const char* kind_name(Param::Kind k) {
  switch (k) {
    case Param::Kind::Float: return "float";
    case Param::Kind::Int: return "int";
    case Param::Kind::Categorical: return "categorical";
  }
  return "?";
}
}  // namespace

Value Param::sample(Rng& rng) const {
  switch (kind) {
    case Kind::Categorical: return choices[uniform_index(rng, choices.size())];
    case Kind::Int: {
      if (log) {
        double x = std::exp(std::log(low) + uniform01(rng) * (std::log(high + 1) - std::log(low)));
        return clip(static_cast<std::int64_t>(std::floor(x)));
      }
      auto lo = static_cast<std::int64_t>(low), hi = static_cast<std::int64_t>(high);
      return lo + static_cast<std::int64_t>(uniform_index(rng, static_cast<std::uint64_t>(hi - lo + 1)));
    }
    case Kind::Float:
      if (log) return clip(std::exp(std::log(low) + uniform01(rng) * (std::log(high) - std::log(low))));
      return clip(low + uniform01(rng) * (high - low));
  }
  return 0.0;
}

Value Param::clip(const Value& v) const {
  switch (kind) {
    case Kind::Categorical: {
      const auto* s = std::get_if<std::string>(&v);
      if (s && std::find(choices.begin(), choices.end(), *s) != choices.end()) return *s;
      throw Error("hyperparameter '" + name + "': '" + to_string(v) + "' is not one of its choices");
    }
    case Kind::Int: {
      double x = std::round(as_double(v));
      x = std::clamp(x, low, high);
      return static_cast<std::int64_t>(x);
    }
    case Kind::Float: {
      double x = as_double(v);
      if (std::isnan(x)) throw Error("hyperparameter '" + name + "' became NaN");
      return std::clamp(x, low, high);
    }
  }
  return v;
}

bool Param::contains(const Value& v) const {
  switch (kind) {
    case Kind::Categorical: {
      const auto* s = std::get_if<std::string>(&v);
      return s && std::find(choices.begin(), choices.end(), *s) != choices.end();
    }
    case Kind::Int: {
      const auto* i = std::get_if<std::int64_t>(&v);
      return i && *i >= low && *i <= high;
    }
    case Kind::Float: {
      const auto* d = std::get_if<double>(&v);
      return d && *d >= low && *d <= high;
    }
  }
  return false;
}

void Param::validate(const std::string& where) const {
  if (kind == Kind::Categorical) {
    if (choices.empty()) throw ConfigError(where + ".choices", "a categorical needs at least one choice");
    std::set<std::string> seen(choices.begin(), choices.end());
    if (seen.size() != choices.size()) throw ConfigError(where + ".choices", "choices repeat a value");
    return;
  }
  if (!std::isfinite(low) || !std::isfinite(high)) throw ConfigError(where, "low and high must be finite numbers");
  if (low > high)
    throw ConfigError(where,
                      "low (" + to_string(Value(low)) + ") is greater than high (" + to_string(Value(high)) + ")");
  if (log && low <= 0)
    throw ConfigError(where + ".low",
                      "a log-scale " + std::string(kind_name(kind)) + " needs low > 0, got " + to_string(Value(low)));
  if (kind == Kind::Int && (low != std::floor(low) || high != std::floor(high)))
    throw ConfigError(where, "an int's low and high must be whole numbers");
}

const Param* SearchSpace::find(const std::string& name) const {
  for (const auto& p : params_)
    if (p.name == name) return &p;
  return nullptr;
}

Hyperparams SearchSpace::sample(Rng& rng) const {
  Hyperparams h;
  for (const auto& p : params_) h[p.name] = p.sample(rng);
  return h;
}

void SearchSpace::check(const Hyperparams& h, const std::string& where) const {
  for (const auto& [k, v] : h) {
    const Param* p = find(k);
    if (!p) throw ConfigError(where + "." + k, "not a hyperparameter of the search space");
    if (!p->contains(v))
      throw ConfigError(where + "." + k, "value " + to_string(v) + " is not a valid " + kind_name(p->kind) +
                                             " within the bounds of '" + k + "'");
  }
  for (const auto& p : params_)
    if (!h.count(p.name)) throw ConfigError(where, "missing hyperparameter '" + p.name + "'");
}

namespace {
// A value as JSON writes it: every digit a double needs, so a bound missed by 1e-9 shows.
std::string exact(const Value& v) {
  return std::visit([](const auto& x) { return nlohmann::json(x).dump(); }, v);
}
const char* type_of(const Value& v) {
  if (std::holds_alternative<double>(v)) return "a float";
  if (std::holds_alternative<std::int64_t>(v)) return "an integer";
  return "a string";
}
}  // namespace

std::string SearchSpace::problem(const Hyperparams& h) const {
  for (const auto& [k, v] : h) {
    const Param* p = find(k);
    const std::string at = "'" + k + "' = " + exact(v);
    if (!p) return at + " is not a hyperparameter declared in [space]";
    if (p->contains(v)) continue;
    const bool numeric_value = !std::holds_alternative<std::string>(v);
    switch (p->kind) {
      case Param::Kind::Categorical:
        if (numeric_value) return at + ": expected a string (a categorical), got " + type_of(v);
        {
          std::string choices;
          for (const auto& c : p->choices) choices += (choices.empty() ? "" : ", ") + c;
          return at + " is not one of its choices (" + choices + ")";
        }
      case Param::Kind::Int:
        if (!std::holds_alternative<std::int64_t>(v)) return at + ": expected an integer (an int), got " + type_of(v);
        break;
      case Param::Kind::Float:
        if (!numeric_value) return at + ": expected a number (a float), got " + type_of(v);
        if (std::holds_alternative<std::int64_t>(v) && p->contains(Value(as_double(v)))) continue;
        break;
    }
    const auto bound = [&](double b) {
      return p->kind == Param::Kind::Int ? exact(Value(static_cast<std::int64_t>(b))) : exact(Value(b));
    };
    return at + " is outside its bounds [" + bound(p->low) + ", " + bound(p->high) + "]";
  }
  for (const auto& p : params_)
    if (!h.count(p.name)) return "'" + p.name + "' is missing (every hyperparameter of [space] must be given)";
  return "";
}

}  // namespace pbt
