#pragma once
// Hyperparameters h: a named set of float, integer and categorical values.
// They live in the store (never only inside a checkpoint): the store's h is the h in force.
#include <cstdint>
#include <map>
#include <string>
#include <variant>

#include <nlohmann/json.hpp>

namespace pbt {

using Value = std::variant<double, std::int64_t, std::string>;
using Hyperparams = std::map<std::string, Value>;

// Numeric view of a value (categoricals have none and throw).
double as_double(const Value& v);
std::string to_string(const Value& v);
std::string to_string(const Hyperparams& h);  // "lr=0.01 layers=3 act=relu"

nlohmann::json to_json(const Hyperparams& h);
// Integers in JSON become int64, other numbers double, strings categorical.
Hyperparams hyperparams_from_json(const nlohmann::json& j);

}  // namespace pbt
