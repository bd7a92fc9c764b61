// GPU placement without a GPU: what a child trainer sees in CUDA_VISIBLE_DEVICES under
// `pbt run --gpus`, [workers] gpus and workers_per_gpu, and `pbt worker --gpus`; and the
// refusals of bad ids and of more workers than places.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <map>
#include <regex>

#include <nlohmann/json.hpp>

#include "process_util.hpp"

using namespace e2e;
using nlohmann::json;

namespace {

std::string python() { return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3"; }

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// A config whose trainer (tests/process/env_trainer.py) appends what it sees to dir/seen.
std::string env_config(const std::string& dir, const std::string& name, int population, int workers,
                       const std::string& workers_extra = "", const std::string& kill_worker_of = "") {
  const std::string path = dir + "/" + name + ".toml";
  std::ofstream(path) << "name = \"" << name << "\"\npopulation = " << population << "\n"
                      << "[trainable]\nkind = \"process\"\nargv = [\"" << python() << "\", \"" << PBT_SOURCE_DIR
                      << "/tests/process/env_trainer.py\", \"" << dir << "/seen\""
                      << (kill_worker_of.empty() ? "" : ", \"--kill-worker-of\", \"" + kill_worker_of + "\"") << "]\n"
                      << "[budget]\nsteps = 4\n[ready]\ninterval = 2\n"
                      << "[space.h0]\nlow = 0.0\nhigh = 1.0\n[space.h1]\nlow = 0.0\nhigh = 1.0\n"
                      << "[workers]\ncount = " << workers << "\n"
                      << workers_extra;
  return path;
}

// Worker pid -> the CUDA_VISIBLE_DEVICES its log's first line reports ("" when unset).
std::map<long, std::string> worker_devices(const std::string& logs_dir) {
  std::map<long, std::string> out;
  const std::regex joined(R"(\[[^\]]*:(\d+)\] joined experiment '[^']*' on [^,\n]*(, CUDA_VISIBLE_DEVICES=(\S*))?)");
  for (const auto& e : std::filesystem::directory_iterator(logs_dir)) {
    const std::string log = read_file(e.path().string());
    std::smatch m;
    if (std::regex_search(log, m, joined)) out[std::stol(m[1])] = m[3];
  }
  return out;
}

struct Seen {
  long worker = -1;     // the worker among its ancestors, -1: none
  std::string devices;  // "" when unset
};

// What each trainer saw, with the worker that started it.
std::vector<Seen> trainers_seen(const std::string& dir, const std::map<long, std::string>& workers) {
  std::vector<Seen> out;
  std::istringstream in(read_file(dir + "/seen"));
  std::string line;
  while (std::getline(in, line)) {
    const json r = json::parse(line);
    Seen s;
    if (!r["cuda_visible_devices"].is_null()) s.devices = r["cuda_visible_devices"].get<std::string>();
    for (long pid : r["ancestors"].get<std::vector<long>>())
      if (workers.count(pid)) {
        s.worker = pid;
        break;
      }
    out.push_back(s);
  }
  return out;
}

// Runs `pbt run CONFIG ARGS...` in dir/run and checks what every worker and trainer saw:
// worker log i reports `expected[i]`, and every trainer its worker's devices.
void expect_placement(const std::string& dir, const std::string& cfg, const std::vector<std::string>& args,
                      const std::vector<std::string>& expected) {
  std::vector<std::string> full = {"run", cfg, "--run", dir + "/run", "--quiet"};
  full.insert(full.end(), args.begin(), args.end());
  const Result r = run_pbt(full, dir);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const std::string log = read_file(dir + "/run/logs/worker-" + std::to_string(i) + ".log");
    if (expected[i].empty()) {
      EXPECT_FALSE(contains(log, "CUDA_VISIBLE_DEVICES")) << log;
    } else {
      EXPECT_TRUE(contains(log, "CUDA_VISIBLE_DEVICES=" + expected[i] + "\n")) << "worker " << i << ":\n" << log;
    }
  }
  const auto workers = worker_devices(dir + "/run/logs");
  ASSERT_EQ(workers.size(), expected.size());
  const auto seen = trainers_seen(dir, workers);
  ASSERT_GE(seen.size(), 1u) << "no trainer started";
  for (const auto& s : seen) {
    ASSERT_NE(s.worker, -1) << "a trainer whose worker is not among the run's";
    EXPECT_EQ(s.devices, workers.at(s.worker)) << "a trainer sees its worker's devices";
  }
}

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = getenv(name)) old_ = old;
    setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (old_.empty()) unsetenv(name_);
    else setenv(name_, old_.c_str(), 1);
  }

 private:
  const char* name_;
  std::string old_;
};

}  // namespace

// --gpus overrides the config (which names none) and what the environment had.
TEST(Gpus, RunGpusGivesEachWorkerAndItsTrainersOneDevice) {
  const ScopedEnv env("CUDA_VISIBLE_DEVICES", "7");
  const std::string dir = temp_dir("gpus-run");
  const std::string cfg = env_config(dir, "gpus_run", 2, 1);
  expect_placement(dir, cfg, {"--workers", "2", "--gpus", "0,1"}, {"0", "1"});
}

// Round robin by slot: 4 workers on 2 GPUs, 2 each.
TEST(Gpus, WorkersPerGpuSharesADevice) {
  const std::string dir = temp_dir("gpus-share");
  const std::string cfg = env_config(dir, "gpus_share", 4, 4, "gpus = [3, 5]\nworkers_per_gpu = 2\n");
  expect_placement(dir, cfg, {}, {"3", "5", "3", "5"});
}

// The worker that first trains member 1 is killed by its trainer; its replacement (the
// third worker started, logs/worker-2.log) gets the dead worker's slot's GPU. Three GPUs
// for two workers: a replacement placed by its start count (slot 2) would get GPU 6.
TEST(Gpus, AReplacementWorkerGetsItsSlotsGpu) {
  const std::string dir = temp_dir("gpus-replace");
  const std::string cfg = env_config(dir, "gpus_replace", 2, 2, "gpus = [4, 5, 6]\nlease_seconds = 0.5\n", "1");
  const Result r = run_pbt({"run", cfg, "--run", dir + "/run", "--quiet"}, dir);
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "starting a replacement worker")) << r.out;
  const std::string killed = read_file(dir + "/seen.killed");
  ASSERT_TRUE(killed == "4" || killed == "5") << "the killed worker's trainer saw '" << killed << "'";
  const std::string log = read_file(dir + "/run/logs/worker-2.log");
  EXPECT_TRUE(contains(log, "CUDA_VISIBLE_DEVICES=" + killed + "\n")) << log;
  for (const auto& s : trainers_seen(dir, worker_devices(dir + "/run/logs")))
    EXPECT_TRUE(s.devices == "4" || s.devices == "5") << s.devices;
}

// No gpus anywhere: the environment (a launcher's, Slurm's) is passed on untouched.
TEST(Gpus, WithoutGpusTheEnvironmentIsLeftAlone) {
  const ScopedEnv env("CUDA_VISIBLE_DEVICES", "6");
  const std::string dir = temp_dir("gpus-none");
  const std::string cfg = env_config(dir, "gpus_none", 2, 2);
  expect_placement(dir, cfg, {}, {"6", "6"});
}

TEST(Gpus, WorkerGpusSetsTheDevicesOfItsTrainers) {
  const ScopedEnv env("CUDA_VISIBLE_DEVICES", "7");
  const std::string dir = temp_dir("gpus-worker");
  const std::string cfg = env_config(dir, "gpus_worker", 2, 1);
  ASSERT_EQ(run_pbt({"create", cfg, "--run", dir + "/run"}, dir).code, 0);
  const Result r = run_pbt({"worker", "--store", "sqlite:" + dir + "/run/store.db", "--experiment", "gpus_worker",
                            "--gpus", "2,4", "--log", dir + "/run/logs/worker-0.log"},
                           dir);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto workers = worker_devices(dir + "/run/logs");
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_EQ(workers.begin()->second, "2,4");
  const auto seen = trainers_seen(dir, workers);
  ASSERT_GE(seen.size(), 1u);
  for (const auto& s : seen) EXPECT_EQ(s.devices, "2,4");
}

TEST(Gpus, BadIdsAndTooManyWorkersAreRefusedWithTheFieldNamed) {
  const std::string dir = temp_dir("gpus-bad");
  struct Case {
    std::string workers_extra;
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"", {"--gpus", "0,0"}, "--gpus: '0,0': GPU 0 is listed twice"},
      {"", {"--gpus", "0,x"}, "--gpus: '0,x': expected GPU ids, integers >= 0 separated by commas (e.g. 0,1), got 'x'"},
      {"", {"--gpus", "-1"}, "got '-1'"},
      {"", {"--workers", "2", "--gpus", "0"}, "--gpus: 2 workers do not fit 1 GPU x 1 workers_per_gpu = 1"},
      {"gpus = [0, -1]\n", {}, "bad.toml: workers.gpus: a GPU id must be an integer from 0 to 10^6, got -1 in [0,-1]"},
      {"gpus = [1, 1]\n", {}, "bad.toml: workers.gpus: GPU 1 is listed twice in [1,1]"},
      {"gpus = [0.5]\n", {}, "bad.toml: workers.gpus: expected an array of integers, got 0.5"},
      {"gpus = []\n", {}, "bad.toml: workers.gpus: names no device"},
      {"gpus = \"0\"\n", {}, "bad.toml: workers.gpus: expected an array of integers, got a string"},
      {"gpus = [0, 1]\nworkers_per_gpu = 0\n", {}, "bad.toml: workers.workers_per_gpu"},
      {"gpus = [0]\nworkers_per_gpu = 2\n", {"--workers", "3"}, "--workers: 3 workers do not fit 1 GPU x 2"},
  };
  for (const auto& c : cases) {
    // Four members, so three workers are allowed by the population.
    std::ofstream(dir + "/bad.toml") << read_file(env_config(dir, "bad", 4, 1, c.workers_extra));
    std::vector<std::string> args = {"run", dir + "/bad.toml", "--run", dir + "/run"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    const Result r = run_pbt(args, dir);
    EXPECT_EQ(r.code, 2) << c.message << "\n" << r.out << r.err;
    EXPECT_TRUE(contains(r.err, c.message)) << r.err;
  }
  // Too many workers in the config itself.
  std::ofstream(dir + "/bad.toml") << read_file(env_config(dir, "bad", 4, 3, "gpus = [0]\nworkers_per_gpu = 2\n"));
  Result r = run_pbt({"run", dir + "/bad.toml", "--run", dir + "/run"}, dir);
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "bad.toml: workers.gpus: 3 workers do not fit 1 GPU x 2 workers_per_gpu = 2")) << r.err;
  r = run_pbt({"worker", "--store", "sqlite:" + dir + "/none.db", "--experiment", "x", "--gpus", "1,,2"}, dir);
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "--gpus: '1,,2'")) << r.err;
}
