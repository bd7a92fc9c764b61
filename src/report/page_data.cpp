// page_data: the model the page draws, one part at a time.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <map>
#include <sstream>

#include "pbt/report.hpp"
#include "report/run.hpp"
#include "report/tree.hpp"

namespace pbt::report {

namespace {

using json = nlohmann::json;

// The page shows numbers, it does not compute with them: 7 significant digits keep every
// difference a chart or a tooltip can show and make the embedded data about half as big.
// (The exports keep every digit.)
double shown(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.7g", v);
  return std::strtod(buf, nullptr);
}

// A diverged score is no point on a chart: null.
json score_json(const std::optional<double>& v) {
  if (!v || is_diverged(*v)) return nullptr;
  return shown(*v);
}

json value_json(const Value& v) {
  if (auto d = std::get_if<double>(&v)) return score_json(*d);
  if (auto i = std::get_if<std::int64_t>(&v)) return *i;
  return std::get<std::string>(v);
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&t));
  return buf;
}

// What the page knows of each hyperparameter: the config's space, else what the data shows.
struct ParamInfo {
  std::string name;
  std::string kind;  // float | int | categorical
  double low = 0, high = 0;
  bool log = false;
  std::vector<std::string> choices;
};

std::vector<ParamInfo> params_of(const RunData& run, const std::optional<ExperimentConfig>& cfg,
                                 const std::vector<ScheduleSegment>& history) {
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

json params_json(const std::vector<ParamInfo>& params) {
  json a = json::array();
  for (const auto& p : params)
    a.push_back(
        {{"name", p.name}, {"kind", p.kind}, {"low", p.low}, {"high", p.high}, {"log", p.log}, {"choices", p.choices}});
  return a;
}

// h as an array in the params' order (null where a member lacks one).
json h_values(const Hyperparams& h, const std::vector<ParamInfo>& params) {
  json a = json::array();
  for (const auto& p : params) {
    auto it = h.find(p.name);
    a.push_back(it == h.end() ? json(nullptr) : value_json(it->second));
  }
  return a;
}

// The page's code for what set h: 0 initial, then one per event kind.
// The code report.js reads (its KIND table): 0 for initial, then EventKind in order.
int kind_code(EventKind k) { return static_cast<int>(k) + 1; }

// Lineages, ranked: most final members first, then most nodes.
json lineages_json(const Tree& tree) {
  std::map<int, std::pair<int, int>> lineage;  // root -> (final members, nodes)
  for (const auto& n : tree.nodes) {
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
  json out = json::array();
  for (const auto& [root, c] : ranked) out.push_back({{"root", root}, {"final", c.first}, {"nodes", c.second}});
  return out;
}

json trained_steps_json(const Trained& t) { return t.steps ? json(*t.steps) : json(nullptr); }
json efficiency_json(const Trained& t) { return t.efficiency ? json(shown(*t.efficiency)) : json(nullptr); }

// The final population (the page's members table and legends). `trained` parallel to it.
json members_json(const RunData& run, const Tree& tree, const std::vector<ParamInfo>& params,
                  const std::vector<Trained>& trained, int best) {
  std::map<int, int> root_now;
  for (std::size_t pi = 0; pi < run.population.size(); ++pi)
    if (tree.last[pi] >= 0) root_now[run.population[pi].id] = tree.nodes[tree.last[pi]].root;
  json out = json::array();
  for (std::size_t pi = 0; pi < run.population.size(); ++pi) {
    const MemberState& m = run.population[pi];
    out.push_back({{"id", m.id},
                   {"step", m.step},
                   {"trained_steps", trained_steps_json(trained[pi])},
                   {"efficiency", efficiency_json(trained[pi])},
                   {"score", score_json(m.score)},
                   {"done", m.done},
                   {"failed", m.failed},
                   {"error", m.last_error},
                   {"h", h_values(m.h, params)},
                   {"root", root_now.count(m.id) ? json(root_now[m.id]) : json(nullptr)},
                   {"best", m.id == best}});
  }
  return out;
}

std::map<int, std::vector<int>> nodes_by_member(const Tree& tree) {
  std::map<int, std::vector<int>> out;
  for (std::size_t i = 0; i < tree.nodes.size(); ++i) out[tree.nodes[i].member].push_back(static_cast<int>(i));
  return out;
}

// One piece of a score curve: points in (from, to], drawn in the colour of `root`; a piece
// after a copy starts at the copied score (jump_to) from the member's own (jump_from).
struct Piece {
  std::int64_t from, to;
  int root;
  std::optional<double> jump_from, jump_to;
};

// Piece breaks: after a node whose parent link is a copy (the model changed there), and
// before a node trained from a recovered model.
std::vector<Piece> pieces_of(const Tree& tree, const std::vector<int>& ns, int member) {
  std::vector<Piece> pieces;
  std::int64_t from = -1;
  int cur_root = ns.empty() ? member : tree.nodes[ns.front()].trained_root;
  std::optional<double> jf, jt;
  for (std::size_t k = 0; k < ns.size(); ++k) {
    const Node& n = tree.nodes[ns[k]];
    if (n.link == Link::recover && k > 0) {  // the model trained from here on came from elsewhere
      pieces.push_back({from, tree.nodes[ns[k - 1]].step, cur_root, jf, jt});
      from = tree.nodes[ns[k - 1]].step;
      jf.reset();
      jt.reset();
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
  return pieces;
}

// Score curves: one per member, split into pieces where the member copied another's model.
// Beyond max_points, every thin-th point is drawn (and each piece's last).
json curves_json(const RunData& run, const Tree& tree, const std::map<int, std::vector<int>>& nodes_of,
                 std::int64_t thin) {
  const auto pts = points_by_member(run.scores);
  static const std::vector<int> no_nodes;
  json out = json::array();
  for (const auto& m : run.population) {
    json c = {{"member", m.id}, {"pieces", json::array()}};
    auto pit = pts.find(m.id);
    if (pit == pts.end()) {
      out.push_back(c);
      continue;
    }
    const Points& mp = pit->second;
    auto nit = nodes_of.find(m.id);
    std::int64_t counter = 0;
    for (const auto& p : pieces_of(tree, nit == nodes_of.end() ? no_nodes : nit->second, m.id)) {
      json s = json::array(), v = json::array();
      if (p.jump_to && !is_diverged(*p.jump_to)) {  // starts at the copied score
        s.push_back(p.from);
        v.push_back(shown(*p.jump_to));
      }
      for (std::size_t k = 0; k < mp.size(); ++k) {
        const auto& [step, score] = mp[k];
        if (step <= p.from || step > p.to) continue;
        const bool piece_end = k + 1 == mp.size() || mp[k + 1].first > p.to;
        if (thin > 1 && !piece_end && (counter++ % thin) != 0) continue;
        s.push_back(step);
        v.push_back(score_json(score));
      }
      if (s.empty()) continue;
      c["pieces"].push_back({{"root", p.root}, {"s", s}, {"v", v}, {"jump", score_json(p.jump_from)}});
    }
    out.push_back(c);
  }
  return out;
}

// Hyperparameters over time: per member, segments [from, to, root, cause, donor, values],
// `root` the lineage of the model these h trained (its first node after `from`).
json history_json(const Lineage& lineage, const std::vector<ScheduleSegment>& history, const Tree& tree,
                  const std::map<int, std::vector<int>>& nodes_of, const std::vector<ParamInfo>& params) {
  std::map<int, json> per;
  for (const auto& s : history) {
    int root = s.member;
    if (auto it = nodes_of.find(s.member); it != nodes_of.end())
      for (int i : it->second)
        if (tree.nodes[i].step > s.from_step) {
          root = tree.nodes[i].trained_root;
          break;
        }
    auto& j = per[s.member];
    if (j.is_null()) j = {{"member", s.member}, {"segs", json::array()}};
    const int cause = s.event >= 0 ? kind_code(lineage.events()[s.event].kind) : 0;
    j["segs"].push_back({s.from_step, s.to_step, root, cause, donor_of(lineage, s), h_values(s.h, params)});
  }
  json out = json::array();
  for (auto& [m, j] : per) out.push_back(std::move(j));
  return out;
}

// The lineage tree, as parallel arrays.
json tree_json(const Tree& tree) {
  json m = json::array(), s = json::array(), v = json::array(), p = json::array(), k = json::array(), r = json::array(),
       a = json::array(), e = json::array(), pre = json::array();
  for (const auto& n : tree.nodes) {
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
  for (const auto& c : tree.h_copies) hc.push_back({c.from, c.to, c.event});
  return {{"m", m}, {"s", s}, {"v", v}, {"p", p}, {"k", k}, {"r", r}, {"a", a}, {"e", e}, {"pre", pre}, {"hcopy", hc}};
}

// Events, compact: [member, step, kind, donor, donor_step, copied, old_score, donor_score, new_score].
json events_json(const RunData& run) {
  json out = json::array();
  for (const auto& ev : run.events) {
    const bool copy = ev.donor >= 0;
    out.push_back({ev.member, ev.step, kind_code(ev.kind), ev.donor, copy ? json(ev.donor_step) : json(nullptr),
                   to_string(ev.copied), score_json(ev.old_score), copy ? score_json(ev.donor_score) : json(nullptr),
                   score_json(ev.new_score)});
  }
  return out;
}

// The best member's inherited schedule, and its chain of nodes in the tree.
json best_json(const RunData& run, const Lineage& lineage, const Tree& tree, const std::vector<ParamInfo>& params,
               const std::vector<Trained>& trained, int best) {
  const MemberState* bm = nullptr;
  Trained bt;
  for (std::size_t pi = 0; pi < run.population.size(); ++pi)
    if (run.population[pi].id == best) {
      bm = &run.population[pi];
      bt = trained[pi];
    }
  if (!bm) return nullptr;
  const std::vector<int> nodes = ancestry_nodes(run, tree, best);
  InheritedSchedule schedule;
  schedule.root = nodes.empty() ? -1 : tree.nodes[nodes.front()].root;
  if (!nodes.empty()) {
    try {
      schedule = lineage.schedule_of(best, bm->step);
    } catch (const Error&) {  // a log that names members the run lacks: no schedule to show
    }
  }
  json sched = json::array();
  for (const auto& st : schedule.segments)
    sched.push_back({{"member", st.member}, {"from", st.from_step}, {"to", st.to_step}, {"h", h_values(st.h, params)}});
  return {{"member", best},
          {"score", score_json(bm->score)},
          {"step", bm->step},
          {"trained_steps", trained_steps_json(bt)},
          {"efficiency", efficiency_json(bt)},
          {"root", schedule.root},
          {"nodes", nodes},
          {"schedule", sched}};
}

}  // namespace

nlohmann::json page_data(const RunData& run, const PageOptions& opt) {
  const auto cfg = config_of(run);
  const Lineage lineage = lineage_of(run);
  const Tree tree = build_tree(run, lineage, cfg ? interval_boundaries(*cfg) : std::vector<std::int64_t>{});
  const auto history = hyperparameter_history(run, lineage);
  const auto params = params_of(run, cfg, history);
  const auto nodes_of = nodes_by_member(tree);
  const MemberState* best_now = best_member(run.population);
  const int best = best_now ? best_now->id : -1;
  const std::vector<Trained> trained = trained_of(lineage, run.population);
  const std::optional<double> median_eff = median_efficiency(trained);

  std::int64_t steps_done = 0;
  int done = 0;
  for (const auto& m : run.population) {
    steps_done += m.step;
    done += m.done;
  }
  int copies = 0;
  for (const auto& ev : run.events) copies += ev.donor >= 0;
  const std::size_t total_points = run.scores.size();
  const std::int64_t thin = opt.max_points > 0 && total_points > opt.max_points
                                ? static_cast<std::int64_t>((total_points + opt.max_points - 1) / opt.max_points)
                                : 1;

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
  d["params"] = params_json(params);
  d["lineages"] = lineages_json(tree);
  d["members"] = members_json(run, tree, params, trained, best);
  d["steps_done"] = steps_done;
  d["members_done"] = done;
  d["median_efficiency"] = median_eff ? json(shown(*median_eff)) : json(nullptr);
  d["thinned"] = thin;
  d["curves"] = curves_json(run, tree, nodes_of, thin);
  d["history"] = history_json(lineage, history, tree, nodes_of, params);
  d["tree"] = tree_json(tree);
  d["events"] = events_json(run);
  d["copies"] = copies;
  d["score_points"] = run.scores.size();
  d["best"] = best >= 0 ? best_json(run, lineage, tree, params, trained, best) : json(nullptr);

  // What changes as a run goes on: the page redraws only when this does.
  std::ostringstream rev;
  rev << run.events.size() << "." << run.scores.size() << "." << steps_done << "." << done << "." << run.info.finished;
  d["revision"] = rev.str();
  return d;
}

}  // namespace pbt::report
