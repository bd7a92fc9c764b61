#pragma once
// The `pbt` subcommands. Each returns the process exit status.
#include <memory>
#include <string>

#include "pbt/store.hpp"

namespace pbt::cli {

struct Target {          // where to find a run: a run directory or a store URI
  std::string run_dir;
  std::string store;
  std::string experiment;  // may be empty when the store holds exactly one
};

int create(const std::string& config_path, const std::string& run_dir);
// A run directory (its store.db) or a store URI, opened; the experiment named, or the
// store's only one. Throws pbt::Error with what to do when neither is there.
struct Opened {
  std::unique_ptr<Store> store;
  std::string experiment;
};
Opened open_target(const Target& target);

int run(const std::string& config_path, const std::string& run_dir, int workers, bool quiet,
        const std::string& self_exe);
int worker(const std::string& store, const std::string& experiment, const std::string& id,
           const std::string& log_path, long max_intervals);
int status(const Target& target, bool json);
int best(const Target& target, bool json, const std::string& export_path);
int events(const Target& target, bool json);
int replay(const Target& target, int member, bool json);

}  // namespace pbt::cli
