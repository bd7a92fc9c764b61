#pragma once
// The parts of PBT that vary: ready, exploit, explore. Each is a small interface,
// built by name from the config, so new strategies (PB2, ...) plug in without
// touching the worker loop: the built-ins are registered by name exactly as an
// out-of-tree strategy is (see "Plugging in a strategy" below).
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pbt/hyperparams.hpp"
#include "pbt/rng.hpp"
#include "pbt/space.hpp"

namespace pbt {

// A member as the exploit step sees it: its last published score and recent history.
struct Candidate {
  int id = 0;
  double score = 0;
  std::vector<double> samples;  // what the t-test compares (score history or eval samples)
  std::int64_t step = 0;
  // False while its score is one that came with a copy (the donor's evidence, already
  // counted): it still ranks at that score, but nobody copies it until it evaluates again.
  bool copyable = true;
};

// Ranking order used everywhere: higher score first, ties broken by lower member id, so
// that equal scores still give a strict order. A tie never makes a donor, though: the
// built-in exploits copy only a member whose score is strictly higher than one's own.
bool ranks_above(const Candidate& a, const Candidate& b);

// One interval a member trained, as the store published it: its own steps (from_step,
// to_step] under `h`, and the score of its model when the interval began (its own last
// score, or its donor's when it had just copied weights) and at its end.
struct TrainedInterval {
  int member = 0;
  std::int64_t from_step = 0;
  std::int64_t to_step = 0;
  double from_score = 0;
  double to_score = 0;
  Hyperparams h;
  // When the interval began from a copy of another member's model (an exploit event at
  // from_step that copied weights): that member, and its step when copied; else -1, -1.
  int donor = -1;
  std::int64_t donor_step = -1;
};

// What an exploit strategy may look at beyond the scores (FIRE reads the published history).
struct ExploitContext {
  int population = 0;                                      // the configured population: members 0 .. population-1
  const std::vector<Hyperparams>* population_h = nullptr;  // h of each entry of `population`
  // The intervals the store has published, by from_step then member: at least the most
  // recent history_intervals(population) of them (none for a strategy that asks for none).
  const std::vector<TrainedInterval>* history = nullptr;
};

class Exploit {
 public:
  virtual ~Exploit() = default;
  // The id of the member to copy, or nothing to keep our own θ and h.
  // `population` holds every scored member, `self` included.
  virtual std::optional<int> choose(const Candidate& self, const std::vector<Candidate>& population,
                                    Rng& rng) const = 0;
  // What the worker calls: choose() given what the store has published. A strategy that
  // reads the history (FIRE) overrides this; the default ignores the context.
  virtual std::optional<int> choose_in(const Candidate& self, const std::vector<Candidate>& population, Rng& rng,
                                       const ExploitContext& /*context*/) const {
    return choose(self, population, rng);
  }
  // How many of the population's most recent intervals choose_in() reads from
  // context.history, for a population of `population`; 0 (the default): none.
  virtual std::size_t history_intervals(int /*population*/) const { return 0; }
  // Smallest population this strategy can work with.
  virtual int min_population() const { return 2; }
  virtual std::string name() const = 0;
  // Whether `member` (of a population of `population`) explores after its exploit step (after
  // a copy; every time with [explore] always = true). False: it trains under the h it holds,
  // or its donor's h as copied (FIRE's evaluators, which measure a lineage under fixed h).
  virtual bool explores(int /*member*/, int /*population*/) const { return true; }
  // Refuses (ConfigError under `where`, the exploit's table) a population this strategy cannot
  // work with; run when the config is read, before the min_population() check.
  virtual void check(int /*population*/, const std::string& /*where*/) const {}
};

// What an explore strategy may look at beyond h: which member, when, and the population
// as published (model-based strategies such as PB2 fit their model to it).
struct ExploreContext {
  int member = 0;
  std::int64_t step = 0;
  const std::vector<Candidate>* population = nullptr;
  const std::vector<Hyperparams>* population_h = nullptr;  // h of each entry of `population`
  // The intervals the store has published, by from_step then member: at least the most
  // recent history_intervals() of them (none for a strategy that asks for none).
  const std::vector<TrainedInterval>* history = nullptr;
};

class Explore {
 public:
  virtual ~Explore() = default;
  // A new h near `h` (or from the prior). Every value stays inside `space`. Most
  // strategies look at `h` only; `context` is there for those that need the population.
  virtual Hyperparams explore(const Hyperparams& h, const SearchSpace& space, Rng& rng,
                              const ExploreContext& context) const = 0;
  virtual std::string name() const = 0;
  // How many of the population's most recent intervals explore() reads from
  // context.history; 0 (the default): none, and the worker reads no history.
  virtual std::size_t history_intervals() const { return 0; }
  // Refuses (ConfigError at `where`) a space this strategy cannot explore; run when the config is read.
  virtual void check(const SearchSpace& /*space*/, const std::string& /*where*/) const {}
};

// Ready: enough steps since the member last decided, and past a minimum step. A member
// that is ready decides (exploit, explore) at the start of its next interval. `sync`: it
// waits there until every live member has reached the same step, and all decide at once
// against the same snapshot of the population ([ready] mode = "sync"; default "async").
struct Ready {
  std::int64_t interval = 1;
  std::int64_t min_step = 0;
  bool sync = false;
  bool is_ready(std::int64_t step, std::int64_t last_ready_step) const {
    return step - last_ready_step >= interval && step >= min_step;
  }
};

// Plugging in a strategy. The config chooses strategies by name ([exploit] strategy =
// "truncation"); each name is registered with a factory that gets the strategy's table
// (without `strategy` and the engine's own keys such as `copy`, `window`, `always`) and
// `where`, the table's name for errors ("exp.toml: exploit"). A factory refuses options it
// does not know with ConfigError. An out-of-tree strategy registers itself the same way as
// the built-ins, before the config is read (first thing in main, say):
//
//   // Copy the best member that may be copied, whenever it ranks above us.
//   class Greedy : public pbt::Exploit {
//    public:
//     std::optional<int> choose(const pbt::Candidate& self, const std::vector<pbt::Candidate>& population,
//                               pbt::Rng&) const override {
//       const pbt::Candidate* best = &self;
//       for (const auto& c : population)
//         if (c.copyable && pbt::ranks_above(c, *best)) best = &c;
//       if (best == &self) return std::nullopt;
//       return best->id;
//     }
//     std::string name() const override { return "greedy"; }
//   };
//
//   pbt::register_exploit("greedy", [](const nlohmann::json& options, const std::string& where) {
//     if (!options.empty()) throw pbt::ConfigError(where, "greedy takes no options");
//     return std::make_unique<Greedy>();
//   });
//
// Then `[exploit] strategy = "greedy"` runs it in every worker of this program; an Explore
// registers with register_explore. Registering a name again replaces it (a built-in too).
// Under the stock `pbt`, register from a plugin (pbt/plugin.hpp) that the config names with
// `[exploit] plugin` or `[explore] plugin`; a plugin may not replace a name that exists
// (examples/cpp/batch_rule.cpp: an explore that keeps batch >= 2 x minibatch).
// An unknown name is a ConfigError at "<where>.strategy" listing the registered names.
using ExploitFactory = std::function<std::unique_ptr<Exploit>(const nlohmann::json& options, const std::string& where)>;
using ExploreFactory = std::function<std::unique_ptr<Explore>(const nlohmann::json& options, const std::string& where)>;
void register_exploit(const std::string& name, ExploitFactory factory);
void register_explore(const std::string& name, ExploreFactory factory);
std::vector<std::string> exploit_strategies();  // the registered names, built-ins first
std::vector<std::string> explore_strategies();

// The strategy registered as `name`, built from its config table.
std::unique_ptr<Exploit> make_exploit(const std::string& name, const nlohmann::json& options, const std::string& where);
std::unique_ptr<Explore> make_explore(const std::string& name, const nlohmann::json& options, const std::string& where);

// Welch's two-sample t-test: two-sided p-value for equal means. Needs >= 2 samples each.
double welch_p_value(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace pbt
