// A study's outputs: each run's figures from its store, gathered per variant over seeds, and
// written as Markdown, one offline HTML page (the report's styles, the curves as inline SVG)
// and JSON.
#include "pbt/study_report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "pbt/error.hpp"
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

// The plotting area of a small SVG chart: margins, x over [0, xmax] and y over [lo, hi] padded
// by 5% (a flat range widened to one unit, so that a constant still gets a line), in pixels.
struct ChartFrame {
  double W, H, left, right, top, bottom;
  double xmax = 1, lo = 0, hi = 1;
  void fit(double x_max, double y_lo, double y_hi) {
    if (y_hi - y_lo < 1e-12) {
      y_lo -= 0.5;
      y_hi += 0.5;
    }
    const double pad = (y_hi - y_lo) * 0.05;
    lo = y_lo - pad;
    hi = y_hi + pad;
    xmax = x_max > 0 ? x_max : 1;
  }
  double x(double v) const { return left + (W - left - right) * v / xmax; }
  double y(double v) const { return top + (H - top - bottom) * (1 - (v - lo) / (hi - lo)); }
};

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
  ChartFrame frame{W, H, left, right, top, bottom};
  frame.fit(xmax, ylo, yhi);
  xmax = frame.xmax;
  ylo = frame.lo;
  yhi = frame.hi;
  auto X = [&](double x) { return frame.x(x); };
  auto Y = [&](double y) { return frame.y(y); };
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

nlohmann::json paired_json(const PairedComparison& c) {
  return {{"pairs", c.pairs},
          {"median_difference", opt_json(c.median_difference)},
          {"wins", c.wins},
          {"losses", c.losses},
          {"ties", c.ties},
          {"wilcoxon_p", c.wilcoxon_p},
          {"wilcoxon_exact", c.exact},
          {"sign_p", c.sign_p}};
}

std::optional<double> difference(const std::optional<double>& a, const std::optional<double>& b) {
  if (!a || !b) return std::nullopt;
  return *a - *b;
}

// The comparisons of a lineage analysis, as (label, comparison).
std::vector<std::pair<std::string, PairedComparison>> lineage_comparisons(const StudyLineageFigures& l) {
  std::vector<std::pair<std::string, PairedComparison>> out = {{"replay - PBT", l.replay_vs_pbt}};
  if (l.replay_vs_fixed) out.emplace_back("replay - fixed h", *l.replay_vs_fixed);
  if (l.pbt_vs_fixed) out.emplace_back("PBT - fixed h", *l.pbt_vs_fixed);
  return out;
}

// A schedule's value of `name` at each tenth of its steps (the stretch holding step p + 1 at
// p = total * i / 10; the last step's at 100%).
constexpr int kScheduleColumns = 11;
std::vector<std::optional<double>> schedule_samples(const StudyLineageRow& row, const std::string& name) {
  std::vector<std::optional<double>> out;
  const auto stretches = schedule_stretches(row.schedule, name);
  for (int i = 0; i < kScheduleColumns; ++i) {
    std::optional<double> v;
    const std::int64_t p = std::min(row.total_steps * i / (kScheduleColumns - 1), row.total_steps - 1);
    for (const auto& st : stretches)
      if (st.from <= p && p < st.to) v = st.value;
    out.push_back(v);
  }
  return out;
}

std::string lineage_intro(const StudyFigures& f, const StudyLineageFigures& l) {
  return "Each run's best member's inherited schedule (its lineage followed back through every copy of weights, "
         "each stretch of steps under the h in force then) retrained from scratch with no population (`pbt "
         "replay`), against the PBT result (the same member's `" +
         f.metric + "` at the end)" +
         (l.fixed.empty() ? std::string(".")
                          : " and the best fixed h (the best member of `" + l.fixed + "`, same seed).") +
         " Paired by seed; tests as above.";
}

// One small chart per hyperparameter: each seed's replayed schedule as a step line over the
// replay's steps; a log axis for positive values spread over more than a factor of 20.
std::string schedule_svg(const StudyLineageFigures& l, const std::string& name) {
  const double W = 420, H = 220, left = 64, right = 12, top = 12, bottom = 40;
  double xmax = 0, ylo = INFINITY, yhi = -INFINITY;
  std::vector<std::vector<ScheduleStretch>> lines;
  for (const auto& row : l.rows) {
    lines.push_back(schedule_stretches(row.schedule, name));
    for (const auto& st : lines.back()) {
      xmax = std::max(xmax, static_cast<double>(st.to));
      ylo = std::min(ylo, st.value);
      yhi = std::max(yhi, st.value);
    }
  }
  if (!std::isfinite(ylo)) return "";
  const bool log = ylo > 0 && yhi / ylo > 20;
  auto T = [&](double y) { return log ? std::log10(y) : y; };
  ChartFrame frame{W, H, left, right, top, bottom};
  frame.fit(xmax, T(ylo), T(yhi));
  xmax = frame.xmax;
  const double lo = frame.lo, hi = frame.hi;
  auto X = [&](double x) { return frame.x(x); };
  auto Y = [&](double y) { return frame.y(T(y)); };
  std::ostringstream s;
  char buf[200];
  s << "<svg class=\"chart-svg schedule\" data-variant=\"" << html_escape(l.variant) << "\" data-hyperparameter=\""
    << html_escape(name) << "\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" viewBox=\"0 0 " << W << " " << H << "\" role=\"img\" aria-label=\"" << html_escape(name)
    << " over the replayed steps\">\n<g class=\"axis\">";
  std::vector<double> yt;
  if (log)
    for (double e = std::ceil(lo); e <= hi; e += 1) yt.push_back(std::pow(10, e));
  else yt = ticks(lo, hi, 4);
  for (double t : yt) {
    std::snprintf(buf, sizeof buf, "<line class=\"gridline\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>", left,
                  W - right, Y(t), Y(t));
    s << buf;
    std::snprintf(buf, sizeof buf, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>", left - 6, Y(t) + 4,
                  num(t, 3).c_str());
    s << buf;
  }
  for (double t : ticks(0, xmax, 4)) {
    std::snprintf(buf, sizeof buf, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>", X(t),
                  H - bottom + 16, num(t, 6).c_str());
    s << buf;
  }
  std::snprintf(buf, sizeof buf, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>", left, W - right, H - bottom,
                H - bottom);
  s << buf << "</g>\n";
  std::snprintf(buf, sizeof buf,
                "<text class=\"axis-label\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">replayed step</text>"
                "<text class=\"axis-label\" transform=\"translate(14 %.1f) rotate(-90)\" text-anchor=\"middle\">",
                left + (W - left - right) / 2, H - 6, top + (H - top - bottom) / 2);
  s << buf << html_escape(name) << (log ? " (log)" : "") << "</text>\n";
  for (std::size_t k = 0; k < lines.size(); ++k) {
    std::string d;
    for (std::size_t i = 0; i < lines[k].size(); ++i) {
      const auto& st = lines[k][i];
      std::snprintf(buf, sizeof buf, "%s%.1f %.1f L%.1f %.1f ", i ? "L" : "M", X(static_cast<double>(st.from)),
                    Y(st.value), X(static_cast<double>(st.to)), Y(st.value));
      d += buf;
    }
    s << "<g class=\"curve\" data-seed=\"" << l.rows[k].seed << "\"><title>seed " << l.rows[k].seed
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
  for (const auto& e : run.events) r.copies += e.kind == EventKind::exploit;
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

StudyReplay replay_from_json(const nlohmann::json& j, const std::string& metric) {
  if (!j.is_object() || !j.contains("member") || !j.contains("schedule") || !j["schedule"].is_array() ||
      !j.contains("replay_score"))
    throw Error("not the output of `pbt replay --json`");
  StudyReplay r;
  r.member = j["member"].get<int>();
  if (j["replay_score"].is_number()) {
    const double x = j["replay_score"].get<double>();
    if (std::isfinite(x) && !is_diverged(x)) r.score = x;
  }
  if (metric == "score") {
    r.figure = r.score;
  } else {
    const std::string key = metric.substr(8);
    const nlohmann::json& m = j.value("replay_metrics", nlohmann::json(nullptr));
    if (m.is_object() && m.contains(key) && m[key].is_number() && std::isfinite(m[key].get<double>()))
      r.figure = m[key].get<double>();
  }
  for (const auto& seg : j["schedule"]) {
    ScheduleSegment s;
    s.member = seg.at("member").get<int>();
    s.from_step = seg.at("from_step").get<std::int64_t>();
    s.to_step = seg.at("to_step").get<std::int64_t>();
    s.h = hyperparams_from_json(seg.at("h"));
    r.total_steps += s.steps();
    r.schedule.push_back(std::move(s));
  }
  return r;
}

std::vector<ScheduleStretch> schedule_stretches(const std::vector<ScheduleSegment>& schedule, const std::string& name) {
  std::vector<ScheduleStretch> out;
  std::int64_t at = 0;
  for (const auto& seg : schedule) {
    const std::int64_t to = at + seg.steps();
    auto it = seg.h.find(name);
    if (it != seg.h.end() && !std::holds_alternative<std::string>(it->second) && seg.steps() > 0) {
      const double v = as_double(it->second);
      if (!out.empty() && out.back().to == at && out.back().value == v) out.back().to = to;  // one stretch
      else out.push_back({at, to, v});
    }
    at = to;
  }
  return out;
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
    std::vector<double> best, pop, eff, wall, score, copies;
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
      copies.push_back(r.copies);
      for (const auto& [k, x] : r.metrics) metrics[k].push_back(x);
    }
    v.best = spread_of(best);
    v.population = spread_of(pop);
    v.efficiency = spread_of(eff);
    v.wall_seconds = spread_of(wall);
    v.best_score = spread_of(score);
    v.copies = spread_of(copies);
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

  // The lineage analysis: each replayed variant's runs, seed by seed, beside the fixed h's.
  for (const auto& name : spec.replay) {
    StudyLineageFigures l;
    l.variant = name;
    l.fixed = spec.fixed;
    const auto fixed_by_seed = spec.fixed.empty() ? std::map<std::uint64_t, double>{} : figure_by_seed(spec.fixed);
    std::vector<double> pbt, replayed, fixed, d_pbt, d_fixed, d_pbt_fixed;
    std::set<std::string> names;
    for (const auto& r : f.runs) {
      if (r.variant != name) continue;
      StudyLineageRow row;
      row.seed = r.seed;
      row.pbt = r.best;
      row.member = r.best_member;
      if (r.replay) {
        row.replay = r.replay->figure;
        row.member = r.replay->member;
        row.total_steps = r.replay->total_steps;
        row.schedule = r.replay->schedule;
        for (const auto& seg : row.schedule)
          for (const auto& [k, v] : seg.h)
            if (!std::holds_alternative<std::string>(v)) names.insert(k);
      }
      if (auto it = fixed_by_seed.find(r.seed); it != fixed_by_seed.end()) row.fixed = it->second;
      if (row.pbt) pbt.push_back(*row.pbt);
      if (row.replay) replayed.push_back(*row.replay);
      if (row.fixed) fixed.push_back(*row.fixed);
      if (row.replay && row.pbt) d_pbt.push_back(*row.replay - *row.pbt);
      if (row.replay && row.fixed) d_fixed.push_back(*row.replay - *row.fixed);
      if (row.pbt && row.fixed) d_pbt_fixed.push_back(*row.pbt - *row.fixed);
      l.rows.push_back(std::move(row));
    }
    l.pbt = spread_of(pbt);
    l.replay = spread_of(replayed);
    l.fixed_figure = spread_of(fixed);
    l.replay_vs_pbt = compare_paired(d_pbt, spec.lower_is_better);
    if (!spec.fixed.empty()) {
      l.replay_vs_fixed = compare_paired(d_fixed, spec.lower_is_better);
      l.pbt_vs_fixed = compare_paired(d_pbt_fixed, spec.lower_is_better);
    }
    l.hyperparams.assign(names.begin(), names.end());
    f.lineage.push_back(std::move(l));
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
                         {"copies", spread_json(v.copies)},
                         {"metrics", nlohmann::json::object()},
                         {"vs_baseline", nullptr},
                         {"curve", nlohmann::json::array()}};
    for (const auto& [k, s] : v.metrics) jv["metrics"][k] = spread_json(s);
    if (v.vs_baseline) jv["vs_baseline"] = paired_json(*v.vs_baseline);
    for (std::size_t i = 0; i < v.grid.size(); ++i)
      jv["curve"].push_back({{"step", v.grid[i]}, {"median_best_score", opt_json(v.median_curve[i])}});
    j["variants"].push_back(jv);
  }
  j["lineage"] = nlohmann::json::array();
  for (const auto& l : f.lineage) {
    nlohmann::json jl = {{"variant", l.variant},
                         {"fixed", l.fixed.empty() ? nlohmann::json(nullptr) : nlohmann::json(l.fixed)},
                         {"pbt", spread_json(l.pbt)},
                         {"replay", spread_json(l.replay)},
                         {"fixed_h", spread_json(l.fixed_figure)},
                         {"replay_vs_pbt", paired_json(l.replay_vs_pbt)},
                         {"replay_vs_fixed", l.replay_vs_fixed ? paired_json(*l.replay_vs_fixed) : nullptr},
                         {"pbt_vs_fixed", l.pbt_vs_fixed ? paired_json(*l.pbt_vs_fixed) : nullptr},
                         {"hyperparameters", l.hyperparams},
                         {"seeds", nlohmann::json::array()}};
    for (const auto& row : l.rows) {
      nlohmann::json schedule = nlohmann::json::array();
      for (const auto& seg : row.schedule)
        schedule.push_back(
            {{"member", seg.member}, {"from_step", seg.from_step}, {"to_step", seg.to_step}, {"h", to_json(seg.h)}});
      jl["seeds"].push_back({{"seed", row.seed},
                             {"member", row.member},
                             {"pbt", opt_json(row.pbt)},
                             {"replay", opt_json(row.replay)},
                             {"fixed", opt_json(row.fixed)},
                             {"replay_minus_pbt", opt_json(difference(row.replay, row.pbt))},
                             {"replay_minus_fixed", opt_json(difference(row.replay, row.fixed))},
                             {"total_steps", row.total_steps},
                             {"schedule", schedule}});
    }
    j["lineage"].push_back(jl);
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
        {"copies", r.copies},
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

std::string paired_cells(const PairedComparison& c) {
  return std::to_string(c.pairs) + " | " + num(c.median_difference) + " | " + std::to_string(c.wins) + "/" +
         std::to_string(c.losses) + "/" + std::to_string(c.ties) + " | " + num(c.wilcoxon_p, 3) +
         (c.exact ? "" : " (normal)") + " | " + num(c.sign_p, 3);
}

std::string lineage_markdown(const StudyFigures& f) {
  std::ostringstream s;
  s << "\n## Lineage (Figure 9)\n\n" << lineage_intro(f, f.lineage.front()) << "\n\n";
  s << "| variant | seeds | PBT | replayed schedule | best fixed h |\n|---|---|---|---|---|\n";
  for (const auto& l : f.lineage)
    s << "| " << markdown_cell(l.variant) << " | " << l.rows.size() << " | " << spread_text(l.pbt) << " | "
      << spread_text(l.replay) << " | "
      << (l.fixed.empty() ? "-" : spread_text(l.fixed_figure) + " (`" + markdown_cell(l.fixed) + "`)") << " |\n";
  s << "\nPaired differences (same seed):\n\n| variant | difference | pairs | median | wins/losses/ties | p "
       "(Wilcoxon) | p (sign) |\n|---|---|---|---|---|---|---|\n";
  for (const auto& l : f.lineage)
    for (const auto& [label, c] : lineage_comparisons(l))
      s << "| " << markdown_cell(l.variant) << " | " << label << " | " << paired_cells(c) << " |\n";
  s << "\nPer seed (*member*: the run's best, whose schedule was replayed; *steps*: the steps the replay "
       "trained):\n\n| variant | seed | member | PBT | replayed | fixed h | replay - PBT | replay - fixed h | steps "
       "|\n|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& l : f.lineage)
    for (const auto& row : l.rows)
      s << "| " << markdown_cell(l.variant) << " | " << row.seed << " | " << row.member << " | " << num(row.pbt)
        << " | " << num(row.replay) << " | " << num(row.fixed) << " | " << num(difference(row.replay, row.pbt)) << " | "
        << num(difference(row.replay, row.fixed)) << " | " << row.total_steps << " |\n";
  s << "\n### Inherited schedules\n\nEach seed's winner's schedule: the value in force at each tenth of the "
       "steps it was trained (the replay's own count, 0 to *steps*); *changes*: how often it changed.\n";
  for (const auto& l : f.lineage)
    for (const auto& name : l.hyperparams) {
      s << "\n`" << markdown_cell(l.variant) << "`: `" << markdown_cell(name) << "`\n\n| seed | changes |";
      for (int i = 0; i < kScheduleColumns; ++i) s << " " << i * 100 / (kScheduleColumns - 1) << "% |";
      s << "\n|---|---|";
      for (int i = 0; i < kScheduleColumns; ++i) s << "---|";
      s << "\n";
      for (const auto& row : l.rows) {
        const auto stretches = schedule_stretches(row.schedule, name);
        s << "| " << row.seed << " | " << (stretches.empty() ? 0 : stretches.size() - 1) << " |";
        for (const auto& v : schedule_samples(row, name)) s << " " << num(v, 3) << " |";
        s << "\n";
      }
    }
  return s.str();
}

std::string lineage_html(const StudyFigures& f) {
  std::ostringstream s;
  auto td = [](const std::string& x) { return "<td>" + html_escape(x) + "</td>"; };
  s << "<section id=\"lineage\"><h2>Lineage (Figure 9)</h2><p class=\"note\">"
    << html_escape(plain(lineage_intro(f, f.lineage.front()))) << "</p>\n<table><thead><tr><th>variant</th>"
    << "<th>seeds</th><th>PBT</th><th>replayed schedule</th><th>best fixed h</th></tr></thead><tbody>\n";
  for (const auto& l : f.lineage)
    s << "<tr>" << td(l.variant) << td(std::to_string(l.rows.size())) << td(spread_text(l.pbt))
      << td(spread_text(l.replay)) << td(l.fixed.empty() ? "-" : spread_text(l.fixed_figure) + " (" + l.fixed + ")")
      << "</tr>\n";
  s << "</tbody></table>\n<table><thead><tr><th>variant</th><th>difference</th><th>pairs</th><th>median</th>"
    << "<th>wins/losses/ties</th><th>p (Wilcoxon)</th><th>p (sign)</th></tr></thead><tbody>\n";
  for (const auto& l : f.lineage)
    for (const auto& [label, c] : lineage_comparisons(l))
      s << "<tr>" << td(l.variant) << td(label) << td(std::to_string(c.pairs)) << td(num(c.median_difference))
        << td(std::to_string(c.wins) + "/" + std::to_string(c.losses) + "/" + std::to_string(c.ties))
        << td(num(c.wilcoxon_p, 3) + (c.exact ? "" : " (normal)")) << td(num(c.sign_p, 3)) << "</tr>\n";
  s << "</tbody></table>\n<div class=\"chart\"><table class=\"lineage-seeds\"><thead><tr><th>variant</th><th>seed</th>"
    << "<th>member</th><th>PBT</th><th>replayed</th><th>fixed h</th><th>replay - PBT</th><th>replay - fixed "
       "h</th><th>steps</th></tr></thead><tbody>\n";
  for (const auto& l : f.lineage)
    for (const auto& row : l.rows)
      s << "<tr>" << td(l.variant) << td(std::to_string(row.seed)) << td(std::to_string(row.member)) << td(num(row.pbt))
        << td(num(row.replay)) << td(num(row.fixed)) << td(num(difference(row.replay, row.pbt)))
        << td(num(difference(row.replay, row.fixed))) << td(std::to_string(row.total_steps)) << "</tr>\n";
  s << "</tbody></table></div>\n<h3>Inherited schedules</h3><p class=\"note\">Each seed's winner's schedule over "
       "the steps its model was trained (one line per seed).</p>\n";
  for (const auto& l : f.lineage) {
    s << "<div class=\"legend\"><strong>" << html_escape(l.variant) << "</strong> ";
    for (std::size_t k = 0; k < l.rows.size(); ++k)
      s << "<span class=\"item\"><span class=\"swatch\" style=\"background:" << palette()[k % palette().size()]
        << "\"></span>seed " << l.rows[k].seed << "</span>";
    s << "</div><div class=\"chart\">";
    for (const auto& name : l.hyperparams) s << schedule_svg(l, name);
    s << "</div>\n";
  }
  s << "</section>\n";
  return s.str();
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
       "| efficiency | copies | wall s |\n"
    << "|---|---|---|---|---|---|---|---|---|---|---|\n";
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
    s << spread_text(v.efficiency, 3) << " | " << spread_text(v.copies) << " | " << spread_text(v.wall_seconds, 3)
      << " |\n";
  }
  s << "\n*efficiency*: trained steps / steps of the best member (its model's training followed back through "
       "every copy of weights); *copies*: exploit events in a run; *wall s*: seconds each run took.\n";

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

  if (!f.lineage.empty()) s << lineage_markdown(f);

  s << "\n## Variants\n\n";
  for (const auto& v : f.variants)
    s << "- `" << v.name << "`" << (v.name == f.baseline ? " (baseline)" : "") << ": " << overlay_line(v.overlay)
      << "\n";

  s << "\n## Runs\n\n| variant | seed | best member | best | population | score | step | trained steps | efficiency "
       "| copies | wall s | run |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& r : f.runs) {
    s << "| " << markdown_cell(r.variant) << " | " << r.seed << " | " << r.best_member << " | " << num(r.best) << " | "
      << num(r.population) << " | " << num(r.best_score) << " | " << r.best_step << " | "
      << (r.best_trained_steps ? std::to_string(*r.best_trained_steps) : "-") << " | " << num(r.best_efficiency, 3)
      << " | " << r.copies << " | " << num(r.wall_seconds, 3) << " | `" << markdown_cell(r.dir) << "` |\n";
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
       "href=\"#metrics\">metrics</a> "
    << (f.lineage.empty() ? "" : "<a href=\"#lineage\">lineage</a> ")
    << "<a href=\"#variants\">variants</a> <a href=\"#runs\">runs</a> <a "
       "href=\"#study-file\">study file</a></nav></header>\n<main>\n";

  s << "<section id=\"figures\"><h2>Final figures</h2><p class=\"note\">" << html_escape(plain(what_is_compared(f)))
    << "</p><p class=\"note\">Paired test: " << html_escape(kStudyTestText)
    << ".</p>\n<div class=\"chart\"><table><thead><tr>"
    << "<th>variant</th><th>runs</th><th>best</th><th>population</th><th>median diff vs baseline</th>"
    << "<th>wins/losses/ties</th><th>p (Wilcoxon)</th><th>p (sign)</th><th>efficiency</th><th>copies</th><th>wall "
       "s</th>"
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
    s << td(spread_text(v.efficiency, 3)) << td(spread_text(v.copies)) << td(spread_text(v.wall_seconds, 3))
      << "</tr>\n";
  }
  s << "</tbody></table></div><p class=\"note\">efficiency: trained steps / steps of the best member; copies: exploit "
       "events in a run; wall s: seconds each run took.</p></section>\n";

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

  if (!f.lineage.empty()) s << lineage_html(f);

  s << "<section id=\"variants\"><h2>Variants</h2><table><thead><tr><th>variant</th><th>keys over the base "
       "config</th></tr></thead><tbody>\n";
  for (const auto& v : f.variants)
    s << "<tr>" << td(v.name + (v.name == f.baseline ? " (baseline)" : "")) << td(overlay_line(v.overlay)) << "</tr>\n";
  s << "</tbody></table></section>\n";

  s << "<section id=\"runs\"><h2>Runs</h2><div class=\"chart\"><table><thead><tr><th>variant</th><th>seed</th><th>best "
       "member</th>"
       "<th>best</th><th>population</th><th>score</th><th>step</th><th>trained steps</th><th>efficiency</th>"
       "<th>copies</th><th>wall s</th><th>run</th></tr></thead><tbody>\n";
  for (const auto& r : f.runs)
    s << "<tr>" << td(r.variant) << td(std::to_string(r.seed)) << td(std::to_string(r.best_member)) << td(num(r.best))
      << td(num(r.population)) << td(num(r.best_score)) << td(std::to_string(r.best_step))
      << td(r.best_trained_steps ? std::to_string(*r.best_trained_steps) : "-") << td(num(r.best_efficiency, 3))
      << td(std::to_string(r.copies)) << td(num(r.wall_seconds, 3)) << td(r.dir) << "</tr>\n";
  s << "</tbody></table></div></section>\n";

  s << "<section id=\"study-file\"><h2>Study file</h2><p class=\"note\">" << html_escape(f.origin) << "</p><pre>"
    << html_escape(f.text) << "</pre></section>\n</main>\n"
    << "<script type=\"application/json\" id=\"pbt-study-data\">" << script_json(study_json(f)) << "</script>\n"
    << "</body></html>\n";
  return s.str();
}

}  // namespace pbt::report
