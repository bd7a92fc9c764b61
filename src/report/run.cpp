#include "report/run.hpp"

#include <algorithm>

#include "pbt/error.hpp"

namespace pbt::report {

RunData read_run(Store& store, const std::string& experiment) {
  RunData r;
  auto info = store.experiment(experiment);
  if (!info) throw Error("the store has no experiment named '" + experiment + "'");
  r.info = *info;
  r.population = store.population(experiment);
  r.events = store.events(experiment);
  r.scores = store.scores(experiment);
  return r;
}

std::optional<ExperimentConfig> config_of(const RunData& run) {
  try {
    return parse_config(run.info.config, run.info.origin);
  } catch (const std::exception&) {
    return std::nullopt;  // a store written by something else: draw what the data says
  }
}

Lineage lineage_of(const RunData& run) {
  int members = 0;
  for (const auto& m : run.population) members = std::max(members, m.id + 1);
  for (const auto& e : run.events) members = std::max({members, e.member + 1, e.donor + 1});
  std::vector<Hyperparams> initial(members);
  std::vector<bool> known(members, false);
  for (const auto& e : run.events)
    if (e.member >= 0 && !known[e.member]) {
      initial[e.member] = e.old_h;
      known[e.member] = true;
    }
  std::optional<std::vector<Hyperparams>> from_config;  // read only when needed
  for (const auto& m : run.population) {
    if (m.id < 0 || known[m.id]) continue;
    if (!m.h.empty()) {
      initial[m.id] = m.h;
      continue;
    }
    if (!from_config) {
      auto cfg = config_of(run);
      from_config = cfg ? initial_hyperparams(*cfg) : std::vector<Hyperparams>{};
    }
    if (m.id < static_cast<int>(from_config->size())) initial[m.id] = (*from_config)[m.id];
  }
  return Lineage(run.events, std::move(initial));
}

std::vector<ScheduleSegment> hyperparameter_history(const RunData& run, const Lineage& lineage) {
  std::vector<ScheduleSegment> out;
  for (const auto& m : run.population) {
    auto h = lineage.history_of(m.id, m.step);
    out.insert(out.end(), h.begin(), h.end());
  }
  return out;
}

std::vector<ScheduleSegment> hyperparameter_history(const RunData& run) {
  return hyperparameter_history(run, lineage_of(run));
}

std::string cause_of(const Lineage& lineage, const ScheduleSegment& s) {
  return s.event >= 0 ? to_string(lineage.events()[s.event].kind) : "initial";
}

int donor_of(const Lineage& lineage, const ScheduleSegment& s) {
  return s.event >= 0 ? lineage.events()[s.event].donor : -1;
}

std::map<int, Points> points_by_member(const std::vector<ScorePoint>& scores) {
  std::map<int, Points> out;
  for (const auto& p : scores) {
    auto& v = out[p.member];
    if (!v.empty() && v.back().first == p.step) v.back().second = p.score;
    else v.emplace_back(p.step, p.score);
  }
  for (auto& [m, v] : out)
    std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

const double* point_at(const Points& pts, std::int64_t step) {
  auto it = std::lower_bound(pts.begin(), pts.end(), step, [](const auto& p, std::int64_t s) { return p.first < s; });
  if (it == pts.end() || it->first != step) return nullptr;
  return &it->second;
}

}  // namespace pbt::report
