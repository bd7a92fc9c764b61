// What one PB2 decision costs ([explore] strategy = "pb2"): a population of 32 members with
// 200 published intervals each (6,400 intervals, one score point and one explore event per
// interval), in an SQLite store in a temp directory and in the memory store. One decision is
// what the worker does when a member explores: read the recent scores and events from the
// store (Store::scores_since and events_since, from pbt::history_start), turn them into intervals
// (pbt::trained_intervals), fit the time-varying GP and maximise UCB (Explore::explore). Median over repetitions, each
// with its own (member, step) stream; compared with the time of one interval of the toy (4 steps) and, with --digits,
// of examples/python/digits.toml (150 steps of the MLP and an eval, through the process
// protocol; needs python3-torch and python3-sklearn, run from the repository root).
//
//   pb2_cost [--reps N] [--digits] [--out FILE]
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "pbt/pbt.hpp"
#include "bench_common.hpp"

namespace {

using bench::fmt;
using Clock = std::chrono::steady_clock;

constexpr int kMembers = 32;
constexpr int kIntervals = 200;
constexpr int kInterval = 4;  // steps

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

std::string config_text(const std::string& explore_table) {
  std::ostringstream t;
  t << "name = \"pb2cost\"\nseed = 3\npopulation = " << kMembers << "\n\n"
    << "[trainable]\nkind = \"toy\"\n\n"
    << "[budget]\nsteps = " << kInterval * (kIntervals + 1) << "\n\n"
    << "[ready]\ninterval = " << kInterval << "\n\n"
    << "[exploit]\nstrategy = \"truncation\"\ncopy = \"all\"\n\n"
    << explore_table << "\n"
    << "[space.h0]\ntype = \"float\"\nlow = 0.0\nhigh = 1.0\n\n"
    << "[space.h1]\ntype = \"float\"\nlow = 0.0\nhigh = 1.0\n\n"
    << "[space.lr]\ntype = \"float\"\nlow = 0.00001\nhigh = 0.1\nlog = true\n";
  return t.str();
}

// Publishes kIntervals intervals for every member: h redrawn at each ready step (an explore
// event), the score rising by an amount that depends on h.
void fill(pbt::Store& store, const pbt::ExperimentConfig& cfg) {
  pbt::create_or_join(store, cfg);
  pbt::Rng rng = pbt::make_rng(11, 0, 0, pbt::kInit);
  std::vector<double> score(kMembers, 0.0);
  std::vector<pbt::Hyperparams> h = pbt::initial_hyperparams(cfg);
  for (int k = 0; k < kIntervals; ++k)
    for (int n = 0; n < kMembers; ++n) {
      auto leased = store.lease(cfg.name, "bench", 60);
      if (!leased) throw std::runtime_error("nothing to lease");
      const int m = leased->member.id;
      pbt::Publication pub;
      pub.step = leased->member.step + kInterval;
      pub.last_ready_step = leased->member.step;
      if (leased->member.step > 0) {
        pbt::Event e;
        e.member = m;
        e.step = leased->member.step;
        e.kind = pbt::EventKind::explore;
        e.old_h = h[m];
        h[m] = cfg.space.sample(rng);
        e.new_h = h[m];
        e.old_score = score[m];
        pub.events.push_back(e);
      }
      const double lr = std::log10(pbt::as_double(h[m].at("lr"))) + 3;
      score[m] += 0.01 * (pbt::as_double(h[m].at("h0")) - lr * lr / 4) + 0.002 * pbt::standard_normal(rng);
      pub.score = score[m];
      pub.samples = {score[m]};
      pub.h = h[m];
      pub.checkpoint_bytes = "member " + std::to_string(m) + " step " + std::to_string(pub.step);
      pub.scores = {{m, pub.step, score[m]}};
      store.publish(leased->lease, pub);
      store.release(leased->lease);
    }
}

struct Phases {
  std::vector<double> read_events, read_scores, history, explore, total;
  std::size_t intervals = 0;
};

Phases decisions(pbt::Store& store, const pbt::ExperimentConfig& cfg, const pbt::Explore& explore, int reps) {
  Phases p;
  const std::vector<pbt::MemberState> pop = store.population(cfg.name);
  std::vector<pbt::Candidate> candidates;
  std::vector<pbt::Hyperparams> candidate_h;
  for (const auto& m : pop) {
    candidates.push_back({m.id, m.score.value_or(0), m.samples, m.step});
    candidate_h.push_back(m.h);
  }
  for (int r = 0; r < reps; ++r) {
    const int member = r % kMembers;
    const std::int64_t step = pop[member].step;
    const auto t0 = Clock::now();
    // As the worker does: the recent part the strategy asks for, scores first.
    const std::int64_t from = pbt::history_start(cfg, pop, explore.history_intervals());
    const std::vector<pbt::ScorePoint> scores = store.scores_since(cfg.name, from);
    const auto t0b = Clock::now();
    const std::vector<pbt::Event> events = store.events_since(cfg.name, from);
    const auto t1 = Clock::now();
    const std::vector<pbt::TrainedInterval> history = pbt::trained_intervals(cfg, events, scores, pop);
    const auto t2 = Clock::now();
    pbt::Rng rng = pbt::make_rng(cfg.seed, member, static_cast<std::uint64_t>(step + r), pbt::kExplore);
    pbt::ExploreContext ctx{member, step, &candidates, &candidate_h, &history};
    const pbt::Hyperparams h = explore.explore(pop[member].h, cfg.space, rng, ctx);
    const auto t3 = Clock::now();
    cfg.space.check(h, "pb2_cost");
    p.read_scores.push_back(std::chrono::duration<double, std::milli>(t0b - t0).count());
    p.read_events.push_back(std::chrono::duration<double, std::milli>(t1 - t0b).count());
    p.history.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
    p.explore.push_back(std::chrono::duration<double, std::milli>(t3 - t2).count());
    p.total.push_back(std::chrono::duration<double, std::milli>(t3 - t0).count());
    p.intervals = history.size();
  }
  return p;
}

// One interval of a trainable: apply, `steps` steps, eval; median over `reps` (after one warm-up).
double interval_ms(pbt::Trainable& t, const pbt::Hyperparams& h, std::int64_t steps, int reps) {
  std::vector<double> v;
  for (int r = 0; r <= reps; ++r) {
    const auto t0 = Clock::now();
    t.apply(h);
    t.step(steps);
    t.eval();
    if (r > 0) v.push_back(ms_since(t0));
  }
  return bench::median(v);
}

}  // namespace

int main(int argc, char** argv) {
  std::string out_path;
  int reps = 21;
  bool digits = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--out" && i + 1 < argc) out_path = argv[++i];
    else if (a == "--reps" && i + 1 < argc) reps = std::max(1, std::atoi(argv[++i]));
    else if (a == "--digits") digits = true;
    else {
      std::cerr << "usage: pb2_cost [--reps N] [--digits] [--out FILE]\n";
      return 2;
    }
  }
  const std::string load_at_start = bench::loadavg();
  std::filesystem::path tmp;
  std::ostringstream out;
  try {
    pbt::register_builtin_trainables();
    const char* tmpdir_env = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmpdir_env && *tmpdir_env ? tmpdir_env : "/tmp") + "/pbt-pb2-cost-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed for " + tmpl);
    tmp = buf.data();

    const auto cfg = pbt::parse_config(config_text("[explore]\nstrategy = \"pb2\"\n"), "pb2_cost.toml");
    auto sqlite = pbt::open_store("sqlite:" + (tmp / "pb2.db").string());
    auto memory = pbt::open_store("memory:");
    auto t0 = Clock::now();
    fill(*sqlite, cfg);
    const double fill_s = ms_since(t0) / 1000;
    fill(*memory, cfg);

    out << "# PB2: the cost of one decision\n\n"
        << "`[explore] strategy = \"pb2\"` over a history of " << kMembers << " members x " << kIntervals
        << " intervals (" << kInterval << " steps each; one score point and one explore event per interval), "
        << "3 hyperparameters (two linear, one log-scale). A decision = read the recent scores and events from the "
           "store (`Store::scores_since`, `events_since`, from `pbt::history_start`: what the strategy asks for) + "
           "build the intervals (`pbt::trained_intervals`) + fit the GP and maximise UCB (`Explore::explore`, "
           "with the 31 other members as pending points). Median (min-max) of "
        << reps << " decisions, each for another (member, step), in ms.\n\n"
        << "Command: `./build/bench/perf/pb2_cost --reps " << reps << (digits ? " --digits" : "")
        << "`, from the repository root (build: `scripts/setup.sh build`, RelWithDebInfo with the benches).\n\n"
        << bench::machine_markdown(load_at_start) << "\n"
        << "Filling the SQLite store (" << kMembers * kIntervals << " publishes) took " << fmt(fill_s, 1) << " s.\n\n"
        << "| store | explore options | intervals read, fit | read scores (ms) | read events (ms) | intervals (ms) | "
           "GP + UCB (ms) | decision (ms) |\n"
        << "|---|---|---|---|---|---|---|---|\n";
    struct Variant {
      std::string label;
      nlohmann::json options;
    };
    const std::vector<Variant> variants = {
        {"defaults (max_points 128, eps fitted, 256 candidates, 20 refine)", nlohmann::json::object()},
        {"eps = 0.1 (fixed)", {{"eps", 0.1}}},
        {"max_points = 256", {{"max_points", 256}}},
        {"max_points = 512", {{"max_points", 512}}},
    };
    auto cell = [](const std::vector<double>& v) {
      return fmt(bench::median(v), 2) + " (" + fmt(bench::min_of(v), 2) + "-" + fmt(bench::max_of(v), 2) + ")";
    };
    std::vector<double> default_sqlite;
    for (const auto& v : variants)
      for (auto* s : {sqlite.get(), memory.get()}) {
        auto explore = pbt::make_explore("pb2", v.options, "pb2_cost: explore");
        const Phases p = decisions(*s, cfg, *explore, reps);
        if (s == sqlite.get() && default_sqlite.empty()) default_sqlite = p.total;
        const std::size_t fit = std::min<std::size_t>(p.intervals, v.options.value("max_points", 128));
        out << "| " << (s == sqlite.get() ? "sqlite" : "memory") << " | " << v.label << " | " << p.intervals << ", "
            << fit << " | " << cell(p.read_scores) << " | " << cell(p.read_events) << " | " << cell(p.history) << " | "
            << cell(p.explore) << " | " << cell(p.total) << " |\n";
        std::cerr << "." << std::flush;
      }

    // One interval of the smallest examples, for scale.
    out << "\n| one interval of | ms (median of 21) |\n|---|---|\n";
    {
      pbt::TrainableContext ctx;
      ctx.options = nlohmann::json::object();
      ctx.log = [](const std::string&) {};
      auto toy = pbt::make_trainable("toy", ctx);
      out << "| examples/toy.toml (toy, 4 steps + eval) | "
          << fmt(interval_ms(*toy, {{"h0", 1.0}, {"h1", 0.0}}, 4, 21), 4) << " |\n";
    }
    if (digits) {
      const auto dcfg = pbt::load_config("examples/python/digits.toml");
      pbt::TrainableContext ctx;
      ctx.options = dcfg.trainable_options;
      ctx.log = [](const std::string&) {};
      auto t = pbt::make_trainable(dcfg.trainable, ctx);
      const pbt::Hyperparams h = pbt::initial_hyperparams(dcfg)[0];
      out << "| examples/python/digits.toml (MLP, " << dcfg.ready.interval << " steps + eval, process protocol) | "
          << fmt(interval_ms(*t, h, dcfg.ready.interval, 5), 1) << " (median of 5) |\n";
    }
    out << "\nDecision with the defaults on SQLite: median " << fmt(bench::median(default_sqlite), 2) << " ms.\n";
    std::cerr << "\n";
  } catch (const std::exception& e) {
    std::cerr << "pb2_cost: " << e.what() << "\n";
    std::error_code ec;
    if (!tmp.empty()) std::filesystem::remove_all(tmp, ec);
    return 1;
  }
  std::error_code ec;
  std::filesystem::remove_all(tmp, ec);
  bench::emit(out.str(), out_path);
  return 0;
}
