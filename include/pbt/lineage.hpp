#pragma once
// Lineage: where a member's model came from. Following the copies back, a final model
// was trained by a chain of members, each under the h in force at the time; that chain
// of (steps, h) is the schedule it inherited. Replaying the schedule from scratch, with
// no population, is the paper's schedule-reuse analysis (and Ray's "PBT replay").
#include <cstdint>
#include <vector>

#include "pbt/config.hpp"
#include "pbt/store.hpp"
#include "pbt/trainable.hpp"

namespace pbt {

// Training steps (from_step, to_step] of `member`'s own counter, run under `h`.
struct ScheduleSegment {
  int member = 0;
  std::int64_t from_step = 0;
  std::int64_t to_step = 0;
  Hyperparams h;
  std::int64_t steps() const { return to_step - from_step; }
};

struct InheritedSchedule {
  int root = 0;                          // the member whose fresh model the chain starts from
  std::vector<ScheduleSegment> segments; // in training order
  std::int64_t total_steps() const;
};

// The schedule that produced `member`'s model at `step`. `initial` is every member's
// initial h (initial_hyperparams(config)); `events` in publish order, as the store gives them.
InheritedSchedule inherited_schedule(const std::vector<Event>& events, const std::vector<Hyperparams>& initial,
                                     int member, std::int64_t step);

struct ReplayResult {
  InheritedSchedule schedule;
  Score score;  // eval of the replayed model
};

// Trains a fresh model of the root member (same initialisation as in the run) through
// the schedule, evaluating once at the end.
ReplayResult replay(const ExperimentConfig& config, const InheritedSchedule& schedule);

}  // namespace pbt
