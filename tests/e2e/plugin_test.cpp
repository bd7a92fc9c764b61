// Trainable plugins through the real `pbt` (issue #20): a plugin's trainable runs under the
// stock `pbt run` with two workers, and `best` and `replay` read its run; a plugin is found
// relative to the config or on $PBT_PLUGIN_PATH; every bad plugin is refused with exit 2, a
// message naming the file and the cause, and no store created.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "process_util.hpp"

using namespace e2e;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const std::string kPlugins = PBT_TEST_PLUGIN_DIR;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// A config of the quadratic plugin's trainable, with `plugin_line` in [trainable].
std::string quadratic_config(const std::string& dir, const std::string& plugin_line,
                             const std::string& kind = "quadratic") {
  const std::string path = dir + "/quadratic.toml";
  std::ofstream(path) << "name = \"quad\"\nseed = 3\npopulation = 4\n\n"
                      << "[trainable]\nkind = \"" << kind << "\"\n"
                      << plugin_line << "\ntarget = 3.0\n\n"
                      << "[budget]\nsteps = 40\n\n[ready]\ninterval = 5\n\n"
                      << "[exploit]\nstrategy = \"truncation\"\n\n[explore]\nstrategy = \"gaussian\"\nsigma = 0.1\n\n"
                      << "[space.lr]\ntype = \"float\"\nlow = 0.01\nhigh = 0.4\n";
  return path;
}

// Copies the built plugin `name` (libNAME.so) to DIR/SUB/libNAME.so.
std::string copy_plugin(const std::string& name, const std::string& dir, const std::string& sub) {
  fs::create_directories(dir + "/" + sub);
  const std::string to = dir + "/" + sub + "/lib" + name + ".so";
  fs::copy_file(kPlugins + "/lib" + name + ".so", to, fs::copy_options::overwrite_existing);
  return to;
}

}  // namespace

TEST(Plugin, APluginTrainableRunsUnderPbtRunWithTwoWorkers) {
  const std::string dir = temp_dir("plugin-run");
  copy_plugin("quadratic", dir, "lib");
  const std::string config = quadratic_config(dir, "plugin = \"lib/libquadratic.so\"");  // relative to the config
  const std::string run_dir = dir + "/run";
  auto r = run_pbt({"run", config, "--run", run_dir, "--workers", "2"}, dir);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "finished: experiment 'quad', 4/4 members reached the budget")) << r.out;
  EXPECT_TRUE(fs::exists(run_dir + "/logs/worker-1.log"));  // two workers ran

  // status and best only read the run: they work without the plugin (so without LibTorch for rl).
  fs::rename(dir + "/lib", dir + "/lib.away");
  auto status = run_pbt({"status", "--run", run_dir, "--json"}, dir);
  ASSERT_EQ(status.code, 0) << status.err;
  json s = json::parse(status.out);
  ASSERT_EQ(s["members"].size(), 4u);
  for (const auto& m : s["members"]) EXPECT_EQ(m["step"], 40) << m;

  // The best member converged to x = target (Q = 0); lr = 0.01 alone would leave Q < -1.
  auto best = run_pbt({"best", "--run", run_dir, "--json"}, dir);
  ASSERT_EQ(best.code, 0) << best.err;
  json b = json::parse(best.out);
  EXPECT_GT(b["score"].get<double>(), -0.01) << b;
  EXPECT_LE(b["score"].get<double>(), 0.0) << b;

  auto replay_without = run_pbt({"replay", "--run", run_dir, "--json"}, dir);
  EXPECT_NE(replay_without.code, 0) << "replay builds the trainable: it needs the plugin";
  EXPECT_TRUE(contains(replay_without.err, "lib/libquadratic.so")) << replay_without.err;
  fs::rename(dir + "/lib.away", dir + "/lib");

  // The trainable is deterministic: the replay of the winner's schedule lands on its score.
  auto replay = run_pbt({"replay", "--run", run_dir, "--json"}, dir);
  ASSERT_EQ(replay.code, 0) << replay.err;
  json rp = json::parse(replay.out);
  EXPECT_EQ(rp["member"], b["member"]);
  EXPECT_NEAR(rp["replay_score"].get<double>(), rp["original_score"].get<double>(), 1e-12);
}

TEST(Plugin, ABareNameIsFoundOnThePluginPath) {
  const std::string dir = temp_dir("plugin-path");
  const std::string config = quadratic_config(dir, "plugin = \"libquadratic.so\"");
  unsetenv("PBT_PLUGIN_PATH");
  auto missing = run_pbt({"create", config, "--run", dir + "/run"}, dir);
  EXPECT_EQ(missing.code, 2) << missing.err;
  EXPECT_TRUE(contains(missing.err, "trainable.plugin")) << missing.err;
  EXPECT_TRUE(contains(missing.err, "plugin 'libquadratic.so': no such file in " + dir)) << missing.err;
  EXPECT_FALSE(fs::exists(dir + "/run/store.db"));

  setenv("PBT_PLUGIN_PATH", ("/nonexistent:" + kPlugins).c_str(), 1);
  auto found = run_pbt({"create", config, "--run", dir + "/run"}, dir);
  unsetenv("PBT_PLUGIN_PATH");
  EXPECT_EQ(found.code, 0) << found.err;
  EXPECT_TRUE(contains(found.out, "created experiment 'quad'")) << found.out;
}

TEST(Plugin, BadPluginsAreRefusedBeforeAnyMemberIsTouched) {
  const std::string dir = temp_dir("plugin-bad");
  std::ofstream(dir + "/libtext.so") << "not an ELF file\n";
  struct Case {
    std::string file, cause;
  };
  const std::vector<Case> cases = {
      {dir + "/libmissing.so", "no such file"},
      {dir + "/libtext.so", "cannot be loaded as a shared library"},
      {kPlugins + "/libbad_no_entry.so", "has no entry point pbt_plugin_entry"},
      {kPlugins + "/libbad_abi.so", "built for plugin ABI version 1004, this pbt loads version 4"},
      {kPlugins + "/libbad_throws.so", "failed while registering: the model file weights.bin is missing"},
      {kPlugins + "/libbad_existing_kind.so",
       "failed while registering: it registers the trainable kind 'toy', which already exists"},
      {kPlugins + "/libbad_existing_strategy.so",
       "failed while registering: it registers the explore strategy 'perturb', which already exists"},
      {kPlugins + "/libbad_empty.so", "registered nothing (no trainable kind, exploit or explore strategy)"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.file);
    const std::string config = quadratic_config(dir, "plugin = \"" + c.file + "\"");
    const std::string run_dir = dir + "/run";
    auto r = run_pbt({"run", config, "--run", run_dir, "--workers", "2"}, dir);
    EXPECT_EQ(r.code, 2) << r.out << r.err;
    EXPECT_TRUE(contains(r.err, "config error: " + config + ": trainable.plugin: plugin " + c.file + ": " + c.cause))
        << r.err;
    EXPECT_FALSE(fs::exists(run_dir)) << "nothing is created for a refused plugin";
  }
}

TEST(Plugin, AKindFromAPluginThatWasNotBuiltSaysSo) {
  // A copy of `pbt` with no plugins/ beside it: the LibTorch kinds cannot be found.
  const std::string dir = temp_dir("plugin-unbuilt");
  fs::copy_file(PBT_BINARY, dir + "/pbt");
  fs::permissions(dir + "/pbt", fs::perms::owner_exec, fs::perm_options::add);
  const std::string config = quadratic_config(dir, "", "rl");
  const std::string out = dir + "/out", err = dir + "/err";
  const int code = wait_exit(spawn({dir + "/pbt", "create", config, "--run", dir + "/run"}, out, err));
  EXPECT_EQ(code, 2) << read_file(err);
  EXPECT_TRUE(contains(read_file(err),
                       "the trainable kind 'rl' comes from pbt's plugin libpbt_torch.so, which was "
                       "not built or installed (looked in " +
                           dir + "/plugins"))
      << read_file(err);
  EXPECT_FALSE(fs::exists(dir + "/run/store.db"));
}
