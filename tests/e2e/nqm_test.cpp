// examples/nqm.toml for real: `pbt run` trains the noisy quadratic model's 16 members to the
// budget and `pbt best --json` reports the held-out `true_loss` beside the noisy score.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "pbt/store.hpp"
#include "process_util.hpp"
#include "run_checks.hpp"

using namespace e2e;

TEST(NqmExample, RunsToTheBudgetAndBestReportsTheTrueLoss) {
  const std::string dir = temp_dir("nqm");
  const std::string run = dir + "/run";
  Result r = run_pbt({"run", std::string(PBT_SOURCE_DIR) + "/examples/nqm.toml", "--run", run, "--quiet"}, dir);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  {
    auto store = pbt::open_store("sqlite:" + run + "/store.db");
    auto pop = store->population("nqm");
    ASSERT_EQ(pop.size(), 16u);
    for (const auto& m : pop) {
      EXPECT_TRUE(m.done) << "member " << m.id;
      EXPECT_EQ(m.step, 2000) << "member " << m.id;
    }
  }
  Result b = run_pbt({"best", "--run", run, "--json"}, dir);
  ASSERT_EQ(b.code, 0) << b.out << b.err;
  const auto j = nlohmann::json::parse(b.out);
  ASSERT_TRUE(j["metrics"].contains("true_loss")) << b.out;
  const double loss = j["metrics"]["true_loss"].get<double>();
  // ½ Σ 1/i over 100 directions is 2.59 at the start; any lr in [0.001, 1] trained 2000 steps
  // ends below it, and a loss is never negative.
  EXPECT_GT(loss, 0);
  EXPECT_LT(loss, 2.59);
  // The score is minus a noisy estimate of the same loss (its sd here is about 0.01).
  EXPECT_NEAR(-j["score"].get<double>(), loss, 0.1);
  EXPECT_TRUE(j["h"].contains("lr")) << b.out;
}
