#pragma once
// The experiment config, read from TOML. A setting's default is its initialiser below;
// its key, check and description are declared once beside the parser
// (src/core/config_settings.cpp), which takes the default from here. A bad config is
// refused before anything runs, with a message naming the file, the field and the reason.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pbt/event.hpp"
#include "pbt/hyperparams.hpp"
#include "pbt/space.hpp"
#include "pbt/strategy.hpp"

namespace pbt {

struct ExperimentConfig {
  std::string origin;  // file the config came from (for messages)
  std::string text;    // the TOML text as given (stored with the experiment)

  std::string name;  // experiment name
  std::uint64_t seed = 0;
  int population = 0;                // members
  std::vector<Hyperparams> initial;  // explicit initial h for the first members (rest sampled)

  std::string trainable;         // trainable kind
  std::string trainable_plugin;  // [trainable] plugin: the shared library that registers it ("" if none)
  nlohmann::json trainable_options = nlohmann::json::object();

  std::int64_t budget_steps = 0;       // steps per member
  std::optional<double> target_score;  // stop the run when a member reaches it

  Ready ready;
  std::int64_t eval_every = 0;  // steps between evals inside an interval (0: once per interval)

  std::string exploit = "truncation";
  std::string exploit_plugin;  // [exploit] plugin: a shared library that registers strategies ("" if none)
  nlohmann::json exploit_options = nlohmann::json::object();
  CopyMode copy = CopyMode::all;  // what a copy takes: all, weights or hyperparameters
  int window = 10;                // scores kept per member for the t-test

  std::string explore = "perturb";
  std::string explore_plugin;  // [explore] plugin: a shared library that registers strategies ("" if none)
  nlohmann::json explore_options = nlohmann::json::object();
  bool explore_always = false;  // explore even without a copy (the paper's "explore only")

  SearchSpace space;

  int workers = 1;            // local worker processes for `pbt run`
  std::vector<int> gpus;      // devices `pbt run` deals to its workers; empty: CUDA_VISIBLE_DEVICES left alone
  int workers_per_gpu = 1;    // workers that may share one of them
  double lease_seconds = 30;  // a silent worker's member is free again after this
  int max_failures = 3;       // failed intervals in a row before a member is marked failed
  std::string store;          // store URI; empty: <run dir>/store.db
};

// Limits on what a config may be (README.md, "Config reference"): the file's size, its
// nesting (tables, dotted keys, arrays and inline tables together), the lease, and steps.
constexpr std::size_t kMaxConfigBytes = 1 << 20;
constexpr int kMaxConfigDepth = 64;
constexpr double kMaxLeaseSeconds = 86400;
constexpr std::int64_t kMaxSteps = 1000000000000;  // 10^12: step arithmetic stays far from int64's end

// Parses and checks a config. `origin` names it in error messages.
ExperimentConfig parse_config(const std::string& toml_text, const std::string& origin);
ExperimentConfig load_config(const std::string& path);

// The initial h of every member: explicit ones first, the rest drawn from the prior
// with a generator seeded by (seed, member).
std::vector<Hyperparams> initial_hyperparams(const ExperimentConfig& config);

// Why `workers` local workers cannot serve `population` members (at most one per member),
// or "" when they can: [workers] count and `pbt run --workers` are checked by this one rule.
std::string workers_problem(std::int64_t workers, int population);

// GPU placement: why a list of device ids is not one ("" when it is: integers >= 0, no
// duplicates, at least one), and why `workers` workers do not fit `gpus` devices with
// `per_gpu` workers on each ("" when they do). The config, `pbt run --gpus` and
// `pbt worker --gpus` are checked by these.
std::string gpu_ids_problem(const std::vector<std::int64_t>& ids);
std::string gpus_problem(std::int64_t workers, std::size_t gpus, std::int64_t per_gpu);
// Worker slot `slot`'s device: gpus[slot % gpus.size()] (round robin, so with
// workers <= gpus x per_gpu no device has more than per_gpu workers).
int gpu_of_slot(const std::vector<int>& gpus, int slot);

// Every setting the parser reads, with its value and check, default and description, as
// Markdown: README.md's "Config reference" is this text (a unit test compares them).
std::string config_reference();

}  // namespace pbt
