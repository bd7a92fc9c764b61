// Ctrl-C on `pbt run` always ends it: a worker still in a long interval after the grace
// period is killed, instead of `pbt run` waiting for the interval to finish.
#include <gtest/gtest.h>

#include "pbt/store.hpp"
#include "common/toy_config.hpp"
#include "process_util.hpp"

using namespace e2e;

TEST(Interrupt, PbtRunEndsSoonAfterCtrlCEvenWhenAWorkerIsInALongInterval) {
  std::string dir = temp_dir("interrupt");
  std::string config = dir + "/slow.toml";
  // One step call sleeps 4 x 30 s = 120 s: the worker sees SIGTERM only after that.
  std::ofstream(config) << pbt::test::ToyConfig("slow").population(2).sleep_ms(30000).steps(8).text();
  pid_t pid = spawn({PBT_BINARY, "run", config, "--run", dir + "/run"}, dir + "/run.out", dir + "/run.err");
  // Wait until the worker holds the member (it is then inside its 120 s step).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);  // hang guard only
  bool leased = false;
  int early = 0;
  while (!leased && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (waitpid(pid, &early, WNOHANG) == pid) break;  // pbt run failed to start
    if (!std::filesystem::exists(dir + "/run/store.db")) continue;
    try {
      auto store = pbt::open_store("sqlite:" + dir + "/run/store.db");
      for (const auto& m : store->population("slow")) leased |= !m.owner.empty();
    } catch (const std::exception&) {
      // not created yet
    }
  }
  ASSERT_TRUE(leased) << read_file(dir + "/run.out") << read_file(dir + "/run.err");

  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(kill(pid, SIGINT), 0);
  int status = 0;
  pid_t done = 0;
  // The grace period is 10 s; the interval would take 120 s. 60 s is the hang guard.
  while ((done = waitpid(pid, &status, WNOHANG)) == 0 &&
         std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60))
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  if (done == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    FAIL() << "pbt run still running 60 s after Ctrl-C\n" << read_file(dir + "/run.out");
  }
  const std::string out = read_file(dir + "/run.out");
  EXPECT_TRUE(WIFEXITED(status)) << out;
  EXPECT_EQ(WEXITSTATUS(status), 130) << out;
  EXPECT_NE(out.find("after the interrupt; killing them"), std::string::npos) << out;
  EXPECT_NE(out.find("stopped: experiment 'slow'"), std::string::npos) << out;
  std::filesystem::remove_all(dir);
}
