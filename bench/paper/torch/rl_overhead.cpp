// The engine's own overhead on a real trainable (A2C on CartPole-v1, 10 members, 30k frames
// each, ready every 3k frames): a control pair where compute cannot differ. PBT with
// truncation exploit copying weights only and a perturb factor of 1.0 (every member keeps its
// own h, hence its own unroll length and cost per frame) against the same members (same
// experiment seed, same initial h) with exploit "none". Each run is a real `pbt run` with K
// worker processes; the order of the pair alternates seed by seed so that the load of the
// shared machine falls on both alike. Reported: wall-clock and CPU seconds (pbt run and its
// workers) with exploit / without.
//
// The comparison of PBT with random search on these environments (what this program measured
// before) is a study: examples/studies/rl_{cartpole,acrobot,pendulum}.toml (docs/results/rl.md).
//
//   rl_overhead [--seeds N] [--workers K] [--runs DIR] [--out FILE]
#include <sys/resource.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "pbt/pbt.hpp"
#include "bench_common.hpp"

namespace fs = std::filesystem;
using bench::fmt;

namespace {

constexpr int kPopulation = 10;
constexpr int kBudgetSteps = 30;  // x 1000 frames per member
constexpr int kInterval = 3;
constexpr int kFirstSeed = 100;  // apart from the comparison's seeds 0..19

// The config of examples/studies/rl_cartpole.toml's random-search variant, without the
// trainable's own fresh-episode scoring (fresh_episodes = 0: cost that is not the engine's);
// `pbt` adds the copy that cannot change compute.
std::string config_text(int seed, bool pbt) {
  std::ostringstream t;
  t << "name = \"cartpole\"\nseed = " << seed << "\npopulation = " << kPopulation << "\n\n[trainable]\n"
    << "kind = \"rl\"\nenv = \"CartPole-v1\"\nenvs = 8\nframes_per_step = 1000\nfresh_episodes = 0\ngamma = 0.99\n"
    << "reward_scale = 1.0\n\n[budget]\nsteps = " << kBudgetSteps << "\n\n[ready]\ninterval = " << kInterval
    << "\neval_every = " << kInterval << "\nmin_step = 0\n\n";
  if (pbt)
    t << "[exploit]\nstrategy = \"truncation\"\ncopy = \"weights\"\n\n"
      << "[explore]\nstrategy = \"perturb\"\nfactors = [1.0]\nresample_probability = 0.0\n";
  else t << "[exploit]\nstrategy = \"none\"\n\n[explore]\nstrategy = \"none\"\n";
  t << "\n[space.lr]\ntype = \"float\"\nlow = 0.0001\nhigh = 0.03\nlog = true\n"
    << "\n[space.entropy_cost]\ntype = \"float\"\nlow = 0.0001\nhigh = 0.1\nlog = true\n"
    << "\n[space.unroll_length]\ntype = \"int\"\nlow = 4\nhigh = 64\nlog = true\n";
  return t.str();
}

double children_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_CHILDREN, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

struct RunResult {
  double wall = 0;
  double cpu = 0;  // CPU seconds of pbt run and its workers
  int exploits = 0;
};

RunResult run_one(int seed, bool pbt, int workers, const fs::path& runs) {
  const fs::path dir = runs / ("cartpole-" + std::to_string(seed) + (pbt ? "-pbt" : "-none"));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path cfg = dir / "config.in.toml";
  std::ofstream(cfg) << config_text(seed, pbt);
  const std::string cmd = std::string(PBT_BINARY) + " run " + cfg.string() + " --run " + (dir / "run").string() +
                          " --workers " + std::to_string(workers) + " --quiet > " + (dir / "pbt.log").string() +
                          " 2>&1";
  RunResult r;
  const double cpu0 = children_cpu_seconds();
  const auto start = std::chrono::steady_clock::now();
  const int rc = std::system(cmd.c_str());
  r.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.cpu = children_cpu_seconds() - cpu0;
  if (rc != 0) throw std::runtime_error("failed (" + std::to_string(rc) + "): " + cmd);
  auto store = pbt::open_store("sqlite:" + (dir / "run" / "store.db").string());
  for (const auto& ev : store->events("cartpole"))
    if (ev.kind == pbt::EventKind::exploit) r.exploits++;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  int seeds = 3, workers = 2;
  std::string out_path;
  fs::path runs = fs::temp_directory_path() / "rl_overhead_runs";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--seeds") seeds = std::stoi(next());
    else if (a == "--workers") workers = std::stoi(next());
    else if (a == "--runs") runs = next();
    else if (a == "--out") out_path = next();
    else {
      std::cerr << "usage: rl_overhead [--seeds N] [--workers K] [--runs DIR] [--out FILE]\n";
      return 2;
    }
  }
  if (seeds < 1 || workers < 1) {
    std::cerr << "--seeds >= 1, --workers >= 1\n";
    return 2;
  }
  std::ostringstream cmdline;
  cmdline << "./build/bench/paper/rl_overhead";
  for (int i = 1; i < argc; ++i) cmdline << " " << argv[i];

  const std::string load_at_start = bench::loadavg();
  const auto t0 = std::chrono::steady_clock::now();
  try {
    std::vector<double> ratios, cpu_ratios, with, without;
    int copies = 0;
    for (int k = 0; k < seeds; ++k) {
      const int seed = kFirstSeed + k;
      RunResult a, b;
      if (k % 2 == 0) a = run_one(seed, true, workers, runs), b = run_one(seed, false, workers, runs);
      else b = run_one(seed, false, workers, runs), a = run_one(seed, true, workers, runs);
      ratios.push_back(a.wall / b.wall);
      cpu_ratios.push_back(a.cpu / b.cpu);
      with.push_back(a.wall), without.push_back(b.wall);
      copies += a.exploits;
      std::cerr << "seed " << seed << ": " << fmt(a.wall, 1) << " s vs " << fmt(b.wall, 1) << " s wall, "
                << fmt(a.cpu, 1) << " s vs " << fmt(b.cpu, 1) << " s cpu, " << a.exploits << " copies\n";
    }
    std::ostringstream md;
    md << "# The engine's overhead on A2C (CartPole-v1)\n\nReproduce (from the repository root):\n\n```sh\n"
       << "cmake -S . -B build -DPBT_WITH_TORCH=ON -DPBT_BUILD_BENCH=ON && cmake --build build -j2 --target pbt "
          "rl_overhead\n"
       << cmdline.str() << "\n```\n\n"
       << bench::machine_markdown(load_at_start) << "\n"
       << "Engine overhead (CartPole-v1, " << kPopulation << " members, " << kBudgetSteps << "k frames each, "
       << workers << " workers, " << seeds << " seeds " << kFirstSeed << ".." << kFirstSeed + seeds - 1
       << ", order alternated): truncation exploit that copies weights only and a perturb factor of 1.0, so every "
          "member keeps its own h and its own cost per frame, against the same members with exploit \"none\". "
       << copies << " copies in all. Wall-clock with exploit / without: median **" << fmt(bench::median(ratios), 3)
       << "** (per seed:";
    for (double r : ratios) md << " " << fmt(r, 3);
    md << "); median wall " << fmt(bench::median(with), 1) << " s vs " << fmt(bench::median(without), 1)
       << " s. CPU seconds with / without (pbt run and its workers): median **" << fmt(bench::median(cpu_ratios), 3)
       << "** (per seed:";
    for (double r : cpu_ratios) md << " " << fmt(r, 3);
    const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    md << ").\n\nWhole benchmark: " << fmt(total / 60, 1) << " min wall.\n";
    bench::emit(md.str(), out_path);
  } catch (const std::exception& ex) {
    std::cerr << "rl_overhead: " << ex.what() << "\n";
    return 1;
  }
  return 0;
}
