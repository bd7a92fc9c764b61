// `pbt best`: the best member: score, h, checkpoint (and its bytes, exported on request).
#include <iostream>

#include "pbt/pbt.hpp"
#include "cli/commands.hpp"
#include "cli/print.hpp"
#include "core/atomic_file.hpp"

namespace pbt::cli {

namespace {

int best(const Target& target, bool json, const std::string& export_path) {
  Opened o = open_target(target);
  auto pop = o.store->population(o.experiment);
  const MemberState* b = best_member(pop);
  if (!b) throw Error("no member of '" + o.experiment + "' has a score yet (a diverged one does not count)");
  if (!export_path.empty()) {
    // Streamed (a checkpoint may not fit in memory) and verified before the file appears;
    // a copy, never a link to the store's own file.
    write_file_atomically(export_path, [&](const WritePiece& write) {
      std::unique_ptr<CheckpointSource> source = o.store->open_checkpoint(b->checkpoint);
      std::string chunk(1 << 20, '\0');
      while (const std::size_t n = source->read(chunk.data(), chunk.size())) write(chunk.data(), n);
      source->finish();
    });
  }
  const ExperimentConfig cfg = stored_config(*o.store->experiment(o.experiment));
  const std::vector<Trained> trained = trained_of(lineage_of(*o.store, cfg), pop);
  const Trained bt = trained[static_cast<std::size_t>(b - pop.data())];
  const std::optional<double> median_eff = median_efficiency(trained);
  if (json) {
    nlohmann::json j = {{"experiment", o.experiment},
                        {"member", b->id},
                        {"score", *b->score},
                        {"step", b->step},
                        {"median_efficiency", median_eff ? nlohmann::json(*median_eff) : nlohmann::json(nullptr)},
                        {"h", to_json(b->h)},
                        {"checkpoint", b->checkpoint},
                        {"metrics", b->metrics},
                        {"exported_to", export_path.empty() ? nlohmann::json(nullptr) : nlohmann::json(export_path)}};
    j.update(trained_json(bt));
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << "best member of '" << o.experiment << "': " << b->id << "\n"
            << "score: " << fmt_score(b->score) << " at step " << b->step << "\n"
            << "trained: " << (bt.steps ? std::to_string(*bt.steps) : "-")
            << " steps, following its weight copies back "
            << "(efficiency " << fmt_efficiency(bt.efficiency) << "; the population's median "
            << fmt_efficiency(median_eff) << ")\n"
            << "h: " << to_string(b->h) << "\n"
            << "checkpoint: " << b->checkpoint << "\n";
  if (!b->metrics.empty()) std::cout << "metrics: " << b->metrics.dump() << "\n";
  if (!export_path.empty()) std::cout << "exported to " << export_path << "\n";
  return 0;
}

}  // namespace

Command add_best(CLI::App& app) {
  struct Args {
    Target target;
    bool json = false;
    std::string export_path;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("best", "the best member: score, h, checkpoint");
  add_target(cmd, a->target);
  cmd->add_flag("--json", a->json, "machine-readable output");
  cmd->add_option("--export", a->export_path, "write the best member's checkpoint bytes to this file");
  return {cmd, [a] { return best(a->target, a->json, a->export_path); }};
}

}  // namespace pbt::cli
