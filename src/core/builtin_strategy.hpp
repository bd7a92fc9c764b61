#pragma once
// How the built-in strategies are registered: each reads its table with Options, which
// names the field at fault and refuses keys that nobody read.
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "pbt/options.hpp"

namespace pbt {

// A factory for the registry from `build(Options&) -> std::unique_ptr<Strategy>`.
template <class Strategy, class Build>
auto reading_options(Build build) {
  return [build](const nlohmann::json& options, const std::string& where) -> std::unique_ptr<Strategy> {
    Options o(options, where);
    std::unique_ptr<Strategy> s = build(o);
    o.finish();
    return s;
  };
}

}  // namespace pbt
