#include "pbt/lineage.hpp"

#include "pbt/error.hpp"

namespace pbt {

namespace {

bool copies_weights(const Event& e) {
  return (e.kind == EventKind::exploit && copies_weights(e.copied)) || e.kind == EventKind::recover;
}

// Appends the segments of `member` up to `step` (recursively through its donors).
void collect(const std::vector<Event>& events, const std::vector<Hyperparams>& initial, int member,
             std::int64_t step, std::size_t before, InheritedSchedule& out, int depth) {
  if (depth > 100000) throw Error("lineage too deep: the event log loops");
  if (member < 0 || member >= static_cast<int>(initial.size()))
    throw Error("lineage names member " + std::to_string(member) + ", which the experiment does not have");

  // This member's events up to `step` that were published before index `before`.
  std::vector<const Event*> own;
  for (std::size_t i = 0; i < before && i < events.size(); ++i)
    if (events[i].member == member && events[i].step <= step) own.push_back(&events[i]);

  // The latest copy of weights: before it, the model was the donor's.
  std::int64_t start = 0;
  Hyperparams h = initial[member];
  std::size_t first = 0;
  for (std::size_t k = own.size(); k-- > 0;) {
    if (!copies_weights(*own[k])) continue;
    const Event& copy = *own[k];
    // The donor's model as published then: its events published before this one.
    const std::size_t index = static_cast<std::size_t>(own[k] - events.data());
    collect(events, initial, copy.donor, copy.donor_step, index, out, depth + 1);
    start = copy.step;
    h = copy.new_h;
    first = k + 1;
    break;
  }
  if (first == 0) out.root = member;

  // From there on: the member's own training, h changing at each later event.
  std::int64_t from = start;
  for (std::size_t k = first; k < own.size(); ++k) {
    const Event& e = *own[k];
    if (e.step > from) out.segments.push_back({member, from, e.step, h});
    from = std::max(from, e.step);
    h = e.new_h;
  }
  if (step > from) out.segments.push_back({member, from, step, h});
}

}  // namespace

std::int64_t InheritedSchedule::total_steps() const {
  std::int64_t n = 0;
  for (const auto& s : segments) n += s.steps();
  return n;
}

InheritedSchedule inherited_schedule(const std::vector<Event>& events, const std::vector<Hyperparams>& initial,
                                     int member, std::int64_t step) {
  InheritedSchedule out;
  collect(events, initial, member, step, events.size(), out, 0);
  // Merge neighbours with the same h (an explore that changed nothing, a chain hand-over).
  std::vector<ScheduleSegment> merged;
  for (auto& s : out.segments) {
    if (!merged.empty() && merged.back().h == s.h && merged.back().member == s.member &&
        merged.back().to_step == s.from_step)
      merged.back().to_step = s.to_step;
    else
      merged.push_back(std::move(s));
  }
  out.segments = std::move(merged);
  return out;
}

ReplayResult replay(const ExperimentConfig& config, const InheritedSchedule& schedule) {
  TrainableContext ctx;
  ctx.member = schedule.root;
  ctx.seed = derive_seed(config.seed, schedule.root, 0, kTrain);
  ctx.options = config.trainable_options;
  auto t = make_trainable(config.trainable, ctx);
  for (const auto& s : schedule.segments) {
    t->apply(s.h);
    t->step(s.steps());
  }
  ReplayResult r;
  r.schedule = schedule;
  r.score = t->eval();
  return r;
}

}  // namespace pbt
