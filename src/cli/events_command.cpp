// `pbt events`: the lineage: every exploit and explore, as text or JSON lines.
#include <iomanip>
#include <iostream>
#include <sstream>

#include "pbt/pbt.hpp"
#include "cli/commands.hpp"
#include "cli/print.hpp"

namespace pbt::cli {

namespace {

// "a > b", with as many digits as it takes to tell two different scores apart (six digits
// printed 0.0413216 > 0.0413216); "a vs b" when the donor's score is not the higher (the
// t-test decides on its windows' means).
std::string compared_scores(double donor, double own) {
  auto text = [](double x, int digits) {
    std::ostringstream o;
    o << std::setprecision(digits) << x;
    return o.str();
  };
  int digits = 6;
  while (digits < 17 && donor != own && text(donor, digits) == text(own, digits)) ++digits;
  return text(donor, digits) + (donor > own ? " > " : " vs ") + text(own, digits);
}

}  // namespace

namespace {

int events(const Target& target, bool json) {
  Opened o = open_target(target);
  auto evs = o.store->events(o.experiment);
  if (json) {
    for (const auto& e : evs) {
      nlohmann::json j = {{"member", e.member},
                          {"step", e.step},
                          {"kind", e.kind},
                          {"donor", e.donor < 0 ? nlohmann::json(nullptr) : nlohmann::json(e.donor)},
                          {"donor_step", e.donor < 0 ? nlohmann::json(nullptr) : nlohmann::json(e.donor_step)},
                          {"copied", e.copied},
                          {"old_h", to_json(e.old_h)},
                          {"new_h", to_json(e.new_h)},
                          {"old_score", e.old_score},
                          {"donor_score", e.donor < 0 ? nlohmann::json(nullptr) : nlohmann::json(e.donor_score)},
                          {"new_score", score_json(e.new_score)},
                          {"donor_checkpoint", e.donor_checkpoint},
                          {"worker", e.worker},
                          {"time", e.time}};
      std::cout << j.dump() << "\n";
    }
    return 0;
  }
  std::cout << evs.size() << " events in '" << o.experiment << "'\n";
  for (const auto& e : evs) {
    std::cout << "step " << std::setw(6) << std::left << e.step << " member " << e.member << " ";
    if (e.kind == EventKind::exploit)
      std::cout << "copied member " << e.donor << " at step " << e.donor_step << " (" << to_string(e.copied)
                << ", score " << compared_scores(e.donor_score, e.old_score) << ")";
    else std::cout << "explored";
    std::cout << ": " << to_string(e.old_h) << "  ->  " << to_string(e.new_h);
    if (e.new_score) std::cout << ", score now " << fmt_score(e.new_score);
    std::cout << "\n";
  }
  return 0;
}

}  // namespace

Command add_events(CLI::App& app) {
  struct Args {
    Target target;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("events", "the lineage: every exploit and explore");
  add_target(cmd, a->target);
  cmd->add_flag("--json", a->json, "machine-readable output (JSON lines)");
  return {cmd, [a] { return events(a->target, a->json); }};
}

}  // namespace pbt::cli
