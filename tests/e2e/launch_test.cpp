// Workers are plain processes, so the launchers clusters already use start them:
// here `mpirun` with a few local ranks joins one run.
#include <gtest/gtest.h>

#include "pbt/store.hpp"
#include "common/toy_config.hpp"
#include "process_util.hpp"

using namespace e2e;

TEST(Launch, MpirunRanksJoinOneRun) {
  if (system("command -v mpirun >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "mpirun not found (Debian's openmpi-bin; scripts/setup.sh installs it)";
  std::string dir = temp_dir("mpirun");
  std::string config = dir + "/mpi.toml";
  std::ofstream(config) << pbt::test::ToyConfig("mpi").population(6).sleep_ms(2).steps(40).text();
  ASSERT_EQ(run_pbt({"create", config, "--run", dir + "/run"}, dir).code, 0);
  const std::string uri = "sqlite:" + dir + "/run/store.db";
  pid_t pid = spawn({"/usr/bin/env", "mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "3", PBT_BINARY,
                     "worker", "--store", uri, "--experiment", "mpi"},
                    dir + "/mpi.out", dir + "/mpi.err");
  ASSERT_EQ(wait_exit(pid), 0) << read_file(dir + "/mpi.out") << read_file(dir + "/mpi.err");

  auto store = pbt::open_store(uri);
  for (const auto& m : store->population("mpi")) {
    EXPECT_TRUE(m.done) << "member " << m.id;
    EXPECT_EQ(m.step, 40);
  }
  // Three distinct worker processes took part.
  std::string err = read_file(dir + "/mpi.err");
  int joined = 0;
  for (std::size_t at = 0; (at = err.find("joined experiment 'mpi'", at)) != std::string::npos; ++at) ++joined;
  EXPECT_EQ(joined, 3) << err;
}
