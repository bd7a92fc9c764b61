// `pbt replay`: retrains one member from scratch on the schedule it inherited.
#include <iomanip>
#include <iostream>
#include <optional>

#include "pbt/pbt.hpp"
#include "cli/commands.hpp"
#include "cli/print.hpp"

namespace pbt::cli {

namespace {

// `schedule_only`: the schedule, without retraining (for readers such as python/pbt_run.py).
int replay(const Target& target, int member, bool json, bool schedule_only) {
  Opened o = open_target(target);
  auto info = o.store->experiment(o.experiment);
  const ExperimentConfig cfg = stored_config(*info);
  auto pop = o.store->population(o.experiment);
  const MemberState* m = nullptr;
  if (member < 0) {
    m = best_member(pop);
    if (!m) throw Error("no member of '" + o.experiment + "' has a score yet (a diverged one does not count)");
  } else {
    for (const auto& x : pop)
      if (x.id == member) m = &x;
    if (!m) throw Error("'" + o.experiment + "' has no member " + std::to_string(member));
  }
  if (!m->score) throw Error("member " + std::to_string(m->id) + " has no score yet");
  auto schedule = Lineage(o.store->events(o.experiment), initial_hyperparams(cfg)).schedule_of(m->id, m->step);
  std::optional<Score> replayed;
  if (!schedule_only) replayed = replay(cfg, schedule).score;

  if (json) {
    nlohmann::json segs = nlohmann::json::array();
    for (const auto& s : schedule.segments)
      segs.push_back({{"member", s.member}, {"from_step", s.from_step}, {"to_step", s.to_step}, {"h", to_json(s.h)}});
    nlohmann::json j = {{"experiment", o.experiment},
                        {"member", m->id},
                        {"original_score", *m->score},
                        {"original_metrics", m->metrics.is_object() ? m->metrics : nlohmann::json::object()},
                        {"replay_score", replayed ? nlohmann::json(replayed->value) : nlohmann::json(nullptr)},
                        {"replay_metrics", replayed ? replayed->metrics : nlohmann::json(nullptr)},
                        {"root", schedule.root},
                        {"total_steps", schedule.total_steps()},
                        {"schedule", segs}};
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << "member " << m->id << " of '" << o.experiment << "' inherited this schedule (" << schedule.total_steps()
            << " steps, from member " << schedule.root << "'s fresh model):\n";
  std::cout << std::left << std::setw(8) << "member" << std::setw(16) << "steps"
            << "hyperparameters\n";
  for (const auto& s : schedule.segments)
    std::cout << std::left << std::setw(8) << s.member << std::setw(16)
              << (std::to_string(s.from_step) + ".." + std::to_string(s.to_step)) << to_string(s.h) << "\n";
  if (!replayed) return 0;
  std::cout << "\nreplayed from scratch, no population: score " << fmt_score(replayed->value) << "\n"
            << "original (with PBT):                   score " << fmt_score(m->score) << "\n";
  return 0;
}

}  // namespace

Command add_replay(CLI::App& app) {
  struct Args {
    Target target;
    int member = -1;
    bool json = false;
    bool schedule_only = false;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("replay", "retrain one member from scratch on the schedule it inherited");
  add_target(cmd, a->target);
  cmd->add_option("--member", a->member, "member to replay (default: the best)")->check(CLI::Range(0, 100000));
  cmd->add_flag("--json", a->json, "machine-readable output");
  cmd->add_flag("--schedule-only", a->schedule_only, "print the inherited schedule without retraining");
  return {cmd, [a] { return replay(a->target, a->member, a->json, a->schedule_only); }};
}

}  // namespace pbt::cli
