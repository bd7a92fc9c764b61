#pragma once
// The report: what a run looks like (score curves, hyperparameters over time, the lineage
// tree, the schedule the best member inherited), built from a Store as one self-contained
// HTML page. The same page, with live refreshing, is what `pbt dashboard` serves.
//
// Everything here reads the store's public interface only (population, events, scores,
// experiment) and knows nothing of the command line.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "pbt/config.hpp"
#include "pbt/store.hpp"

namespace pbt::report {

// What the store holds about one experiment, read once.
struct RunData {
  ExperimentInfo info;
  std::vector<MemberState> population;
  std::vector<Event> events;        // in publish order
  std::vector<ScorePoint> scores;   // by member, then step
};

RunData read_run(Store& store, const std::string& experiment);

// ---------------------------------------------------------------------------------------
// Lineage: one node per member-interval (the member's published state at an interval
// boundary), each with a parent: the node whose model it was trained from (its own
// previous node) or, when it copied weights at that boundary, the donor's node it copied.

enum class Link { none, train, copy, recover };

struct Node {
  int member = 0;
  std::int64_t step = 0;
  std::optional<double> score;    // published score (after explore when an event happened here)
  std::optional<double> pre_copy; // when the member copied here: its own score before the copy
  int parent = -1;                // index into Lineage::nodes; -1 for a fresh model
  Link link = Link::none;         // how the parent's model became this one
  int event = -1;                 // index into RunData::events of the exploit/explore here, or -1
  int root = -1;                  // the member whose fresh model this one descends from
  int trained_root = -1;          // the root of the model trained during this interval
  bool ancestor = false;          // an ancestor of (or in) the final population
  bool last = false;              // the member's latest node
};

// An extra edge that is no parent link: a copy of hyperparameters only (the weights stay).
struct Edge {
  int from = -1, to = -1;
  int event = -1;
};

struct Lineage {
  std::vector<Node> nodes;         // by member, then step
  std::vector<Edge> h_copies;
  std::vector<int> last;           // per population entry: index of its latest node, or -1
};

// The steps at which a member's intervals end, up to the budget (from the config's ready
// settings: the worker's own rule). Empty when the config cannot be read.
std::vector<std::int64_t> interval_boundaries(const ExperimentConfig& cfg);

Lineage build_lineage(const RunData& run);
// Same, with the boundaries given (empty: every scored step is a node).
Lineage build_lineage(const RunData& run, const std::vector<std::int64_t>& boundaries);

// ---------------------------------------------------------------------------------------
// Hyperparameters over time.

// h in force for a member's training steps (from, to], and what set it.
struct HSegment {
  int member = 0;
  std::int64_t from = 0, to = 0;
  Hyperparams h;
  std::string cause = "initial";  // "initial" or the event's kind ("exploit", "explore", "recover")
  int donor = -1;
  int event = -1;
};

// Every member's h over time: the initial h (the first event's old_h, else the h in the
// store, else the config's initial h), changed at each event's step to its new_h; the last
// segment ends at the member's published step.
std::vector<HSegment> hyperparameter_history(const RunData& run);

// One piece of the schedule a model inherited: `member` trained it for steps (from, to]
// of that member's own counter, under h.
struct ScheduleStep {
  int member = 0;
  std::int64_t from = 0, to = 0;
  Hyperparams h;
};

struct Ancestry {
  int member = -1;                    // whose model
  int root = -1;                      // whose fresh model the chain starts from
  std::vector<int> nodes;             // the node chain, oldest first
  std::vector<ScheduleStep> schedule; // in training order, neighbours with the same member and h merged
};

// Walks back from `member`'s latest node through its parents: at a copy, the history
// continues from the donor's node that was copied.
Ancestry ancestry(const RunData& run, const Lineage& lineage, const std::vector<HSegment>& history, int member);

// The best member now (highest published score; -1 when nobody has one).
int best_member(const std::vector<MemberState>& population);

// ---------------------------------------------------------------------------------------
// The page.

struct PageOptions {
  bool live = false;              // dashboard: poll `data_url` and redraw
  std::string data_url = "data.json";
  int refresh_ms = 2000;
  std::size_t max_points = 250000;  // score points drawn at most (curves are thinned beyond)
};

// The model the page draws (what the dashboard serves as JSON).
nlohmann::json page_data(const RunData& run, const PageOptions& opt = {});
// The whole HTML document: styles, script and data inline; no network access needed.
std::string render_html(const RunData& run, const PageOptions& opt = {});

// Escaping: text for HTML element content or a quoted attribute.
std::string html_escape(std::string_view s);
// JSON that is safe inside <script>: '<', '>', '&' and U+2028/9 are written as \uXXXX.
std::string script_json(const nlohmann::json& j);

// ---------------------------------------------------------------------------------------
// Exports (`pbt export`).

enum class Format { csv, jsonl };

// scores: member,step,score (one row per eval)
std::string export_scores(const RunData& run, Format f);
// hyperparameters: member,from_step,to_step,cause,donor,<one column per hyperparameter>
std::string export_hyperparameters(const RunData& run, Format f);
// events: member,step,kind,donor,donor_step,copied,old_score,donor_score,new_score,worker,time,
//         old.<h>...,new.<h>...
std::string export_events(const RunData& run, Format f);

// The donor's step at the copy, when the store recorded it.
std::optional<std::int64_t> donor_step(const Event& e);

}  // namespace pbt::report
