// Deep RL: PBT (t-test), PBT (truncation) and random search (the same population with
// exploit and explore "none", the paper's baseline), side by side: the same population
// size (10), the same initial hyperparameter samples (same experiment seed), the same
// budget of environment frames per member. Every run is a real `pbt run` with K worker
// processes; the conditions are interleaved seed by seed so the load of the shared
// machine falls on all of them alike.
//
// After each run the bench loads every member's final checkpoint and scores its policy
// (sampled actions, as trained; the best member also greedily) on 100 fresh episodes (a stream training never used, the
// same episodes for every condition at a seed): the best member is the one with the highest final training score (what
// `pbt best` picks), its fresh return is the figure reported.
//
// Cost: frames per second per worker, and the engine's overhead measured on a control
// pair where compute cannot differ: truncation exploit copying weights only with a
// perturb factor of 1.0 (every member keeps its own h, hence its own unroll length and
// cost per frame) against the same members with exploit "none".
//
//   rl_pbt [--env NAME]... [--seeds N] [--overhead-seeds N] [--workers K] [--runs DIR] [--out FILE]
#include <sys/resource.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "pbt/pbt.hpp"
#include "bench_common.hpp"
#include "trainables/torch/rl/a2c.hpp"

namespace fs = std::filesystem;
using bench::fmt;

namespace {

struct EnvBench {
  std::string env, tag;
  int budget_steps;  // engine steps per member (x frames_per_step frames)
  int interval;      // ready every this many steps
  double reward_scale;
  double gamma;  // the discount: Pendulum's costs are immediate, a short horizon learns faster
  int seeds;     // default number of seeds (--seeds overrides it for every environment)
  int min_step;  // no exploit before this step (see kEnvs)
};

// Sized so that the whole bench fits in about 25 minutes on 2 shared cores. Pendulum gets
// 500k frames per member: A2C does not learn it at all in 30k (the first version of this
// bench), and does in 300-600k. CartPole and Acrobot runs take seconds, so they get 20
// seeds: at 5, a single seed moved CartPole's medians. On Pendulum no exploit happens
// before 150k frames: until A2C starts to learn, the fast learners score worst (their
// policy first drifts away from the random one), so earlier t-tests copied slow learners
// over them and two seeds of five never learned (docs/results/rl.md).
const std::vector<EnvBench> kEnvs = {
    {"CartPole-v1", "cartpole", 30, 3, 1.0, 0.99, 20, 0},
    {"Acrobot-v1", "acrobot", 30, 3, 1.0, 0.99, 20, 0},
    {"Pendulum-v1", "pendulum", 500, 25, 0.1, 0.95, 5, 150},
};

struct Condition {
  std::string name, exploit, explore;
  std::string extra;  // more [exploit]/[explore] lines
};

const Condition kTTest{"PBT (t-test)", "ttest", "perturb", ""};
const Condition kTrunc{"PBT (truncation)", "truncation", "perturb", ""};
const Condition kRandom{"random search", "none", "none", ""};
const Condition kOverheadPbt{"overhead control: truncation, copy weights, factor 1.0", "truncation", "perturb", ""};

constexpr int kPopulation = 10;
constexpr int kFramesPerStep = 1000;
constexpr int kEnvCopies = 8;
constexpr int kFreshEpisodes = 100;

nlohmann::json trainable_json(const EnvBench& e) {
  return {
      {"env", e.env},     {"envs", kEnvCopies}, {"frames_per_step", kFramesPerStep}, {"reward_scale", e.reward_scale},
      {"gamma", e.gamma}, {"fresh_episodes", 0}};  // the bench scores the final members itself
}

std::string config_text(const EnvBench& e, const Condition& c, int seed, bool overhead) {
  std::ostringstream t;
  t.precision(17);
  t << "name = \"" << e.tag << "\"\nseed = " << seed << "\npopulation = " << kPopulation << "\n\n[trainable]\n";
  t << "kind = \"rl\"\n";
  const nlohmann::json tj = trainable_json(e);
  for (const auto& [k, v] : tj.items()) t << k << " = " << v.dump() << "\n";
  t << "\n[budget]\nsteps = " << e.budget_steps << "\n\n[ready]\ninterval = " << e.interval
    << "\neval_every = " << e.interval << "\nmin_step = " << e.min_step << "\n\n";
  t << "[exploit]\nstrategy = \"" << c.exploit << "\"\n";
  if (overhead) t << "copy = \"weights\"\n";
  t << "\n[explore]\nstrategy = \"" << c.explore << "\"\n";
  if (c.explore == "perturb") {
    if (overhead) t << "factors = [1.0]\nresample_probability = 0.0\n";
    else t << "factors = [0.8, 1.2]\nresample_probability = 0.25\n";
  }
  // The priors of examples/*.toml: wide, log-scale.
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
  double cpu = 0;                               // CPU seconds of pbt run and its workers
  std::map<std::int64_t, double> best_by_step;  // max training score over members at each eval step
  double best_train = 0, best_fresh = 0, best_greedy = 0, mean_fresh = 0, mean_train = 0;
  std::int64_t reach_frames = -1;  // population frames when the best training score first >= threshold
  std::int64_t hold_frames = -1;   // ... and from which it stays >= threshold to the end
  int exploits = 0;
};

RunResult run_one(const EnvBench& e, const Condition& c, int seed, bool overhead, int workers, const fs::path& runs) {
  const fs::path dir = runs / (e.tag + "-" + std::to_string(seed) + "-" + c.exploit + (overhead ? "-ovh" : ""));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path cfg = dir / "config.in.toml";
  {
    std::ofstream f(cfg);
    f << config_text(e, c, seed, overhead);
  }
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
  for (const auto& p : store->scores(e.tag)) {
    auto it = r.best_by_step.find(p.step);
    if (it == r.best_by_step.end()) r.best_by_step[p.step] = p.score;
    else it->second = std::max(it->second, p.score);
  }
  const auto spec = pbt::rl::env_spec(e.env);
  if (spec.has_threshold)
    for (const auto& [step, s] : r.best_by_step) {
      if (s >= spec.threshold) {
        if (r.reach_frames < 0) r.reach_frames = step * kFramesPerStep * kPopulation;
        if (r.hold_frames < 0) r.hold_frames = step * kFramesPerStep * kPopulation;
      } else {
        r.hold_frames = -1;
      }
    }
  for (const auto& ev : store->events(e.tag))
    if (ev.kind == pbt::EventKind::exploit) r.exploits++;

  const auto opts = pbt::rl::read_a2c_options(trainable_json(e), "bench");
  double best_score = -std::numeric_limits<double>::infinity();
  double sum_fresh = 0, sum_train = 0;
  for (const auto& m : store->population(e.tag)) {
    if (!m.done || !m.score) throw std::runtime_error(dir.string() + ": member " + std::to_string(m.id) + " not done");
    pbt::rl::A2cTrainable t(opts, m.id, 0);
    const std::string bytes = store->checkpoint(m.checkpoint);
    pbt::CheckpointReader rd(bytes);
    t.load(rd);
    // The same fresh episodes for every member and condition of this seed.
    double fresh = t.fresh_return(kFreshEpisodes, 0xF8E5000ULL + seed);
    if (!std::isfinite(fresh)) fresh = spec.worst_return;
    auto greedy = [&] {
      const double g = t.fresh_return(kFreshEpisodes, 0xF8E5000ULL + seed, true);
      return std::isfinite(g) ? g : spec.worst_return;
    };
    const double train = std::isfinite(*m.score) ? *m.score : spec.worst_return;
    sum_fresh += fresh;
    sum_train += train;
    if (train > best_score) best_score = train, r.best_train = train, r.best_fresh = fresh, r.best_greedy = greedy();
  }
  r.mean_fresh = sum_fresh / kPopulation;
  r.mean_train = sum_train / kPopulation;
  return r;
}

std::string reach_cell(const std::vector<RunResult>& runs, bool hold) {
  std::vector<double> v;
  int never = 0;
  for (const auto& r : runs) {
    const std::int64_t f = hold ? r.hold_frames : r.reach_frames;
    if (f < 0) never++, v.push_back(std::numeric_limits<double>::infinity());
    else v.push_back(static_cast<double>(f));
  }
  const double m = bench::median(v);
  std::string out = std::isinf(m) ? "not reached" : fmt(m / 1e3, 0) + "k";
  if (never) out += " (" + std::to_string(never) + "/" + std::to_string(runs.size()) + " never)";
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int seeds_override = 0, overhead_seeds = 3, workers = 2;
  std::string out_path;
  fs::path runs = fs::temp_directory_path() / "rl_pbt_runs";
  std::vector<EnvBench> envs;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--seeds") seeds_override = std::stoi(next());
    else if (a == "--overhead-seeds") overhead_seeds = std::stoi(next());
    else if (a == "--workers") workers = std::stoi(next());
    else if (a == "--runs") runs = next();
    else if (a == "--out") out_path = next();
    else if (a == "--env") {
      const std::string name = next();
      bool found = false;
      for (const auto& e : kEnvs)
        if (e.env == name || e.tag == name) envs.push_back(e), found = true;
      if (!found) {
        std::cerr << "unknown --env " << name << "\n";
        return 2;
      }
    } else {
      std::cerr << "usage: rl_pbt [--env NAME]... [--seeds N] [--overhead-seeds N] [--workers K] [--runs DIR] "
                   "[--out FILE]\n";
      return 2;
    }
  }
  if (envs.empty()) envs = kEnvs;
  std::ostringstream cmdline;
  cmdline << "./build/bench/paper/rl_pbt";
  for (int i = 1; i < argc; ++i) cmdline << " " << argv[i];

  const std::string load_at_start = bench::loadavg();
  const auto t0 = std::chrono::steady_clock::now();
  pbt::register_builtin_trainables();
  const std::vector<Condition> conds = {kTTest, kTrunc, kRandom};
  std::ostringstream md;
  md << "# Deep RL: PBT vs random search at equal budget (A2C on classic control)\n\n"
     << "Reproduce (from the repository root):\n\n```sh\n"
     << "cmake -S . -B build && cmake --build build -j2 --target pbt rl_pbt\n"
     << cmdline.str() << "\n```\n\n"
     << bench::machine_markdown(load_at_start) << "\n";
  std::ostringstream cost;
  try {
    for (const auto& e : envs) {
      const int seeds = seeds_override > 0 ? seeds_override : e.seeds;
      std::map<std::string, std::vector<RunResult>> res;
      for (int seed = 0; seed < seeds; ++seed)
        for (int k = 0; k < 3; ++k) {  // rotate the order: no condition always runs first
          const Condition& c = conds[(k + seed) % 3];
          res[c.name].push_back(run_one(e, c, seed, false, workers, runs));
          const auto& r = res[c.name].back();
          std::cerr << e.env << " seed " << seed << " " << c.name << ": best fresh " << fmt(r.best_fresh, 1)
                    << " (greedy " << fmt(r.best_greedy, 1) << "), best train " << fmt(r.best_train, 1)
                    << ", mean fresh " << fmt(r.mean_fresh, 1) << ", wall " << fmt(r.wall, 1) << " s, cpu "
                    << fmt(r.cpu, 1) << " s, exploits " << r.exploits << "\n";
        }
      const auto spec = pbt::rl::env_spec(e.env);
      const double frames = static_cast<double>(e.budget_steps) * kFramesPerStep;
      md << "## " << e.env << "\n\n"
         << "Budget " << fmt(frames / 1e3, 0) << "k frames per member (" << kEnvCopies << " copies), ready every "
         << e.interval * kFramesPerStep / 1000 << "k frames"
         << (e.min_step > 0 ? " from " + std::to_string(e.min_step * kFramesPerStep / 1000) + "k frames on" : "")
         << ", discount " << e.gamma << ", population " << kPopulation << ", " << seeds
         << " seeds (experiment seeds 0.." << seeds - 1
         << "; the same seed gives every condition the same initial h).\n\n"
         << "| condition | best member: fresh return (median) | (mean) | min..max over seeds | best member: training "
            "score "
            "(median) | population mean fresh return (median) | population frames until the best training score "
            "first reaches "
         << (spec.has_threshold ? fmt(spec.threshold, 0) : std::string("-"))
         << " (median) | ... reaches it and holds it to the end (median) | exploits (median) |\n"
         << "|---|---|---|---|---|---|---|---|---|\n";
      for (const auto& c : conds) {
        const auto& v = res[c.name];
        std::vector<double> bf, bt, mf, ex;
        for (const auto& r : v)
          bf.push_back(r.best_fresh), bt.push_back(r.best_train), mf.push_back(r.mean_fresh), ex.push_back(r.exploits);
        md << "| " << c.name << " | " << fmt(bench::median(bf), 1) << " | " << fmt(bench::mean(bf), 1) << " | "
           << fmt(bench::min_of(bf), 1) << ".." << fmt(bench::max_of(bf), 1) << " | " << fmt(bench::median(bt), 1)
           << " | " << fmt(bench::median(mf), 1) << " | "
           << (spec.has_threshold ? reach_cell(v, false) : std::string("-")) << " | "
           << (spec.has_threshold ? reach_cell(v, true) : std::string("-")) << " | " << fmt(bench::median(ex), 0)
           << " |\n";
      }
      md << "\nPer seed, best member's fresh return (" << kFreshEpisodes
         << " episodes, sampled actions / greedy actions):\n\n| seed |";
      for (const auto& c : conds) md << " " << c.name << " |";
      md << "\n|---|";
      for (std::size_t k = 0; k < conds.size(); ++k) md << "---|";
      md << "\n";
      for (int s = 0; s < seeds; ++s) {
        md << "| " << s << " |";
        for (const auto& c : conds)
          md << " " << fmt(res[c.name][s].best_fresh, 1) << " / " << fmt(res[c.name][s].best_greedy, 1) << " |";
        md << "\n";
      }
      md << "| median |";
      for (const auto& c : conds) {
        std::vector<double> bf, bg;
        for (const auto& r : res[c.name]) bf.push_back(r.best_fresh), bg.push_back(r.best_greedy);
        md << " " << fmt(bench::median(bf), 1) << " / " << fmt(bench::median(bg), 1) << " |";
      }
      md << "\n";
      md << "\nLearning curve: the population's best training score (mean of the last 10 episodic returns) at "
            "each ready step, median over seeds.\n\n| frames per member |";
      for (const auto& c : conds) md << " " << c.name << " |";
      md << "\n|---|";
      for (std::size_t k = 0; k < conds.size(); ++k) md << "---|";
      md << "\n";
      for (int step = e.interval; step <= e.budget_steps; step += e.interval) {
        md << "| " << step * kFramesPerStep / 1000 << "k |";
        for (const auto& c : conds) {
          std::vector<double> v;
          for (const auto& r : res[c.name]) {
            auto it = r.best_by_step.find(step);
            if (it != r.best_by_step.end()) v.push_back(it->second);
          }
          md << " " << fmt(bench::median(v), 1) << " |";
        }
        md << "\n";
      }
      md << "\n";
      // Cost of this environment's runs.
      cost << "| " << e.env << " |";
      for (const auto& c : conds) {
        std::vector<double> fps, fpc;
        for (const auto& r : res[c.name]) {
          fps.push_back(frames * kPopulation / (r.wall * workers));
          fpc.push_back(frames * kPopulation / r.cpu);
        }
        cost << " " << fmt(bench::median(fps), 0) << " (" << fmt(bench::median(fpc), 0) << ") |";
      }
      std::vector<double> ratio_t, ratio_r;
      for (int s = 0; s < seeds; ++s) {
        ratio_t.push_back(res[kTTest.name][s].wall / res[kRandom.name][s].wall);
        ratio_r.push_back(res[kTrunc.name][s].wall / res[kRandom.name][s].wall);
      }
      cost << " " << fmt(bench::median(ratio_t), 3) << " | " << fmt(bench::median(ratio_r), 3) << " |\n";
    }

    md << "## Cost\n\n"
       << "Environment frames per second per worker (population frames / (wall-clock x " << workers
       << " workers), median over seeds; in brackets: frames per CPU second of pbt run and its workers, which the "
          "other jobs on the machine disturb less; each frame includes acting, learning and the engine), and the "
          "wall-clock "
          "of each PBT run divided by that of random search at the same seed. Those ratios also carry the "
          "difference in compute that PBT's h causes (a shorter unroll means more updates per frame).\n\n"
       << "| environment |";
    for (const auto& c : conds) md << " " << c.name << " frames/s/worker |";
    md << " wall t-test / random | wall truncation / random |\n|---|---|---|---|---|---|\n" << cost.str() << "\n";

    if (overhead_seeds > 0) {
      // The engine's own overhead: the same members, the same h and so the same compute,
      // with and without exploit (copies, checkpoint loads, population reads).
      const EnvBench& e = kEnvs[0];
      std::vector<double> ratios, cpu_ratios, with, without;
      int copies = 0;
      for (int seed = 0; seed < overhead_seeds; ++seed) {
        RunResult a, b;
        if (seed % 2 == 0)
          a = run_one(e, kOverheadPbt, 100 + seed, true, workers, runs),
          b = run_one(e, kRandom, 100 + seed, false, workers, runs);
        else
          b = run_one(e, kRandom, 100 + seed, false, workers, runs),
          a = run_one(e, kOverheadPbt, 100 + seed, true, workers, runs);
        ratios.push_back(a.wall / b.wall);
        cpu_ratios.push_back(a.cpu / b.cpu);
        with.push_back(a.wall), without.push_back(b.wall);
        copies += a.exploits;
        std::cerr << "overhead seed " << seed << ": " << fmt(a.wall, 1) << " s vs " << fmt(b.wall, 1) << " s wall, "
                  << fmt(a.cpu, 1) << " s vs " << fmt(b.cpu, 1) << " s cpu, " << a.exploits << " copies\n";
      }
      md << "Engine overhead (" << e.env << ", " << overhead_seeds << " seeds 100.." << 99 + overhead_seeds
         << ", order alternated): truncation exploit that copies weights only and a perturb factor of 1.0, so every "
            "member keeps its own h and its own cost per frame, against the same members with exploit \"none\". "
         << copies << " copies in all. Wall-clock with exploit / without: median **" << fmt(bench::median(ratios), 3)
         << "** (per seed:";
      for (double r : ratios) md << " " << fmt(r, 3);
      md << "); median wall " << fmt(bench::median(with), 1) << " s vs " << fmt(bench::median(without), 1)
         << " s. CPU seconds with / without (pbt run and its workers): median **" << fmt(bench::median(cpu_ratios), 3)
         << "** (per seed:";
      for (double r : cpu_ratios) md << " " << fmt(r, 3);
      md << ").\n\n";
    }
    const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    md << "Whole benchmark: " << fmt(total / 60, 1) << " min wall.\n";
    bench::emit(md.str(), out_path);
  } catch (const std::exception& ex) {
    std::cerr << "rl_pbt: " << ex.what() << "\n";
    return 1;
  }
  return 0;
}
