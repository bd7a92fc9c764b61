#include "report/tree.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include "report/run.hpp"

namespace pbt::report {

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

Tree build_tree(const RunData& run) {
  auto cfg = config_of(run);
  return build_tree(run, lineage_of(run), cfg ? interval_boundaries(*cfg) : std::vector<std::int64_t>{});
}

namespace {

// The nodes: one per member-interval that has been published (and scored).
class TreeBuilder {
 public:
  TreeBuilder(const RunData& run, const Lineage& lineage) : run_(run), lineage_(lineage) {
    for (std::size_t i = 0; i < run.events.size(); ++i) events_of_[run.events[i].member].push_back(static_cast<int>(i));
    for (const Copy& c : lineage.copies()) copies_of_[c.member].push_back(&c);
  }

  void add_nodes(const std::vector<std::int64_t>& boundaries) {
    const auto pts = points_by_member(run_.scores);
    static const Points no_points;
    T.last.assign(run_.population.size(), -1);
    for (std::size_t pi = 0; pi < run_.population.size(); ++pi) {
      const MemberState& m = run_.population[pi];
      auto pit = pts.find(m.id);
      const Points& mp = pit == pts.end() ? no_points : pit->second;
      for (auto s : node_steps(m, mp, boundaries)) {
        Node n;
        n.member = m.id;
        n.step = s;
        n.event = decision_at(m.id, s);
        const Event* ev = n.event >= 0 ? &run_.events[n.event] : nullptr;
        const double* own = point_at(mp, s);
        if (ev && ev->new_score) n.score = ev->new_score;
        else if (own) n.score = *own;
        else if (ev) n.score = ev->old_score;
        else continue;  // not scored (a store that lost its score points): nothing to draw
        if (ev && ev->donor >= 0) n.pre_copy = own ? *own : ev->old_score;
        index_[{m.id, s}] = static_cast<int>(T.nodes.size());
        nodes_of_[m.id].push_back(static_cast<int>(T.nodes.size()));
        T.nodes.push_back(n);
      }
      if (!nodes_of_[m.id].empty()) {
        T.last[pi] = nodes_of_[m.id].back();
        T.nodes[T.last[pi]].last = true;
      }
    }
  }

  // Parents: the member's previous node, the donor's node after a recover in the interval,
  // or the donor's node copied at the node's own step.
  void link_parents() {
    source_.assign(T.nodes.size(), -1);
    for (auto& [member, list] : nodes_of_) {
      for (std::size_t k = 0; k < list.size(); ++k) {
        const int i = list[k];
        Node& n = T.nodes[i];
        const int prev = k > 0 ? list[k - 1] : -1;
        const std::int64_t prev_step = prev >= 0 ? T.nodes[prev].step : 0;
        int src = prev;
        Link src_link = prev >= 0 ? Link::train : Link::none;
        for (const Copy* c : copies_of(member)) {
          if (c->kind == EventKind::recover && c->step >= prev_step && c->step < n.step) {
            if (int d = donor_node(*c); d >= 0) {  // this interval trained from the donor's model
              src = d;
              src_link = Link::recover;
            }
          }
        }
        source_[i] = src;
        n.parent = src;
        n.link = src_link;
        for (const Copy* c : copies_of(member)) {
          if (c->event != n.event) continue;
          if (int d = donor_node(*c); d >= 0) {
            if (c->weights) {
              n.parent = d;
              n.link = Link::copy;
            } else {
              T.h_copies.push_back({d, i, n.event});
            }
          }
        }
      }
    }
  }

  // Roots, with a guard against a parent chain that loops (a store with odd data).
  void find_roots() {
    std::vector<int> state(T.nodes.size(), 0);  // 0 new, 1 on the current walk, 2 done
    for (std::size_t start = 0; start < T.nodes.size(); ++start) {
      std::vector<int> path;
      int i = static_cast<int>(start);
      while (i >= 0 && state[i] == 0) {
        state[i] = 1;
        path.push_back(i);
        i = T.nodes[i].parent;
      }
      if (i >= 0 && state[i] == 1) {  // a loop: cut it here
        T.nodes[path.back()].parent = -1;
        T.nodes[path.back()].link = Link::none;
        i = -1;
      }
      int root = i >= 0 ? T.nodes[i].root : -1;
      for (auto it = path.rbegin(); it != path.rend(); ++it) {
        Node& n = T.nodes[*it];
        if (n.parent < 0) root = n.member;
        n.root = root;
        state[*it] = 2;
      }
    }
    for (std::size_t i = 0; i < T.nodes.size(); ++i) {
      Node& n = T.nodes[i];
      const int s = source_[i];
      n.trained_root = n.link != Link::copy ? n.root : s >= 0 && s != static_cast<int>(i) ? T.nodes[s].root : n.member;
    }
  }

  void mark_ancestors() {
    for (int last : T.last)
      for (int i = last, guard = 0; i >= 0 && !T.nodes[i].ancestor && guard < 100'000'000;
           i = T.nodes[i].parent, ++guard)
        T.nodes[i].ancestor = true;
  }

  Tree T;

 private:
  std::vector<std::int64_t> node_steps(const MemberState& m, const Points& mp,
                                       const std::vector<std::int64_t>& boundaries) const {
    std::vector<std::int64_t> steps;
    if (!boundaries.empty()) {
      for (auto b : boundaries)
        if (b <= m.step) steps.push_back(b);
      return steps;
    }
    for (const auto& p : mp)
      if (p.first <= m.step) steps.push_back(p.first);
    if (auto it = events_of_.find(m.id); it != events_of_.end())
      for (int i : it->second)
        if (run_.events[i].kind != EventKind::recover && run_.events[i].step > 0) steps.push_back(run_.events[i].step);
    std::sort(steps.begin(), steps.end());
    steps.erase(std::unique(steps.begin(), steps.end()), steps.end());
    return steps;
  }

  // The exploit/explore at (member, step): the last published, -1 when none.
  int decision_at(int member, std::int64_t step) const {
    auto it = events_of_.find(member);
    if (it == events_of_.end()) return -1;
    int found = -1;
    for (int i : it->second)
      if (run_.events[i].step == step && run_.events[i].kind != EventKind::recover) found = i;
    return found;
  }

  const std::vector<const Copy*>& copies_of(int member) const {
    static const std::vector<const Copy*> none;
    auto it = copies_of_.find(member);
    return it == copies_of_.end() ? none : it->second;
  }

  // The donor's node that a copy took: the donor's step when recorded, else the donor node
  // whose published score is the one copied (nearest in step), else its latest node at or
  // before the copy.
  int donor_node(const Copy& c) const {
    auto nit = nodes_of_.find(c.donor);
    if (nit == nodes_of_.end() || nit->second.empty()) return -1;
    if (auto it = index_.find({c.donor, c.donor_step}); it != index_.end()) return it->second;
    const double donor_score = lineage_.events()[c.event].donor_score;
    int best = -1;
    std::int64_t best_dist = 0;
    for (int i : nit->second) {
      const Node& d = T.nodes[i];
      if (!d.score) continue;
      const double tol = 1e-12 * std::max(1.0, std::fabs(donor_score));
      if (std::fabs(*d.score - donor_score) > tol) continue;
      // prefer steps at or before the copy, then the nearest
      const std::int64_t dist = d.step <= c.step ? 2 * (c.step - d.step) : 2 * (d.step - c.step) + 1;
      if (best < 0 || dist < best_dist) {
        best = i;
        best_dist = dist;
      }
    }
    if (best >= 0) return best;
    for (int i : nit->second)
      if (T.nodes[i].step <= c.step) best = i;
    return best >= 0 ? best : nit->second.front();
  }

  const RunData& run_;
  const Lineage& lineage_;
  std::map<int, std::vector<int>> events_of_;          // by member, in publish order
  std::map<int, std::vector<const Copy*>> copies_of_;  // by member, in publish order
  std::map<std::pair<int, std::int64_t>, int> index_;  // (member, step) -> node
  std::map<int, std::vector<int>> nodes_of_;           // by member, by step
  std::vector<int> source_;                            // the model trained during the node's interval
};

}  // namespace

Tree build_tree(const RunData& run, const Lineage& lineage, const std::vector<std::int64_t>& boundaries) {
  TreeBuilder b(run, lineage);
  b.add_nodes(boundaries);
  b.link_parents();
  b.find_roots();
  b.mark_ancestors();
  return std::move(b.T);
}

std::vector<int> ancestry_nodes(const RunData& run, const Tree& tree, int member) {
  int start = -1;
  for (std::size_t pi = 0; pi < run.population.size(); ++pi)
    if (run.population[pi].id == member && pi < tree.last.size()) start = tree.last[pi];
  std::vector<int> out;
  for (int i = start, guard = 0; i >= 0 && guard <= static_cast<int>(tree.nodes.size());
       i = tree.nodes[i].parent, ++guard)
    out.push_back(i);
  std::reverse(out.begin(), out.end());
  return out;
}

}  // namespace pbt::report
