// Explore rules users write (issue #19, item 3), through the real `pbt`: batch >= 2 x minibatch
// (ray-project/ray #18339, #7168) kept by (a) an explore strategy from a plugin
// (examples/cpp/batch_rule.cpp, `[explore] plugin`), (b) a Python trainer whose apply reply
// says which h it accepted (protocol 1.3, tests/process/ruled_trainer.py). Every h in the
// store and the event log obeys the rule; without it, some do not (so the check can fail).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "process_util.hpp"

using namespace e2e;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const std::string kPlugins = PBT_TEST_PLUGIN_DIR;
const std::string kRuled = std::string(PBT_SOURCE_DIR) + "/tests/process/ruled_trainer.py";

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
std::string python() { return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3"; }

bool obeys(const json& h) { return h.at("batch").get<double>() >= 2 * h.at("minibatch").get<double>(); }

// Every h the run shows: each member's in `pbt status --json`, old and new h of every event.
struct Shown {
  std::vector<json> member_h, event_h;
  int explores = 0;  // exploit/explore events
  std::string text;  // for messages
  int broken() const {
    int n = 0;
    for (const auto& h : member_h) n += !obeys(h);
    for (const auto& h : event_h) n += !obeys(h);
    return n;
  }
};

Shown shown(const std::string& run_dir, const std::string& dir) {
  Shown s;
  auto status = run_pbt({"status", "--run", run_dir, "--json"}, dir);
  EXPECT_EQ(status.code, 0) << status.err;
  for (const auto& m : json::parse(status.out)["members"]) {
    EXPECT_TRUE(m["done"].get<bool>()) << m;
    s.member_h.push_back(m["h"]);
  }
  auto events = run_pbt({"events", "--run", run_dir, "--json"}, dir);
  EXPECT_EQ(events.code, 0) << events.err;
  std::istringstream lines(events.out);
  for (std::string line; std::getline(lines, line);) {
    const json e = json::parse(line);
    if (e["kind"] == "recover") continue;
    s.explores++;
    s.event_h.push_back(e["old_h"]);
    s.event_h.push_back(e["new_h"]);
  }
  s.text = status.out + events.out;
  return s;
}

// The quadratic plugin's trainable (lr), with batch and minibatch in [space] that it ignores;
// every member starts obeying the rule. `explore` is the [explore] table's body.
std::string plugin_config(const std::string& dir, const std::string& explore) {
  const std::string path = dir + "/rule.toml";
  std::ofstream(path) << "name = \"rule\"\nseed = 11\npopulation = 4\n\n"
                      << "[trainable]\nkind = \"quadratic\"\nplugin = \"" << kPlugins << "/libquadratic.so\"\n\n"
                      << "[budget]\nsteps = 40\n\n[ready]\ninterval = 4\n\n"
                      << "[exploit]\nstrategy = \"truncation\"\nfraction = 0.5\n\n"
                      << "[explore]\n"
                      << explore << "\nfactors = [0.5, 2.0]\n\n"
                      << "[space.lr]\nlow = 0.01\nhigh = 0.4\n"
                      << "[space.batch]\ntype = \"int\"\nlow = 16\nhigh = 256\n"
                      << "[space.minibatch]\ntype = \"int\"\nlow = 4\nhigh = 128\n"
                      << "[[initial]]\nlr = 0.01\nbatch = 32\nminibatch = 16\n"
                      << "[[initial]]\nlr = 0.02\nbatch = 64\nminibatch = 32\n"
                      << "[[initial]]\nlr = 0.05\nbatch = 128\nminibatch = 64\n"
                      << "[[initial]]\nlr = 0.1\nbatch = 256\nminibatch = 128\n";
  return path;
}

// ruled_trainer.py with `flags`; initial h drawn from [space] (many break the rule).
std::string python_config(const std::string& dir, const std::string& flags, const std::string& trainable_extra = "") {
  const std::string path = dir + "/ruled.toml";
  std::ofstream(path) << "name = \"ruled\"\nseed = 4\npopulation = 4\n\n"
                      << "[trainable]\nkind = \"process\"\nargv = [\"" << python() << "\", \"" << kRuled << "\""
                      << flags << "]\n"
                      << trainable_extra << "\ntimeouts = { start = 60, step = 60, eval = 60 }\n\n"
                      << "[budget]\nsteps = 32\n\n[ready]\ninterval = 4\n\n"
                      << "[exploit]\nstrategy = \"truncation\"\nfraction = 0.5\n\n"
                      << "[explore]\nstrategy = \"perturb\"\nfactors = [0.5, 2.0]\nresample_probability = 0.25\n\n"
                      << "[space.lr]\nlow = 0.001\nhigh = 0.1\n"
                      << "[space.batch]\ntype = \"int\"\nlow = 16\nhigh = 256\n"
                      << "[space.minibatch]\ntype = \"int\"\nlow = 4\nhigh = 128\n"
                      << "[workers]\ncount = 2\nmax_failures = 2\n";
  return path;
}

}  // namespace

TEST(ExploreRules, AnExploreFromAPluginKeepsEveryHOnTheRule) {
  const std::string dir = temp_dir("rule-plugin");
  // The plugin is named by a bare file name, found on $PBT_PLUGIN_PATH as a trainable plugin is.
  setenv("PBT_PLUGIN_PATH", kPlugins.c_str(), 1);
  const std::string config = plugin_config(dir, "plugin = \"libbatch_rule.so\"\nstrategy = \"batch_rule\"");
  auto r = run_pbt({"run", config, "--run", dir + "/run", "--workers", "2"}, dir);
  unsetenv("PBT_PLUGIN_PATH");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "4/4 members reached the budget")) << r.out;
  const Shown s = shown(dir + "/run", dir);  // the readers load no plugin: not on the path now
  EXPECT_GE(s.explores, 4) << s.text;
  EXPECT_EQ(s.broken(), 0) << s.text;
}

TEST(ExploreRules, WithoutTheRuleTheSameRunBreaksIt) {
  const std::string dir = temp_dir("rule-none");
  const std::string config = plugin_config(dir, "strategy = \"perturb\"");
  auto r = run_pbt({"run", config, "--run", dir + "/run", "--workers", "2"}, dir);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  const Shown s = shown(dir + "/run", dir);
  EXPECT_GT(s.broken(), 0) << s.text;
}

TEST(ExploreRules, AnExplorePluginIsFoundAndRefusedAsATrainablePluginIs) {
  const std::string dir = temp_dir("rule-refused");
  unsetenv("PBT_PLUGIN_PATH");
  struct Case {
    std::string explore, error;
  };
  const std::vector<Case> cases = {
      {"plugin = \"libbatch_rule.so\"\nstrategy = \"batch_rule\"",
       "explore.plugin: plugin 'libbatch_rule.so': no such file in " + dir},
      {"strategy = \"batch_rule\"", "explore.strategy: unknown explore strategy 'batch_rule' (known: perturb"},
      {"plugin = \"" + kPlugins + "/libbad_existing_strategy.so\"\nstrategy = \"perturb\"",
       "explore.plugin: plugin " + kPlugins +
           "/libbad_existing_strategy.so: failed while registering: it registers the explore strategy 'perturb', "
           "which already exists"},
      {"plugin = \"" + kPlugins + "/libbatch_rule.so\"\nstrategy = \"batch_rule\"\nratio = -1",
       "explore.ratio: expected a positive number, got -1"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.explore);
    const std::string config = plugin_config(dir, c.explore);
    auto r = run_pbt({"create", config, "--run", dir + "/run"}, dir);
    EXPECT_EQ(r.code, 2) << r.out << r.err;
    EXPECT_TRUE(contains(r.err, "config error: " + config + ": " + c.error)) << r.err;
    EXPECT_FALSE(fs::exists(dir + "/run/store.db"));
  }
}

TEST(ExploreRules, ATrainersApplyReplySetsTheHInForce) {
  const std::string dir = temp_dir("rule-python");
  auto r = run_pbt({"run", python_config(dir, ""), "--run", dir + "/run"}, dir);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "4/4 members reached the budget")) << r.out;
  const Shown s = shown(dir + "/run", dir);
  EXPECT_GE(s.explores, 4) << s.text;
  EXPECT_EQ(s.broken(), 0) << s.text;
  auto best = run_pbt({"best", "--run", dir + "/run", "--json"}, dir);
  ASSERT_EQ(best.code, 0) << best.err;
  EXPECT_TRUE(obeys(json::parse(best.out)["h"])) << best.out;
}

TEST(ExploreRules, ATrainerThatKeepsTheRuleSilentlyLeavesTheEnginesH) {
  // The same trainer, its apply returning nothing: the engine records what it sent, as before
  // 1.3, and the drawn and perturbed h that break the rule show.
  const std::string dir = temp_dir("rule-silent");
  auto r = run_pbt({"run", python_config(dir, ", \"--silent\""), "--run", dir + "/run"}, dir);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_GT(shown(dir + "/run", dir).broken(), 0);
  // A 1.2 trainer's h is never read: PBT_PROTOCOL_MINOR=2 makes the module say 1.2 and send none.
  const std::string dir12 = temp_dir("rule-12");
  auto r12 = run_pbt({"run", python_config(dir12, "", "env = { PBT_PROTOCOL_MINOR = \"2\" }"), "--run", dir12 + "/run"},
                     dir12);
  ASSERT_EQ(r12.code, 0) << r12.out << r12.err;
  EXPECT_GT(shown(dir12 + "/run", dir12).broken(), 0);
}

TEST(ExploreRules, AnAcceptedHOutsideTheSpaceFailsTheMemberNamingTheValue) {
  const std::string dir = temp_dir("rule-bad");
  auto r = run_pbt({"run", python_config(dir, ", \"--bad\""), "--run", dir + "/run"}, dir);
  EXPECT_NE(r.code, 0) << r.out;
  auto status = run_pbt({"status", "--run", dir + "/run", "--json"}, dir);
  ASSERT_EQ(status.code, 0) << status.err;
  for (const auto& m : json::parse(status.out)["members"]) {
    EXPECT_TRUE(m["failed"].get<bool>()) << m;
    EXPECT_TRUE(contains(m["last_error"].get<std::string>(),
                         "the trainable accepted hyperparameters outside [space] ('batch' = 4096 is outside its "
                         "bounds [16, 256])"))
        << m;
  }
}
