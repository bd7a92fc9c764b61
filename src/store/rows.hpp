#pragma once
// How the database backends map members, events, score points and experiments to table
// rows: one column list and one conversion each way, so that SQLite and PostgreSQL store
// the same columns the same way. The SQL around them (placeholders, clocks, locks) stays
// with each backend.
#include <cstdint>
#include <optional>
#include <string>
#include <tuple>

#include "pbt/store.hpp"
#include "store/codec.hpp"

namespace pbt::store_codec {

// One row of a query result, read by column index.
class Row {
 public:
  virtual bool null(int c) const = 0;
  virtual std::int64_t i64(int c) const = 0;
  virtual double real(int c) const = 0;  // NaN when NULL
  virtual std::string text(int c) const = 0;
  virtual bool boolean(int c) const = 0;
  std::optional<double> opt_real(int c) const { return null(c) ? std::nullopt : std::optional<double>(real(c)); }
  virtual ~Row() = default;
};

// Calls f with each value of a tuple, in order (to bind a row's values).
template <class Tuple, class F>
void each(const Tuple& values, F&& f) {
  std::apply([&](const auto&... v) { (f(v), ...); }, values);
}

// "columns" prefixed by a table alias: "m.id, m.step, ...".
std::string qualified(const std::string& columns, const std::string& alias);
// n placeholders: "$first, $first+1, ..." (PostgreSQL), or "?, ?, ..." when first is 0 (SQLite).
std::string placeholders(int n, int first);
// "a = $first, b = ..." (or "a = ?, b = ?") for the columns of an UPDATE.
std::string assignments(const std::string& columns, int first);

// experiments: read and written whole.
extern const char* const kExperimentColumns;
ExperimentInfo experiment_from_row(const Row& row);
inline auto experiment_values(const ExperimentInfo& info, int population, double created) {
  return std::make_tuple(info.name, info.config, info.origin, population, info.finished, created);
}

// members: every column a MemberState has (read), the ones a new member is created with
// (the lease columns start free), and the ones a publish sets (checkpoint apart: it is
// decided inside the transaction).
extern const char* const kMemberColumns;
extern const char* const kNewMemberColumns;
extern const char* const kPublishedColumns;
// `store` names the store for messages ("SQLite store 'x.db'").
MemberState member_from_row(const Row& row, const std::string& store, const std::string& experiment);
inline auto new_member_values(const MemberState& m) {
  return std::make_tuple(m.id, m.step, m.last_ready_step, m.score, samples_to_text(m.samples), dump(to_json(m.h)),
                         m.checkpoint, m.done, m.version, m.last_owner, dump(m.metrics));
}
inline auto published_values(const Publication& pub) {
  return std::make_tuple(pub.step, pub.last_ready_step, pub.score, samples_to_text(pub.samples), dump(to_json(pub.h)),
                         pub.done, dump(pub.metrics));
}

// members: the columns a decision sets (Store::decide; checkpoint apart, as in a publish):
// decided at its step, which becomes its last_ready_step.
extern const char* const kDecidedColumns;
inline auto decided_values(const Decision& d) {
  return std::make_tuple(d.step, d.score, samples_to_text(d.samples), dump(to_json(d.h)), dump(d.metrics));
}

// events: kEventColumns are written by a publish (with experiment and time); reads select
// them and then time.
extern const char* const kEventColumns;
Event event_from_row(const Row& row, const std::string& store, const std::string& experiment);
// `worker` stands in for an event that names none (the publishing worker).
std::tuple<int, std::int64_t, std::string, int, std::int64_t, std::string, std::string, std::string, std::string,
           double, double, std::optional<double>, std::string>
event_values(const Event& ev, const std::string& worker);

// scores
extern const char* const kScoreColumns;
inline ScorePoint score_from_row(const Row& row) {
  return ScorePoint{static_cast<int>(row.i64(0)), row.i64(1), row.real(2)};
}
inline auto score_values(const ScorePoint& p) { return std::make_tuple(p.member, p.step, p.score); }

// The LeaseLost message: what was tried, and where the member is now (its version and
// owner, or none when it is gone).
std::string lease_lost_text(const Lease& lease, const std::string& what, std::optional<std::int64_t> version,
                            const std::string& owner);

}  // namespace pbt::store_codec
