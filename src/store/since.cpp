// Store::events_since and Store::scores_since for a store without its own: the full reads, filtered.
#include <algorithm>

#include "pbt/store.hpp"

namespace pbt {

std::vector<Event> Store::events_since(const std::string& experiment, std::int64_t from_step) {
  std::vector<Event> out = events(experiment);
  out.erase(std::remove_if(out.begin(), out.end(), [&](const Event& e) { return e.step < from_step; }), out.end());
  return out;
}

std::vector<ScorePoint> Store::scores_since(const std::string& experiment, std::int64_t from_step) {
  std::vector<ScorePoint> out = scores(experiment);
  out.erase(std::remove_if(out.begin(), out.end(), [&](const ScorePoint& p) { return p.step < from_step; }), out.end());
  return out;
}

}  // namespace pbt
