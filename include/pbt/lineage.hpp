#pragma once
// Lineage: where a member's model came from. Following the copies back, a final model
// was trained by a chain of members, each under the h in force at the time; that chain
// of (steps, h) is the schedule it inherited. Replaying the schedule from scratch, with
// no population, is the paper's schedule-reuse analysis (and Ray's "PBT replay").
//
// One model, built from the event log, serves `pbt replay`, the report and the exports:
// each member's h over time (its own counter), the copies between members, and the
// schedule behind any member's model at any step.
#include <cstdint>
#include <optional>
#include <vector>

#include "pbt/config.hpp"
#include "pbt/store.hpp"
#include "pbt/strategy.hpp"
#include "pbt/trainable.hpp"

namespace pbt {

// Training steps (from_step, to_step] of `member`'s own counter, run under `h`. `event`
// is the index of the event that set h, or -1 for the member's initial h.
struct ScheduleSegment {
  int member = 0;
  std::int64_t from_step = 0;
  std::int64_t to_step = 0;
  Hyperparams h;
  int event = -1;
  std::int64_t steps() const { return to_step - from_step; }
};

// One copy between members: at `step`, `member` took `copied` from `donor`'s model as
// published at the donor's step `donor_step`.
struct Copy {
  int event = -1;  // index of the event that recorded it
  EventKind kind = EventKind::exploit;
  int member = 0;
  std::int64_t step = 0;
  int donor = -1;
  std::int64_t donor_step = 0;
  CopyMode copied = CopyMode::none;
  bool weights = false;  // the member's model was replaced by the donor's (copies_weights)
};

// True when the event replaced the member's model with its donor's: an exploit that copied
// weights (copy = "all" or "weights"), or a recover (the worker loads the donor's checkpoint).
bool copies_weights(const Event& e);

struct InheritedSchedule {
  int root = 0;                           // the member whose fresh model the chain starts from
  std::vector<ScheduleSegment> segments;  // in training order, neighbours with one member and h merged
  std::int64_t total_steps() const;
};

class Lineage {
 public:
  // `events` in publish order, as the store gives them; `initial` is every member's initial
  // h, indexed by member (initial_hyperparams(config)).
  Lineage(std::vector<Event> events, std::vector<Hyperparams> initial);

  const std::vector<Event>& events() const { return events_; }
  // Every event with a donor, in publish order.
  const std::vector<Copy>& copies() const { return copies_; }

  // The h in force over `member`'s own steps up to `step`, changed at each of its events
  // (copies are not followed): its hyperparameters over time. At least one segment.
  std::vector<ScheduleSegment> history_of(int member, std::int64_t step) const;

  // The schedule that produced `member`'s model at `step`, following weight copies back
  // to a fresh model. Throws Error when the log names a member the experiment lacks.
  InheritedSchedule schedule_of(int member, std::int64_t step) const;

  // The steps `member`'s model at `step` has really been trained, following every weight
  // copy back to a fresh model: schedule_of(member, step).total_steps(), without building
  // the schedule (a binary search and a memo per copy: fast for a whole population). It
  // exceeds `step` when the member copied a donor that was ahead of it, and falls short
  // when it copied one behind (or its own older checkpoint). Throws Error like schedule_of.
  std::int64_t trained_steps(int member, std::int64_t step) const;

 private:
  void collect(int member, std::int64_t step, std::size_t before, InheritedSchedule& out, int depth) const;
  void own_segments(int member, const std::vector<int>& evs, std::size_t first, ScheduleSegment seg, std::int64_t step,
                    std::vector<ScheduleSegment>& out) const;

  std::vector<Event> events_;
  std::vector<Hyperparams> initial_;
  std::vector<std::vector<int>> events_of_;  // per member: its events' indices, in publish order
  std::vector<Copy> copies_;
  // Per member: the indices of its events that copied weights, in publish order.
  std::vector<std::vector<int>> weight_copies_of_;
  // Per event that copied weights: the trained steps of the donor's model it took, or,
  // where the chain names a member the experiment lacks, that member.
  struct Taken {
    std::int64_t trained = 0;
    std::optional<int> unknown;
  };
  std::vector<Taken> taken_;
  Taken trained_before(int member, std::int64_t step, std::size_t before, bool donor) const;
};

// The intervals members trained, for a model-based explore (PB2), from the event log and the
// score points (or only their recent part: Store::events_since, Store::scores_since) and the
// population as read before them. An interval ends at each score point on the config's
// ready cadence (every `interval` steps from max(interval, min_step), and the budget); its
// h is the one in force then (the old h of the member's first event after its start, else
// the new h of its last event up to its start, else its h in `population`); its start
// score is the member's score there, or the donor's after a copy of weights at its start.
// Intervals without a score at their start (a member's first, or the first after the part
// read) and diverged scores are left out. Sorted by from_step, then member.
std::vector<TrainedInterval> trained_intervals(const ExperimentConfig& config, const std::vector<Event>& events,
                                               const std::vector<ScorePoint>& scores,
                                               const std::vector<MemberState>& population);

// The step from which the population holds at least `intervals` intervals (and one more per
// member, for the starts), judged from the members' steps and the ready cadence; 0 when the
// whole history is needed.
std::int64_t history_start(const ExperimentConfig& config, const std::vector<MemberState>& population,
                           std::size_t intervals);

// Trained steps per engine step: above 1 when the model copied a donor ahead of its member,
// below 1 when it copied one behind. None at step 0 (nothing to measure yet).
std::optional<double> efficiency(std::int64_t trained_steps, std::int64_t step);

// What a member's model has really been trained, measured at the member's step.
struct Trained {
  std::optional<std::int64_t> steps;  // Lineage::trained_steps; none where the log names unknown members
  std::optional<double> efficiency;   // steps / the member's step; none at step 0
};
// One per member of `population` (at its published step), in its order.
std::vector<Trained> trained_of(const Lineage& lineage, const std::vector<MemberState>& population);
// The median efficiency of those that have one (the mean of the middle two for an even
// count); none when none has.
std::optional<double> median_efficiency(const std::vector<Trained>& trained);

struct ReplayResult {
  InheritedSchedule schedule;
  Score score;  // eval of the replayed model
};

// Trains a fresh model of the root member (same initialisation as in the run) through
// the schedule, evaluating once at the end.
ReplayResult replay(const ExperimentConfig& config, const InheritedSchedule& schedule);

}  // namespace pbt
