#include "cli/gpus.hpp"

#include <cstdint>

#include "pbt/config.hpp"
#include "pbt/error.hpp"

namespace pbt::cli {

std::vector<int> parse_gpus(const std::string& text, const std::string& option) {
  std::vector<std::int64_t> ids;
  std::size_t at = 0;
  while (true) {
    const std::size_t comma = text.find(',', at);
    const std::string part = text.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    const bool digits = !part.empty() && part.size() <= 9 && part.find_first_not_of("0123456789") == std::string::npos;
    if (!digits)
      throw ConfigError(
          option, "'" + text + "': expected GPU ids, integers >= 0 separated by commas (e.g. 0,1), got '" + part + "'");
    ids.push_back(std::stoll(part));
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  const std::string why = gpu_ids_problem(ids);
  if (!why.empty()) throw ConfigError(option, "'" + text + "': " + why);
  return std::vector<int>(ids.begin(), ids.end());
}

std::string gpus_text(const std::vector<int>& gpus) {
  std::string s;
  for (int g : gpus) s += (s.empty() ? "" : ",") + std::to_string(g);
  return s;
}

}  // namespace pbt::cli
