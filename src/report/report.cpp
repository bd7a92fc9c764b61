#include "report/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <utility>

#include "pbt/error.hpp"
#include "pbt/trainable.hpp"

namespace pbt::report {

namespace assets {
extern const char* const script;  // report.js, embedded at build time
extern const char* const style;   // report.css
}  // namespace assets

namespace {

std::optional<std::int64_t> donor_step_of(const Event& e) {
  if (e.donor >= 0) return e.donor_step;
  return std::nullopt;
}

bool copies_weights(const Event& e) {
  return e.kind == EventKind::exploit && e.donor >= 0 && (copies_weights(e.copied) || e.copied == CopyMode::none);
}

// A diverged model's score: no point on a chart.
bool drawable(double v) { return !is_diverged(v); }

// The page shows numbers, it does not compute with them: 7 significant digits keep every
// difference a chart or a tooltip can show and make the embedded data about half as big.
// (The exports keep every digit.)
double shown(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.7g", v);
  return std::strtod(buf, nullptr);
}

nlohmann::json score_json(const std::optional<double>& v) {
  if (!v || !drawable(*v)) return nullptr;
  return shown(*v);
}

nlohmann::json value_json(const Value& v) {
  if (auto d = std::get_if<double>(&v)) return drawable(*d) ? nlohmann::json(shown(*d)) : nlohmann::json(nullptr);
  if (auto i = std::get_if<std::int64_t>(&v)) return *i;
  return std::get<std::string>(v);
}

std::optional<ExperimentConfig> config_of(const RunData& run) {
  try {
    return parse_config(run.info.config, run.info.origin);
  } catch (const std::exception&) {
    return std::nullopt;  // a store written by something else: draw what the data says
  }
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&t));
  return buf;
}

std::string fmt(double v) {
  if (!drawable(v)) return "-";
  std::ostringstream o;
  o.precision(6);
  o << v;
  return o.str();
}

// Score points of one member: step -> the last eval at that step.
using Points = std::vector<std::pair<std::int64_t, double>>;

std::map<int, Points> points_by_member(const std::vector<ScorePoint>& scores) {
  std::map<int, Points> out;
  for (const auto& p : scores) {
    auto& v = out[p.member];
    if (!v.empty() && v.back().first == p.step)
      v.back().second = p.score;
    else
      v.emplace_back(p.step, p.score);
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

}  // namespace

std::optional<std::int64_t> donor_step(const Event& e) { return donor_step_of(e); }

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

std::vector<std::int64_t> interval_boundaries(const ExperimentConfig& cfg) {
  std::vector<std::int64_t> out;
  const std::int64_t interval = std::max<std::int64_t>(cfg.ready.interval, 1);
  std::int64_t step = 0, last_ready = 0;
  while (step < cfg.budget_steps && out.size() < 10'000'000) {
    // The worker's rule: train until ready (or the budget), then decide.
    const std::int64_t ready_at = std::max(last_ready + interval, cfg.ready.min_step);
    const std::int64_t until = std::min(ready_at, cfg.budget_steps);
    if (until <= step) break;
    step = until;
    out.push_back(step);
    if (cfg.ready.is_ready(step, last_ready) && step < cfg.budget_steps) last_ready = step;
  }
  return out;
}

Lineage build_lineage(const RunData& run) {
  auto cfg = config_of(run);
  return build_lineage(run, cfg ? interval_boundaries(*cfg) : std::vector<std::int64_t>{});
}

Lineage build_lineage(const RunData& run, const std::vector<std::int64_t>& boundaries) {
  Lineage L;
  const auto pts = points_by_member(run.scores);
  static const Points no_points;

  // Events by member, in publish order.
  std::map<int, std::vector<int>> events_of;
  for (std::size_t i = 0; i < run.events.size(); ++i) events_of[run.events[i].member].push_back(static_cast<int>(i));
  auto decision_at = [&](int member, std::int64_t step) -> int {  // the exploit/explore at (member, step)
    auto it = events_of.find(member);
    if (it == events_of.end()) return -1;
    int found = -1;
    for (int i : it->second)
      if (run.events[i].step == step && run.events[i].kind != EventKind::recover) found = i;
    return found;
  };

  // Nodes: one per member-interval that has been published.
  std::map<std::pair<int, std::int64_t>, int> index;
  std::map<int, std::vector<int>> nodes_of;
  L.last.assign(run.population.size(), -1);
  for (std::size_t pi = 0; pi < run.population.size(); ++pi) {
    const MemberState& m = run.population[pi];
    auto pit = pts.find(m.id);
    const Points& mp = pit == pts.end() ? no_points : pit->second;
    std::vector<std::int64_t> steps;
    if (!boundaries.empty()) {
      for (auto b : boundaries)
        if (b <= m.step) steps.push_back(b);
    } else {
      for (const auto& p : mp)
        if (p.first <= m.step) steps.push_back(p.first);
      if (auto it = events_of.find(m.id); it != events_of.end())
        for (int i : it->second)
          if (run.events[i].kind != EventKind::recover && run.events[i].step > 0) steps.push_back(run.events[i].step);
      std::sort(steps.begin(), steps.end());
      steps.erase(std::unique(steps.begin(), steps.end()), steps.end());
    }
    for (auto s : steps) {
      Node n;
      n.member = m.id;
      n.step = s;
      n.event = decision_at(m.id, s);
      const double* own = point_at(mp, s);
      if (n.event >= 0 && run.events[n.event].new_score)
        n.score = run.events[n.event].new_score;
      else if (own)
        n.score = *own;
      else if (n.event >= 0)
        n.score = run.events[n.event].old_score;
      else
        continue;  // not scored (a store that lost its score points): nothing to draw
      if (n.event >= 0 && run.events[n.event].donor >= 0) n.pre_copy = own ? *own : run.events[n.event].old_score;
      index[{m.id, s}] = static_cast<int>(L.nodes.size());
      nodes_of[m.id].push_back(static_cast<int>(L.nodes.size()));
      L.nodes.push_back(n);
    }
    if (!nodes_of[m.id].empty()) {
      L.last[pi] = nodes_of[m.id].back();
      L.nodes[L.last[pi]].last = true;
    }
  }

  // The donor's node that an event copied: the donor's step when recorded, else the donor
  // node whose published score is the one copied (nearest in step), else its latest node
  // at or before the copy.
  auto donor_node = [&](const Event& e) -> int {
    auto nit = nodes_of.find(e.donor);
    if (nit == nodes_of.end() || nit->second.empty()) return -1;
    if (auto ds = donor_step_of(e)) {
      if (auto it = index.find({e.donor, *ds}); it != index.end()) return it->second;
    }
    int best = -1;
    std::int64_t best_dist = 0;
    for (int i : nit->second) {
      const Node& d = L.nodes[i];
      if (!d.score) continue;
      const double tol = 1e-12 * std::max(1.0, std::fabs(e.donor_score));
      if (std::fabs(*d.score - e.donor_score) > tol) continue;
      // prefer steps at or before the copy, then the nearest
      const std::int64_t dist = d.step <= e.step ? 2 * (e.step - d.step) : 2 * (d.step - e.step) + 1;
      if (best < 0 || dist < best_dist) {
        best = i;
        best_dist = dist;
      }
    }
    if (best >= 0) return best;
    for (int i : nit->second)
      if (L.nodes[i].step <= e.step) best = i;
    return best >= 0 ? best : nit->second.front();
  };

  // Parents.
  std::vector<int> source(L.nodes.size(), -1);  // the model trained during the node's interval
  for (auto& [member, list] : nodes_of) {
    for (std::size_t k = 0; k < list.size(); ++k) {
      const int i = list[k];
      Node& n = L.nodes[i];
      const int prev = k > 0 ? list[k - 1] : -1;
      const std::int64_t prev_step = prev >= 0 ? L.nodes[prev].step : 0;
      // A recover at the start of this interval: it trained from the donor's model.
      int src = prev;
      Link src_link = prev >= 0 ? Link::train : Link::none;
      if (auto it = events_of.find(member); it != events_of.end())
        for (int e : it->second) {
          const Event& ev = run.events[e];
          if (ev.kind == EventKind::recover && ev.donor >= 0 && ev.step >= prev_step && ev.step < n.step) {
            if (int d = donor_node(ev); d >= 0) {
              src = d;
              src_link = Link::recover;
            }
          }
        }
      source[i] = src;
      n.parent = src;
      n.link = src_link;
      if (n.event >= 0) {
        const Event& ev = run.events[n.event];
        if (copies_weights(ev)) {
          if (int d = donor_node(ev); d >= 0) {
            n.parent = d;
            n.link = Link::copy;
          }
        } else if (ev.kind == EventKind::exploit && ev.donor >= 0) {  // hyperparameters only
          if (int d = donor_node(ev); d >= 0) L.h_copies.push_back({d, i, n.event});
        }
      }
    }
  }

  // Roots, with a guard against a parent chain that loops (a store with odd data).
  std::vector<int> state(L.nodes.size(), 0);  // 0 new, 1 on the current walk, 2 done
  for (std::size_t start = 0; start < L.nodes.size(); ++start) {
    std::vector<int> path;
    int i = static_cast<int>(start);
    while (i >= 0 && state[i] == 0) {
      state[i] = 1;
      path.push_back(i);
      i = L.nodes[i].parent;
    }
    if (i >= 0 && state[i] == 1) {  // a loop: cut it here
      L.nodes[path.back()].parent = -1;
      L.nodes[path.back()].link = Link::none;
      i = -1;
    }
    int root = i >= 0 ? L.nodes[i].root : -1;
    for (auto it = path.rbegin(); it != path.rend(); ++it) {
      Node& n = L.nodes[*it];
      if (n.parent < 0) root = n.member;
      n.root = root;
      state[*it] = 2;
    }
  }
  for (std::size_t i = 0; i < L.nodes.size(); ++i) {
    Node& n = L.nodes[i];
    if (n.link != Link::copy) {
      n.trained_root = n.root;
    } else {
      const int s = source[i];
      n.trained_root = s >= 0 && s != static_cast<int>(i) ? L.nodes[s].root : n.member;
    }
  }

  // The final population's ancestors.
  for (int last : L.last) {
    for (int i = last, guard = 0; i >= 0 && !L.nodes[i].ancestor && guard < 100'000'000; i = L.nodes[i].parent, ++guard)
      L.nodes[i].ancestor = true;
  }
  return L;
}

std::vector<HSegment> hyperparameter_history(const RunData& run) {
  std::vector<HSegment> out;
  std::optional<std::vector<Hyperparams>> initial;  // from the config, read only when needed
  for (std::size_t pi = 0; pi < run.population.size(); ++pi) {
    const MemberState& m = run.population[pi];
    std::vector<const Event*> evs;
    std::vector<int> idx;
    for (std::size_t i = 0; i < run.events.size(); ++i)
      if (run.events[i].member == m.id) {
        evs.push_back(&run.events[i]);
        idx.push_back(static_cast<int>(i));
      }
    HSegment seg;
    seg.member = m.id;
    if (!evs.empty()) {
      seg.h = evs.front()->old_h;
    } else if (!m.h.empty()) {
      seg.h = m.h;
    } else {
      if (!initial) {
        auto cfg = config_of(run);
        initial = cfg ? initial_hyperparams(*cfg) : std::vector<Hyperparams>{};
      }
      if (m.id >= 0 && m.id < static_cast<int>(initial->size())) seg.h = (*initial)[m.id];
    }
    const std::size_t first = out.size();
    for (std::size_t k = 0; k < evs.size(); ++k) {
      const Event& e = *evs[k];
      if (e.step > seg.from) {
        seg.to = e.step;
        out.push_back(seg);
        seg.from = e.step;
      }
      seg.h = e.new_h;
      seg.cause = to_string(e.kind);
      seg.donor = e.donor;
      seg.event = idx[k];
    }
    seg.to = std::max(seg.from, m.step);
    if (seg.to > seg.from || out.size() == first) out.push_back(seg);
  }
  return out;
}

int best_member(const std::vector<MemberState>& population) {
  const MemberState* best = nullptr;
  for (const auto& m : population)
    if (m.score && drawable(*m.score) && (!best || *m.score > *best->score)) best = &m;
  return best ? best->id : -1;
}

Ancestry ancestry(const RunData& run, const Lineage& L, const std::vector<HSegment>& history, int member) {
  Ancestry a;
  a.member = member;
  int start = -1;
  for (std::size_t pi = 0; pi < run.population.size(); ++pi)
    if (run.population[pi].id == member && pi < L.last.size()) start = L.last[pi];
  if (start < 0) return a;
  for (int i = start, guard = 0; i >= 0 && guard <= static_cast<int>(L.nodes.size()); i = L.nodes[i].parent, ++guard)
    a.nodes.push_back(i);
  std::reverse(a.nodes.begin(), a.nodes.end());
  a.root = L.nodes[a.nodes.front()].root;

  // The member's previous node step (its interval's start), for every node.
  std::map<int, std::vector<std::int64_t>> steps_of;
  for (const auto& n : L.nodes) steps_of[n.member].push_back(n.step);
  std::map<int, std::vector<const HSegment*>> segs_of;
  for (const auto& s : history) segs_of[s.member].push_back(&s);

  for (int i : a.nodes) {
    const Node& n = L.nodes[i];
    if (n.link == Link::copy) continue;  // the model was copied here, not trained
    const auto& st = steps_of[n.member];
    auto it = std::lower_bound(st.begin(), st.end(), n.step);
    const std::int64_t from = it == st.begin() ? 0 : *(it - 1);
    // The h in force over (from, n.step]: every history segment that overlaps it.
    for (const HSegment* s : segs_of[n.member]) {
      const std::int64_t lo = std::max(from, s->from), hi = std::min(n.step, s->to);
      if (hi <= lo) continue;
      if (!a.schedule.empty() && a.schedule.back().member == n.member && a.schedule.back().to == lo &&
          a.schedule.back().h == s->h)
        a.schedule.back().to = hi;
      else
        a.schedule.push_back({n.member, lo, hi, s->h});
    }
  }
  return a;
}

// ---------------------------------------------------------------------------------------

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 16);
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string script_json(const nlohmann::json& j) {
  const std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out;
  out.reserve(text.size() + 64);
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    // These characters only occur inside JSON strings, where \uXXXX means the same.
    if (c == '<') out += "\\u003c";
    else if (c == '>') out += "\\u003e";
    else if (c == '&') out += "\\u0026";
    else if (c == '\xe2' && i + 2 < text.size() && text[i + 1] == '\x80' && (text[i + 2] == '\xa8' || text[i + 2] == '\xa9')) {
      out += text[i + 2] == '\xa8' ? "\\u2028" : "\\u2029";
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

struct ParamInfo {
  std::string name;
  std::string kind;  // float | int | categorical
  double low = 0, high = 0;
  bool log = false;
  std::vector<std::string> choices;
};

std::vector<ParamInfo> params_of(const RunData& run, const std::optional<ExperimentConfig>& cfg,
                                 const std::vector<HSegment>& history) {
  std::vector<ParamInfo> out;
  if (cfg) {
    for (const auto& p : cfg->space.params()) {
      ParamInfo pi;
      pi.name = p.name;
      pi.kind = p.kind == Param::Kind::Float ? "float" : p.kind == Param::Kind::Int ? "int" : "categorical";
      pi.low = p.low;
      pi.high = p.high;
      pi.log = p.log;
      pi.choices = p.choices;
      out.push_back(pi);
    }
    return out;
  }
  // No readable config: the names and kinds the data shows.
  std::map<std::string, ParamInfo> seen;
  auto note = [&](const Hyperparams& h) {
    for (const auto& [name, v] : h) {
      auto& pi = seen[name];
      pi.name = name;
      if (auto s = std::get_if<std::string>(&v)) {
        pi.kind = "categorical";
        if (std::find(pi.choices.begin(), pi.choices.end(), *s) == pi.choices.end()) pi.choices.push_back(*s);
      } else if (pi.kind.empty() || pi.kind == "int") {
        pi.kind = std::holds_alternative<std::int64_t>(v) ? (pi.kind.empty() ? "int" : pi.kind) : "float";
      }
    }
  };
  for (const auto& s : history) note(s.h);
  for (const auto& m : run.population) note(m.h);
  for (auto& [n, pi] : seen) out.push_back(pi);
  return out;
}

nlohmann::json h_values(const Hyperparams& h, const std::vector<ParamInfo>& params) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& p : params) {
    auto it = h.find(p.name);
    a.push_back(it == h.end() ? nlohmann::json(nullptr) : value_json(it->second));
  }
  return a;
}

// The page's code for an h segment's cause: 0 initial, then one per event kind.
int kind_code(const std::string& cause) {
  for (EventKind k : {EventKind::exploit, EventKind::explore, EventKind::recover})
    if (cause == to_string(k)) return static_cast<int>(k) + 1;
  return 0;
}
int kind_code(EventKind k) { return static_cast<int>(k) + 1; }

}  // namespace

nlohmann::json page_data(const RunData& run, const PageOptions& opt) {
  using json = nlohmann::json;
  const auto cfg = config_of(run);
  const Lineage L = build_lineage(run, cfg ? interval_boundaries(*cfg) : std::vector<std::int64_t>{});
  const auto history = hyperparameter_history(run);
  const auto params = params_of(run, cfg, history);
  const int best = best_member(run.population);

  json d;
  d["experiment"] = run.info.name;
  d["origin"] = run.info.origin;
  d["finished"] = run.info.finished;
  d["population"] = run.population.size();
  d["budget"] = cfg ? json(cfg->budget_steps) : json(nullptr);
  d["ready_interval"] = cfg ? json(cfg->ready.interval) : json(nullptr);
  d["generated"] = utc_now();
  d["live"] = opt.live;
  if (opt.live) d["refresh_ms"] = opt.refresh_ms;

  // Parameters.
  d["params"] = json::array();
  for (const auto& p : params)
    d["params"].push_back({{"name", p.name}, {"kind", p.kind}, {"low", p.low}, {"high", p.high}, {"log", p.log},
                           {"choices", p.choices}});

  // Lineages, ranked: most final members first, then most nodes.
  std::map<int, std::pair<int, int>> lineage;  // root -> (final members, nodes)
  for (const auto& n : L.nodes) {
    auto& l = lineage[n.root];
    l.second++;
    if (n.last) l.first++;
  }
  std::vector<std::pair<int, std::pair<int, int>>> ranked(lineage.begin(), lineage.end());
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    if (a.second.first != b.second.first) return a.second.first > b.second.first;
    if (a.second.second != b.second.second) return a.second.second > b.second.second;
    return a.first < b.first;
  });
  d["lineages"] = json::array();
  for (const auto& [root, c] : ranked) d["lineages"].push_back({{"root", root}, {"final", c.first}, {"nodes", c.second}});

  // Members (the final table).
  std::map<int, int> root_now;
  for (std::size_t pi = 0; pi < run.population.size(); ++pi)
    if (L.last[pi] >= 0) root_now[run.population[pi].id] = L.nodes[L.last[pi]].root;
  d["members"] = json::array();
  std::int64_t steps_done = 0;
  int done = 0;
  for (const auto& m : run.population) {
    steps_done += m.step;
    done += m.done;
    d["members"].push_back({{"id", m.id},
                            {"step", m.step},
                            {"score", score_json(m.score)},
                            {"done", m.done},
                            {"failed", m.failed},
                            {"error", m.last_error},
                            {"h", h_values(m.h, params)},
                            {"root", root_now.count(m.id) ? json(root_now[m.id]) : json(nullptr)},
                            {"best", m.id == best}});
  }
  d["steps_done"] = steps_done;
  d["members_done"] = done;

  // Score curves: one per member, split into pieces where the member copied another's
  // model (the piece after a copy starts at the copied score: the jump).
  const auto pts = points_by_member(run.scores);
  std::size_t total_points = run.scores.size();
  const std::int64_t thin =
      opt.max_points > 0 && total_points > opt.max_points
          ? static_cast<std::int64_t>((total_points + opt.max_points - 1) / opt.max_points)
          : 1;
  d["thinned"] = thin;
  std::map<int, std::vector<int>> nodes_of;
  for (std::size_t i = 0; i < L.nodes.size(); ++i) nodes_of[L.nodes[i].member].push_back(static_cast<int>(i));
  d["curves"] = json::array();
  for (const auto& m : run.population) {
    json c = {{"member", m.id}, {"pieces", json::array()}};
    auto pit = pts.find(m.id);
    if (pit == pts.end()) {
      d["curves"].push_back(c);
      continue;
    }
    const Points& mp = pit->second;
    const auto& ns = nodes_of[m.id];
    // Piece breaks: after a node whose parent link is a copy (the model changed there), and
    // before a node trained from a recovered model.
    struct Piece {
      std::int64_t from, to;  // points in (from, to]
      int root;
      std::optional<double> jump_from, jump_to;
    };
    std::vector<Piece> pieces;
    std::int64_t from = -1;
    int cur_root = ns.empty() ? m.id : L.nodes[ns.front()].trained_root;
    std::optional<double> jf, jt;
    for (std::size_t k = 0; k < ns.size(); ++k) {
      const Node& n = L.nodes[ns[k]];
      const bool new_source = n.link == Link::recover;
      if (new_source && k > 0) {  // the model trained from here on came from elsewhere
        pieces.push_back({from, L.nodes[ns[k - 1]].step, cur_root, jf, jt});
        from = L.nodes[ns[k - 1]].step;
        jf.reset();
        jt.reset();
        cur_root = n.trained_root;
      }
      cur_root = n.trained_root;
      if (n.link == Link::copy) {
        pieces.push_back({from, n.step, cur_root, jf, jt});
        from = n.step;
        jf = n.pre_copy;
        jt = n.score;
        cur_root = n.root;
      }
    }
    pieces.push_back({from, std::numeric_limits<std::int64_t>::max(), cur_root, jf, jt});
    std::int64_t counter = 0;
    for (const auto& p : pieces) {
      json s = json::array(), v = json::array();
      if (p.jump_to && drawable(*p.jump_to)) {  // starts at the copied score
        s.push_back(p.from);
        v.push_back(shown(*p.jump_to));
      }
      for (std::size_t k = 0; k < mp.size(); ++k) {
        const auto& [step, score] = mp[k];
        if (step <= p.from || step > p.to) continue;
        const bool piece_end = k + 1 == mp.size() || mp[k + 1].first > p.to;
        if (thin > 1 && !piece_end && (counter++ % thin) != 0) continue;
        s.push_back(step);
        v.push_back(drawable(score) ? json(shown(score)) : json(nullptr));
      }
      if (s.empty()) continue;
      c["pieces"].push_back({{"root", p.root},
                             {"s", s},
                             {"v", v},
                             {"jump", score_json(p.jump_from)}});
    }
    d["curves"].push_back(c);
  }

  // Hyperparameters over time: per member, segments [from, to, root, cause, donor, values].
  d["history"] = json::array();
  {
    std::map<int, json> per;
    for (const auto& s : history) {
      int root = s.member;
      // the model these h trained: the trained root of the member's first node after `from`
      for (int i : nodes_of[s.member])
        if (L.nodes[i].step > s.from) {
          root = L.nodes[i].trained_root;
          break;
        }
      auto& j = per[s.member];
      if (j.is_null()) j = {{"member", s.member}, {"segs", json::array()}};
      j["segs"].push_back({s.from, s.to, root, kind_code(s.cause), s.donor, h_values(s.h, params)});
    }
    for (auto& [m, j] : per) d["history"].push_back(std::move(j));
  }

  // The lineage tree, as parallel arrays.
  {
    json m = json::array(), s = json::array(), v = json::array(), p = json::array(), k = json::array(),
         r = json::array(), a = json::array(), e = json::array(), pre = json::array();
    for (const auto& n : L.nodes) {
      m.push_back(n.member);
      s.push_back(n.step);
      v.push_back(score_json(n.score));
      p.push_back(n.parent);
      k.push_back(static_cast<int>(n.link));
      r.push_back(n.root);
      a.push_back(n.ancestor ? 1 : 0);
      e.push_back(n.event);
      pre.push_back(score_json(n.pre_copy));
    }
    json hc = json::array();
    for (const auto& c : L.h_copies) hc.push_back({c.from, c.to, c.event});
    d["tree"] = {{"m", m}, {"s", s}, {"v", v}, {"p", p}, {"k", k}, {"r", r}, {"a", a}, {"e", e}, {"pre", pre},
                 {"hcopy", hc}};
  }

  // Events, compact: [member, step, kind, donor, donor_step, copied, old_score, donor_score, new_score].
  d["events"] = json::array();
  int copies = 0;
  for (const auto& ev : run.events) {
    if (ev.donor >= 0) copies++;
    auto ds = donor_step_of(ev);
    d["events"].push_back({ev.member, ev.step, kind_code(ev.kind), ev.donor, ds ? json(*ds) : json(nullptr), to_string(ev.copied),
                           score_json(ev.old_score), ev.donor >= 0 ? score_json(ev.donor_score) : json(nullptr),
                           score_json(ev.new_score)});
  }
  d["copies"] = copies;
  d["score_points"] = run.scores.size();

  // The best member's inherited schedule.
  if (best >= 0) {
    Ancestry an = ancestry(run, L, history, best);
    json sched = json::array();
    for (const auto& st : an.schedule)
      sched.push_back({{"member", st.member}, {"from", st.from}, {"to", st.to}, {"h", h_values(st.h, params)}});
    const MemberState* bm = nullptr;
    for (const auto& m : run.population)
      if (m.id == best) bm = &m;
    d["best"] = {{"member", best}, {"score", score_json(bm->score)}, {"step", bm->step}, {"root", an.root},
                 {"nodes", an.nodes}, {"schedule", sched}};
  } else {
    d["best"] = nullptr;
  }

  // What changes as a run goes on: the page redraws only when this does.
  std::ostringstream rev;
  rev << run.events.size() << "." << run.scores.size() << "." << steps_done << "." << done << "." << run.info.finished;
  d["revision"] = rev.str();
  return d;
}

namespace {

void members_table(std::ostream& o, const nlohmann::json& d) {
  o << "<table class=\"members\" id=\"members-table\"><thead><tr><th>member</th><th>step</th><th>score</th>"
       "<th>status</th><th>lineage</th>";
  for (const auto& p : d["params"]) o << "<th>" << html_escape(p["name"].get<std::string>()) << "</th>";
  o << "</tr></thead><tbody>";
  for (const auto& m : d["members"]) {
    o << "<tr data-member=\"" << m["id"].get<int>() << "\"" << (m["best"].get<bool>() ? " class=\"best\"" : "") << ">"
      << "<td>" << m["id"].get<int>() << (m["best"].get<bool>() ? " \xe2\x98\x85" : "") << "</td><td>"
      << m["step"].get<std::int64_t>() << "</td><td>"
      << (m["score"].is_null() ? std::string("-") : fmt(m["score"].get<double>())) << "</td><td>"
      << (m["failed"].get<bool>() ? "failed: " + html_escape(m["error"].get<std::string>())
                                  : m["done"].get<bool>() ? std::string("done") : std::string("training"))
      << "</td><td>"
      << (m["root"].is_null() ? std::string("-") : "member " + std::to_string(m["root"].get<int>())) << "</td>";
    for (const auto& v : m["h"]) {
      std::string text = v.is_null() ? "-" : v.is_string() ? v.get<std::string>() : v.is_number_integer()
                                                                                          ? std::to_string(v.get<std::int64_t>())
                                                                                          : fmt(v.get<double>());
      o << "<td>" << html_escape(text) << "</td>";
    }
    o << "</tr>";
  }
  o << "</tbody></table>";
}

}  // namespace

std::string render_html(const RunData& run, const PageOptions& opt) {
  const nlohmann::json d = page_data(run, opt);
  const std::string name = html_escape(run.info.name);
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    // Nothing may be fetched: no scripts, styles, fonts or images from anywhere (the
    // dashboard may only ask its own server for fresh data).
    << "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src 'unsafe-inline'; "
       "style-src 'unsafe-inline'; img-src data:"
    << (opt.live ? "; connect-src 'self'" : "") << "\">\n"
    << "<title>PBT " << (opt.live ? "dashboard" : "report") << ": " << name << "</title>\n"
    << "<style>\n" << assets::style << "</style>\n</head>\n<body>\n"
    << "<header><h1>PBT " << (opt.live ? "dashboard" : "report") << ": <span id=\"experiment-name\">" << name
    << "</span></h1>\n<p class=\"summary\" id=\"summary\">" << d["population"].get<std::size_t>() << " members, "
    << d["members_done"].get<int>() << " done, " << d["events"].size() << " events, generated "
    << html_escape(d["generated"].get<std::string>()) << "</p>"
    << (opt.live ? "<p class=\"live\" id=\"live\" data-refreshes=\"0\">live: refreshing every " +
                       std::to_string(opt.refresh_ms / 1000.0).substr(0, 3) + " s</p>"
                 : "")
    << "\n<nav><a href=\"#scores\">scores</a> <a href=\"#tree\">lineage tree</a> <a href=\"#hyper\">"
       "hyperparameters</a> <a href=\"#schedule\">inherited schedule</a> <a href=\"#members\">final population</a> "
       "<a href=\"#config\">config</a></nav></header>\n"
    << "<noscript><p class=\"note\">The charts need JavaScript; the tables below do not.</p></noscript>\n"
    << "<div id=\"errors\" class=\"errors\" hidden></div>\n"
    << "<main>\n"
    << "<section id=\"scores\"><h2>Score by step</h2><div class=\"controls\" id=\"scores-controls\"></div>"
       "<div class=\"legend\" id=\"scores-legend\"></div><div class=\"chart\" id=\"chart-scores\"></div>"
       "<p class=\"note\" id=\"scores-note\"></p></section>\n"
    << "<section id=\"tree\"><h2>Lineage tree</h2><div class=\"legend\" id=\"tree-legend\"></div>"
       "<div class=\"chart\" id=\"chart-tree\"></div><p class=\"note\" id=\"tree-note\"></p></section>\n"
    << "<section id=\"hyper\"><h2>Hyperparameters by step</h2><p class=\"note\">Each member's value over time, "
       "coloured by lineage; a ring marks a copy (exploit), after which the value jumps.</p>"
       "<div class=\"grid\" id=\"chart-hyper\"></div></section>\n"
    << "<section id=\"schedule\"><h2>Schedule inherited by the best member</h2><p class=\"note\" "
       "id=\"schedule-note\"></p><div class=\"grid\" id=\"chart-schedule\"></div><div id=\"schedule-table\"></div>"
       "</section>\n"
    << "<section id=\"members\"><h2>Final population</h2><div id=\"members-box\">";
  members_table(o, d);
  o << "</div></section>\n"
    << "<section id=\"config\"><h2>Config</h2><p class=\"note\">" << html_escape(run.info.origin) << "</p><pre>"
    << html_escape(run.info.config) << "</pre></section>\n"
    << "</main>\n"
    << "<script type=\"application/json\" id=\"pbt-data\">" << script_json(d) << "</script>\n"
    << "<script>\n" << assets::script << "</script>\n</body></html>\n";
  return o.str();
}

}  // namespace pbt::report
