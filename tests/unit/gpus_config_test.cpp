// [workers] gpus and workers_per_gpu: read, checked with the field named, and dealt to
// worker slots round robin.
#include <gtest/gtest.h>

#include "pbt/config.hpp"
#include "common/config_checks.hpp"

using namespace pbt;
using test::error_of;
using test::kGood;

namespace {
std::string with_workers(const std::string& table) { return kGood + "\n[workers]\n" + table; }
}  // namespace

TEST(GpusConfig, ReadWithDefaults) {
  const ExperimentConfig plain = parse_config(kGood, "exp.toml");
  EXPECT_TRUE(plain.gpus.empty()) << "no gpus: CUDA_VISIBLE_DEVICES is left alone";
  EXPECT_EQ(plain.workers_per_gpu, 1);
  const ExperimentConfig c = parse_config(with_workers("count = 4\ngpus = [3, 1]\nworkers_per_gpu = 2\n"), "exp.toml");
  EXPECT_EQ(c.gpus, (std::vector<int>{3, 1}));
  EXPECT_EQ(c.workers_per_gpu, 2);
}

TEST(GpusConfig, BadValuesNameTheFieldAndTheValue) {
  EXPECT_EQ(error_of(with_workers("gpus = [0, -2]\n")),
            "exp.toml: workers.gpus: a GPU id must be an integer from 0 to 10^6, got -2 in [0,-2]");
  EXPECT_EQ(error_of(with_workers("gpus = [2, 0, 2]\n")), "exp.toml: workers.gpus: GPU 2 is listed twice in [2,0,2]");
  EXPECT_EQ(error_of(with_workers("gpus = [\"0\"]\n")),
            "exp.toml: workers.gpus: expected an array of integers, got \"0\" in [\"0\"]");
  EXPECT_EQ(error_of(with_workers("gpus = 0\n")),
            "exp.toml: workers.gpus: expected an array of integers, got an integer");
  EXPECT_NE(error_of(with_workers("gpus = []\n")).find("exp.toml: workers.gpus: names no device"), std::string::npos);
  EXPECT_NE(error_of(with_workers("gpus = [0]\nworkers_per_gpu = 0\n")).find("exp.toml: workers.workers_per_gpu: "),
            std::string::npos);
  EXPECT_EQ(error_of(with_workers("count = 3\ngpus = [0]\nworkers_per_gpu = 2\n")),
            "exp.toml: workers.gpus: 3 workers do not fit 1 GPU x 2 workers_per_gpu = 2: name more GPUs, raise "
            "workers_per_gpu or start fewer workers");
  EXPECT_EQ(error_of(with_workers("count = 4\ngpus = [0, 1]\nworkers_per_gpu = 2\n")), "");
  EXPECT_EQ(error_of(with_workers("gpus = [0]\nworkers_per_gpu = 3\n")), "") << "fewer workers than places is fine";
}

TEST(GpusConfig, SlotsTakeTheGpusRoundRobin) {
  const std::vector<int> gpus = {4, 7};
  std::vector<int> got;
  for (int slot = 0; slot < 5; ++slot) got.push_back(gpu_of_slot(gpus, slot));
  EXPECT_EQ(got, (std::vector<int>{4, 7, 4, 7, 4}));
  EXPECT_EQ(gpus_problem(4, 2, 2), "");
  EXPECT_NE(gpus_problem(5, 2, 2), "");
  EXPECT_EQ(gpu_ids_problem({0, 1, 5}), "");
  EXPECT_EQ(gpu_ids_problem({1, 1}), "GPU 1 is listed twice");
}
