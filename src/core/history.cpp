// The population's published history as intervals (TrainedInterval), for model-based explores.
#include <algorithm>
#include <cmath>
#include <map>

#include "pbt/lineage.hpp"

namespace pbt {

std::vector<TrainedInterval> trained_intervals(const ExperimentConfig& config, const std::vector<Event>& events,
                                               const std::vector<ScorePoint>& scores,
                                               const std::vector<MemberState>& population) {
  const int n = config.population;
  const std::int64_t every = std::max<std::int64_t>(config.ready.interval, 1);
  const std::int64_t first = std::max(every, config.ready.min_step);
  // The worker publishes at these steps (an interval ends there); evals inside an interval
  // (eval_every) are not interval ends.
  auto ends_interval = [&](std::int64_t s) {
    return s == config.budget_steps || (s >= first && (s - first) % every == 0);
  };
  std::vector<std::map<std::int64_t, double>> ends(static_cast<std::size_t>(n));
  for (const auto& p : scores)
    if (p.member >= 0 && p.member < n && ends_interval(p.step)) ends[p.member][p.step] = p.score;
  std::vector<std::vector<const Event*>> events_of(static_cast<std::size_t>(n));
  for (const auto& e : events)
    if (e.member >= 0 && e.member < n) events_of[e.member].push_back(&e);
  std::vector<const Hyperparams*> now(static_cast<std::size_t>(n), nullptr);
  for (const auto& m : population)
    if (m.id >= 0 && m.id < n) now[m.id] = &m.h;

  std::vector<TrainedInterval> out;
  for (int m = 0; m < n; ++m) {
    const std::map<std::int64_t, double>& points = ends[m];
    // The member's events are in publish order (steps never fall), and each one's old h is
    // the new h of the one before: the h over an interval is fixed by the events around its start.
    const std::vector<const Event*>& evs = events_of[m];
    std::size_t after = 0;  // the first event after the interval's start
    for (auto it = points.begin(); it != points.end() && std::next(it) != points.end(); ++it) {
      const auto next = std::next(it);
      double from_score = it->second;
      int donor = -1;
      std::int64_t donor_step = -1;
      for (; after < evs.size() && evs[after]->step <= it->first; ++after) {
        const Event& e = *evs[after];
        if (e.step == it->first && copies_weights(e)) {
          from_score = e.donor_score;
          donor = e.kind == EventKind::exploit ? e.donor : -1;
          donor_step = e.kind == EventKind::exploit ? e.donor_step : -1;
        }
      }
      const Hyperparams* h = after < evs.size() ? &evs[after]->old_h : after > 0 ? &evs[after - 1]->new_h : now[m];
      const double to_score = next->second;
      if (!h || h->empty() || from_score == kDivergedScore || to_score == kDivergedScore ||
          !std::isfinite(from_score) || !std::isfinite(to_score))
        continue;
      out.push_back({m, it->first, next->first, from_score, to_score, *h, donor, donor_step});
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const TrainedInterval& a, const TrainedInterval& b) {
    return a.from_step != b.from_step ? a.from_step < b.from_step : a.member < b.member;
  });
  return out;
}

std::int64_t history_start(const ExperimentConfig& config, const std::vector<MemberState>& population,
                           std::size_t intervals) {
  const std::int64_t every = std::max<std::int64_t>(config.ready.interval, 1);
  std::int64_t last = 0;
  for (const auto& m : population) last = std::max(last, m.step);
  const auto want = intervals + population.size();
  for (std::int64_t start = last - every; start > every; start -= every) {
    std::size_t held = 0;
    for (const auto& m : population)
      if (m.step > start) held += static_cast<std::size_t>((m.step - start) / every);
    if (held >= want) return start - every;  // one interval more: the start scores
  }
  return 0;
}

}  // namespace pbt
