#pragma once
// A study: PBT variants compared over seeds (`pbt study STUDY.toml`). The study file names a
// base config, named variants (each an overlay of config keys), seeds, a baseline variant and
// the figure compared. Each (variant, seed) is one ordinary run; this header holds the file's
// reader, the configs it makes, and the paired test that compares variants with the
// baseline. The runs' figures are gathered by pbt/study_report.hpp (library pbt_report).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pbt/config.hpp"

namespace pbt {

struct StudyVariant {
  std::string name;     // letters, digits, _ . - (part of run directories and experiment names)
  std::string overlay;  // the variant's keys as written in the study file (TOML, for the outputs)
};

// One (variant, seed): an ordinary run. `config.text` is the generated config (the base
// with the variant's keys, `name` and `seed` set), exactly what is stored with the run.
struct StudyRun {
  std::string variant;
  std::uint64_t seed = 0;
  std::string dir;  // run directory, relative to the study's directory: runs/VARIANT/seed-S
  ExperimentConfig config;
};

struct StudySpec {
  std::string origin;                  // the study file (for messages)
  std::string text;                    // the study file as given
  std::string name;                    // default: the file's stem
  std::string base;                    // the base config's path as resolved ("" when given inline)
  std::vector<StudyVariant> variants;  // in the file's order
  std::vector<std::uint64_t> seeds;
  std::string baseline;          // a variant's name
  std::string metric = "score";  // "score" or "metrics.NAME" (the best member's, at the end)
  bool lower_is_better = false;  // for the wins and losses against the baseline
  // The lineage analysis (the paper's Figure 9): the variants whose runs' best members have
  // their inherited schedules replayed from scratch (`pbt replay`), and the variant whose best
  // member stands for the best fixed h (random search; "" for none). Each a variant's name.
  std::vector<std::string> replay;
  std::string fixed;
  std::vector<StudyRun> runs;  // seed by seed, each seed's variants in the file's order
};

// Reads and checks a study file, and every run's config: each variant's config goes through
// the config's own checks with the origin "STUDY [variants.NAME]", so an overlay key that the
// config does not have is refused naming the study file, the variant and the key. Throws
// ConfigError. `origin` names the study (its directory resolves a relative `base`).
StudySpec parse_study(const std::string& toml_text, const std::string& origin);
StudySpec load_study(const std::string& path);

// The default study directory: STUDY.toml -> STUDY.study beside it.
std::string default_study_dir(const std::string& study_path);

// ---------------------------------------------------------------------------------------
// The paired comparison of a variant with the baseline, seed by seed.

// Quantile q of `values` by linear interpolation between order statistics (R's type 7, what
// numpy's default does); none for no values.
std::optional<double> quantile(std::vector<double> values, double q);

// Two-sided p of the sign test: `wins` against `losses` (ties dropped) under Binomial(n, 1/2);
// 1 when n = 0.
double sign_test_p(int wins, int losses);

// Two-sided p of the Wilcoxon signed-rank test of differences d (zeros dropped, tied |d| given
// their mean rank). Exact (the permutation distribution of W+, ties included, by counting)
// for up to kWilcoxonExactMax nonzero differences, else the normal approximation with tie and
// continuity corrections; `exact` says which was used. 1 when no difference is nonzero.
constexpr int kWilcoxonExactMax = 50;
double wilcoxon_signed_rank_p(const std::vector<double>& differences, bool* exact = nullptr, bool force_normal = false);

struct PairedComparison {
  int pairs = 0;                            // seeds both runs have a figure for
  int wins = 0, losses = 0, ties = 0;       // the variant better, worse, equal (in the metric's direction)
  std::optional<double> median_difference;  // variant - baseline
  double wilcoxon_p = 1;
  bool exact = true;
  double sign_p = 1;
};
// `differences`: variant - baseline, one per seed.
PairedComparison compare_paired(const std::vector<double>& differences, bool lower_is_better);

}  // namespace pbt
