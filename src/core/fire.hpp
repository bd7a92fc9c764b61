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
// contiguous blocks of ids: 0 is the greedy one, n-1 the last parent. With evaluators,
// `population` is the members that are not evaluators.
int subpopulation(int id, int population, int n);

// Where a member's current lineage (its model since it last copied weights or changed h)
// begins, as far as the published history shows.
struct LineageStart {
  std::int64_t step = 0;  // the from_step of the first interval of its unbroken run
  // The run began with a copy or a change of h. False: the history read begins there, so the
  // lineage may be older (and a copy of the member at `step` is of this lineage).
  bool changed = false;
};
// Member `member`'s, which holds (step, score, h) now. A member whose latest interval is not
// what it holds (a synchronous generation has just given it a copy or a new h) begins a new
// lineage at its step.
LineageStart lineage_start(int member, std::int64_t step, double score, const Hyperparams& h,
                           const std::vector<TrainedInterval>& history);

// What an evaluator measured: it copied member `donor`'s model (and h) at the donor's step
// `donor_step`, then trained it under that fixed h. Its curve: the donor's score at the copy,
// then the end of each interval it trained since (at most max_intervals of them).
struct Evaluation {
  int evaluator = 0;
  int donor = -1;
  std::int64_t donor_step = 0;
  std::int64_t step = 0;  // the evaluator's own step at the copy
  Hyperparams h;
  Curve curve;
  std::size_t intervals() const { return curve.empty() ? 0 : curve.size() - 1; }
};
// Every evaluation the history shows by members `first_evaluator` and above, by member then step.
std::vector<Evaluation> evaluations(const std::vector<TrainedInterval>& history, int first_evaluator,
                                    std::size_t max_intervals);
// Whether `e` measured the current lineage of `member` (which begins at `start`, under `h`):
// a copy taken after the lineage began (at its start only when that is the history's edge).
bool measures(const Evaluation& e, int member, const LineageStart& start, const Hyperparams& h);

struct Settings {
  std::int64_t subpopulations = 2;
  double fraction = 0.2;             // truncation within a sub-population
  std::int64_t min_intervals = 2;    // a curve shorter than this is no evidence: rank by score
  std::int64_t curve_intervals = 8;  // the most recent intervals of a curve that are read
  // The last `evaluators` member ids are evaluators (docs/fire.md): never ranked nor copied,
  // each copies a parent sub-population member and trains it under fixed h for
  // `evaluate_intervals` intervals; parents are ranked on these curves where they exist.
  std::int64_t evaluators = 0;
  std::int64_t evaluate_intervals = 4;
};

Settings read_settings(Options& o);
std::unique_ptr<Exploit> make(const Settings& s);

}  // namespace pbt::fire
