#pragma once
// What a study found (`pbt study`): each run's figures read from its store, gathered per
// variant over seeds, and written as study.md, study.html (one offline page, as `pbt report`)
// and JSON. Library: pbt_report.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pbt/config.hpp"
#include "pbt/store.hpp"
#include "pbt/study.hpp"

namespace pbt::report {

// One finished run's figures.
struct StudyRunFigures {
  std::string variant;
  std::uint64_t seed = 0;
  std::string experiment;
  std::string dir;
  int best_member = -1;
  std::optional<double> best_score;  // the best member's final score
  std::optional<double> best;        // the study's metric for the best member
  std::optional<double> population;  // the metric's median over the final population
  std::int64_t best_step = 0;
  std::optional<std::int64_t> best_trained_steps;
  std::optional<double> best_efficiency;  // trained steps / steps of the best member
  double wall_seconds = 0;
  std::map<std::string, double> metrics;  // the best member's numeric metrics
  // The best score in the population by step: at each step of `grid`, the highest latest
  // score of any member evaluated by then (none before the first eval).
  std::vector<std::optional<double>> curve;
  std::vector<std::int64_t> grid;
};

constexpr int kStudyCurvePoints = 50;

// The figures of the run in `store` (its experiment is `config.name`). `metric` is the study's
// ("score" or "metrics.NAME"); `wall_seconds` comes from the study's own record.
StudyRunFigures run_figures(Store& store, const ExperimentConfig& config, const std::string& metric,
                            double wall_seconds);

struct Spread {  // over seeds
  int n = 0;
  std::optional<double> median, q1, q3;
};
Spread spread_of(const std::vector<double>& values);

struct StudyVariantFigures {
  std::string name;
  std::string overlay;
  int runs = 0;
  Spread best, population, efficiency, wall_seconds, best_score;
  std::optional<PairedComparison> vs_baseline;  // none for the baseline itself
  std::map<std::string, Spread> metrics;
  std::vector<std::int64_t> grid;                   // the curve's steps
  std::vector<std::optional<double>> median_curve;  // median over seeds at each step
};

struct StudyFigures {
  std::string name, origin, text, base, metric, baseline;
  bool lower_is_better = false;
  std::vector<std::uint64_t> seeds;
  std::vector<StudyVariantFigures> variants;
  std::vector<StudyRunFigures> runs;
};

// Gathers the runs' figures per variant (runs the spec does not name are ignored).
StudyFigures gather_study(const StudySpec& spec, std::vector<StudyRunFigures> runs);

nlohmann::json study_json(const StudyFigures& f);
std::string study_markdown(const StudyFigures& f);
// One self-contained HTML page (styles inline, the curves as SVG, the data as JSON); fetches nothing.
std::string study_html(const StudyFigures& f);

// The paired test used, in words (for every output).
extern const char* const kStudyTestText;

}  // namespace pbt::report
