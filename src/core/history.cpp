// The population's published history as intervals (TrainedInterval), for model-based explores.
#include <algorithm>
#include <cmath>
#include <map>

#include "pbt/lineage.hpp"

namespace pbt {

std::vector<TrainedInterval> trained_intervals(const ExperimentConfig& config, const std::vector<Event>& events,
                                               const std::vector<ScorePoint>& scores) {
  const std::vector<Hyperparams> initial = initial_hyperparams(config);
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

  std::vector<TrainedInterval> out;
  for (int m = 0; m < n; ++m) {
    const std::map<std::int64_t, double>& points = ends[m];
    for (auto it = points.begin(); it != points.end() && std::next(it) != points.end(); ++it) {
      const auto next = std::next(it);
      TrainedInterval t;
      t.member = m;
      t.from_step = it->first;
      t.to_step = next->first;
      t.from_score = it->second;
      t.to_score = next->second;
      t.h = m < static_cast<int>(initial.size()) ? initial[m] : Hyperparams{};
      // The member's events are in publish order, so the last one at or before from_step
      // set the h it trained under; a copy of weights at from_step gave it the donor's model.
      for (const Event* e : events_of[m]) {
        if (e->step > t.from_step) continue;
        t.h = e->new_h;
        if (e->step == t.from_step && copies_weights(*e)) t.from_score = e->donor_score;
      }
      if (t.from_score == kDivergedScore || t.to_score == kDivergedScore || !std::isfinite(t.from_score) ||
          !std::isfinite(t.to_score) || t.h.empty())
        continue;
      out.push_back(std::move(t));
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const TrainedInterval& a, const TrainedInterval& b) {
    return a.from_step != b.from_step ? a.from_step < b.from_step : a.member < b.member;
  });
  return out;
}

}  // namespace pbt
