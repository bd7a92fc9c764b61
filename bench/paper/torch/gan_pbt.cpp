// The GAN domain (issue 4): PBT with binary tournament, PBT with truncation and random
// search (no exploit, no explore) on the ring of 8 and the 5x5 grid of 25 Gaussians. Same
// population, same initial h and weights (same seed), same budget; several seeds; the
// methods interleaved within each seed so that load from other jobs hits them alike.
// Each run: TOML text -> parse_config, an in-memory store, one in-process worker.
//
//   gan_pbt [--seeds N] [--population P] [--datasets ring,grid] [--jobs J] [--out FILE]
//           [--ready INTERVAL,MIN_STEP] [--raw FILE] [--from-raw FILE]
//
// --jobs J shares the (dataset, seed) runs out over J processes (fork). The raw results go to
// --raw (default /tmp/gan_pbt_raw.json) before the report is written; --from-raw rewrites
// the report from such a file without training.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pbt/pbt.hpp"
#include "bench_common.hpp"
#include "trainables/torch/torch_trainables.hpp"

namespace {

using bench::fmt;
using nlohmann::json;

struct Method {
  std::string name, exploit, explore;
};
const std::vector<Method> kMethods = {
    {"PBT (tournament)", "tournament", "perturb"},
    {"PBT (truncation)", "truncation", "perturb"},
    {"random search", "none", "none"},
};

// Per dataset: the model, budget and prior, the same for the three methods. The grid needs a
// deeper net, larger batches, 6x the steps and the selection classifier's "not data" class
// (docs/results/gan.md, notes: why the grid was not learned at the ring's setting).
struct Dataset {
  std::string name;
  int steps, interval, min_step;  // [ready]: every `interval` steps, not before `min_step`
  std::string model;              // [trainable] lines besides kind, dataset, loss, d_steps
  double low, high;               // log-uniform prior of lr_g and lr_d
  std::string setup;              // the model in words, for the report
  double cost_per_step;           // relative CPU cost of a step, to share the work out over --jobs
};

const Dataset kRing = {
    "ring",
    1000,
    100,
    300,
    "hidden = 64\nlayers = 2\nlatent = 8\nbatch = 64\neval_samples = 2500\nbackground_class = true\n",
    1e-5,
    1e-2,
    "2 hidden layers of 64 units, batch 64, selection classifier over the 8 modes and a \"not data\" "
    "class (`background_class = true`)",
    1.0};
const Dataset kGrid = {"grid",
                       6000,
                       500,
                       2000,
                       "hidden = 64\nlayers = 3\nlatent = 8\nbatch = 128\neval_samples = 2500\n"
                       "background_class = true\n",
                       1e-4,
                       1e-2,
                       "3 hidden layers of 64 units, batch 128, selection classifier over the 25 modes and a "
                       "\"not data\" class (`background_class = true`)",
                       1.5};

std::string config_text(const Dataset& d, const Method& m, int seed, int population) {
  std::ostringstream t;
  t << "name = \"gan-" << d.name << "\"\nseed = " << seed << "\npopulation = " << population << "\n\n"
    << "[trainable]\nkind = \"gan\"\ndataset = \"" << d.name << "\"\nloss = \"nonsaturating\"\nd_steps = 1\n"
    << d.model << "\n[budget]\nsteps = " << d.steps << "\n\n[ready]\ninterval = " << d.interval
    << "\nmin_step = " << d.min_step << "\neval_every = 0\n\n[exploit]\nstrategy = \"" << m.exploit << "\"\n";
  t << "\n[explore]\nstrategy = \"" << m.explore << "\"\n";
  if (m.explore == "perturb") t << "factors = [0.5, 2.0]\nresample_probability = 0.0\n";
  for (const char* p : {"lr_g", "lr_d"})
    t << "\n[space." << p << "]\ntype = \"float\"\nlow = " << d.low << "\nhigh = " << d.high << "\nlog = true\n";
  t << "\n[workers]\ncount = 1\n";
  return t.str();
}

// A number from JSON; null (a NaN or infinity on the way in) reads as NaN.
double num(const json& j, const char* key) {
  const auto it = j.find(key);
  return it == j.end() || !it->is_number() ? NAN : it->get<double>();
}

std::string sci(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1e", x);
  return b;
}

// The schedule a member inherited, with consecutive segments of equal h merged.
std::string schedule_text(const pbt::InheritedSchedule& s) {
  std::ostringstream o;
  o << "from member " << s.root << ": ";
  std::string last;
  std::int64_t from = 0, to = 0;
  bool first = true;
  auto flush = [&] {
    if (last.empty()) return;
    o << (first ? "" : " → ") << "[" << from << "–" << to << "] " << last;
    first = false;
  };
  for (const auto& seg : s.segments) {
    const std::string h = "g " + sci(pbt::as_double(seg.h.at("lr_g"))) + ", d " + sci(pbt::as_double(seg.h.at("lr_d")));
    const std::int64_t a = to, b = to + seg.steps();
    if (h == last) {
      to = b;
      continue;
    }
    flush();
    last = h, from = a, to = b;
  }
  flush();
  return o.str();
}

json run_one(const Dataset& d, const Method& m, int seed, int population) {
  const pbt::ExperimentConfig cfg = pbt::parse_config(config_text(d, m, seed, population), "gan_pbt");
  auto store = pbt::open_store("memory:");
  pbt::create_or_join(*store, cfg);
  pbt::WorkerOptions opt;
  opt.id = "bench";
  const std::clock_t c0 = std::clock();
  pbt::run_worker(*store, cfg.name, opt);
  const double cpu = double(std::clock() - c0) / CLOCKS_PER_SEC;

  const auto pop = store->population(cfg.name);
  json r = {{"cpu", cpu}, {"members", json::array()}};
  const pbt::MemberState* best = nullptr;
  for (const auto& mem : pop) {
    if (!mem.done) throw std::runtime_error("member " + std::to_string(mem.id) + " did not finish");
    const double score = mem.score.value_or(-HUGE_VAL);
    r["members"].push_back({{"id", mem.id},
                            {"score", score},
                            {"exact_is", num(mem.metrics, "exact_is")},
                            {"strict_is", num(mem.metrics, "strict_is")},
                            {"modes", num(mem.metrics, "modes_covered")},
                            {"hq", num(mem.metrics, "high_quality")}});
    if (!best || score > best->score.value_or(-HUGE_VAL)) best = &mem;  // ties: lower id
  }
  const auto events = store->events(cfg.name);
  int copies = 0;
  for (const auto& e : events) copies += e.kind == pbt::EventKind::exploit;
  r["copies"] = copies;
  r["best"] = best->id;
  r["schedule"] = schedule_text(pbt::Lineage(events, pbt::initial_hyperparams(cfg)).schedule_of(best->id, best->step));
  return r;
}

// One (dataset, seed): every method, interleaved so that load from other jobs hits them alike.
json run_seed(const Dataset& d, int seed, int population) {
  json out = json::object();
  for (const auto& m : kMethods) {
    out[m.name] = run_one(d, m, seed, population);
    const auto& r = out[m.name];
    std::cerr << d.name << " seed " << seed << " " << m.name << ": " << fmt(r["cpu"].get<double>(), 1) << " s CPU, "
              << r["copies"] << " copies\n";
  }
  return out;
}

struct Stat {
  std::vector<double> v;  // NaN (a figure missing from a member's metrics) is left out of the median
  std::string md(int dec) const {
    std::vector<double> f;
    for (double x : v)
      if (!std::isnan(x)) f.push_back(x);
    return fmt(bench::median(f), dec) + " [" + fmt(bench::min_of(f), dec) + "–" + fmt(bench::max_of(f), dec) + "]";
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::string out_path, datasets_arg = "ring,grid", raw_path = "/tmp/gan_pbt_raw.json", from_raw, ready_arg;
  int seeds = 5, population = 10, jobs = 2;
  std::string cmdline = "./build/bench/paper/gan_pbt";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 < argc && a == "--out") out_path = argv[++i];
    else if (i + 1 < argc && a == "--seeds") seeds = std::atoi(argv[++i]);
    else if (i + 1 < argc && a == "--population") population = std::atoi(argv[++i]);
    else if (i + 1 < argc && a == "--datasets") datasets_arg = argv[++i];
    else if (i + 1 < argc && a == "--jobs") jobs = std::atoi(argv[++i]);
    else if (i + 1 < argc && a == "--raw") raw_path = argv[++i];
    else if (i + 1 < argc && a == "--from-raw") from_raw = argv[++i];
    else if (i + 1 < argc && a == "--ready") ready_arg = argv[++i];
    else {
      std::cerr << "usage: gan_pbt [--seeds N] [--population P] [--datasets ring,grid] [--jobs J] [--out FILE]\n"
                   "               [--ready INTERVAL,MIN_STEP] [--raw FILE] [--from-raw FILE]\n";
      return 2;
    }
    if (a != "--out" && a != "--raw" && a != "--from-raw") cmdline += " " + a + " " + argv[i];
  }
  if (seeds < 1 || population < 10 || jobs < 1) {
    std::cerr << "--seeds >= 1, --population >= 10, --jobs >= 1\n";
    return 2;
  }
  const std::map<std::string, Dataset> known = {{"ring", kRing}, {"grid", kGrid}};
  std::vector<Dataset> datasets;
  std::stringstream ss(datasets_arg);
  for (std::string n; std::getline(ss, n, ',');) {
    if (!known.count(n)) {
      std::cerr << "unknown dataset " << n << "\n";
      return 2;
    }
    datasets.push_back(known.at(n));
    if (!ready_arg.empty()) {  // another ready schedule for every dataset run (to compare schedules)
      auto& d = datasets.back();
      if (std::sscanf(ready_arg.c_str(), "%d,%d", &d.interval, &d.min_step) != 2 || d.interval < 1 || d.min_step < 0) {
        std::cerr << "--ready INTERVAL,MIN_STEP (INTERVAL >= 1, MIN_STEP >= 0)\n";
        return 2;
      }
    }
  }

  const std::string load_at_start = bench::loadavg();
  const auto wall0 = std::chrono::steady_clock::now();
  try {
    pbt::register_builtin_trainables();
    pbt::register_torch_trainables();
    // One process per dataset (up to --jobs at once); each writes its results as JSON.
    std::map<std::string, json> results;
    double wall = 0;
    std::string load_start = load_at_start;
    if (!from_raw.empty()) {
      std::ifstream in(from_raw);
      const json raw = json::parse(in);
      for (const auto& [k, v] : raw["results"].items()) results[k] = v;
      wall = raw["wall"];
      load_start = raw["load_at_start"];
    }
    // The (dataset, seed) tasks, shared out over --jobs processes (fork), the costliest first
    // to the least loaded; each process writes its results as JSON.
    struct Task {
      const Dataset* d;
      int seed;
    };
    std::vector<std::vector<Task>> share(jobs);
    std::vector<double> load(jobs, 0);
    std::vector<Task> tasks;
    for (const auto& d : datasets)
      for (int seed = 0; seed < seeds; ++seed) tasks.push_back({&d, seed});
    auto cost = [](const Task& t) { return double(t.d->steps) * t.d->cost_per_step; };
    std::stable_sort(tasks.begin(), tasks.end(), [&](const Task& a, const Task& b) { return cost(a) > cost(b); });
    for (const auto& t : tasks) {
      const auto j = std::min_element(load.begin(), load.end()) - load.begin();
      share[j].push_back(t);
      load[j] += cost(t);
    }
    auto run_share = [&](const std::vector<Task>& mine) {
      json out = json::array();
      for (const auto& t : mine)
        out.push_back({{"dataset", t.d->name}, {"seed", t.seed}, {"runs", run_seed(*t.d, t.seed, population)}});
      return out;
    };
    std::vector<std::pair<pid_t, std::string>> children;
    const std::string tmp = "/tmp/gan_pbt." + std::to_string(getpid()) + ".";
    json done = json::array();
    for (int j = 0; j < jobs && from_raw.empty(); ++j) {
      if (share[j].empty()) continue;
      if (j + 1 == jobs) {  // the last share runs here
        for (auto& e : run_share(share[j])) done.push_back(e);
        continue;
      }
      const pid_t pid = fork();
      if (pid < 0) throw std::runtime_error("fork failed");
      if (pid == 0) {
        int rc = 0;
        try {
          std::ofstream(tmp + std::to_string(j)) << run_share(share[j]).dump();
        } catch (const std::exception& e) {
          std::cerr << "gan_pbt (job " << j << "): " << e.what() << "\n";
          rc = 1;
        }
        _exit(rc);
      }
      children.push_back({pid, std::to_string(j)});
    }
    for (const auto& [pid, name] : children) {
      int status = 0;
      waitpid(pid, &status, 0);
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error("job " + name + " failed");
      std::ifstream in(tmp + name);
      for (auto& e : json::parse(in)) done.push_back(e);
      std::remove((tmp + name).c_str());
    }
    if (from_raw.empty()) {  // results[dataset][method][seed]
      std::sort(done.begin(), done.end(), [](const json& a, const json& b) { return a["seed"] < b["seed"]; });
      for (const auto& e : done)
        for (const auto& m : kMethods) results[e["dataset"].get<std::string>()][m.name].push_back(e["runs"][m.name]);
    }
    if (from_raw.empty()) {
      wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
      json raw = {{"wall", wall}, {"load_at_start", load_at_start}, {"results", results}};
      std::ofstream(raw_path) << raw.dump();
      std::cerr << "raw results in " << raw_path << "\n";
    }

    std::ostringstream md;
    md << "# GANs (issue 4): PBT (tournament) vs PBT (truncation) vs random search on mixtures of Gaussians\n\n"
       << "Reproduce (from the repository root):\n\n```sh\n"
       << "cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build -j2 --target gan_pbt\n"
       << cmdline << " --out docs/results/gan.md\n```\n\n"
       << bench::machine_markdown(load_start) << "- Wall time of the whole benchmark: " << fmt(wall / 60, 1) << " min ("
       << jobs << " process" << (jobs > 1 ? "es" : "") << ")\n\n";
    md << "## Setup\n\n"
       << "- Trainable `gan` (src/trainables/torch/gan): MLP generator and discriminator, latent 8, non-saturating "
          "loss, 1 discriminator update per generator update, Adam (β1 0.5, β2 0.999) with the generator's and the "
          "discriminator's learning rates from h. A step is one generator update.\n"
       << "- Data: ring of 8 Gaussians (radius 2, std 0.05) and 5×5 grid of 25 Gaussians (spacing 2, std 0.05).\n"
       << "- Population " << population << "; h = (lr_g, lr_d), each log-uniform (prior below); seeds 0.." << seeds - 1
       << ". For one seed every method starts from the same initial h and weights.\n";
    for (const auto& d : datasets)
      md << "- " << d.name << ": " << d.setup << "; lr prior [" << d.low << ", " << d.high << "]; budget " << d.steps
         << " steps per member, ready every " << d.interval << " steps"
         << (d.min_step > 0 ? " from step " + std::to_string(d.min_step) : std::string())
         << " (eval once per interval, 2,500 samples).\n";
    md << "- PBT (tournament): binary tournament, perturb ×0.5/×2.0 (the paper's GAN setting). PBT (truncation): "
          "bottom 20% copy the top 20%, same perturb. Random search: exploit `none`, explore `none` (the same "
          "population trained without PBT). A copy takes both networks, both Adam states and h.\n"
       << "- Selection (eval's score, what PBT ranks and what picks the best member): the Inception-score analogue "
          "with p(y|x) from a classifier trained on real samples and on points spread over the data's box, as a \"not "
          "data\" class whose probability is shared evenly by the modes (docs/gan.md). Reported (on the true mixture, "
          "never seen by selection): strict IS (the same formula with the Bayes posterior of the model the \"not "
          "data\" class is trained on: the mixture or a flat density over the data's box, each with prior 1/2, \"not "
          "data\" shared evenly by the modes; max = number of modes; a smear over the square scores ~1), exact IS (the "
          "issue's formula, posterior over the components only, max = number "
          "of modes; it is confident far from every mode too, so a smear over the grid's square scores ~20 of 25 and "
          "samples off the modes raise it), modes covered (≥ 20% of a mode's fair share of high-quality samples), "
          "high-quality fraction "
          "(within 3 std of a mode), all on 2,500 samples.\n"
       << "- Best member = the member with the highest selection score at the end (as PBT returns it); population = "
          "the median over the "
       << population << " final members. Cells: median over seeds [min–max].\n\n";

    std::vector<std::string> verdicts;
    for (const auto& d : datasets) {
      const json& r = results.at(d.name);
      md << "## " << d.name << "\n\n"
         << "| method | best: strict IS | best: exact IS | best: modes covered | best: high-quality | best: selection "
            "IS | "
            "population: strict IS | population: exact IS | population: modes | population: high-quality | copies/run "
            "| CPU s/run |\n"
         << "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
      std::map<std::string, std::map<std::string, Stat>> stats;
      for (const auto& m : kMethods) {
        auto& s = stats[m.name];
        for (const auto& run : r.at(m.name)) {
          std::vector<double> strict, is, modes, hq;
          for (const auto& mem : run["members"]) {
            strict.push_back(num(mem, "strict_is"));
            is.push_back(num(mem, "exact_is"));
            modes.push_back(num(mem, "modes"));
            hq.push_back(num(mem, "hq"));
            if (mem["id"] == run["best"]) {
              s["best_strict"].v.push_back(num(mem, "strict_is"));
              s["best_is"].v.push_back(num(mem, "exact_is"));
              s["best_modes"].v.push_back(num(mem, "modes"));
              s["best_hq"].v.push_back(num(mem, "hq"));
              s["best_sel"].v.push_back(num(mem, "score"));
            }
          }
          s["pop_strict"].v.push_back(bench::median(strict));
          s["pop_is"].v.push_back(bench::median(is));
          s["pop_modes"].v.push_back(bench::median(modes));
          s["pop_hq"].v.push_back(bench::median(hq));
          s["copies"].v.push_back(num(run, "copies"));
          s["cpu"].v.push_back(num(run, "cpu"));
        }
        md << "| " << m.name << " | " << s["best_strict"].md(2) << " | " << s["best_is"].md(2) << " | "
           << s["best_modes"].md(0) << " | " << s["best_hq"].md(3) << " | " << s["best_sel"].md(2) << " | "
           << s["pop_strict"].md(2) << " | " << s["pop_is"].md(2) << " | " << s["pop_modes"].md(1) << " | "
           << s["pop_hq"].md(3) << " | " << fmt(bench::mean(s["copies"].v), 1) << " | "
           << fmt(bench::median(s["cpu"].v), 0) << " |\n";
      }
      md << "\nPer seed, best member (strict IS / exact IS / modes / high-quality):\n\n| seed |";
      for (const auto& m : kMethods) md << " " << m.name << " |";
      md << "\n|---|";
      for (std::size_t i = 0; i < kMethods.size(); ++i) md << "---|";
      md << "\n";
      for (int seed = 0; seed < seeds; ++seed) {
        md << "| " << seed << " |";
        for (const auto& m : kMethods) {
          const auto& s = stats[m.name];
          md << " " << fmt(s.at("best_strict").v[seed], 2) << " / " << fmt(s.at("best_is").v[seed], 2) << " / "
             << fmt(s.at("best_modes").v[seed], 0) << " / " << fmt(s.at("best_hq").v[seed], 3) << " |";
        }
        md << "\n";
      }
      md << "\nLearning rates the best member inherited (PBT (tournament); its lineage followed back through "
            "every copy, `[from–to]` in training steps of that lineage):\n\n";
      for (int seed = 0; seed < seeds; ++seed)
        md << "- seed " << seed << ": " << r.at(kMethods[0].name)[seed]["schedule"].get<std::string>() << "\n";
      md << "\nRandom search's best member (its own h throughout):\n\n";
      for (int seed = 0; seed < seeds; ++seed)
        md << "- seed " << seed << ": " << r.at("random search")[seed]["schedule"].get<std::string>() << "\n";
      md << "\n";
      const auto& rs = stats["random search"];
      for (const auto& m : {kMethods[0], kMethods[1]}) {
        const auto& s = stats[m.name];
        auto ahead = [&](const char* k) {
          const double a = bench::median(s.at(k).v), b = bench::median(rs.at(k).v);
          return std::string(a > b    ? "ahead"
                             : a == b ? "level"
                                      : "BEHIND") +
                 " (" + fmt(a, 3) + " vs " + fmt(b, 3) + ")";
        };
        auto per_seed = [&](const char* k) {  // seeds where this method's figure is above / level with / below
          int up = 0, level = 0, down = 0;
          std::vector<double> diff;  // same seed: same initial h and weights, so the runs pair up
          for (std::size_t i = 0; i < s.at(k).v.size(); ++i) {
            const double a = s.at(k).v[i], b = rs.at(k).v[i];
            (a > b ? up : a == b ? level : down)++;
            diff.push_back(a - b);
          }
          return "ahead in " + std::to_string(up) + ", level in " + std::to_string(level) + ", behind in " +
                 std::to_string(down) + " (median difference " + fmt(bench::median(diff), 3) + ")";
        };
        verdicts.push_back(d.name + ": " + m.name + " vs random search, median best strict IS " + ahead("best_strict") +
                           ", best exact IS " + ahead("best_is") + ", best modes " + ahead("best_modes") +
                           ", best high-quality " + ahead("best_hq") + ", population strict IS " + ahead("pop_strict") +
                           ", population high-quality " + ahead("pop_hq") + "; per seed, best strict IS " +
                           per_seed("best_strict") + ", best modes " + per_seed("best_modes") + ", best high-quality " +
                           per_seed("best_hq"));
      }
    }
    md << "## Checks\n\n";
    for (const auto& v : verdicts) md << "- " << v << "\n";
    bench::emit(md.str(), out_path);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "gan_pbt: " << e.what() << "\n";
    return 1;
  }
}
