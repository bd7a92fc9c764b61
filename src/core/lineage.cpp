#include "pbt/lineage.hpp"

#include <algorithm>

#include "pbt/error.hpp"

namespace pbt {

bool copies_weights(const Event& e) {
  return (e.kind == EventKind::exploit && copies_weights(e.copied)) || e.kind == EventKind::recover;
}

std::int64_t InheritedSchedule::total_steps() const {
  std::int64_t n = 0;
  for (const auto& s : segments) n += s.steps();
  return n;
}

Lineage::Lineage(std::vector<Event> events, std::vector<Hyperparams> initial)
    : events_(std::move(events)),
      initial_(std::move(initial)),
      events_of_(initial_.size()),
      weight_copies_of_(initial_.size()),
      taken_(events_.size()) {
  const int members = static_cast<int>(initial_.size());
  for (std::size_t i = 0; i < events_.size(); ++i) {
    const Event& e = events_[i];
    const int index = static_cast<int>(i);
    const bool known = e.member >= 0 && e.member < members;
    if (known) events_of_[e.member].push_back(index);
    if (e.donor >= 0)
      copies_.push_back({index, e.kind, e.member, e.step, e.donor, e.donor_step, e.copied, copies_weights(e)});
    // Publish order: a copy sees only events published before it, whose memos are set.
    if (copies_weights(e)) {
      taken_[i] = trained_before(e.donor, e.donor_step, i, /*donor=*/true);
      if (known) weight_copies_of_[e.member].push_back(index);
    }
  }
}

// collect() without the segments: the latest weight copy (published before `before`, at or
// before `step`) brought the donor's trained steps, and the member trained from there on.
Lineage::Taken Lineage::trained_before(int member, std::int64_t step, std::size_t before, bool donor) const {
  if (member < 0 || member >= static_cast<int>(initial_.size())) return {0, member};
  const auto& copies = weight_copies_of_[member];
  for (auto k = std::lower_bound(copies.begin(), copies.end(), static_cast<int>(before)); k != copies.begin();) {
    const Event& copy = events_[*--k];
    if (copy.step > step || (donor && copy.step == step)) continue;  // see collect()
    const Taken& t = taken_[*k];
    if (t.unknown) return t;
    return {t.trained + (step - copy.step), std::nullopt};
  }
  return {std::max<std::int64_t>(step, 0), std::nullopt};
}

std::int64_t Lineage::trained_steps(int member, std::int64_t step) const {
  const Taken t = trained_before(member, step, events_.size(), /*donor=*/false);
  if (t.unknown)
    throw Error("lineage names member " + std::to_string(*t.unknown) + ", which the experiment does not have");
  return t.trained;
}

std::optional<double> efficiency(std::int64_t trained_steps, std::int64_t step) {
  if (step <= 0) return std::nullopt;
  return static_cast<double>(trained_steps) / static_cast<double>(step);
}

std::vector<Trained> trained_of(const Lineage& lineage, const std::vector<MemberState>& population) {
  std::vector<Trained> out;
  out.reserve(population.size());
  for (const auto& m : population) {
    Trained t;
    try {
      t.steps = lineage.trained_steps(m.id, m.step);
      t.efficiency = efficiency(*t.steps, m.step);
    } catch (const Error&) {  // the log names a member the experiment lacks: nothing to measure
    }
    out.push_back(t);
  }
  return out;
}

std::optional<double> median_efficiency(const std::vector<Trained>& trained) {
  std::vector<double> values;
  for (const auto& t : trained)
    if (t.efficiency) values.push_back(*t.efficiency);
  if (values.empty()) return std::nullopt;
  const std::size_t mid = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + mid, values.end());
  if (values.size() % 2) return values[mid];
  const double upper = values[mid];
  const double lower = *std::max_element(values.begin(), values.begin() + mid);
  return (lower + upper) / 2;
}

// The member's own training from `seg` on: h changes at each of its events evs[first..]
// (those up to `step`); the last segment ends at `step`.
void Lineage::own_segments(int member, const std::vector<int>& evs, std::size_t first, ScheduleSegment seg,
                           std::int64_t step, std::vector<ScheduleSegment>& out) const {
  seg.member = member;
  for (std::size_t k = first; k < evs.size(); ++k) {
    const Event& e = events_[evs[k]];
    if (e.step > seg.from_step) {
      seg.to_step = e.step;
      out.push_back(seg);
      seg.from_step = e.step;
    }
    seg.h = e.new_h;
    seg.event = evs[k];
  }
  seg.to_step = step;
  if (step > seg.from_step) out.push_back(seg);
}

std::vector<ScheduleSegment> Lineage::history_of(int member, std::int64_t step) const {
  std::vector<ScheduleSegment> out;
  if (member < 0 || member >= static_cast<int>(initial_.size())) return out;
  std::vector<int> evs;
  for (int i : events_of_[member])
    if (events_[i].step <= step) evs.push_back(i);
  ScheduleSegment start;
  start.h = initial_[member];
  own_segments(member, evs, 0, start, step, out);
  if (out.empty()) {  // no steps yet: the h it starts with
    ScheduleSegment only = start;
    only.member = member;
    for (int i : evs) {
      only.h = events_[i].new_h;
      only.event = i;
    }
    only.from_step = only.to_step = std::max<std::int64_t>(step, 0);
    out.push_back(only);
  }
  return out;
}

// Appends the segments of `member` up to `step` (recursively through its donors), seeing
// only the events published before index `before`.
void Lineage::collect(int member, std::int64_t step, std::size_t before, InheritedSchedule& out, int depth) const {
  if (depth > 100000) throw Error("lineage too deep: the event log loops");
  if (member < 0 || member >= static_cast<int>(initial_.size()))
    throw Error("lineage names member " + std::to_string(member) + ", which the experiment does not have");

  // A donor's model at `step` is the one it published at that step: its own events at that
  // step (a copy it made then) came after, published with its next checkpoint, even when
  // they reached the log before the copy that took the model (workers run asynchronously).
  const bool donor = depth > 0;
  std::vector<int> own;
  for (int i : events_of_[member])
    if (static_cast<std::size_t>(i) < before && (events_[i].step < step || (!donor && events_[i].step == step)))
      own.push_back(i);

  // The latest copy of weights: before it, the model was the donor's (as published then:
  // its events published before this one).
  ScheduleSegment seg;
  seg.h = initial_[member];
  std::size_t first = 0;
  for (std::size_t k = own.size(); k-- > 0;) {
    const Event& copy = events_[own[k]];
    if (!copies_weights(copy)) continue;
    collect(copy.donor, copy.donor_step, static_cast<std::size_t>(own[k]), out, depth + 1);
    seg.from_step = copy.step;
    seg.h = copy.new_h;
    seg.event = own[k];
    first = k + 1;
    break;
  }
  if (first == 0) out.root = member;
  own_segments(member, own, first, seg, step, out.segments);
}

InheritedSchedule Lineage::schedule_of(int member, std::int64_t step) const {
  InheritedSchedule out;
  collect(member, step, events_.size(), out, 0);
  // Merge neighbours with the same h (an explore that changed nothing, a chain hand-over).
  std::vector<ScheduleSegment> merged;
  for (auto& s : out.segments) {
    if (!merged.empty() && merged.back().h == s.h && merged.back().member == s.member &&
        merged.back().to_step == s.from_step)
      merged.back().to_step = s.to_step;
    else merged.push_back(std::move(s));
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
