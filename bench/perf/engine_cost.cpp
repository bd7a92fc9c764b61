// What the engine itself costs, apart from training:
//  (a) decisions per second: the store round trip a worker makes at every ready step
//      (lease, read the population, choose with truncation, publish a small checkpoint
//      with one score point, release), for populations of 10, 100 and 1000, on an
//      SQLite store in a temp directory and on the memory store;
//  (b) a worker's resident memory over 10,000 toy intervals on an SQLite store
//      (run_worker with max_intervals = 1000, ten times, same process, same Store; then
//      ten more blocks to see where it levels off).
//
//   engine_cost [--seconds S] [--out FILE]
//
// --seconds: target length of one timed repetition in (a) (default 1.5).
// Prints a markdown report; --out also writes it to FILE. Exits non-zero only on a crash.
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "pbt/pbt.hpp"
#include "bench_common.hpp"

namespace {

using bench::fmt;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string toy_config(const std::string& name, int population, int interval, std::int64_t budget,
                       const std::string& exploit_table) {
  std::ostringstream t;
  t << "name = \"" << name << "\"\nseed = 1\npopulation = " << population << "\n\n"
    << "[trainable]\nkind = \"toy\"\n\n"
    << "[budget]\nsteps = " << budget << "\n\n"
    << "[ready]\ninterval = " << interval << "\neval_every = 1\n\n"
    << exploit_table << "[explore]\nstrategy = \"gaussian\"\nsigma = 0.1\n\n"
    << "[space.h0]\ntype = \"float\"\nlow = 0.0\nhigh = 1.0\n\n"
    << "[space.h1]\ntype = \"float\"\nlow = 0.0\nhigh = 1.0\n";
  if (population >= 2) t << "\n[[initial]]\nh0 = 1.0\nh1 = 0.0\n\n[[initial]]\nh0 = 0.0\nh1 = 1.0\n";
  return t.str();
}

// ---------------------------------------------------------------- (a) decisions/s

struct PhaseTimes {
  double lease = 0, population = 0, choose = 0, publish = 0, release = 0;
  std::int64_t n = 0;
};

class DecisionLoop {
 public:
  DecisionLoop(pbt::Store& store, std::string experiment, int population)
      : store_(store),
        experiment_(std::move(experiment)),
        population_(population),
        exploit_(pbt::make_exploit("truncation", nlohmann::json{{"fraction", 0.2}}, "engine_cost: exploit")) {}

  // One decision: what a worker does at a ready step, minus training.
  void decide(PhaseTimes& t) {
    auto t0 = Clock::now();
    auto leased = store_.lease(experiment_, "bench-worker", 30.0);
    if (!leased) throw std::runtime_error("lease returned nothing");
    auto t1 = Clock::now();
    std::vector<pbt::MemberState> pop = store_.population(experiment_);
    auto t2 = Clock::now();

    const pbt::MemberState& m = leased->member;
    const std::int64_t step = m.step + 1;
    counter_++;
    pbt::Rng rng = pbt::make_rng(7, static_cast<std::uint64_t>(m.id), static_cast<std::uint64_t>(step), pbt::kExploit);
    const double score = pbt::uniform01(rng);  // a fresh "eval"
    pbt::Candidate self{m.id, score, {score}, step};
    std::vector<pbt::Candidate> candidates;
    candidates.reserve(pop.size());
    for (const auto& o : pop) {
      if (o.id == m.id) candidates.push_back(self);
      else if (o.score) candidates.push_back({o.id, *o.score, o.samples, o.step});
    }
    std::optional<int> donor = exploit_->choose(self, candidates, rng);
    pbt::Hyperparams h = m.h;
    if (donor)
      for (const auto& o : pop)
        if (o.id == *donor) h = o.h;
    if (donor) copies_++;
    auto t3 = Clock::now();

    pbt::Publication pub;
    pub.step = step;
    pub.last_ready_step = step;
    pub.score = score;
    pub.samples = {score};
    pub.h = h;
    std::string bytes(64, '\0');  // 64 bytes, distinct for every publish
    for (int i = 0; i < 8; ++i) {
      std::uint64_t word = counter_ * 0x9E3779B97F4A7C15ull + static_cast<std::uint64_t>(i) * 0xBF58476D1CE4E5B9ull;
      std::memcpy(&bytes[i * 8], &word, 8);
    }
    pub.checkpoint_bytes = std::move(bytes);
    pub.scores = {pbt::ScorePoint{m.id, step, score}};
    store_.publish(leased->lease, pub);
    auto t4 = Clock::now();
    store_.release(leased->lease);
    auto t5 = Clock::now();

    auto d = [](Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); };
    t.lease += d(t0, t1);
    t.population += d(t1, t2);
    t.choose += d(t2, t3);
    t.publish += d(t3, t4);
    t.release += d(t4, t5);
    t.n++;
  }

  std::int64_t copies() const { return copies_; }

 private:
  pbt::Store& store_;
  std::string experiment_;
  int population_;
  std::unique_ptr<pbt::Exploit> exploit_;
  std::uint64_t counter_ = 0;
  std::int64_t copies_ = 0;
};

struct DecisionResult {
  std::string store;
  int population = 0;
  std::int64_t n = 0;         // decisions per repetition
  std::vector<double> rates;  // decisions/s per repetition
  PhaseTimes phases;          // over all timed repetitions
  double copy_fraction = 0;
};

DecisionResult measure_decisions(const std::string& uri, const std::string& label, int population,
                                 double target_seconds) {
  auto store = pbt::open_store(uri);
  const std::string name = "cost-" + std::to_string(population);
  const auto cfg = pbt::parse_config(
      toy_config(name, population, 1, 1000000000, "[exploit]\nstrategy = \"truncation\"\nfraction = 0.2\n\n"),
      "engine_cost");
  pbt::create_or_join(*store, cfg);
  DecisionLoop loop(*store, name, population);

  // Warm-up: one pass over the population, so every member has a score and a checkpoint,
  // then ~0.3 s more to estimate the rate.
  PhaseTimes warm;
  for (int i = 0; i < population; ++i) loop.decide(warm);
  PhaseTimes cal;
  auto t0 = Clock::now();
  while (seconds_since(t0) < 0.3 || cal.n < 5) loop.decide(cal);
  const double rate = cal.n / seconds_since(t0);

  DecisionResult r;
  r.store = label;
  r.population = population;
  r.n = std::max<std::int64_t>(20, static_cast<std::int64_t>(rate * target_seconds));
  const std::int64_t copies_before = loop.copies();
  for (int rep = 0; rep < 5; ++rep) {
    auto s = Clock::now();
    for (std::int64_t i = 0; i < r.n; ++i) loop.decide(r.phases);
    r.rates.push_back(r.n / seconds_since(s));
  }
  r.copy_fraction = double(loop.copies() - copies_before) / r.phases.n;
  return r;
}

// ---------------------------------------------------------------- (b) RSS

long status_kb(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.compare(0, key.size(), key) == 0 && line.size() > key.size() && line[key.size()] == ':')
      return std::atol(line.c_str() + key.size() + 1);
  return -1;
}

std::uintmax_t file_size_or_zero(const std::filesystem::path& p) {
  std::error_code ec;
  auto n = std::filesystem::file_size(p, ec);
  return ec ? 0 : n;
}

struct RssBlock {
  int block = 0;
  std::int64_t intervals = 0;  // in this block
  std::int64_t total = 0;      // so far
  long rss_kb = 0;
  long hwm_kb = 0;
  double seconds = 0;
  std::uintmax_t db_bytes = 0;  // .db + -wal
  std::int64_t exploits = 0;
  long sqlite_kb = 0;  // sqlite3_memory_used(): SQLite's own heap (page cache, ...)
};

}  // namespace

int main(int argc, char** argv) {
  std::string out_path;
  double target_seconds = 1.5;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--out" && i + 1 < argc) out_path = argv[++i];
    else if (a == "--seconds" && i + 1 < argc) target_seconds = std::atof(argv[++i]);
    else {
      std::cerr << "usage: engine_cost [--seconds S] [--out FILE]\n";
      return 2;
    }
  }

  const std::string load_at_start = bench::loadavg();
  std::filesystem::path tmp;
  try {
    pbt::register_builtin_trainables();
    const char* tmpdir_env = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmpdir_env && *tmpdir_env ? tmpdir_env : "/tmp") + "/pbt-engine-cost-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed for " + tmpl);
    tmp = buf.data();
    const std::string fs_type = bench::shell_line("stat -f -c %T '" + tmp.string() + "' 2>/dev/null");

    // (b) first, so that VmRSS and VmHWM are not inflated by (a)'s stores.
    const std::filesystem::path rss_db = tmp / "rss.db";
    const long rss_before_store = status_kb("VmRSS");
    auto store = pbt::open_store("sqlite:" + rss_db.string());
    const auto cfg =
        pbt::parse_config(toy_config("rss", 2, 1, 1000000,
                                     "[exploit]\nstrategy = \"truncation\"\nfraction = 0.5\ncopy = \"weights\"\n\n"),
                          "engine_cost");
    pbt::create_or_join(*store, cfg);
    const long rss_start = status_kb("VmRSS");
    std::vector<RssBlock> blocks;
    std::int64_t total = 0;
    constexpr int kBlocks = 20;  // 10 asked for, 10 more to see whether growth levels off
    for (int b = 1; b <= kBlocks; ++b) {
      pbt::WorkerOptions opt;
      opt.id = "rss-worker";
      opt.max_intervals = 1000;
      auto t0 = Clock::now();
      pbt::WorkerStats st = pbt::run_worker(*store, cfg.name, opt);
      RssBlock blk;
      blk.block = b;
      blk.seconds = seconds_since(t0);
      blk.intervals = st.intervals;
      total += st.intervals;
      blk.total = total;
      blk.exploits = st.exploits;
      blk.rss_kb = status_kb("VmRSS");
      blk.hwm_kb = status_kb("VmHWM");
      blk.sqlite_kb = static_cast<long>(sqlite3_memory_used() / 1024);
      blk.db_bytes = file_size_or_zero(rss_db) + file_size_or_zero(rss_db.string() + "-wal");
      blocks.push_back(blk);
      std::cerr << "block " << b << ": " << st.intervals << " intervals, VmRSS " << blk.rss_kb << " kB\n";
      if (st.intervals != 1000)
        std::cerr << "warning: block " << b << " ran " << st.intervals << " intervals, not 1000\n";
    }
    const auto scores_rows = store->scores(cfg.name).size();
    const auto event_rows = store->events(cfg.name).size();
    store.reset();

    // (a)
    std::vector<DecisionResult> results;
    for (int population : {10, 100, 1000}) {
      const std::string db = (tmp / ("decisions-" + std::to_string(population) + ".db")).string();
      results.push_back(measure_decisions("sqlite:" + db, "sqlite", population, target_seconds));
      std::cerr << "sqlite P=" << population << ": " << fmt(bench::median(results.back().rates), 0) << " decisions/s\n";
      results.push_back(measure_decisions("memory:", "memory", population, target_seconds));
      std::cerr << "memory P=" << population << ": " << fmt(bench::median(results.back().rates), 0) << " decisions/s\n";
    }

    // Report.
    std::ostringstream md;
    md << "# Engine cost: store decisions per second, and a worker's memory over 10,000 intervals\n\n";
    md << "Reproduce (from the repository root):\n\n```sh\n"
       << "cmake -S . -B build -DPBT_BUILD_TESTS=OFF && cmake --build build -j2 --target engine_cost\n"
       << "./build/bench/perf/engine_cost --seconds " << target_seconds
       << " --out docs/results/engine-cost.md\n```\n\n";
    md << bench::machine_markdown(load_at_start);
    md << "- Build: CMake's default build type for this project (RelWithDebInfo, -O2 -g) unless the build directory "
          "was configured otherwise.\n";
    md << "- Temp directory for the SQLite files: `" << tmp.parent_path().string()
       << "` (filesystem type: " << (fs_type.empty() ? "unknown" : fs_type)
       << "). SQLite runs in WAL mode with synchronous = NORMAL "
          "(the store's settings), so a commit does not fsync.\n";
    md << "- The machine is shared with other work, so absolute rates carry noise; the min – max over the 5 "
          "repetitions shows its size.\n\n";

    md << "## (a) Decisions per second (one worker process, one thread)\n\n"
       << "One decision is what a worker does at a ready step, without training: `Store::lease` (the member "
          "furthest behind) → `Store::population` → build `Candidate`s from the population (the member itself "
          "with a fresh pseudo-random score) and `make_exploit(\"truncation\", fraction 0.2)->choose` → "
          "`Store::publish` (step + 1, score, h — the donor's when a copy was chosen —, a 64-byte checkpoint "
          "with distinct content every time, one `ScorePoint`) → `Store::release`. Because every publish "
          "advances the member by one step, the lease walks round-robin over the whole population. Each "
          "setting first makes one warm-up pass over the population (every member then has a score and a "
          "checkpoint), then ~0.3 s to estimate the rate; N is chosen so that one repetition takes about "
       << target_seconds << " s; the figure is the median over 5 repetitions of N decisions.\n\n";
    md << "| store | population | N per repetition | decisions/s (median of 5) | min – max | ms per decision | "
          "lease ms | population ms | choose ms | publish ms | release ms | copies |\n"
       << "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for (const auto& r : results) {
      const double per = 1000.0 / r.phases.n;
      md << "| " << r.store << " | " << r.population << " | " << r.n << " | " << fmt(bench::median(r.rates), 0) << " | "
         << fmt(bench::min_of(r.rates), 0) << " – " << fmt(bench::max_of(r.rates), 0) << " | "
         << fmt(1000.0 / bench::median(r.rates), 3) << " | " << fmt(r.phases.lease * per, 3) << " | "
         << fmt(r.phases.population * per, 3) << " | " << fmt(r.phases.choose * per, 3) << " | "
         << fmt(r.phases.publish * per, 3) << " | " << fmt(r.phases.release * per, 3) << " | "
         << fmt(100.0 * r.copy_fraction, 0) << "% |\n";
    }
    md << "\nPhase columns are means over all timed decisions (ms each); \"copies\" is the share of decisions where "
          "truncation chose a donor (about the bottom 20%).";
    for (const auto& r : results)
      if (r.store == "sqlite" && r.population == 1000) {
        const double total_s =
            r.phases.lease + r.phases.population + r.phases.choose + r.phases.publish + r.phases.release;
        md << " On SQLite with 1000 members, `Store::population` (every member row read back, its h, samples and "
              "metrics parsed from JSON text) takes "
           << fmt(100.0 * r.phases.population / total_s, 0)
           << "% of a decision; the decision cost grows with the population mostly through that read.";
      }
    md << "\n\n";

    md << "## (b) A worker's resident memory over 10,000 toy intervals (SQLite store)\n\n"
       << "Toy experiment, population 2, ready interval 1 (an exploit/explore decision every interval), eval every "
          "step, truncation 0.5 copying weights, gaussian σ = 0.1, budget 1,000,000 steps (never reached). One "
          "`Store` (SQLite file in the temp directory) and, in the same process, `run_worker` with "
          "`max_intervals = 1000` called ten times (then ten more, to see where it levels off); `VmRSS` and `VmHWM` "
          "read from `/proc/self/status` after each call, and SQLite's own heap (`sqlite3_memory_used()`, mostly "
          "its page cache, bounded by `PRAGMA cache_size`, default 2,000 KiB per connection; the store does not "
          "change it).\n\n";
    md << "- Part (b) runs first in the process, before (a). VmRSS before opening the store: " << rss_before_store
       << " kB; after opening it and creating the "
       << "experiment: " << rss_start << " kB.\n\n";
    md << "| block | intervals (block / total) | VmRSS kB | VmHWM kB | Δ VmRSS vs block 1 kB | SQLite heap kB | "
          "VmRSS − SQLite heap kB | exploits in block | block time s | intervals/s | store file (.db + -wal) kB |\n"
       << "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for (const auto& b : blocks)
      md << "| " << b.block << (b.block > 10 ? " (extra)" : "") << " | " << b.intervals << " / " << b.total << " | "
         << b.rss_kb << " | " << b.hwm_kb << " | " << (b.rss_kb - blocks.front().rss_kb) << " | " << b.sqlite_kb
         << " | " << (b.rss_kb - b.sqlite_kb) << " | " << b.exploits << " | " << fmt(b.seconds, 2) << " | "
         << fmt(b.intervals / b.seconds, 0) << " | " << (b.db_bytes / 1024) << " |\n";
    const RssBlock& b1 = blocks.front();
    const RssBlock& b10 = blocks[9];
    const RssBlock& bl = blocks.back();
    const long growth = b10.rss_kb - b1.rss_kb;
    const long sqlite_growth = b10.sqlite_kb - b1.sqlite_kb;
    const long late_growth = bl.rss_kb - b10.rss_kb;
    const long tail_growth = bl.rss_kb - blocks[blocks.size() - 6].rss_kb;  // over the last five blocks
    const double growth_pct = 100.0 * growth / b1.rss_kb;
    md << "\nRows written: " << scores_rows << " score points, " << event_rows << " events.\n\n";
    md << "**Growth of VmRSS from block 1 to block 10: " << (growth >= 0 ? "+" : "") << growth << " kB ("
       << fmt(growth_pct, 1) << "%)**, of which SQLite's heap grew " << (sqlite_growth >= 0 ? "+" : "") << sqlite_growth
       << " kB; VmRSS − SQLite heap went from " << (b1.rss_kb - b1.sqlite_kb) << " to " << (b10.rss_kb - b10.sqlite_kb)
       << " kB. From block 10 to block " << bl.block << ": " << (late_growth >= 0 ? "+" : "") << late_growth
       << " kB (SQLite heap " << b10.sqlite_kb << " → " << bl.sqlite_kb << " kB).\n\n";
    if (growth <= 512) {
      md << "Flat: the worker holds no per-interval state.\n";
    } else if (std::labs((growth - sqlite_growth)) <= 512 && tail_growth <= 64) {
      md << "Not a leak in the worker: almost all of the growth is SQLite's page cache filling up as the store file "
            "grows (new score/event pages pass through it) until it reaches its bound (default `cache_size` = "
            "2,000 KiB per connection; here SQLite's heap levels off at "
         << bl.sqlite_kb << " kB). The rest, VmRSS − SQLite heap, grew "
         << (b10.rss_kb - b10.sqlite_kb) - (b1.rss_kb - b1.sqlite_kb) << " kB over blocks 1–10 and "
         << (bl.rss_kb - bl.sqlite_kb) - (b10.rss_kb - b10.sqlite_kb) << " kB over blocks 10–" << bl.block
         << ", and VmRSS changed by " << tail_growth << " kB over the last five blocks: it levels off.\n";
    } else {
      md << "**VmRSS grows beyond what SQLite's heap accounts for: about " << (growth - sqlite_growth) / 9
         << " kB per 1,000 intervals over blocks 1–10, and " << late_growth
         << " kB over the extra blocks. Reported as found.**\n";
    }

    std::ostringstream check;
    check << "check: RSS growth block 1 -> 10: " << growth << " kB (" << fmt(growth_pct, 1) << "%, SQLite heap "
          << sqlite_growth << " kB), block 10 -> " << bl.block << ": " << late_growth << " kB";
    for (const auto& r : results)
      check << "; " << r.store << " P=" << r.population << ": " << fmt(bench::median(r.rates), 0) << "/s";
    md << "\n## Checks\n\n`" << check.str() << "`\n";
    bench::emit(md.str(), out_path);
    std::cerr << check.str() << "\n";
    std::filesystem::remove_all(tmp);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "engine_cost: " << e.what() << "\n";
    if (!tmp.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(tmp, ec);
    }
    return 1;
  }
}
