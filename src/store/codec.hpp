#pragma once
// How the database backends write member fields as text, shared so that SQLite and
// PostgreSQL stores agree bit for bit.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pbt/store.hpp"

namespace pbt::store_codec {

inline std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Samples keep non-finite values (JSON has none): they are written as strings.
inline std::string samples_to_text(const std::vector<double>& samples) {
  nlohmann::json j = nlohmann::json::array();
  for (double x : samples) {
    if (std::isfinite(x)) j.push_back(x);
    else if (std::isnan(x)) j.push_back("nan");
    else j.push_back(x > 0 ? "inf" : "-inf");
  }
  return dump(j);
}

inline std::vector<double> samples_from_text(const std::string& text) {
  std::vector<double> out;
  for (const auto& v : nlohmann::json::parse(text)) {
    if (v.is_number()) out.push_back(v.get<double>());
    else if (v.is_string() && v.get<std::string>() == "inf") out.push_back(std::numeric_limits<double>::infinity());
    else if (v.is_string() && v.get<std::string>() == "-inf") out.push_back(-std::numeric_limits<double>::infinity());
    else out.push_back(std::numeric_limits<double>::quiet_NaN());
  }
  return out;
}

inline std::string lease_text(const Lease& lease) {
  return "member " + std::to_string(lease.member) + " of experiment '" + lease.experiment + "'";
}

}  // namespace pbt::store_codec
