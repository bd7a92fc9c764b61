#pragma once
// What the report derives from a run before drawing it: its config (when readable), the
// engine's lineage model, every member's h over time and the best member.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "pbt/lineage.hpp"
#include "pbt/report.hpp"

namespace pbt::report {

// The run's config; none for a store written by something else (draw what the data says).
std::optional<ExperimentConfig> config_of(const RunData& run);

// The lineage model of the run. A member's initial h is its first event's old_h, else
// its h in the store, else the config's initial h.
Lineage lineage_of(const RunData& run);

// Every member's h over time, in population order: Lineage::history_of at its published step.
std::vector<ScheduleSegment> hyperparameter_history(const RunData& run, const Lineage& lineage);
std::vector<ScheduleSegment> hyperparameter_history(const RunData& run);

// What set a segment's h: "initial" or the event's kind; and the event's donor (-1: none).
std::string cause_of(const Lineage& lineage, const ScheduleSegment& s);
int donor_of(const Lineage& lineage, const ScheduleSegment& s);

// Score points of one member: (step, the last eval at that step), by step.
using Points = std::vector<std::pair<std::int64_t, double>>;
std::map<int, Points> points_by_member(const std::vector<ScorePoint>& scores);
// The score at `step`, or null.
const double* point_at(const Points& points, std::int64_t step);

}  // namespace pbt::report
