// FIRE PBT's exploit (docs/fire.md): truncation within sub-populations, on the score in the
// greedy one and on the improvement rate of fixed-h curves in the parents, and copies from a
// parent sub-population into its child when the parent's best scores above the whole child.
#include "core/fire.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <tuple>

#include "pbt/error.hpp"

namespace pbt::fire {

namespace {

// The step at which the curve's running best first reaches `x`, linearly between points; a
// score at or below the first is reached at the first step.
std::optional<double> reached_at(const Curve& c, double x) {
  if (c.empty()) return std::nullopt;
  double best = c[0].score;
  if (best >= x) return static_cast<double>(c[0].step);
  for (std::size_t i = 1; i < c.size(); ++i) {
    if (c[i].score >= x) {
      const double t0 = static_cast<double>(c[i - 1].step), t1 = static_cast<double>(c[i].step);
      return t0 + (x - best) / (c[i].score - best) * (t1 - t0);
    }
    best = std::max(best, c[i].score);
  }
  return std::nullopt;
}

double best_of(const Curve& c) {
  double best = c[0].score;
  for (const auto& p : c) best = std::max(best, p.score);
  return best;
}

class Fire : public Exploit {
 public:
  explicit Fire(const Settings& s) : s_(s) {}

  // Without the published history (a caller that has none): every curve is empty, so every
  // sub-population ranks by score.
  std::optional<int> choose(const Candidate& self, const std::vector<Candidate>& population, Rng& rng) const override {
    return choose_in(self, population, rng, ExploitContext{});
  }

  std::optional<int> choose_in(const Candidate& self, const std::vector<Candidate>& population, Rng& rng,
                               const ExploitContext& ctx) const override {
    int size = ctx.population;
    if (size <= 0)
      for (const auto& c : population) size = std::max(size, c.id + 1);
    const int n = static_cast<int>(s_.subpopulations);
    const int members = size - static_cast<int>(s_.evaluators);  // ids from here on are evaluators
    const bool have_h = ctx.population_h && ctx.population_h->size() == population.size();
    std::vector<Evaluation> evals;
    if (s_.evaluators > 0 && ctx.history && have_h)
      evals = evaluations(*ctx.history, members,
                          static_cast<std::size_t>(std::max(s_.curve_intervals, s_.evaluate_intervals)));
    if (self.id >= members) return evaluate(self, population, rng, ctx, members, evals);

    const int k = subpopulation(self.id, members, n);
    std::vector<std::size_t> mine, parent;  // indices into population
    for (std::size_t i = 0; i < population.size(); ++i) {
      if (population[i].id >= members) continue;  // an evaluator is never ranked nor copied
      const int sub = subpopulation(population[i].id, members, n);
      if (sub == k) mine.push_back(i);
      if (sub == k + 1) parent.push_back(i);
    }
    const std::size_t m = mine.size();
    if (m < 2) return std::nullopt;

    // The parents' fitness: the curve an evaluator measured of the member's current lineage,
    // else the member's own curve under its h in force, if long enough.
    std::vector<Curve> curves(population.size());
    if (k > 0 && ctx.history && have_h)
      for (std::size_t i : mine) {
        curves[i] = evaluated(population[i], (*ctx.population_h)[i], *ctx.history, evals);
        if (curves[i].empty())
          curves[i] =
              curve_of(population[i].id, population[i].step, population[i].score, (*ctx.population_h)[i], *ctx.history,
                       static_cast<std::size_t>(s_.min_intervals), static_cast<std::size_t>(s_.curve_intervals));
      }
    // i beats j: the faster curve over their common range; the higher score where there is none.
    auto beats = [&](std::size_t i, std::size_t j) {
      if (k > 0 && !curves[i].empty() && !curves[j].empty())
        if (const std::optional<int> f = faster(curves[i], curves[j])) return *f < 0;
      return population[i].score > population[j].score;
    };
    // Pairwise comparisons need not be transitive: rank by the number of members one beats,
    // then by score (then id). In the greedy sub-population that is the order of the scores.
    std::vector<int> wins(population.size(), 0);
    for (std::size_t i : mine)
      for (std::size_t j : mine)
        if (i != j && beats(i, j)) wins[i]++;
    std::vector<std::size_t> order = mine;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      if (wins[a] != wins[b]) return wins[a] > wins[b];
      return ranks_above(population[a], population[b]);
    });
    auto cut = std::max<std::size_t>(1, static_cast<std::size_t>(std::llround(s_.fraction * m)));
    cut = std::min(cut, m / 2);
    const auto pos =
        std::find_if(order.begin(), order.end(), [&](std::size_t i) { return population[i].id == self.id; });
    if (pos == order.end() || static_cast<std::size_t>(pos - order.begin()) < m - cut) return std::nullopt;
    const std::size_t me = *pos;

    // The parent sub-population's best score, when it is above every score of ours: its
    // longer-term choices have overtaken the greedy ones, and flow down.
    if (!parent.empty()) {
      const Candidate* best = nullptr;
      for (std::size_t i : parent)
        if (population[i].copyable && (!best || ranks_above(population[i], *best))) best = &population[i];
      double ours = population[mine[0]].score;
      for (std::size_t i : mine) ours = std::max(ours, population[i].score);
      if (best && best->score > ours) return best->id;
    }
    std::vector<int> top;  // the best `cut` of ours that may be copied and beat self
    for (auto it = order.begin(); it != pos && top.size() < cut; ++it)
      if (population[*it].copyable && beats(*it, me)) top.push_back(population[*it].id);
    if (top.empty()) return std::nullopt;
    return top[uniform_index(rng, top.size())];
  }

  std::size_t history_intervals(int population) const override {
    std::int64_t per_member = s_.curve_intervals;
    if (s_.evaluators > 0) {
      // Long enough to see when each parent member's lineage was last evaluated: the evaluators
      // go round the parents, evaluate_intervals each.
      const int members = std::max(population - static_cast<int>(s_.evaluators), 1);
      int parents = 0;
      for (int id = 0; id < members; ++id)
        parents += subpopulation(id, members, static_cast<int>(s_.subpopulations)) > 0;
      const std::int64_t round = (parents + s_.evaluators - 1) / s_.evaluators * s_.evaluate_intervals;
      per_member = std::max({per_member, s_.evaluate_intervals, round});
    }
    return static_cast<std::size_t>(std::max(population, 0)) * static_cast<std::size_t>(per_member + 1);
  }
  int min_population() const override {
    return 2 * static_cast<int>(s_.subpopulations) + static_cast<int>(s_.evaluators);
  }
  std::string name() const override { return "fire"; }
  bool explores(int member, int population) const override {
    return s_.evaluators == 0 || member < population - s_.evaluators;
  }
  void check(int population, const std::string& where) const override {
    if (s_.evaluators > 0 && population - s_.evaluators < 2 * s_.subpopulations)
      throw ConfigError(where + ".evaluators",
                        std::to_string(s_.evaluators) + " evaluators leave " +
                            std::to_string(population - s_.evaluators) + " of the population's " +
                            std::to_string(population) + " members for " + std::to_string(s_.subpopulations) +
                            " sub-populations, which need at least " + std::to_string(2 * s_.subpopulations) +
                            " (population >= " + std::to_string(2 * s_.subpopulations + s_.evaluators) + ")");
  }

 private:
  // The curve of member c's current lineage (under h) that an evaluator measured, at least
  // min_intervals long: the latest copy's; empty where there is none.
  Curve evaluated(const Candidate& c, const Hyperparams& h, const std::vector<TrainedInterval>& history,
                  const std::vector<Evaluation>& evals) const {
    if (evals.empty()) return {};
    const LineageStart start = lineage_start(c.id, c.step, c.score, h, history);
    const Evaluation* latest = nullptr;
    for (const auto& e : evals)
      if (e.intervals() >= static_cast<std::size_t>(s_.min_intervals) && measures(e, c.id, start, h) &&
          (!latest ||
           std::tie(e.donor_step, e.step, e.evaluator) > std::tie(latest->donor_step, latest->step, latest->evaluator)))
        latest = &e;
    if (!latest) return {};
    Curve curve = latest->curve;
    curve.resize(std::min(curve.size(), static_cast<std::size_t>(s_.curve_intervals + 1)));
    return curve;
  }

  // An evaluator's decision: go on with its evaluation while it is shorter than
  // evaluate_intervals and its donor still holds that lineage; else copy the parent
  // sub-population member (that may be copied) whose current lineage was evaluated longest
  // ago, or never (ties drawn uniformly).
  std::optional<int> evaluate(const Candidate& self, const std::vector<Candidate>& population, Rng& rng,
                              const ExploitContext& ctx, int members, const std::vector<Evaluation>& evals) const {
    const int n = static_cast<int>(s_.subpopulations);
    const bool have_h = ctx.population_h && ctx.population_h->size() == population.size();
    const std::vector<TrainedInterval> none;
    const std::vector<TrainedInterval>& history = ctx.history ? *ctx.history : none;
    auto start_of = [&](std::size_t i) {
      return lineage_start(population[i].id, population[i].step, population[i].score, (*ctx.population_h)[i], history);
    };
    const Evaluation* current = nullptr;
    for (const auto& e : evals)
      if (e.evaluator == self.id && (!current || e.step > current->step)) current = &e;
    if (current && current->curve.back().step == self.step &&
        current->intervals() < static_cast<std::size_t>(s_.evaluate_intervals))
      for (std::size_t i = 0; i < population.size(); ++i)
        if (population[i].id == current->donor &&
            measures(*current, current->donor, start_of(i), (*ctx.population_h)[i]))
          return std::nullopt;

    std::vector<int> stalest;
    std::int64_t stalest_at = std::numeric_limits<std::int64_t>::max();
    for (std::size_t i = 0; i < population.size(); ++i) {
      const Candidate& c = population[i];
      if (c.id >= members || subpopulation(c.id, members, n) == 0 || !c.copyable) continue;
      std::int64_t at = -1;  // the donor step of its lineage's latest evaluation; -1: none
      if (have_h) {
        const LineageStart start = start_of(i);
        for (const auto& e : evals)
          if (measures(e, c.id, start, (*ctx.population_h)[i])) at = std::max(at, e.donor_step);
      }
      if (at < stalest_at) {
        stalest_at = at;
        stalest.clear();
      }
      if (at == stalest_at) stalest.push_back(c.id);
    }
    if (stalest.empty()) return std::nullopt;
    return stalest[uniform_index(rng, stalest.size())];
  }

  Settings s_;
};

}  // namespace

std::optional<double> steps_between(const Curve& c, double lo, double hi) {
  const std::optional<double> from = reached_at(c, lo), to = reached_at(c, hi);
  if (!from || !to) return std::nullopt;
  return *to - *from;
}

std::optional<Range> common_range(const Curve& a, const Curve& b) {
  if (a.empty() || b.empty()) return std::nullopt;
  Range r{std::max(a[0].score, b[0].score), std::min(best_of(a), best_of(b))};
  if (!(r.hi > r.lo)) return std::nullopt;
  return r;
}

std::optional<int> faster(const Curve& a, const Curve& b) {
  const std::optional<Range> r = common_range(a, b);
  if (!r) return std::nullopt;
  const std::optional<double> da = steps_between(a, r->lo, r->hi), db = steps_between(b, r->lo, r->hi);
  if (!da || !db) return std::nullopt;
  if (*da < *db) return -1;
  if (*db < *da) return 1;
  return 0;
}

namespace {

// The member's intervals in the history, by from_step.
std::vector<const TrainedInterval*> intervals_of(int member, const std::vector<TrainedInterval>& history) {
  std::vector<const TrainedInterval*> own;
  for (const auto& iv : history)
    if (iv.member == member) own.push_back(&iv);
  std::sort(own.begin(), own.end(),
            [](const TrainedInterval* a, const TrainedInterval* b) { return a->from_step < b->from_step; });
  return own;
}

}  // namespace

LineageStart lineage_start(int member, std::int64_t step, double score, const Hyperparams& h,
                           const std::vector<TrainedInterval>& history) {
  const std::vector<const TrainedInterval*> own = intervals_of(member, history);
  if (own.empty()) return {0, false};
  if (own.back()->to_step != step || own.back()->to_score != score || own.back()->h != h) return {step, true};
  std::size_t first = own.size() - 1;
  for (; first > 0; --first) {
    const TrainedInterval& prev = *own[first - 1];
    const TrainedInterval& cur = *own[first];
    if (cur.donor >= 0 || prev.to_step != cur.from_step || prev.to_score != cur.from_score || prev.h != cur.h) break;
  }
  return {own[first]->from_step, first > 0 || own[first]->donor >= 0};
}

std::vector<Evaluation> evaluations(const std::vector<TrainedInterval>& history, int first_evaluator,
                                    std::size_t max_intervals) {
  std::map<int, std::vector<const TrainedInterval*>> by_member;
  for (const auto& iv : history)
    if (iv.member >= first_evaluator) by_member[iv.member].push_back(&iv);
  std::vector<Evaluation> out;
  for (auto& [member, own] : by_member) {
    std::sort(own.begin(), own.end(),
              [](const TrainedInterval* a, const TrainedInterval* b) { return a->from_step < b->from_step; });
    for (std::size_t i = 0; i < own.size(); ++i) {
      const TrainedInterval& copy = *own[i];
      if (copy.donor < 0) continue;
      Evaluation e{member, copy.donor, copy.donor_step, copy.from_step, copy.h, {}};
      e.curve = {{copy.from_step, copy.from_score}, {copy.to_step, copy.to_score}};
      // It goes on from where it was, under the same h, until its next copy.
      for (std::size_t j = i + 1; j < own.size() && e.intervals() < max_intervals; ++j) {
        const TrainedInterval& prev = *own[j - 1];
        const TrainedInterval& cur = *own[j];
        if (cur.donor >= 0 || prev.to_step != cur.from_step || prev.to_score != cur.from_score || prev.h != cur.h)
          break;
        e.curve.push_back({cur.to_step, cur.to_score});
      }
      out.push_back(std::move(e));
    }
  }
  return out;
}

bool measures(const Evaluation& e, int member, const LineageStart& start, const Hyperparams& h) {
  if (e.donor != member || e.h != h) return false;
  return e.donor_step > start.step || (e.donor_step == start.step && !start.changed);
}

Curve curve_of(int member, std::int64_t step, double score, const Hyperparams& h,
               const std::vector<TrainedInterval>& history, std::size_t min_intervals, std::size_t max_intervals) {
  std::vector<const TrainedInterval*> own;
  for (const auto& iv : history)
    if (iv.member == member) own.push_back(&iv);
  std::sort(own.begin(), own.end(),
            [](const TrainedInterval* a, const TrainedInterval* b) { return a->from_step < b->from_step; });
  // The last interval must be what the member holds now: a member that has copied or changed
  // h since (a synchronous generation's decision) has no curve under its h in force yet.
  if (own.empty() || own.back()->to_step != step || own.back()->to_score != score || own.back()->h != h) return {};
  std::size_t first = own.size() - 1;
  while (first > 0 && own.size() - first < max_intervals) {
    const TrainedInterval& prev = *own[first - 1];
    const TrainedInterval& cur = *own[first];
    // Unbroken: it went on from where it was, under the same h (a copy starts from the donor's score).
    if (prev.to_step != cur.from_step || prev.to_score != cur.from_score || prev.h != cur.h) break;
    --first;
  }
  if (own.size() - first < min_intervals) return {};
  Curve c{{own[first]->from_step, own[first]->from_score}};
  for (std::size_t i = first; i < own.size(); ++i) c.push_back({own[i]->to_step, own[i]->to_score});
  return c;
}

int subpopulation(int id, int population, int n) {
  if (population <= 0 || n <= 1) return 0;
  const long long k = static_cast<long long>(id) * n / population;
  return static_cast<int>(std::clamp<long long>(k, 0, n - 1));
}

Settings read_settings(Options& o) {
  Settings s;
  s.subpopulations = o.integer_in("subpopulations", s.subpopulations, 1, 1000);
  s.fraction = o.number("fraction", s.fraction);
  if (!(s.fraction > 0 && s.fraction <= 0.5))
    throw ConfigError(o.path("fraction"), "must be in (0, 0.5], got " + std::to_string(s.fraction));
  s.min_intervals = o.integer_in("min_intervals", s.min_intervals, 1, 1000);
  s.curve_intervals = o.integer_in("curve_intervals", s.curve_intervals, 1, 1000);
  if (s.curve_intervals < s.min_intervals)
    throw ConfigError(o.path("curve_intervals"), "must be at least min_intervals (" + std::to_string(s.min_intervals) +
                                                     "), got " + std::to_string(s.curve_intervals));
  s.evaluators = o.integer_in("evaluators", s.evaluators, 0, 100000);
  s.evaluate_intervals = o.integer_in("evaluate_intervals", s.evaluate_intervals, 1, 1000);
  if (s.evaluators > 0 && s.subpopulations < 2)
    throw ConfigError(o.path("evaluators"),
                      "evaluators measure the parent sub-populations: " + std::to_string(s.evaluators) +
                          " evaluators need subpopulations >= 2, got " + std::to_string(s.subpopulations));
  return s;
}

std::unique_ptr<Exploit> make(const Settings& s) { return std::make_unique<Fire>(s); }

}  // namespace pbt::fire
