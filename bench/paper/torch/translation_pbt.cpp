// Machine translation (issue 5): PBT vs random search vs one hand-tuned run, on the generated
// language pair, scored by corpus BLEU-4 (selection on dev, reported on test).
//
// Every run is the real `pbt run` command (worker processes over an SQLite store), so the
// wall-clock of PBT against the same members trained without exploit/explore (random search)
// includes everything PBT adds. Per seed, PBT and random search run one after the other, in
// alternating order, so load from other jobs hits both alike. The hand-tuned recipe (warm-up then
// inverse-square-root decay, dropouts 0.1) is one run of one model given the population's
// total steps. Test BLEU is computed once, at the end, for the member with the best final dev
// BLEU (the paper's selection), by loading its published checkpoint.
//
//   translation_pbt [--seeds 3] [--budget 300] [--interval 50] [--min-step 150] [--population 8] [--workers 2]
//                   [--train-size 3000] [--no-hand-tuned] [--work DIR] [--out FILE]
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "pbt/pbt.hpp"
#include "bench_common.hpp"
#include "trainables/torch/torch_trainables.hpp"
#include "trainables/torch/translation/translation.hpp"

namespace fs = std::filesystem;
using bench::fmt;

namespace {

struct Setting {
  int seeds = 3;
  int budget = 300;
  int interval = 50;
  int min_step = 150;  // no exploit before BLEU separates the members (see the results notes)
  int population = 8;
  int workers = 2;
  int train_size = 3000;
  bool hand_tuned = true;
  std::string work;
};

std::string trainable_options(const Setting& s, bool report_test) {
  std::ostringstream t;
  t << "kind = \"translation\"\ncorpus = \"generated\"\ncorpus_seed = 1\ntrain_size = " << s.train_size
    << "\nmax_depth = 1\nmax_length = 20\ndev_size = 200\ntest_size = 200\nd_model = 64\nheads = 4\nlayers = 1\nffn = "
       "128\nbatch_size = 32\n"
    << "label_smoothing = 0.1\nembedding_dropout = 0.1\nreport_test = " << (report_test ? "true" : "false") << "\n";
  return t.str();
}

const char* kSpace =
    "[space.lr]\ntype = \"float\"\nlow = 1e-4\nhigh = 1e-2\nlog = true\n\n"
    "[space.attention_dropout]\ntype = \"float\"\nlow = 0.0\nhigh = 0.5\n\n"
    "[space.layer_dropout]\ntype = \"float\"\nlow = 0.0\nhigh = 0.5\n\n"
    "[space.relu_dropout]\ntype = \"float\"\nlow = 0.0\nhigh = 0.5\n";

std::string population_config(const Setting& s, int seed, bool pbt) {
  std::ostringstream t;
  t << "name = \"mt-" << (pbt ? "pbt" : "random") << "\"\nseed = " << seed << "\npopulation = " << s.population
    << "\n\n[trainable]\n"
    << trainable_options(s, false) << "\n[budget]\nsteps = " << s.budget << "\n\n[ready]\ninterval = " << s.interval
    << "\nmin_step = " << s.min_step << "\neval_every = 0\n\n";
  if (pbt)
    t << "[exploit]\nstrategy = \"truncation\"\nfraction = 0.25\n\n"
      << "[explore]\nstrategy = \"perturb\"\nfactors = [0.8, 1.2]\nresample_probability = 0.25\n\n";
  else t << "[exploit]\nstrategy = \"none\"\n\n[explore]\nstrategy = \"none\"\n\n";
  t << kSpace << "\n[workers]\ncount = " << s.workers << "\nlease_seconds = 120\n";
  return t.str();
}

// The practitioner's recipe: peak lr 2e-3 (tensor2tensor's d_model^-0.5 * warmup^-0.5 for
// d_model 64 and 4,000 warm-up steps), warm-up over the first 10% of the steps, then
// lr ~ 1/sqrt(step); dropouts 0.1 (tensor2tensor's transformer_base).
std::string hand_tuned_config(const Setting& s, int steps) {
  std::ostringstream t;
  t << "name = \"mt-hand\"\nseed = 0\npopulation = 1\n\n[trainable]\n"
    << trainable_options(s, false) << "lr_schedule = \"rsqrt\"\nwarmup_steps = " << steps / 10
    << "\n\n[budget]\nsteps = " << steps << "\n\n[ready]\ninterval = " << std::min(steps, s.budget)
    << "\neval_every = 0\n\n"
    << "[exploit]\nstrategy = \"none\"\n\n[explore]\nstrategy = \"none\"\n\n"
    << kSpace << "\n[[initial]]\nlr = 2e-3\nattention_dropout = 0.1\nlayer_dropout = 0.1\nrelu_dropout = 0.1\n\n"
    << "[workers]\ncount = 1\nlease_seconds = 120\n";
  return t.str();
}

struct RunResult {
  double wall = 0;
  int best_member = -1;
  double dev = 0, test = 0;
  std::vector<double> tokens_per_s;  // per member, its last interval
  int exploits = 0;
  pbt::Hyperparams best_h;
  pbt::InheritedSchedule schedule;
};

RunResult run(const Setting& s, const std::string& label, const std::string& config_text) {
  const fs::path dir = fs::path(s.work) / label;
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path cfg_path = dir / "config.toml";
  std::ofstream(cfg_path) << config_text;
  const pbt::ExperimentConfig cfg = pbt::parse_config(config_text, cfg_path.string());
  const std::string cmd = std::string(PBT_BINARY) + " run " + cfg_path.string() + " --run " + (dir / "run").string() +
                          " --quiet > " + (dir / "out.txt").string() + " 2>&1";
  std::cerr << "[" << label << "] " << cmd << std::endl;
  const auto t0 = std::chrono::steady_clock::now();
  const int rc = std::system(cmd.c_str());
  RunResult r;
  r.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (rc != 0) throw std::runtime_error(label + ": pbt run failed (see " + (dir / "out.txt").string() + ")");

  auto store = pbt::open_store("sqlite:" + (dir / "run" / "store.db").string());
  const auto pop = store->population(cfg.name);
  const pbt::MemberState* best = nullptr;
  for (const auto& m : pop) {
    if (!m.done) throw std::runtime_error(label + ": member " + std::to_string(m.id) + " did not finish");
    if (m.metrics.contains("train_tokens_per_s"))
      r.tokens_per_s.push_back(m.metrics["train_tokens_per_s"].get<double>());
    if (m.score && (!best || *m.score > *best->score)) best = &m;
  }
  if (!best) throw std::runtime_error(label + ": no member has a score");
  r.best_member = best->id;
  r.best_h = best->h;
  for (const auto& e : store->events(cfg.name)) r.exploits += e.kind == pbt::EventKind::exploit;
  r.schedule = pbt::Lineage(store->events(cfg.name), pbt::initial_hyperparams(cfg)).schedule_of(best->id, best->step);

  // Test BLEU of the selected model: its published checkpoint, evaluated with the test set on.
  pbt::TrainableContext ctx;
  ctx.member = best->id;
  ctx.seed = 0;
  ctx.options = cfg.trainable_options;
  ctx.options["report_test"] = true;
  auto t = pbt::mt::make_translation_trainable(ctx, "trainable");
  const std::string bytes = store->checkpoint(best->checkpoint);
  pbt::CheckpointReader in(bytes);
  t->load(in);
  t->apply(best->h);
  const pbt::Score sc = t->eval();
  r.dev = sc.value;
  r.test = sc.metrics["test_bleu"].get<double>();
  std::cerr << "[" << label << "] " << fmt(r.wall, 1) << " s, best member " << r.best_member << ": dev "
            << fmt(r.dev, 2) << " (published " << fmt(*best->score, 2) << "), test " << fmt(r.test, 2) << std::endl;
  return r;
}

std::string h_text(const pbt::Hyperparams& h) {
  std::ostringstream o;
  auto get = [&](const char* k) { return h.count(k) ? pbt::as_double(h.at(k)) : std::nan(""); };
  o << "lr " << fmt(get("lr") * 1e3, 2) << "e-3, attention " << fmt(get("attention_dropout"), 3) << ", layer "
    << fmt(get("layer_dropout"), 3) << ", ReLU " << fmt(get("relu_dropout"), 3);
  return o.str();
}

}  // namespace

int main(int argc, char** argv) {
  Setting s;
  std::string out_path;
  std::string command = "./build/bench/paper/translation_pbt";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--seeds") s.seeds = std::stoi(next());
    else if (a == "--budget") s.budget = std::stoi(next());
    else if (a == "--interval") s.interval = std::stoi(next());
    else if (a == "--min-step") s.min_step = std::stoi(next());
    else if (a == "--population") s.population = std::stoi(next());
    else if (a == "--workers") s.workers = std::stoi(next());
    else if (a == "--train-size") s.train_size = std::stoi(next());
    else if (a == "--no-hand-tuned") s.hand_tuned = false;
    else if (a == "--work") s.work = next();
    else if (a == "--out") out_path = next();
    else {
      std::cerr << "usage: translation_pbt [--seeds N] [--budget STEPS] [--interval STEPS] [--population P] "
                   "[--min-step STEPS] [--workers K] [--train-size N] [--no-hand-tuned] [--work DIR] [--out FILE]\n";
      return 2;
    }
    if (a != "--work" && a != "--out") command += " " + a + (a == "--no-hand-tuned" ? "" : " " + std::string(argv[i]));
  }
  if (s.work.empty())
    s.work = (fs::temp_directory_path() / ("pbt_translation_bench_" + std::to_string(::getpid()))).string();
  if (!out_path.empty()) command += " --out " + out_path;

  const std::string load_at_start = bench::loadavg();
  const auto t_start = std::chrono::steady_clock::now();
  try {
    pbt::register_builtin_trainables();
    pbt::register_torch_trainables();
    std::vector<RunResult> pbt_runs, rs_runs;
    RunResult hand, hand_short;
    for (int seed = 0; seed < s.seeds; ++seed) {
      const bool pbt_first = seed % 2 == 0;  // alternate, so drifting load hits both alike
      for (int k = 0; k < 2; ++k) {
        const bool is_pbt = (k == 0) == pbt_first;
        auto r = run(s, std::string(is_pbt ? "pbt" : "random") + "-seed" + std::to_string(seed),
                     population_config(s, seed, is_pbt));
        (is_pbt ? pbt_runs : rs_runs).push_back(r);
      }
      if (seed == 0 && s.hand_tuned) {
        hand = run(s, "hand-tuned", hand_tuned_config(s, s.budget * s.population));
        // The same recipe with one member's steps: separates "more steps" from "better h".
        hand_short = run(s, "hand-tuned-short", hand_tuned_config(s, s.budget));
      }
    }
    const double total_wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();

    std::vector<double> pbt_test, rs_test, pbt_dev, rs_dev, ratio, tok;
    for (int i = 0; i < s.seeds; ++i) {
      pbt_test.push_back(pbt_runs[i].test);
      rs_test.push_back(rs_runs[i].test);
      pbt_dev.push_back(pbt_runs[i].dev);
      rs_dev.push_back(rs_runs[i].dev);
      ratio.push_back(pbt_runs[i].wall / rs_runs[i].wall);
      for (double x : pbt_runs[i].tokens_per_s) tok.push_back(x);
      for (double x : rs_runs[i].tokens_per_s) tok.push_back(x);
    }

    std::ostringstream md;
    md << "# Machine translation: PBT vs random search vs a hand-tuned schedule (corpus BLEU-4)\n\n";
    md << "Reproduce (from the repository root):\n\n```sh\n"
       << "cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build -j2 --target pbt "
          "translation_pbt\n"
       << command << "\n```\n\n";
    md << bench::machine_markdown(load_at_start);
    md << "- Whole benchmark: " << fmt(total_wall / 60, 1) << " min wall.\n\n";
    md << "## Setup\n\n"
       << "- Corpus: the generated language pair (`corpus_seed = 1`), " << s.train_size
       << " training pairs, 200 dev (selection), 200 test (reporting); up to 20 tokens, nesting depth 1 (sized so that "
          "the whole benchmark fits ~15 minutes of the shared 2-core machine).\n"
       << "- Model: pre-norm Transformer, d_model 64, 4 heads, 1 encoder + 1 decoder layer, FFN 128, shared "
          "target embedding/output; Adam (0.9, 0.98), batch 32 sentences, label smoothing 0.1, embedding dropout "
          "0.1 (not evolved); greedy decoding.\n"
       << "- Every member: " << s.budget << " steps. Population " << s.population << ", " << s.workers
       << " worker processes (`pbt run`), ready every " << s.interval << " steps from step " << s.min_step
       << " on (the first exploit at step " << std::max(s.min_step, s.interval)
       << "), eval (dev BLEU) at the end of each "
          "interval.\n"
       << "- **PBT**: truncation (bottom 25% copy the top 25%: weights, optimizer state and h), perturb x0.8/x1.2 "
          "with resample probability 0.25. **Random search**: the same members (same seed, same initial h), "
          "exploit and explore `none`. Priors: lr log-uniform [1e-4, 1e-2]; attention, layer and ReLU dropout "
          "uniform [0, 0.5]. The learning rate in h is used as is (constant between explores).\n"
       << "- **Hand-tuned**: one model, " << s.budget * s.population
       << " steps (the population's total), peak lr 2e-3 reached after " << s.budget * s.population / 10
       << " warm-up steps then ~1/sqrt(step), all dropouts 0.1.\n"
       << "- Reported: the member with the best final dev BLEU (the paper's selection); its test BLEU, computed "
          "from its published checkpoint.\n\n";
    md << "## Test BLEU (best-on-dev member)\n\nDev score: what selection saw, dev BLEU-4 + 0.001 x dev unigram BLEU "
          "(at "
          "most 0.1 above BLEU-4; see docs/translation.md).\n\n"
          "| seed | PBT test | PBT dev score | random test | random dev score | PBT wall s "
          "| random wall s | wall ratio | PBT copies |\n|---|---|---|---|---|---|---|---|---|\n";
    for (int i = 0; i < s.seeds; ++i)
      md << "| " << i << " | " << fmt(pbt_runs[i].test, 2) << " | " << fmt(pbt_runs[i].dev, 2) << " | "
         << fmt(rs_runs[i].test, 2) << " | " << fmt(rs_runs[i].dev, 2) << " | " << fmt(pbt_runs[i].wall, 1) << " | "
         << fmt(rs_runs[i].wall, 1) << " | " << fmt(ratio[i], 3) << " | " << pbt_runs[i].exploits << " |\n";
    md << "| **median** | **" << fmt(bench::median(pbt_test), 2) << "** | " << fmt(bench::median(pbt_dev), 2) << " | **"
       << fmt(bench::median(rs_test), 2) << "** | " << fmt(bench::median(rs_dev), 2) << " | | | **"
       << fmt(bench::median(ratio), 3) << "** | |\n\n";
    if (s.hand_tuned)
      md << "Hand-tuned (one run, " << s.budget * s.population << " steps, " << fmt(hand.wall, 1)
         << " s wall on one worker): **test " << fmt(hand.test, 2) << "**, dev " << fmt(hand.dev, 2)
         << ". The same recipe given one member's " << s.budget << " steps (warm-up " << s.budget / 10 << "): test "
         << fmt(hand_short.test, 2) << ", dev " << fmt(hand_short.dev, 2) << ".\n\n";
    md << "Training throughput: median " << fmt(bench::median(tok), 0) << " target tokens/s per worker (range "
       << fmt(bench::min_of(tok), 0) << " to " << fmt(bench::max_of(tok), 0)
       << "; each member's last interval, PBT and random search, 1 LibTorch thread per worker).\n\n";
    md << "## The schedules the PBT winners inherited\n\n"
       << "Steps (from, to] of the winner's lineage, the member that trained them, and the h in force.\n\n";
    for (int i = 0; i < s.seeds; ++i) {
      md << "Seed " << i << " (winner: member " << pbt_runs[i].best_member << ", test " << fmt(pbt_runs[i].test, 2)
         << "):\n\n";
      for (const auto& seg : pbt_runs[i].schedule.segments)
        md << "- " << seg.from_step << "-" << seg.to_step << " (member " << seg.member << "): " << h_text(seg.h)
           << "\n";
      md << "\n";
    }
    md << "Random search winners' h (fixed for the whole run):\n\n";
    for (int i = 0; i < s.seeds; ++i)
      md << "- seed " << i << ": member " << rs_runs[i].best_member << ", " << h_text(rs_runs[i].best_h) << "\n";
    md << "\n";
    bench::emit(md.str(), out_path);
    fs::remove_all(s.work);
  } catch (const std::exception& e) {
    std::cerr << "translation_pbt: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
