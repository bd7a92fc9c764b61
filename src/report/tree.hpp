#pragma once
// The lineage tree the page draws: one node per member-interval (the member's published
// state at an interval boundary), each with a parent: the node whose model it was trained
// from (its own previous node) or, when it copied weights at that boundary, the donor's
// node it copied. Built on the engine's lineage model (pbt/lineage.hpp), which says who
// copied whom; the tree adds the intervals and their scores.
#include <cstdint>
#include <optional>
#include <vector>

#include "pbt/lineage.hpp"
#include "pbt/report.hpp"

namespace pbt::report {

// Sent to report.js as numbers (0-3): keep the order.
enum class Link { none, train, copy, recover };

struct Node {
  int member = 0;
  std::int64_t step = 0;
  std::optional<double> score;     // published score (after explore when an event happened here)
  std::optional<double> pre_copy;  // when the member copied here: its own score before the copy
  int parent = -1;                 // index into Tree::nodes; -1 for a fresh model
  Link link = Link::none;          // how the parent's model became this one
  int event = -1;                  // index into RunData::events of the exploit/explore here, or -1
  int root = -1;                   // the member whose fresh model this one descends from
  int trained_root = -1;           // the root of the model trained during this interval
  bool ancestor = false;           // an ancestor of (or in) the final population
  bool last = false;               // the member's latest node
};

// An extra edge that is no parent link: a copy of hyperparameters only (the weights stay).
struct Edge {
  int from = -1, to = -1;
  int event = -1;
};

struct Tree {
  std::vector<Node> nodes;  // by member, then step
  std::vector<Edge> h_copies;
  std::vector<int> last;  // per population entry: index of its latest node, or -1
};

// The steps at which a member's intervals end, up to the budget (from the config's ready
// settings: the worker's own rule).
std::vector<std::int64_t> interval_boundaries(const ExperimentConfig& cfg);

// `boundaries` empty: every scored step is a node.
Tree build_tree(const RunData& run, const Lineage& lineage, const std::vector<std::int64_t>& boundaries);
// The same, with the boundaries from the run's config (every scored step when it cannot be read).
Tree build_tree(const RunData& run);

// `member`'s node chain, oldest first: from its latest node back through the parents.
std::vector<int> ancestry_nodes(const RunData& run, const Tree& tree, int member);

}  // namespace pbt::report
