// The config reader's limits (issue #14): whatever the file holds, it is read or refused
// with a ConfigError naming the file, never a crash, a wrapped integer or a value that
// overflows later.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "pbt/config.hpp"
#include "pbt/error.hpp"
#include "common/config_checks.hpp"
#include "core/atomic_file.hpp"

using namespace pbt;

namespace {
using test::error_of;
using test::good_with;
using test::kGood;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("pbt-unit-" + name + "-" + std::to_string(getpid()))).string();
}
}  // namespace

TEST(ConfigLimits, LeaseSecondsMustBeFiniteAndAtMostADay) {
  for (const char* v : {"inf", "+inf", "nan", "-inf", "3e10", "86401"})
    EXPECT_TRUE(contains(error_of(good_with("[budget]", std::string("[workers]\nlease_seconds = ") + v + "\n[budget]")),
                         "exp.toml: workers.lease_seconds: "))
        << v;
  EXPECT_EQ(error_of(good_with("[budget]", "[workers]\nlease_seconds = 3e10\n[budget]")),
            "exp.toml: workers.lease_seconds: must be between 0.5 and 86400, got 3e+10");
  EXPECT_EQ(error_of(good_with("[budget]", "[workers]\nlease_seconds = inf\n[budget]")),
            "exp.toml: workers.lease_seconds: expected a finite number, got inf");
  EXPECT_EQ(parse_config(good_with("[budget]", "[workers]\nlease_seconds = 86400\n[budget]"), "e").lease_seconds,
            86400);
}

TEST(ConfigLimits, EveryNumberSettingIsFinite) {
  EXPECT_EQ(error_of(good_with("[budget]\nsteps = 20", "[budget]\nsteps = 20\ntarget_score = nan")),
            "exp.toml: budget.target_score: expected a finite number, got nan");
  EXPECT_EQ(error_of(good_with("kind = \"toy\"", "kind = \"toy\"\ntheta = [0.9, inf]")),
            "exp.toml: trainable.theta: expected finite numbers, got inf");
  EXPECT_EQ(error_of(good_with("strategy = \"truncation\"", "strategy = \"truncation\"\nfraction = nan")),
            "exp.toml: exploit.fraction: expected a finite number, got nan");
  EXPECT_EQ(error_of(good_with("low = 0.0", "low = -inf")),
            "exp.toml: space.h0.low: expected a finite number, got -inf");
}

TEST(ConfigLimits, IntegersAreRangeCheckedBeforeNarrowing) {
  EXPECT_EQ(error_of(good_with("population = 4", "population = 4294967298")),
            "exp.toml: population: must be between 1 and 100000, got 4294967298");
  EXPECT_EQ(error_of(good_with("population = 4", "population = 9223372036854775807")),
            "exp.toml: population: must be between 1 and 100000, got 9223372036854775807");
  EXPECT_EQ(error_of(good_with("[budget]", "[workers]\ncount = 4294967297\n[budget]")),
            "exp.toml: workers.count: must be between 1 and 100000, got 4294967297");
  EXPECT_EQ(error_of(good_with("[budget]", "[workers]\nmax_failures = 4294967297\n[budget]")),
            "exp.toml: workers.max_failures: must be between 1 and 1000000, got 4294967297");
  EXPECT_EQ(error_of(good_with("strategy = \"truncation\"", "strategy = \"truncation\"\nwindow = 4294967298")),
            "exp.toml: exploit.window: must be between 2 and 100000, got 4294967298");
  EXPECT_TRUE(
      contains(error_of(good_with("steps = 20", "steps = 9223372036854775807")), "exp.toml: budget.steps: must be"));
}

TEST(ConfigLimits, IntBoundsBeyondInt64AreRefused) {
  const std::string space = "[space.h0]\nlow = 0.0\nhigh = 1.0\n";
  EXPECT_TRUE(contains(error_of(good_with(space, "[space.h0]\ntype = \"int\"\nlow = 0\nhigh = 1e19\n")),
                       "exp.toml: space.h0.high: an int's bounds must be within +-2^53"));
  EXPECT_TRUE(contains(error_of(good_with(space, "[space.h0]\ntype = \"int\"\nlow = -1e300\nhigh = 1\n")),
                       "exp.toml: space.h0.low: an int's bounds must be within"));
  EXPECT_EQ(
      error_of(good_with(space, "[space.h0]\ntype = \"int\"\nlow = -9007199254740992\nhigh = 9007199254740992\n")), "");
}

TEST(ConfigLimits, DeepDottedKeysAreRefusedBeforeParsing) {
  std::string deep = "a";
  for (int i = 0; i < 50000; ++i) deep += ".a";
  const std::string m = error_of(good_with("[trainable]", deep + " = 1\n[trainable]"));
  EXPECT_EQ(m, "exp.toml:4: nested more than 64 levels deep (tables, dotted keys, arrays and inline tables together)");
  std::string header = "[x";
  for (int i = 0; i < 100; ++i) header += ".x";
  EXPECT_TRUE(contains(error_of(header + "]\n" + kGood), "exp.toml:1: nested more than 64 levels")) << header;
}

TEST(ConfigLimits, DeepArraysAndInlineTablesAreRefusedBeforeParsing) {
  for (const std::string& open : {std::string("["), std::string("{a="), std::string("[{b=")}) {
    std::string v;
    for (int i = 0; i < 30000; ++i) v += open;
    EXPECT_TRUE(contains(error_of(good_with("name = \"t\"", "name = \"t\"\nx = " + v)), "exp.toml:2: nested more than"))
        << open;
  }
  // Strings, comments and floats are not nesting.
  std::string text =
      good_with("name = \"t\"", "name = \"t[[[[{{{" + std::string(200, '.') + "\" # [[[[ " + std::string(200, '.'));
  EXPECT_TRUE(contains(error_of(text), "exp.toml: name: 't[[[[{{{.")) << error_of(text);  // read to the end
  std::string floats = "[trainable]\nkind = \"toy\"\ntheta = [";
  for (int i = 0; i < 200; ++i) floats += "0.5, ";
  EXPECT_TRUE(contains(error_of(good_with("[trainable]\nkind = \"toy\"", floats + "0.5]")), "must have exactly 2"));
}

TEST(ConfigLimits, TooLargeConfigIsRefused) {
  const std::string big = std::string(kGood) + "# " + std::string(kMaxConfigBytes, 'x') + "\n";
  EXPECT_TRUE(contains(error_of(big), "exp.toml: the config is ")) << error_of(big).substr(0, 200);
  const std::string path = temp_path("big.toml");
  std::ofstream(path) << big;
  try {
    load_config(path);
    ADD_FAILURE() << "read a config over the size cap";
  } catch (const ConfigError& e) {
    EXPECT_TRUE(contains(e.what(), path + ": the config is ")) << e.what();
    EXPECT_TRUE(contains(e.what(), "(1 MiB)")) << e.what();
  }
  std::filesystem::remove(path);
}

TEST(ConfigLimits, NonRegularFilesAreRefused) {
  for (const std::string path : {"/dev/zero", "/tmp"}) {
    try {
      load_config(path);
      ADD_FAILURE() << path;
    } catch (const ConfigError& e) {
      EXPECT_EQ(std::string(e.what()), path + ": not a regular file; give a TOML config file");
    }
  }
}

TEST(ConfigLimits, DotNamesAreRefused) {
  EXPECT_EQ(error_of(good_with("name = \"t\"", "name = \"..\"")),
            "exp.toml: name: '..' is not a usable directory name");
  EXPECT_EQ(error_of(good_with("name = \"t\"", "name = \".\"")), "exp.toml: name: '.' is not a usable directory name");
  EXPECT_EQ(error_of(good_with("name = \"t\"", "name = \"a/b\"")),
            "exp.toml: name: 'a/b' must be 1-100 letters, digits, '_', '.' or '-'");
  EXPECT_EQ(error_of(good_with("name = \"t\"", "name = \"\"")),
            "exp.toml: name: '' must be 1-100 letters, digits, '_', '.' or '-'");
  EXPECT_EQ(error_of(good_with("name = \"t\"", "name = \"...\"")), "");
}

TEST(ConfigLimits, ToySpaceWithoutH1IsRefusedUpFront) {
  const std::string m = error_of(good_with("[space.h1]\nlow = 0.0\nhigh = 1.0\n", ""));
  EXPECT_TRUE(contains(m, "exp.toml: space")) << m;
  EXPECT_TRUE(contains(m, "'h1' is missing")) << m;
  const std::string c = error_of(
      good_with("[space.h1]\nlow = 0.0\nhigh = 1.0\n", "[space.h1]\ntype = \"categorical\"\nchoices = [\"a\"]\n"));
  EXPECT_TRUE(contains(c, "'h1' must be a number")) << c;
}

// A write that fails half-way (here: the file size limit, as on a full disk) leaves the
// old file as it was and no temporary file behind.
TEST(AtomicFile, AFailedWriteLeavesTheOldFile) {
  const std::string dir = temp_path("atomic");
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/report.html";
  std::ofstream(path) << "old";
  pid_t pid = fork();
  if (pid == 0) {
    signal(SIGXFSZ, SIG_IGN);  // write returns EFBIG instead of killing the process
    struct rlimit lim {
      4096, 4096
    };
    setrlimit(RLIMIT_FSIZE, &lim);
    try {
      write_file_atomically(path, std::string(100000, 'n'));
    } catch (const Error& e) {
      _exit(std::string(e.what()).find("cannot write '" + path + "': write: ") == 0 ? 0 : 2);
    }
    _exit(1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: no error; 2: another message";
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  EXPECT_EQ(s.str(), "old");
  const auto files = std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator());
  EXPECT_EQ(files, 1);

  write_file_atomically(path, "new");
  std::ifstream again(path);
  std::stringstream t;
  t << again.rdbuf();
  EXPECT_EQ(t.str(), "new");
  EXPECT_THROW(write_file_atomically(dir, "x"), Error);  // a directory is not replaced
  std::filesystem::remove_all(dir);
}
