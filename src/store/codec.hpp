#pragma once
// How the database backends write member fields as text, shared so that SQLite and
// PostgreSQL stores agree bit for bit.
#include <cmath>
#include <limits>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pbt/error.hpp"
#include "pbt/store.hpp"

namespace pbt::store_codec {

// A publication's new checkpoint in memory (the small-blob form, or a staged checkpoint that
// kept its bytes), and its id; "" when it brings none.
inline const std::string& publication_bytes(const Publication& pub) {
  return pub.checkpoint ? pub.checkpoint->bytes() : pub.checkpoint_bytes;
}
inline std::string publication_checkpoint_id(const Publication& pub) {
  if (pub.checkpoint) return pub.checkpoint->id();
  return pub.checkpoint_bytes.empty() ? "" : checkpoint_id(pub.checkpoint_bytes);
}

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
  const nlohmann::json j = nlohmann::json::parse(text);
  if (!j.is_array()) throw std::invalid_argument("samples must be a JSON array, got: " + j.dump());
  for (const auto& v : j) {
    if (v.is_number()) out.push_back(v.get<double>());
    else if (v.is_string() && v.get<std::string>() == "inf") out.push_back(std::numeric_limits<double>::infinity());
    else if (v.is_string() && v.get<std::string>() == "-inf") out.push_back(-std::numeric_limits<double>::infinity());
    else out.push_back(std::numeric_limits<double>::quiet_NaN());
  }
  return out;
}

// Decodes one column of one stored row. A garbled value (a disk fault, a hand edit, another
// program's write) becomes a StoreError naming the row and column, e.g.
// "SQLite store 'x.db': table members, experiment 'e', member 3, column h: invalid JSON (...)",
// instead of a parser's message that names nothing. `row` is only called on failure.
template <class Row, class F>
auto column(const Row& row, const char* name, F&& decode) -> decltype(decode()) {
  try {
    return decode();
  } catch (const nlohmann::json::parse_error& e) {
    throw StoreError(row() + ", column " + name + ": invalid JSON (" + e.what() + ")");
  } catch (const std::exception& e) {
    throw StoreError(row() + ", column " + name + ": invalid value (" + e.what() + ")");
  }
}

inline Hyperparams h_from_text(const std::string& text) { return hyperparams_from_json(nlohmann::json::parse(text)); }

inline std::string lease_text(const Lease& lease) {
  return "member " + std::to_string(lease.member) + " of experiment '" + lease.experiment + "'";
}

// Store::decide: the checks and messages every backend shares. `where` names the store.
inline void check_decisions(const std::string& where, const std::string& experiment,
                            const std::vector<Decision>& decisions) {
  std::set<int> seen;
  for (const auto& d : decisions)
    if (!seen.insert(d.member).second)
      throw StoreError(where + ": decisions for experiment '" + experiment + "' name member " +
                       std::to_string(d.member) + " twice");
}

// Why a decision is stale; `now` is the member as found (null: it is gone).
inline std::string stale_decision_text(const std::string& where, const std::string& experiment, const Decision& d,
                                       const MemberState* now) {
  const auto at = [](std::int64_t step, std::int64_t ready) {
    return "step " + std::to_string(step) + " (last ready at " + std::to_string(ready) + ")";
  };
  const std::string found = !now          ? "the member is gone"
                            : now->failed ? "it has failed"
                                          : "it is at " + at(now->step, now->last_ready_step);
  return "stale decision: " + where + ": member " + std::to_string(d.member) + " of experiment '" + experiment +
         "' was decided at " + at(d.step, d.last_ready_step) + ", but " + found +
         " (another worker decided first); nothing was applied";
}

inline std::string unknown_checkpoint_text(const std::string& where, const std::string& experiment, const Decision& d) {
  return where + ": decision for member " + std::to_string(d.member) + " of experiment '" + experiment +
         "' names checkpoint " + d.checkpoint + ", which the store does not hold; nothing was applied";
}

// Checks a checkpoint's bytes against its id (their hash); `where` names where they were
// read from ("SQLite store 'x.db'").
inline void verify_checkpoint(const std::string& id, const std::string& bytes, const std::string& where) {
  const std::string actual = checkpoint_id(bytes);
  if (actual != id)
    throw CheckpointError("checkpoint " + id + " in " + where + " does not match its hash (its bytes hash to " +
                          actual + ")");
}

}  // namespace pbt::store_codec
