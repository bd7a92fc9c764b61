// Strategies plugged in from outside the library: registered by name, chosen by the
// config, run by the worker like the built-ins.
#include <gtest/gtest.h>

#include <atomic>

#include "pbt/pbt.hpp"
#include "common/config_checks.hpp"

using namespace pbt;
using json = nlohmann::json;

namespace {

// Copies the best member that may be copied, whenever it ranks above self.
class Leader : public Exploit {
 public:
  std::optional<int> choose(const Candidate& self, const std::vector<Candidate>& population, Rng&) const override {
    const Candidate* best = &self;
    for (const auto& c : population)
      if (c.copyable && ranks_above(c, *best)) best = &c;
    if (best == &self) return std::nullopt;
    return best->id;
  }
  std::string name() const override { return "leader"; }
};

std::atomic<int> g_pins{0};           // explores run
std::atomic<int> g_pins_seen_all{0};  // ... that saw the whole population in their context

// Sets every value to `value` (clipped); counts what the context showed it.
class Pin : public Explore {
 public:
  explicit Pin(double value) : value_(value) {}
  Hyperparams explore(const Hyperparams& h, const SearchSpace& space, Rng&, const ExploreContext& ctx) const override {
    ++g_pins;
    if (ctx.population && ctx.population_h && ctx.population->size() == 2 && ctx.population_h->size() == 2)
      ++g_pins_seen_all;
    Hyperparams out = h;
    for (const auto& p : space.params()) out[p.name] = p.clip(value_);
    return out;
  }
  std::string name() const override { return "pin"; }

 private:
  double value_;
};

void register_test_strategies() {
  register_exploit("leader", [](const json& options, const std::string& where) {
    if (!options.empty()) throw ConfigError(where, "leader takes no options");
    return std::make_unique<Leader>();
  });
  register_explore("pin", [](const json& options, const std::string& where) {
    for (const auto& [key, v] : options.items())
      if (key != "value") throw ConfigError(where + "." + key, "unknown key");
    return std::make_unique<Pin>(options.value("value", 0.5));
  });
}

// Members start from random h (no [[initial]]): what the test looks at is the strategies.
const char* kLeaderPin = R"(
name = "plugged"
population = 2
budget.steps = 40
ready.interval = 4
trainable.kind = "toy"
exploit = { strategy = "leader", copy = "all" }
explore = { strategy = "pin", value = 0.25 }
space.h0 = { low = 0.0, high = 1.0 }
space.h1 = { low = 0.0, high = 1.0 }
)";

using test::error_of;

std::string replaced(std::string s, const std::string& a, const std::string& b) {
  return s.replace(s.find(a), a.size(), b);
}

}  // namespace

TEST(Plugins, RegisteredStrategiesRunThroughTheConfigAndTheWorker) {
  register_test_strategies();
  ExperimentConfig c = parse_config(kLeaderPin, "exp.toml");
  auto store = open_store("memory:");
  create_or_join(*store, c);
  WorkerOptions opt;
  opt.id = "w0";
  g_pins = 0;
  g_pins_seen_all = 0;
  WorkerStats stats = run_worker(*store, c.name, opt);

  const auto evs = store->events("plugged");
  ASSERT_FALSE(evs.empty());
  EXPECT_EQ(stats.exploits, static_cast<std::int64_t>(evs.size()));
  const Hyperparams pinned{{"h0", 0.25}, {"h1", 0.25}};
  for (const auto& e : evs) {
    EXPECT_EQ(e.kind, EventKind::exploit);
    EXPECT_NE(e.donor, e.member);
    EXPECT_GE(e.donor_score, e.old_score);
    EXPECT_EQ(e.new_h, pinned);
  }
  EXPECT_EQ(g_pins.load(), static_cast<int>(evs.size()));
  EXPECT_EQ(g_pins_seen_all.load(), g_pins.load());
  for (const auto& m : store->population("plugged")) EXPECT_TRUE(m.done);
}

TEST(Plugins, RegisteredNamesAreListedAndTheirOptionsChecked) {
  register_test_strategies();
  EXPECT_EQ(exploit_strategies(),
            (std::vector<std::string>{"truncation", "tournament", "ttest", "none", "fire", "leader"}));
  EXPECT_EQ(explore_strategies(), (std::vector<std::string>{"perturb", "resample", "gaussian", "pb2", "none", "pin"}));
  EXPECT_EQ(error_of(replaced(kLeaderPin, "\"leader\"", "\"follower\"")),
            "exp.toml: exploit.strategy: unknown exploit strategy 'follower' (known: truncation, tournament, ttest, "
            "none, fire, leader)");
  EXPECT_EQ(error_of(replaced(kLeaderPin, "value = 0.25", "valeu = 0.25")), "exp.toml: explore.valeu: unknown key");
  EXPECT_EQ(error_of(replaced(kLeaderPin, "copy = \"all\"", "copy = \"all\", fraction = 0.2")),
            "exp.toml: exploit: leader takes no options");
}
