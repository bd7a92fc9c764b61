#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace pbt {

// The config's TOML as JSON (tables become objects). Refuses, naming `origin`, a text over
// kMaxConfigBytes, nested deeper than kMaxConfigDepth, or not TOML (with line and column).
// Dates and times become null, which every option's type check refuses.
nlohmann::json read_toml(const std::string& text, const std::string& origin);

}  // namespace pbt
