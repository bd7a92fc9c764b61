#include "cli/command.hpp"

#include <signal.h>

#include <filesystem>

#include "pbt/error.hpp"

namespace fs = std::filesystem;

namespace pbt::cli {

namespace {
std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }
}  // namespace

std::atomic<bool>& stop_on_signals() {
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  return g_stop;
}

void add_target(CLI::App* cmd, Target& t) {
  cmd->add_option("--run", t.run_dir, "run directory (holds store.db)");
  cmd->add_option("--store", t.store, "store URI instead of a run directory (sqlite:PATH)");
  cmd->add_option("--experiment", t.experiment, "experiment name (needed when the store holds several)");
}

std::string sqlite_uri(const std::string& run_dir) { return "sqlite:" + (fs::path(run_dir) / "store.db").string(); }

Opened open_target(const Target& t) {
  std::string uri = t.store;
  if (uri.empty()) {
    if (t.run_dir.empty()) throw Error("say which run: --run DIR (or --store URI)");
    if (!fs::exists(fs::path(t.run_dir) / "store.db"))
      throw Error("no run in '" + t.run_dir + "' (no store.db there); start one with `pbt run CONFIG --run " +
                  t.run_dir + "`");
    uri = sqlite_uri(t.run_dir);
  }
  // Readers open what is there: a typo must not leave a new, empty store behind.
  Opened o{open_existing_store(uri), t.experiment};
  if (o.experiment.empty()) {
    auto names = o.store->experiments();
    if (names.size() != 1) {
      std::string list;
      for (const auto& n : names) list += " " + n;
      throw Error("the store holds " + std::to_string(names.size()) + " experiments; choose one with --experiment" +
                  (list.empty() ? "" : " (" + list.substr(1) + ")"));
    }
    o.experiment = names[0];
  } else if (!o.store->experiment(o.experiment)) {
    throw Error("the store has no experiment named '" + o.experiment + "'");
  }
  return o;
}

}  // namespace pbt::cli
