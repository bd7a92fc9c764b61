// Versions: `pbt --version`, and the first line of every worker log (`pbt run`'s and a
// `pbt worker --log` of one's own).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "pbt/version.hpp"
#include "process_util.hpp"
#include "store/sqlite_store.hpp"
#include "trainables/external/process.hpp"

using namespace e2e;

namespace {

const std::string kToyConfig = std::string(PBT_SOURCE_DIR) + "/examples/toy.toml";

std::string first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// What every version line holds, built here from the constants rather than from
// version_text(), so a version_text that leaves one out fails.
void expect_versions(const std::string& line) {
  EXPECT_NE(line.find(std::string("pbt ") + PBT_VERSION_STRING + " "), std::string::npos) << line;
  EXPECT_NE(
      line.find("process protocol " + std::to_string(pbt::kProtocolMajor) + "." + std::to_string(pbt::kProtocolMinor)),
      std::string::npos)
      << line;
  EXPECT_NE(line.find("SQLite schema " + std::to_string(pbt::SqliteStore::kSchemaVersion)), std::string::npos) << line;
  EXPECT_NE(line.find("PostgreSQL"), std::string::npos) << line;
}

}  // namespace

TEST(Version, PrintsVersionsAndExitsZero) {
  auto dir = temp_dir("version");
  auto r = run_pbt({"--version"}, dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, pbt::version_text() + "\n");
  expect_versions(r.out);
  EXPECT_EQ(std::string(pbt::kVersion), std::to_string(PBT_VERSION_MAJOR) + "." + std::to_string(PBT_VERSION_MINOR) +
                                            "." + std::to_string(PBT_VERSION_PATCH));
}

TEST(Version, EveryWorkerLogStartsWithIt) {
  auto dir = temp_dir("version-logs");
  auto r = run_pbt({"run", kToyConfig, "--run", dir + "/run", "--workers", "2", "--quiet"}, dir);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  int logs = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/run/logs")) {
    ++logs;
    std::string line = first_line(e.path().string());
    // "<time> [<worker id>] pbt 0.1.0 (...)"
    EXPECT_NE(line.find("] " + pbt::version_text()), std::string::npos) << e.path() << ": " << line;
    expect_versions(line);
  }
  EXPECT_EQ(logs, 2);

  // A worker started by hand, with its own log file.
  const std::string log = dir + "/mine.log";
  r = run_pbt({"worker", "--store", dir + "/run/store.db", "--experiment", "toy", "--log", log}, dir);
  ASSERT_EQ(r.code, 0) << r.err;
  std::string line = first_line(log);
  EXPECT_NE(line.find("] " + pbt::version_text()), std::string::npos) << line;
}
