// A study's outputs: each run's figures from its store, gathered per variant over seeds, and
// written as Markdown, one offline HTML page (the report's styles, the curves as inline SVG)
// and JSON.
#include "pbt/study_report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <sstream>

#include "pbt/lineage.hpp"
#include "report/html.hpp"
#include "report/run.hpp"

namespace pbt::report {

namespace assets {
extern const char* const style;  // report.css
}  // namespace assets

const char* const kStudyTestText =
    "Wilcoxon signed-rank test of the paired differences (variant - baseline, same seed), two-sided; zero "
    "differences dropped, tied |differences| given their mean rank; exact (the permutation distribution, "
    "ties included) for up to 50 nonzero pairs, else the normal approximation with tie and continuity "
    "corrections. The sign test's p (wins against losses, Binomial(n, 1/2)) is given beside it";

namespace {

std::optional<double> metric_of(const MemberState& m, const std::string& metric) {
  if (metric == "score") {
    if (m.score && std::isfinite(*m.score)) return m.score;
    return std::nullopt;
  }
  const std::string key = metric.substr(8);  // after "metrics."
  if (!m.metrics.is_object() || !m.metrics.contains(key) || !m.metrics[key].is_number()) return std::nullopt;
  const double x = m.metrics[key].get<double>();
  return std::isfinite(x) ? std::optional<double>(x) : std::nullopt;
}

std::string num(const std::optional<double>& x, int digits = 6) {
  if (!x) return "-";
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*g", digits, *x);
  return buf;
}

nlohmann::json opt_json(const std::optional<double>& x) { return x ? nlohmann::json(*x) : nlohmann::json(nullptr); }

nlohmann::json spread_json(const Spread& s) {
  return {{"n", s.n}, {"median", opt_json(s.median)}, {"q1", opt_json(s.q1)}, {"q3", opt_json(s.q3)}};
}

std::string spread_text(const Spread& s, int digits = 6) {
  if (!s.median) return "-";
  if (s.n < 2) return num(s.median, digits);
  return num(s.median, digits) + " [" + num(s.q1, digits) + ", " + num(s.q3, digits) + "]";
}

// The variant's keys on one line: `exploit.strategy = "none"`.
std::string overlay_line(const std::string& overlay) {
  std::istringstream in(overlay);
  std::string line, out, table;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line.front() == '[') {
      table = line.substr(1, line.find(']') - 1) + ".";
      continue;
    }
    out += (out.empty() ? "" : "; ") + table + line;
  }
  return out.empty() ? "(the base config as it is)" : out;
}

// Markdown's marks (`code`, *emphasis*) left out, for the HTML page.
std::string plain(const std::string& md) {
  std::string out;
  for (char c : md)
    if (c != '`' && c != '*') out += c;
  return out;
}

std::string markdown_cell(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += "\\|";
    else if (c == '\n') out += ' ';
    else out += c;
  }
  return out;
}

const std::vector<std::string>& palette() {
  static const std::vector<std::string> p = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
                                             "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac", "#1f77b4", "#d62728"};
  return p;
}

// Ticks at 1, 2 or 5 times a power of ten over [lo, hi].
std::vector<double> ticks(double lo, double hi, int want = 5) {
  std::vector<double> out;
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / want;
  const double p = std::pow(10, std::floor(std::log10(raw)));
  double step = p;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * p) {
      step = m * p;
      break;
    }
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step)
    out.push_back(std::fabs(t) < step * 1e-9 ? 0 : t);
  return out;
}

std::string curves_svg(const StudyFigures& f) {
  const double W = 820, H = 380, left = 70, right = 20, top = 16, bottom = 46;
  double xmax = 0, ylo = INFINITY, yhi = -INFINITY;
  for (const auto& v : f.variants) {
    for (std::size_t i = 0; i < v.grid.size(); ++i) {
      xmax = std::max(xmax, static_cast<double>(v.grid[i]));
      if (v.median_curve[i]) {
        ylo = std::min(ylo, *v.median_curve[i]);
        yhi = std::max(yhi, *v.median_curve[i]);
      }
    }
  }
  if (!std::isfinite(ylo)) return "<p class=\"note\">No scores to draw.</p>";
  if (yhi - ylo < 1e-12) {
    ylo -= 0.5;
    yhi += 0.5;
  }
  const double pad = (yhi - ylo) * 0.05;
  ylo -= pad;
  yhi += pad;
  if (xmax <= 0) xmax = 1;
  auto X = [&](double x) { return left + (W - left - right) * x / xmax; };
  auto Y = [&](double y) { return top + (H - top - bottom) * (1 - (y - ylo) / (yhi - ylo)); };
  std::ostringstream s;
  char buf[160];
  s << "<svg class=\"chart-svg\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" viewBox=\"0 0 " << W << " " << H << "\" role=\"img\" aria-label=\"median best score by step\">\n";
  s << "<g class=\"axis\">";
  for (double t : ticks(ylo, yhi)) {
    std::snprintf(buf, sizeof buf, "<line class=\"gridline\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>", left,
                  W - right, Y(t), Y(t));
    s << buf;
    std::snprintf(buf, sizeof buf, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>", left - 6, Y(t) + 4,
                  num(t, 4).c_str());
    s << buf;
  }
  for (double t : ticks(0, xmax)) {
    std::snprintf(buf, sizeof buf, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>", X(t), X(t), H - bottom,
                  H - bottom + 5);
    s << buf;
    std::snprintf(buf, sizeof buf, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>", X(t),
                  H - bottom + 18, num(t, 6).c_str());
    s << buf;
  }
  std::snprintf(buf, sizeof buf, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>", left, W - right, H - bottom,
                H - bottom);
  s << buf << "</g>\n";
  std::snprintf(buf, sizeof buf, "<text class=\"axis-label\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">step</text>",
                left + (W - left - right) / 2, H - 8);
  s << buf << "\n";
  std::snprintf(buf, sizeof buf,
                "<text class=\"axis-label\" transform=\"translate(16 %.1f) rotate(-90)\" "
                "text-anchor=\"middle\">best score</text>",
                top + (H - top - bottom) / 2);
  s << buf << "\n";
  for (std::size_t k = 0; k < f.variants.size(); ++k) {
    const auto& v = f.variants[k];
    std::string d;
    bool pen = false;
    for (std::size_t i = 0; i < v.grid.size(); ++i) {
      if (!v.median_curve[i]) {
        pen = false;
        continue;
      }
      std::snprintf(buf, sizeof buf, "%s%.1f %.1f ", pen ? "L" : "M", X(static_cast<double>(v.grid[i])),
                    Y(*v.median_curve[i]));
      d += buf;
      pen = true;
    }
    s << "<g class=\"curve\" data-variant=\"" << html_escape(v.name) << "\"><title>" << html_escape(v.name)
      << "</title><path class=\"line\" stroke=\"" << palette()[k % palette().size()] << "\" d=\"" << d << "\"/></g>\n";
  }
  s << "</svg>";
  return s.str();
}

}  // namespace

StudyRunFigures run_figures(Store& store, const ExperimentConfig& config, const std::string& metric,
                            double wall_seconds) {
  const RunData run = read_run(store, config.name);
  StudyRunFigures r;
  r.experiment = config.name;
  r.wall_seconds = wall_seconds;
  std::vector<double> pop;
  for (const auto& m : run.population)
    if (auto x = metric_of(m, metric)) pop.push_back(*x);
  r.population = quantile(pop, 0.5);
  if (const MemberState* b = best_member(run.population)) {
    r.best_member = b->id;
    r.best_score = b->score;
    r.best = metric_of(*b, metric);
    r.best_step = b->step;
    const Lineage lineage = lineage_of(run);
    const std::vector<Trained> trained = trained_of(lineage, run.population);
    const Trained& t = trained[static_cast<std::size_t>(b - run.population.data())];
    r.best_trained_steps = t.steps;
    r.best_efficiency = t.efficiency;
    if (b->metrics.is_object())
      for (const auto& [k, v] : b->metrics.items())
        if (v.is_number() && std::isfinite(v.get<double>())) r.metrics[k] = v.get<double>();
  }
  // The population's best score by step: each member's latest eval at or before the step.
  std::int64_t end = config.budget_steps;
  for (const auto& p : run.scores) end = std::max(end, p.step);
  for (int i = 0; i <= kStudyCurvePoints; ++i) r.grid.push_back(end * i / kStudyCurvePoints);
  std::vector<ScorePoint> points = run.scores;
  std::sort(points.begin(), points.end(), [](const ScorePoint& a, const ScorePoint& b) {
    return a.step != b.step ? a.step < b.step : a.member < b.member;
  });
  std::map<int, double> latest;
  std::size_t at = 0;
  for (const std::int64_t g : r.grid) {
    for (; at < points.size() && points[at].step <= g; ++at)
      latest[points[at].member] = std::isfinite(points[at].score) ? points[at].score : -INFINITY;
    std::optional<double> best;
    for (const auto& [m, s] : latest)
      if (std::isfinite(s) && (!best || s > *best)) best = s;
    r.curve.push_back(best);
  }
  return r;
}

Spread spread_of(const std::vector<double>& values) {
  Spread s;
  s.n = static_cast<int>(values.size());
  s.median = quantile(values, 0.5);
  s.q1 = quantile(values, 0.25);
  s.q3 = quantile(values, 0.75);
  return s;
}

StudyFigures gather_study(const StudySpec& spec, std::vector<StudyRunFigures> runs) {
  StudyFigures f;
  f.name = spec.name;
  f.origin = spec.origin;
  f.text = spec.text;
  f.base = spec.base;
  f.metric = spec.metric;
  f.baseline = spec.baseline;
  f.lower_is_better = spec.lower_is_better;
  f.seeds = spec.seeds;
  // Runs in the spec's order (seed by seed).
  std::vector<StudyRunFigures> ordered;
  for (const auto& sr : spec.runs)
    for (const auto& r : runs)
      if (r.variant == sr.variant && r.seed == sr.seed) ordered.push_back(r);
  f.runs = ordered;

  auto figure_by_seed = [&](const std::string& variant) {
    std::map<std::uint64_t, double> out;
    for (const auto& r : f.runs)
      if (r.variant == variant && r.best) out[r.seed] = *r.best;
    return out;
  };
  const auto base_by_seed = figure_by_seed(spec.baseline);

  for (const auto& sv : spec.variants) {
    StudyVariantFigures v;
    v.name = sv.name;
    v.overlay = sv.overlay;
    std::vector<double> best, pop, eff, wall, score;
    std::map<std::string, std::vector<double>> metrics;
    std::vector<const StudyRunFigures*> mine;
    for (const auto& r : f.runs) {
      if (r.variant != sv.name) continue;
      mine.push_back(&r);
      ++v.runs;
      if (r.best) best.push_back(*r.best);
      if (r.population) pop.push_back(*r.population);
      if (r.best_efficiency) eff.push_back(*r.best_efficiency);
      if (r.best_score) score.push_back(*r.best_score);
      wall.push_back(r.wall_seconds);
      for (const auto& [k, x] : r.metrics) metrics[k].push_back(x);
    }
    v.best = spread_of(best);
    v.population = spread_of(pop);
    v.efficiency = spread_of(eff);
    v.wall_seconds = spread_of(wall);
    v.best_score = spread_of(score);
    for (const auto& [k, xs] : metrics) v.metrics[k] = spread_of(xs);
    if (sv.name != spec.baseline) {
      std::vector<double> diffs;
      for (const auto& [seed, x] : figure_by_seed(sv.name)) {
        auto it = base_by_seed.find(seed);
        if (it != base_by_seed.end()) diffs.push_back(x - it->second);
      }
      v.vs_baseline = compare_paired(diffs, spec.lower_is_better);
    }
    // The median curve: runs of one variant share a budget, so their grids agree; a run
    // with another grid (the budget changed under it) is left out of the curve.
    if (!mine.empty()) {
      v.grid = mine.front()->grid;
      for (std::size_t i = 0; i < v.grid.size(); ++i) {
        std::vector<double> at;
        for (const auto* r : mine)
          if (r->grid == v.grid && r->curve[i]) at.push_back(*r->curve[i]);
        v.median_curve.push_back(quantile(at, 0.5));
      }
    }
    f.variants.push_back(std::move(v));
  }
  return f;
}

nlohmann::json study_json(const StudyFigures& f) {
  nlohmann::json j = {{"study", f.name},
                      {"origin", f.origin},
                      {"base", f.base.empty() ? nlohmann::json(nullptr) : nlohmann::json(f.base)},
                      {"metric", f.metric},
                      {"lower_is_better", f.lower_is_better},
                      {"baseline", f.baseline},
                      {"seeds", f.seeds},
                      {"test", kStudyTestText},
                      {"variants", nlohmann::json::array()},
                      {"runs", nlohmann::json::array()}};
  for (const auto& v : f.variants) {
    nlohmann::json jv = {{"name", v.name},
                         {"overlay", v.overlay},
                         {"baseline", v.name == f.baseline},
                         {"runs", v.runs},
                         {"best", spread_json(v.best)},
                         {"population", spread_json(v.population)},
                         {"best_score", spread_json(v.best_score)},
                         {"efficiency", spread_json(v.efficiency)},
                         {"wall_seconds", spread_json(v.wall_seconds)},
                         {"metrics", nlohmann::json::object()},
                         {"vs_baseline", nullptr},
                         {"curve", nlohmann::json::array()}};
    for (const auto& [k, s] : v.metrics) jv["metrics"][k] = spread_json(s);
    if (v.vs_baseline) {
      const auto& c = *v.vs_baseline;
      jv["vs_baseline"] = {{"pairs", c.pairs},
                           {"median_difference", opt_json(c.median_difference)},
                           {"wins", c.wins},
                           {"losses", c.losses},
                           {"ties", c.ties},
                           {"wilcoxon_p", c.wilcoxon_p},
                           {"wilcoxon_exact", c.exact},
                           {"sign_p", c.sign_p}};
    }
    for (std::size_t i = 0; i < v.grid.size(); ++i)
      jv["curve"].push_back({{"step", v.grid[i]}, {"median_best_score", opt_json(v.median_curve[i])}});
    j["variants"].push_back(jv);
  }
  for (const auto& r : f.runs) {
    nlohmann::json jr = {
        {"variant", r.variant},
        {"seed", r.seed},
        {"experiment", r.experiment},
        {"dir", r.dir},
        {"best_member", r.best_member},
        {"best", opt_json(r.best)},
        {"population", opt_json(r.population)},
        {"best_score", opt_json(r.best_score)},
        {"best_step", r.best_step},
        {"best_trained_steps", r.best_trained_steps ? nlohmann::json(*r.best_trained_steps) : nlohmann::json(nullptr)},
        {"best_efficiency", opt_json(r.best_efficiency)},
        {"wall_seconds", r.wall_seconds},
        {"metrics", r.metrics}};
    j["runs"].push_back(jr);
  }
  return j;
}

namespace {

// The metrics reported by any variant's best members, in name order.
std::set<std::string> metric_names(const StudyFigures& f) {
  std::set<std::string> names;
  for (const auto& v : f.variants)
    for (const auto& [k, s] : v.metrics) names.insert(k);
  return names;
}

std::string what_is_compared(const StudyFigures& f) {
  return "`" + f.metric + "` (" + (f.lower_is_better ? "lower" : "higher") +
         " is better) of each run's best member (by score) at the end; *population* is its median over the "
         "final members. Over seeds: median [Q1, Q3] (quantiles by linear interpolation). Baseline: `" +
         f.baseline + "`.";
}

}  // namespace

std::string study_markdown(const StudyFigures& f) {
  std::ostringstream s;
  s << "# Study `" << f.name << "`: " << f.variants.size() << " variants x " << f.seeds.size() << " seeds\n\n";
  s << "Study file: `" << f.origin << "`" << (f.base.empty() ? "" : "; base config: `" + f.base + "`") << ".\n"
    << "Compared: " << what_is_compared(f) << "\n"
    << "Paired test: " << kStudyTestText << ".\n\n";
  s << "## Final figures\n\n"
    << "| variant | runs | best | population | median diff vs baseline | wins/losses/ties | p (Wilcoxon) | p (sign) "
       "| efficiency | wall s |\n"
    << "|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& v : f.variants) {
    s << "| " << markdown_cell(v.name) << (v.name == f.baseline ? " (baseline)" : "") << " | " << v.runs << " | "
      << spread_text(v.best) << " | " << spread_text(v.population) << " | ";
    if (v.vs_baseline) {
      const auto& c = *v.vs_baseline;
      s << num(c.median_difference) << " | " << c.wins << "/" << c.losses << "/" << c.ties << " | "
        << num(c.wilcoxon_p, 3) << (c.exact ? "" : " (normal)") << " | " << num(c.sign_p, 3) << " | ";
    } else {
      s << "- | - | - | - | ";
    }
    s << spread_text(v.efficiency, 3) << " | " << spread_text(v.wall_seconds, 3) << " |\n";
  }
  s << "\n*efficiency*: trained steps / steps of the best member (its model's training followed back through "
       "every copy of weights); *wall s*: seconds each run took.\n";

  const auto names = metric_names(f);
  if (!names.empty()) {
    s << "\n## Metrics the trainable reports (the best member's)\n\n| variant |";
    for (const auto& n : names) s << " " << markdown_cell(n) << " |";
    s << "\n|---|";
    for (std::size_t i = 0; i < names.size(); ++i) s << "---|";
    s << "\n";
    for (const auto& v : f.variants) {
      s << "| " << markdown_cell(v.name) << " |";
      for (const auto& n : names) {
        auto it = v.metrics.find(n);
        s << " " << (it == v.metrics.end() ? "-" : spread_text(it->second)) << " |";
      }
      s << "\n";
    }
  }

  // Variants of one budget share the curve's steps; with budgets that differ, rows are
  // fractions of each variant's own budget.
  bool same_grid = true;
  for (const auto& v : f.variants) same_grid &= v.grid == f.variants.front().grid;
  s << "\n## Median best score by step\n\nThe population's best score at each step (each member's latest eval), "
       "median over seeds"
    << (same_grid ? "" : "; the variants' budgets differ: rows are fractions of each one's budget") << ".\n\n| "
    << (same_grid ? "step" : "budget") << " |";
  for (const auto& v : f.variants) s << " " << markdown_cell(v.name) << " |";
  s << "\n|---|";
  for (std::size_t i = 0; i < f.variants.size(); ++i) s << "---|";
  s << "\n";
  if (!f.variants.empty()) {
    const std::size_t n = f.variants.front().grid.size();
    for (std::size_t i = 0; i < n; i += 5) {
      s << "| " << (same_grid ? std::to_string(f.variants.front().grid[i]) : std::to_string(i * 100 / (n - 1)) + "%")
        << " |";
      for (const auto& v : f.variants) s << " " << (i < v.median_curve.size() ? num(v.median_curve[i]) : "-") << " |";
      s << "\n";
    }
  }

  s << "\n## Variants\n\n";
  for (const auto& v : f.variants)
    s << "- `" << v.name << "`" << (v.name == f.baseline ? " (baseline)" : "") << ": " << overlay_line(v.overlay)
      << "\n";

  s << "\n## Runs\n\n| variant | seed | best member | best | population | score | step | trained steps | efficiency "
       "| wall s | run |\n|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& r : f.runs) {
    s << "| " << markdown_cell(r.variant) << " | " << r.seed << " | " << r.best_member << " | " << num(r.best) << " | "
      << num(r.population) << " | " << num(r.best_score) << " | " << r.best_step << " | "
      << (r.best_trained_steps ? std::to_string(*r.best_trained_steps) : "-") << " | " << num(r.best_efficiency, 3)
      << " | " << num(r.wall_seconds, 3) << " | `" << markdown_cell(r.dir) << "` |\n";
  }
  return s.str();
}

std::string study_html(const StudyFigures& f) {
  std::ostringstream s;
  auto td = [](const std::string& x) { return "<td>" + html_escape(x) + "</td>"; };
  s << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
       "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
       "img-src data:\">\n<title>PBT study: "
    << html_escape(f.name) << "</title>\n<style>\n"
    << assets::style << "</style>\n</head>\n<body>\n<header><h1>PBT study: <span id=\"study-name\">"
    << html_escape(f.name) << "</span></h1>\n<p class=\"summary\">" << f.variants.size() << " variants x "
    << f.seeds.size() << " seeds, " << f.runs.size() << " runs; study file " << html_escape(f.origin)
    << (f.base.empty() ? "" : ", base config " + html_escape(f.base)) << "</p>\n"
    << "<nav><a href=\"#figures\">final figures</a> <a href=\"#curves\">best score by step</a> <a "
       "href=\"#metrics\">metrics</a> <a href=\"#variants\">variants</a> <a href=\"#runs\">runs</a> <a "
       "href=\"#study-file\">study file</a></nav></header>\n<main>\n";

  s << "<section id=\"figures\"><h2>Final figures</h2><p class=\"note\">" << html_escape(plain(what_is_compared(f)))
    << "</p><p class=\"note\">Paired test: " << html_escape(kStudyTestText)
    << ".</p>\n<div class=\"chart\"><table><thead><tr>"
    << "<th>variant</th><th>runs</th><th>best</th><th>population</th><th>median diff vs baseline</th>"
    << "<th>wins/losses/ties</th><th>p (Wilcoxon)</th><th>p (sign)</th><th>efficiency</th><th>wall s</th>"
    << "</tr></thead><tbody>\n";
  for (std::size_t k = 0; k < f.variants.size(); ++k) {
    const auto& v = f.variants[k];
    s << "<tr" << (v.name == f.baseline ? " class=\"best\"" : "")
      << "><td><span class=\"swatch\" style=\"background:" << palette()[k % palette().size()]
      << ";display:inline-block;width:12px;height:4px;margin-right:6px\"></span>" << html_escape(v.name)
      << (v.name == f.baseline ? " (baseline)" : "") << "</td>" << td(std::to_string(v.runs)) << td(spread_text(v.best))
      << td(spread_text(v.population));
    if (v.vs_baseline) {
      const auto& c = *v.vs_baseline;
      s << td(num(c.median_difference))
        << td(std::to_string(c.wins) + "/" + std::to_string(c.losses) + "/" + std::to_string(c.ties))
        << td(num(c.wilcoxon_p, 3) + (c.exact ? "" : " (normal)")) << td(num(c.sign_p, 3));
    } else {
      s << td("-") << td("-") << td("-") << td("-");
    }
    s << td(spread_text(v.efficiency, 3)) << td(spread_text(v.wall_seconds, 3)) << "</tr>\n";
  }
  s << "</tbody></table></div><p class=\"note\">efficiency: trained steps / steps of the best member; wall s: seconds "
       "each run took.</p></section>\n";

  s << "<section id=\"curves\"><h2>Median best score by step</h2><p class=\"note\">The population's best score at "
       "each step (each member's latest eval), median over seeds.</p><div class=\"legend\">";
  for (std::size_t k = 0; k < f.variants.size(); ++k)
    s << "<span class=\"item\"><span class=\"swatch\" style=\"background:" << palette()[k % palette().size()]
      << "\"></span>" << html_escape(f.variants[k].name) << "</span>";
  s << "</div><div class=\"chart\">" << curves_svg(f) << "</div></section>\n";

  const auto names = metric_names(f);
  s << "<section id=\"metrics\"><h2>Metrics the trainable reports</h2>";
  if (names.empty()) {
    s << "<p class=\"note\">The trainable reports no numeric metrics.</p>";
  } else {
    s << "<p class=\"note\">The best member's, median [Q1, Q3] over seeds.</p><table><thead><tr><th>variant</th>";
    for (const auto& n : names) s << "<th>" << html_escape(n) << "</th>";
    s << "</tr></thead><tbody>\n";
    for (const auto& v : f.variants) {
      s << "<tr>" << td(v.name);
      for (const auto& n : names) {
        auto it = v.metrics.find(n);
        s << td(it == v.metrics.end() ? "-" : spread_text(it->second));
      }
      s << "</tr>\n";
    }
    s << "</tbody></table>";
  }
  s << "</section>\n";

  s << "<section id=\"variants\"><h2>Variants</h2><table><thead><tr><th>variant</th><th>keys over the base "
       "config</th></tr></thead><tbody>\n";
  for (const auto& v : f.variants)
    s << "<tr>" << td(v.name + (v.name == f.baseline ? " (baseline)" : "")) << td(overlay_line(v.overlay)) << "</tr>\n";
  s << "</tbody></table></section>\n";

  s << "<section id=\"runs\"><h2>Runs</h2><div class=\"chart\"><table><thead><tr><th>variant</th><th>seed</th><th>best "
       "member</th>"
       "<th>best</th><th>population</th><th>score</th><th>step</th><th>trained steps</th><th>efficiency</th>"
       "<th>wall s</th><th>run</th></tr></thead><tbody>\n";
  for (const auto& r : f.runs)
    s << "<tr>" << td(r.variant) << td(std::to_string(r.seed)) << td(std::to_string(r.best_member)) << td(num(r.best))
      << td(num(r.population)) << td(num(r.best_score)) << td(std::to_string(r.best_step))
      << td(r.best_trained_steps ? std::to_string(*r.best_trained_steps) : "-") << td(num(r.best_efficiency, 3))
      << td(num(r.wall_seconds, 3)) << td(r.dir) << "</tr>\n";
  s << "</tbody></table></div></section>\n";

  s << "<section id=\"study-file\"><h2>Study file</h2><p class=\"note\">" << html_escape(f.origin) << "</p><pre>"
    << html_escape(f.text) << "</pre></section>\n</main>\n"
    << "<script type=\"application/json\" id=\"pbt-study-data\">" << script_json(study_json(f)) << "</script>\n"
    << "</body></html>\n";
  return s.str();
}

}  // namespace pbt::report
