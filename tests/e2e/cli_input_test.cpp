// The `pbt` command on bad input (issue #14): every refusal is an exit status from the
// documented set (1: error, 2: config or usage error) and a message naming what is wrong;
// nothing crashes, and a reader never creates what it was asked to read.
#include <gtest/gtest.h>

#include <filesystem>

#include "process_util.hpp"

using namespace e2e;
namespace fs = std::filesystem;

namespace {
const std::string kToyConfig = std::string(PBT_SOURCE_DIR) + "/examples/toy.toml";

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// The toy config with one line replaced, written to DIR/NAME.toml.
std::string toy_with(const std::string& dir, const std::string& name, const std::string& find,
                     const std::string& replace) {
  std::string text = read_file(kToyConfig);
  const auto pos = text.find(find);
  EXPECT_NE(pos, std::string::npos) << find;
  text.replace(pos, find.size(), replace);
  const std::string path = dir + "/" + name + ".toml";
  std::ofstream(path) << text;
  return path;
}
}  // namespace

TEST(CliInput, ADeeplyNestedConfigIsRefusedNotACrash) {
  const std::string dir = temp_dir("deep");
  std::string key = "a";
  for (int i = 0; i < 50000; ++i) key += ".a";
  const std::string path = toy_with(dir, "deep", "seed = 0", "seed = 0\n" + key + " = 1");
  auto r = run_pbt({"create", path, "--run", dir + "/run"}, dir);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(contains(r.err, "config error: " + path + ":8: nested more than 64 levels deep")) << r.err;
  EXPECT_FALSE(fs::exists(dir + "/run"));
  fs::remove_all(dir);
}

TEST(CliInput, UsageErrorsExitTwo) {
  const std::string dir = temp_dir("usage");
  EXPECT_EQ(run_pbt({"--no-such-option"}, dir).code, 2);
  EXPECT_EQ(run_pbt({}, dir).code, 2);  // a subcommand is required
  EXPECT_EQ(run_pbt({"status", "--json", "extra"}, dir).code, 2);
  for (const char* n : {"0", "-3"}) {
    auto r = run_pbt({"run", kToyConfig, "--run", dir + "/run", "--workers", n}, dir);
    EXPECT_EQ(r.code, 2) << n << r.err;
    EXPECT_TRUE(contains(r.err, "--workers")) << r.err;
  }
  EXPECT_FALSE(fs::exists(dir + "/run"));
  auto replay = run_pbt({"replay", "--run", dir + "/run", "--member", "-7"}, dir);
  EXPECT_EQ(replay.code, 2) << replay.err;
  EXPECT_TRUE(contains(replay.err, "--member")) << replay.err;
  EXPECT_EQ(
      run_pbt({"worker", "--store", "sqlite:" + dir + "/s.db", "--experiment", "x", "--max-intervals", "-2"}, dir).code,
      2);
  EXPECT_EQ(run_pbt({"--help"}, dir).code, 0);
  EXPECT_EQ(run_pbt({"status", "--help"}, dir).code, 0);
  fs::remove_all(dir);
}

TEST(CliInput, CreateFailsWhenItCannotWriteTheConfigCopy) {
  const std::string dir = temp_dir("confdir");
  fs::create_directories(dir + "/run/config.toml");
  auto r = run_pbt({"create", kToyConfig, "--run", dir + "/run"}, dir);
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_TRUE(contains(r.err, "cannot write '" + dir + "/run/config.toml': it is a directory")) << r.err;
  fs::remove_all(dir);
}

TEST(CliInput, AWorkerLogThatCannotBeOpenedFails) {
  const std::string dir = temp_dir("worklog");
  const std::string log = dir + "/no/such/dir/worker.log";
  auto r = run_pbt({"worker", "--store", "sqlite:" + dir + "/s.db", "--experiment", "toy", "--log", log}, dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "cannot open the log file '" + log + "'")) << r.err;
  fs::remove_all(dir);
}

TEST(CliInput, ReadersAndWorkersDoNotCreateAStore) {
  const std::string dir = temp_dir("readers");
  const std::string typo = dir + "/typo.db", empty = dir + "/empty.db";
  std::ofstream(empty).flush();
  const std::vector<std::vector<std::string>> commands = {{"status"},
                                                          {"best"},
                                                          {"events"},
                                                          {"replay"},
                                                          {"report", "-o", dir + "/r.html"},
                                                          {"export", "-o", dir + "/x"},
                                                          {"dashboard", "--port", "0"},
                                                          {"worker", "--experiment", "x"}};
  for (const auto& c : commands) {
    auto args = c;
    args.insert(args.begin() + 1, {"--store", "sqlite:" + typo});
    auto r = run_pbt(args, dir);
    EXPECT_EQ(r.code, 1) << c[0] << r.err;
    EXPECT_TRUE(contains(r.err, "no store at '" + typo + "' (no such file)")) << c[0] << r.err;
    EXPECT_FALSE(fs::exists(typo)) << c[0];

    args = c;
    args.insert(args.begin() + 1, {"--store", empty});
    r = run_pbt(args, dir);
    EXPECT_EQ(r.code, 1) << c[0] << r.err;
    EXPECT_TRUE(contains(r.err, "no store at '" + empty + "' (the file is not a pbt store)")) << c[0] << r.err;
    EXPECT_EQ(fs::file_size(empty), 0u) << c[0];
  }
  EXPECT_FALSE(fs::exists(dir + "/r.html"));
  EXPECT_FALSE(fs::exists(dir + "/x"));
  fs::remove_all(dir);
}

TEST(CliInput, ConfigsRefusedUpFront) {
  const std::string dir = temp_dir("upfront");
  // A toy config without h1: refused when read, not by every member at run time.
  std::string text = read_file(kToyConfig);
  text.replace(text.find("[space.h1]"), std::string("[space.h1]\ntype = \"float\"\nlow = 0.0\nhigh = 1.0\n").size(),
               "");
  text.replace(text.find("h1 = 0.0"), 8, "");
  text.replace(text.find("h1 = 1.0"), 8, "");
  std::ofstream(dir + "/noh1.toml") << text;
  auto r = run_pbt({"run", dir + "/noh1.toml", "--run", dir + "/run"}, dir);
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  EXPECT_TRUE(contains(r.err, "'h1' is missing")) << r.err;
  EXPECT_FALSE(fs::exists(dir + "/run"));

  // ".." as a name would put the run next to runs/.
  const std::string dots = toy_with(dir, "dots", "name = \"toy\"", "name = \"..\"");
  r = run_pbt({"create", dots}, dir);
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "name: '..' is not a usable directory name")) << r.err;

  const std::string lease = toy_with(dir, "lease", "count = 2", "count = 2\nlease_seconds = inf");
  r = run_pbt({"create", lease, "--run", dir + "/run"}, dir);
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "workers.lease_seconds: expected a finite number, got inf")) << r.err;

  const std::string pop = toy_with(dir, "pop", "population = 2", "population = 4294967298");
  r = run_pbt({"create", pop, "--run", dir + "/run"}, dir);
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "population: must be between 1 and 100000, got 4294967298")) << r.err;

  r = run_pbt({"create", "/dev/zero", "--run", dir + "/run"}, dir);
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "/dev/zero: not a regular file")) << r.err;
  EXPECT_FALSE(fs::exists(dir + "/run"));
  fs::remove_all(dir);
}

// On a full disk (here: the file size limit, its write error EFBIG) a report fails and the
// file it would have replaced stays as it was, with nothing left beside it.
TEST(CliInput, AFailedWriteLeavesTheOldReport) {
  const std::string dir = temp_dir("fullreport");
  auto r = run_pbt({"run", kToyConfig, "--run", dir + "/run", "--quiet"}, dir);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  fs::create_directories(dir + "/out");
  ASSERT_EQ(run_pbt({"report", "--run", dir + "/run", "-o", dir + "/full.html"}, dir).code, 0);
  const auto size = fs::file_size(dir + "/full.html");
  // The limit (POSIX sh: 512-byte blocks) lets SQLite's 32 KiB shared-memory file be made
  // while reading the store, but not the whole report.
  if (size < 40 * 1024) GTEST_SKIP() << "the report is too small to cut short: " << size << " bytes";
  const std::string target = dir + "/out/report.html";
  std::ofstream(target) << "old";
  const std::string line = "trap '' XFSZ; ulimit -f " + std::to_string((36 * 1024 + size) / 2 / 512) + "; exec " +
                           PBT_BINARY + " report -o '" + target + "' --run '" + dir + "/run'";
  const pid_t pid = spawn({"/bin/sh", "-c", line}, dir + "/cmd.out", dir + "/cmd.err");
  const std::string err = (wait_exit(pid), read_file(dir + "/cmd.err"));
  EXPECT_TRUE(contains(err, "pbt: error: cannot write '" + target + "'")) << err;
  EXPECT_EQ(read_file(target), "old");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir + "/out"), fs::directory_iterator()), 1);
  fs::remove_all(dir);
}
