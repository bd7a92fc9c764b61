#pragma once
// FIRE PBT (Dalibard & Jaderberg 2021, "Faster Improvement Rate Population Based Training"):
// the population is split into sub-populations; the first is greedy (truncation on the score),
// the others select on the improvement rate of a member's score curve under fixed h, and each
// sub-population's worst members may copy its parent sub-population's best when that scores
// above them all. What we implement and how it maps onto the engine: docs/fire.md.
// The curve arithmetic is here so that the unit tests can reach it.
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "pbt/options.hpp"
#include "pbt/strategy.hpp"

namespace pbt::fire {

// A score curve under fixed h: (step, score) points, steps increasing.
struct CurvePoint {
  std::int64_t step = 0;
  double score = 0;
};
using Curve = std::vector<CurvePoint>;

// Steps the curve's running best takes to go from score `lo` to score `hi` (lo <= hi), each
// reached where the running best first gets to it, linearly between points; nothing when the
// curve never reaches `hi` or starts above `lo`.
std::optional<double> steps_between(const Curve& c, double lo, double hi);

// The common range of performance of two curves: from the higher of their first scores to the
// lower of their best; nothing when it is empty (one curve ends below where the other starts).
struct Range {
  double lo = 0;
  double hi = 0;
};
std::optional<Range> common_range(const Curve& a, const Curve& b);

// Which curve improves faster over their common range: -1 for a (fewer steps from lo to hi),
// 1 for b, 0 for a tie; nothing when the two cannot be compared (no common range).
std::optional<int> faster(const Curve& a, const Curve& b);

// Member `member`'s curve under its h in force: the published intervals it trained since h
// last changed or it last copied weights, at most `max_intervals` of the most recent, and only
// when the last one ends at `step` with `score` and `h` (what the member holds now). Empty when
// there are fewer than `min_intervals` of them.
Curve curve_of(int member, std::int64_t step, double score, const Hyperparams& h,
               const std::vector<TrainedInterval>& history, std::size_t min_intervals, std::size_t max_intervals);

// The sub-population of member `id` in a population of `population` split into `n`
// contiguous blocks of ids: 0 is the greedy one, n-1 the last parent.
int subpopulation(int id, int population, int n);

struct Settings {
  std::int64_t subpopulations = 2;
  double fraction = 0.2;             // truncation within a sub-population
  std::int64_t min_intervals = 2;    // a curve shorter than this is no evidence: rank by score
  std::int64_t curve_intervals = 8;  // the most recent intervals of a curve that are read
};

Settings read_settings(Options& o);
std::unique_ptr<Exploit> make(const Settings& s);

}  // namespace pbt::fire
