// Report at scale: a synthetic 1,000-member, 10,000-event run written into a SQLite store
// through the Store interface, the report generated from it, and the time headless
// Chromium takes to open and render that report.
//
//   report_scale [--members N] [--decisions-per-member K] [--interval S] [--reps R]
//                [--chromium PATH] [--dir DIR] [--out FILE]
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <regex>

#include "pbt/pbt.hpp"
#include "pbt/report.hpp"
#include "bench_common.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs a command with stdout to `out` (stderr discarded); returns its wall time in seconds.
double timed_run(const std::vector<std::string>& args, const std::string& out, int* status) {
  const auto t0 = Clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int n = open("/dev/null", O_RDWR);
    dup2(n, 0);
    dup2(o, 1);
    dup2(n, 2);
    std::vector<std::string> copy = args;
    std::vector<char*> argv;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return seconds_since(t0);
}

std::vector<std::string> chromium_cmd(const std::string& exe, const std::string& profile) {
  fs::remove_all(profile);
  fs::create_directories(profile);
  return {exe,
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
          "--disable-quic",
          "--disable-dev-shm-usage",
          "--user-data-dir=" + profile};
}

std::size_t count_of(const std::string& hay, const std::string& needle) {
  std::size_t n = 0;
  for (auto p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

std::string attr(const std::string& dom, const std::string& name) {
  std::smatch m;
  if (std::regex_search(dom, m, std::regex(name + "=\"([^\"]*)\""))) return m[1];
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  int members = 1000, per_member = 10, interval = 10, reps = 3;
  std::string chromium = "/usr/bin/chromium", dir, out;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--members") members = std::stoi(next());
    else if (a == "--decisions-per-member") per_member = std::stoi(next());
    else if (a == "--interval") interval = std::stoi(next());
    else if (a == "--reps") reps = std::stoi(next());
    else if (a == "--chromium") chromium = next();
    else if (a == "--dir") dir = next();
    else if (a == "--out") out = next();
    else {
      std::cerr << "usage: report_scale [--members N] [--decisions-per-member K] [--interval S] [--reps R] "
                   "[--chromium PATH] [--dir DIR] [--out FILE]\n";
      return 2;
    }
  }
  const std::string load0 = bench::loadavg();
  if (dir.empty()) dir = (fs::temp_directory_path() / ("pbt-report-scale-" + std::to_string(getpid()))).string();
  fs::remove_all(dir);
  fs::create_directories(dir);
  const int rounds = per_member + 1;  // the last interval ends at the budget: no decision there
  const std::int64_t budget = static_cast<std::int64_t>(rounds) * interval;

  // --- 1. the synthetic run, written as workers would: lease, publish, release ----------------
  std::ostringstream toml;
  toml << "name = \"scale\"\nseed = 1\npopulation = " << members
       << "\n[trainable]\nkind = \"toy\"\n[budget]\nsteps = " << budget << "\n[ready]\ninterval = " << interval
       << "\neval_every = 1\n[exploit]\nstrategy = \"truncation\"\n"
       << "fraction = 0.2\n[explore]\nstrategy = \"perturb\"\nalways = true\n"
       << "[space.lr]\ntype = \"float\"\nlow = 0.0001\nhigh = 0.1\nlog = true\n"
       << "[space.momentum]\ntype = \"float\"\nlow = 0.0\nhigh = 0.99\n"
       << "[space.h0]\ntype = \"float\"\nlow = 0.0\nhigh = 1.0\n[space.h1]\ntype = \"float\"\nlow = 0.0\nhigh = 1.0\n"
       << "[space.act]\ntype = \"categorical\"\nchoices = [\"relu\", \"tanh\", \"gelu\"]\n";
  const pbt::ExperimentConfig cfg = pbt::parse_config(toml.str(), "report_scale");
  const std::string db = dir + "/store.db";
  auto store = pbt::open_store("sqlite:" + db);
  const auto t_write = Clock::now();
  pbt::create_or_join(*store, cfg);

  std::mt19937_64 rng(7);
  std::normal_distribution<double> noise(0.0, 1.0);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  struct Sim {
    double quality, tau;
    pbt::Hyperparams h;
    double score = 0;
  };
  std::vector<Sim> sim(members);
  const auto initial = pbt::initial_hyperparams(cfg);
  for (int m = 0; m < members; ++m) sim[m] = {0.5 + 0.5 * unit(rng), 20 + 40 * unit(rng), initial[m]};
  auto perturb = [&](pbt::Hyperparams h) {
    for (auto& [k, v] : h) {
      if (auto d = std::get_if<double>(&v)) {
        const auto* p = cfg.space.find(k);
        *d = std::clamp(*d * (unit(rng) < 0.5 ? 0.8 : 1.2), p->low, p->high);
      }
    }
    if (unit(rng) < 0.1) h["act"] = std::string(unit(rng) < 0.5 ? "relu" : "gelu");
    return h;
  };

  std::size_t events = 0, points = 0;
  for (int round = 1; round <= rounds; ++round) {
    const std::int64_t end = static_cast<std::int64_t>(round) * interval;
    // Everybody's score at this boundary, then the decisions (bottom 20% copy the top 20%).
    std::vector<std::vector<pbt::ScorePoint>> pts(members);
    for (int m = 0; m < members; ++m) {
      for (std::int64_t s = end - interval + 1; s <= end; ++s) {
        const double v = sim[m].quality * (1 - std::exp(-static_cast<double>(s) / sim[m].tau)) + 0.01 * noise(rng);
        pts[m].push_back({m, s, v});
      }
      sim[m].score = pts[m].back().score;
    }
    std::vector<int> order(members);
    for (int m = 0; m < members; ++m) order[m] = m;
    std::sort(order.begin(), order.end(), [&](int a, int b) { return sim[a].score > sim[b].score; });
    std::vector<pbt::Event> ev(members);
    std::vector<Sim> before = sim;
    const bool decide = end < budget;
    if (decide) {
      const int cut = std::max(1, members / 5);
      for (int r = 0; r < members; ++r) {
        const int m = order[r];
        pbt::Event& e = ev[m];
        e.member = m;
        e.step = end;
        e.old_h = sim[m].h;
        e.old_score = sim[m].score;
        if (r >= members - cut) {  // bottom: copy one of the top
          const int d = order[static_cast<int>(unit(rng) * cut)];
          e.kind = pbt::EventKind::exploit;
          e.donor = d;
          e.donor_step = end;
          e.copied = pbt::CopyMode::all;
          e.donor_score = before[d].score;
          sim[m].quality = before[d].quality * (1 + 0.02 * noise(rng));
          sim[m].tau = before[d].tau;
          sim[m].h = perturb(before[d].h);
          sim[m].score = before[d].score;
        } else {  // explore only
          e.kind = pbt::EventKind::explore;
          sim[m].h = perturb(sim[m].h);
          sim[m].quality *= 1 + 0.01 * noise(rng);
        }
        e.new_h = sim[m].h;
        e.new_score = sim[m].score;
        e.worker = "bench";
      }
    }
    for (int k = 0; k < members; ++k) {
      auto leased = store->lease("scale", "bench", 600);
      if (!leased) throw std::runtime_error("no member to lease");
      const int m = leased->member.id;
      pbt::Publication pub;
      pub.step = end;
      pub.last_ready_step = decide ? end : leased->member.last_ready_step;
      pub.score = sim[m].score;
      pub.h = sim[m].h;
      pub.checkpoint_bytes = "member " + std::to_string(m) + " step " + std::to_string(end);
      pub.done = !decide;
      pub.scores = pts[m];
      points += pts[m].size();
      if (decide) {
        pub.events = {ev[m]};
        ++events;
      }
      store->publish(leased->lease, pub);
      store->release(leased->lease);
    }
  }
  const double write_s = seconds_since(t_write);

  // --- 2. the report ------------------------------------------------------------------------
  std::vector<double> read_s, build_s;
  std::string html;
  pbt::report::RunData run;
  for (int r = 0; r < reps; ++r) {
    auto t0 = Clock::now();
    run = pbt::report::read_run(*store, "scale");
    read_s.push_back(seconds_since(t0));
    t0 = Clock::now();
    html = pbt::report::render_html(run);
    build_s.push_back(seconds_since(t0));
  }
  const std::string report = dir + "/report.html";
  std::ofstream(report, std::ios::binary) << html;
  const auto data = pbt::report::page_data(run);
  const std::size_t nodes = data["tree"]["m"].size();

  // --- 3. Chromium: open and render ----------------------------------------------------------
  std::vector<double> blank_s, dom_s, shot_s, in_page_ms;
  std::string dom_check = "not run";
  bool have_chromium = access(chromium.c_str(), X_OK) == 0;
  if (have_chromium) {
    const std::string blank = dir + "/blank.html";
    std::ofstream(blank) << "<!DOCTYPE html><title>blank</title><p>blank</p>";
    for (int r = 0; r < reps; ++r) {
      int st = 0;
      auto cmd = chromium_cmd(chromium, dir + "/profile-blank");
      cmd.push_back("--dump-dom");
      cmd.push_back("file://" + blank);
      blank_s.push_back(timed_run(cmd, dir + "/blank.dom", &st));

      cmd = chromium_cmd(chromium, dir + "/profile-dom");
      cmd.push_back("--dump-dom");
      cmd.push_back("file://" + report);
      dom_s.push_back(timed_run(cmd, dir + "/report.dom", &st));
      const std::string dom = read_all(dir + "/report.dom");
      const std::size_t curves = count_of(dom, "data-curve-member=");
      const std::string rendered = attr(dom, "data-rendered"), ms = attr(dom, "data-render-ms");
      const std::string tree_nodes = attr(dom, "data-tree-nodes");
      if (!ms.empty()) in_page_ms.push_back(std::stod(ms));
      dom_check = "exit " + std::to_string(st) + ", " + std::to_string(curves) +
                  " score curves, data-tree-nodes=" + tree_nodes + ", " + std::to_string(count_of(dom, "data-error=")) +
                  " script errors" + (rendered.empty() ? ", NOT rendered" : "");

      cmd = chromium_cmd(chromium, dir + "/profile-shot");
      cmd.push_back("--window-size=1400,1000");
      cmd.push_back("--screenshot=" + dir + "/report.png");
      cmd.push_back("file://" + report);
      shot_s.push_back(timed_run(cmd, dir + "/shot.out", &st));
    }
  }

  // --- 4. results -------------------------------------------------------------------------------
  std::ostringstream o;
  o << "# Report at scale: " << members << " members, " << events << " events\n\n"
    << "Reproduce (from the repository root):\n\n```sh\n"
    << "cmake -S . -B build && cmake --build build -j2 --target report_scale\n"
    << "./build/bench/perf/report_scale --out docs/results/report-scale.md\n```\n\n"
    << bench::machine_markdown(load0)
    << "- Build: CMake's default build type for this project (RelWithDebInfo, -O2 -g) unless configured otherwise.\n"
    << "- Chromium: `" << (have_chromium ? bench::shell_line(chromium + " --version 2>/dev/null") : "not found")
    << "`, headless, flags as in the browser tests.\n\n"
    << "## The run\n\n"
    << "A synthetic run written through `Store::lease` / `publish` / `release` into SQLite (`" << db
    << "`): " << members << " members, budget " << budget << " steps, ready every " << interval
    << " steps, one eval per step, "
    << "so " << rounds << " intervals per member (" << nodes << " lineage-tree nodes), " << points
    << " score points and " << events << " events (at each of the " << per_member
    << " decision steps the bottom 20% copy a member of the "
    << "top 20% and everybody else explores: `explore.always`). Five hyperparameters (one log-scale, one categorical). "
    << "Writing it took " << bench::fmt(write_s, 1) << " s.\n\n"
    << "## Timings (median of " << reps << ")\n\n"
    << "| what | median | min – max |\n|---|---:|---:|\n"
    << "| read the run from SQLite (`report::read_run`) | " << bench::fmt(bench::median(read_s), 3) << " s | "
    << bench::fmt(bench::min_of(read_s), 3) << " – " << bench::fmt(bench::max_of(read_s), 3) << " s |\n"
    << "| build the HTML (`report::render_html`) | " << bench::fmt(bench::median(build_s), 3) << " s | "
    << bench::fmt(bench::min_of(build_s), 3) << " – " << bench::fmt(bench::max_of(build_s), 3) << " s |\n";
  if (have_chromium) {
    o << "| Chromium start + open a blank page + exit (`--dump-dom`, the fixed cost) | "
      << bench::fmt(bench::median(blank_s), 2) << " s | " << bench::fmt(bench::min_of(blank_s), 2) << " – "
      << bench::fmt(bench::max_of(blank_s), 2) << " s |\n"
      << "| Chromium start + open the report + run its script + dump the DOM + exit (`--dump-dom`) | "
      << bench::fmt(bench::median(dom_s), 2) << " s | " << bench::fmt(bench::min_of(dom_s), 2) << " – "
      << bench::fmt(bench::max_of(dom_s), 2) << " s |\n"
      << "| Chromium start + open + render + screenshot 1400×1000 + exit (`--screenshot`) | "
      << bench::fmt(bench::median(shot_s), 2) << " s | " << bench::fmt(bench::min_of(shot_s), 2) << " – "
      << bench::fmt(bench::max_of(shot_s), 2) << " s |\n"
      << "| drawing every chart inside the page (the page's own `data-render-ms`) | "
      << bench::fmt(bench::median(in_page_ms) / 1000.0, 2) << " s | "
      << bench::fmt(bench::min_of(in_page_ms) / 1000.0, 2) << " – " << bench::fmt(bench::max_of(in_page_ms) / 1000.0, 2)
      << " s |\n";
  }
  o << "\nReport file: " << bench::fmt(html.size() / (1024.0 * 1024.0), 2) << " MiB. ";
  if (have_chromium) o << "Last `--dump-dom` check: " << dom_check << ".\n";
  else o << "Chromium was not found at `" << chromium << "`: no browser timings.\n";
  o << "\nThinning at this size: score curves are drawn in full (" << points
    << " points; curves are thinned beyond 250,000 points, every k-th eval plus the ends of each piece); "
       "the lineage tree has more than 6,000 nodes, so its nodes and edges are drawn as a few batched SVG paths "
       "(one per colour) instead of one element per node, without hover titles; hyperparameter lines likewise "
       "beyond 6,000 segments.\n";
  bench::emit(o.str(), out);
  return 0;
}
