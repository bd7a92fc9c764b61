#pragma once
// The shape every `pbt` subcommand has: add_<name>(app) declares it on `app` with its own
// options and returns the action that main runs when it is the one chosen. What several
// subcommands share (finding a run, stopping on a signal) is here too.
#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "pbt/store.hpp"

namespace pbt::cli {

struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;  // the process exit status
};

struct Target {  // where to find a run: a run directory or a store URI
  std::string run_dir;
  std::string store;
  std::string experiment;  // may be empty when the store holds exactly one
};
// --run, --store and --experiment, filling `t`.
void add_target(CLI::App* cmd, Target& t);

// A run directory (its store.db) or a store URI, opened; the experiment named, or the
// store's only one. Throws pbt::Error with what to do when neither is there.
struct Opened {
  std::unique_ptr<Store> store;
  std::string experiment;
};
Opened open_target(const Target& target);

// The store URI of a run directory.
std::string sqlite_uri(const std::string& run_dir);

// From now on SIGINT and SIGTERM set the returned flag instead of ending the process.
std::atomic<bool>& stop_on_signals();

}  // namespace pbt::cli
