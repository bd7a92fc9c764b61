#pragma once
// The report: what a run looks like (score curves, hyperparameters over time, the lineage
// tree, the schedule the best member inherited), built from a Store as one self-contained
// HTML page. The same page, with live refreshing, is what `pbt dashboard` serves
// (pbt/dashboard.hpp). Also the exports (`pbt export`). Library: pbt_report.
//
// Everything here reads the store's public interface only (population, events, scores,
// experiment) and knows nothing of the command line.
#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pbt/store.hpp"

namespace pbt::report {

// What the store holds about one experiment, read once.
struct RunData {
  ExperimentInfo info;
  std::vector<MemberState> population;
  std::vector<Event> events;       // in publish order
  std::vector<ScorePoint> scores;  // by member, then step
};

// Throws Error when the store has no such experiment.
RunData read_run(Store& store, const std::string& experiment);

struct PageOptions {
  bool live = false;  // dashboard: poll `data_url` and redraw
  std::string data_url = "data.json";
  int refresh_ms = 2000;
  std::size_t max_points = 250000;  // score points drawn at most (curves are thinned beyond)
};

// The model the page draws (what the dashboard serves as JSON).
nlohmann::json page_data(const RunData& run, const PageOptions& opt = {});
// The whole HTML document: styles, script and data inline; no network access needed.
std::string render_html(const RunData& run, const PageOptions& opt = {});

// ---------------------------------------------------------------------------------------
// Exports (`pbt export`).

enum class Format { csv, jsonl };

// scores: member,step,score (one row per eval)
std::string export_scores(const RunData& run, Format f);
// hyperparameters: member,from_step,to_step,cause,donor,<one column per hyperparameter>
std::string export_hyperparameters(const RunData& run, Format f);
// members: member,step,trained_steps,efficiency,score,done,failed,<one column per hyperparameter>
//          (the population now; trained_steps: Lineage::trained_steps, efficiency: per step)
std::string export_members(const RunData& run, Format f);
// events: member,step,kind,donor,donor_step,copied,old_score,donor_score,new_score,worker,time,
//         old.<h>...,new.<h>...
std::string export_events(const RunData& run, Format f);

}  // namespace pbt::report
