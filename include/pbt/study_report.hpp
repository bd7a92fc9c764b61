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
#include "pbt/lineage.hpp"
#include "pbt/store.hpp"
#include "pbt/study.hpp"

namespace pbt::report {

// The best member's inherited schedule, replayed from scratch with no population (`pbt
// replay --json`, kept in the run's directory as study-replay.json).
struct StudyReplay {
  int member = -1;                        // the member whose schedule was replayed (the run's best)
  std::optional<double> figure;           // the study's metric for the replayed model
  std::optional<double> score;            // its score
  std::int64_t total_steps = 0;           // steps the replay trained
  std::vector<ScheduleSegment> schedule;  // in training order (each segment's steps on its member's counter)
};

// Reads `pbt replay --json`'s output; `metric` as in StudySpec ("score" or "metrics.NAME",
// read from its replay_metrics). Throws Error when the JSON lacks what the replay prints.
StudyReplay replay_from_json(const nlohmann::json& j, const std::string& metric);

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
  int copies = 0;                         // exploit events: a member's weights and/or h copied into another
  std::map<std::string, double> metrics;  // the best member's numeric metrics
  // The best score in the population by step: at each step of `grid`, the highest latest
  // score of any member evaluated by then (none before the first eval).
  std::vector<std::optional<double>> curve;
  std::vector<std::int64_t> grid;
  std::optional<StudyReplay> replay;  // for runs of a replayed variant, once replayed
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
  Spread best, population, efficiency, wall_seconds, best_score, copies;
  std::optional<PairedComparison> vs_baseline;  // none for the baseline itself
  std::map<std::string, Spread> metrics;
  std::vector<std::int64_t> grid;                   // the curve's steps
  std::vector<std::optional<double>> median_curve;  // median over seeds at each step
};

// The lineage analysis (the paper's Figure 9) of one replayed variant, seed by seed: its
// best member's figure with PBT, the figure of that member's inherited schedule replayed from
// scratch, and the best fixed h's (the fixed variant's best member, same seed).
struct StudyLineageRow {
  std::uint64_t seed = 0;
  std::optional<double> pbt, replay, fixed;
  int member = -1;
  std::int64_t total_steps = 0;
  std::vector<ScheduleSegment> schedule;  // empty until replayed
};
struct StudyLineageFigures {
  std::string variant, fixed;  // fixed: "" when the study names none
  std::vector<StudyLineageRow> rows;
  Spread pbt, replay, fixed_figure;
  PairedComparison replay_vs_pbt;                   // replay - PBT, same seed
  std::optional<PairedComparison> replay_vs_fixed;  // replay - fixed; none without a fixed variant
  std::optional<PairedComparison> pbt_vs_fixed;     // PBT - fixed
  std::vector<std::string> hyperparams;             // the schedules' names, in order
};

// The value of `name` in force over a schedule's steps, as (start, end, value) on the
// replay's own step count (0 to total_steps); categorical values are left out.
struct ScheduleStretch {
  std::int64_t from = 0, to = 0;
  double value = 0;
};
std::vector<ScheduleStretch> schedule_stretches(const std::vector<ScheduleSegment>& schedule, const std::string& name);

struct StudyFigures {
  std::string name, origin, text, base, metric, baseline;
  bool lower_is_better = false;
  std::vector<std::uint64_t> seeds;
  std::vector<StudyVariantFigures> variants;
  std::vector<StudyRunFigures> runs;
  std::vector<StudyLineageFigures> lineage;  // one per replayed variant, in the study file's order
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
