// `pbt status`: the population now: step, score, h, who holds each member.
#include <iostream>

#include "pbt/pbt.hpp"
#include "cli/commands.hpp"
#include "cli/print.hpp"

namespace pbt::cli {

namespace {

int status(const Target& target, bool json) {
  Opened o = open_target(target);
  auto info = o.store->experiment(o.experiment);
  auto pop = o.store->population(o.experiment);
  const double now = o.store->now();
  ExperimentConfig cfg = stored_config(*info);
  const std::vector<Trained> trained = trained_of(lineage_of(*o.store, cfg), pop);
  const std::optional<double> median_eff = median_efficiency(trained);
  if (json) {
    nlohmann::json j;
    j["experiment"] = o.experiment;
    j["finished"] = info->finished;
    j["budget_steps"] = cfg.budget_steps;
    j["median_efficiency"] = median_eff ? nlohmann::json(*median_eff) : nlohmann::json(nullptr);
    j["members"] = nlohmann::json::array();
    for (std::size_t i = 0; i < pop.size(); ++i) {
      const MemberState& m = pop[i];
      j["members"].push_back(
          {{"id", m.id},
           {"step", m.step},
           {"score", score_json(m.score)},
           {"h", to_json(m.h)},
           {"done", m.done},
           {"failed", m.failed},
           {"failures", m.failures},
           {"last_error", m.last_error},
           {"held_by", (!m.owner.empty() && m.lease_expires > now) ? nlohmann::json(m.owner) : nlohmann::json(nullptr)},
           {"last_ready_step", m.last_ready_step},
           {"checkpoint", m.checkpoint}});
      j["members"].back().update(trained_json(trained[i]));
    }
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  int done = 0, failed = 0;
  for (const auto& m : pop) {
    done += m.done;
    failed += m.failed;
  }
  std::cout << "experiment '" << o.experiment << "': " << done << "/" << pop.size() << " members done"
            << (failed ? ", " + std::to_string(failed) + " failed" : "") << ", budget " << cfg.budget_steps << " steps"
            << (info->finished ? ", finished (target score reached)" : "") << "\n\n";
  print_population(std::cout, pop, trained, now, true);
  std::cout << "\ntrained: steps each member's model has really been trained, following its weight copies back; "
               "eff: trained / step (median "
            << fmt_efficiency(median_eff) << ")\n";
  return 0;
}

}  // namespace

Command add_status(CLI::App& app) {
  struct Args {
    Target target;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("status", "the population now: step, score, h, who holds each member");
  add_target(cmd, a->target);
  cmd->add_flag("--json", a->json, "machine-readable output");
  return {cmd, [a] { return status(a->target, a->json); }};
}

}  // namespace pbt::cli
