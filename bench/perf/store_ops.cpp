// Store operations per second with 1..16 worker processes, SQLite and PostgreSQL side by
// side, and checkpoint write/read throughput for 1 MB and 100 MB models.
//
//   store_ops [--sqlite-dir DIR] [--postgres URI] [--seconds S] [--reps R] [--out FILE]
//             [--parts ops,decision,checkpoints]   (default: all three)
//
// Each worker process opens its own store and repeats what a worker does at a ready step
// without training: lease -> read the population -> publish (64-byte checkpoint, one
// score point) -> release.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <thread>

#include "pbt/pbt.hpp"
#include "bench_common.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kPopulation = 100;

struct Totals {
  double cycles = 0, lease_s = 0, population_s = 0, publish_s = 0, release_s = 0;
};

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void create(pbt::Store& store, const std::string& name, int population) {
  pbt::ExperimentInfo info;
  info.name = name;
  info.config = "bench";
  info.origin = "store_ops";
  info.population = population;
  std::vector<pbt::MemberState> members(population);
  for (int i = 0; i < population; ++i) {
    members[i].id = i;
    members[i].h = {{"lr", 0.01 * (i + 1)}, {"layers", std::int64_t(3)}};
  }
  store.create_experiment(info, members);
}

// One worker process: cycles for `seconds` after `start`, then writes its totals to `fd`.
void worker_loop(const std::string& uri, const std::string& experiment, int index, double seconds,
                 Clock::time_point start, int fd) {
  auto store = pbt::open_store(uri);
  const std::string id = "bench-" + std::to_string(index);
  Totals t;
  std::uint64_t counter = static_cast<std::uint64_t>(index) << 40;
  while (Clock::now() < start) std::this_thread::sleep_for(std::chrono::microseconds(200));
  const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  while (Clock::now() < end) {
    auto t0 = Clock::now();
    auto leased = store->lease(experiment, id, 30);
    t.lease_s += since(t0);
    if (!leased) continue;
    t0 = Clock::now();
    auto pop = store->population(experiment);
    t.population_s += since(t0);
    pbt::Publication pub;
    pub.step = leased->member.step + 1;
    pub.last_ready_step = pub.step;
    pub.score = static_cast<double>(counter % 1000) / 1000.0;
    pub.h = leased->member.h;
    std::string bytes(64, '\0');
    ++counter;
    std::memcpy(bytes.data(), &counter, sizeof counter);
    pub.checkpoint_bytes = bytes;
    pub.scores.push_back({leased->member.id, pub.step, pub.score});
    t0 = Clock::now();
    store->publish(leased->lease, pub);
    t.publish_s += since(t0);
    t0 = Clock::now();
    store->release(leased->lease);
    t.release_s += since(t0);
    t.cycles += 1;
  }
  char buf[256];
  int n = std::snprintf(buf, sizeof buf, "%.0f %.9f %.9f %.9f %.9f\n", t.cycles, t.lease_s, t.population_s, t.publish_s,
                        t.release_s);
  if (write(fd, buf, n) != n) _exit(3);
}

Totals run_processes(const std::string& uri, const std::string& experiment, int workers, double seconds) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe");
  const auto start = Clock::now() + std::chrono::milliseconds(300 + 20 * workers);
  std::vector<pid_t> pids;
  for (int w = 0; w < workers; ++w) {
    pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      try {
        worker_loop(uri, experiment, w, seconds, start, fds[1]);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "worker %d: %s\n", w, e.what());
        _exit(2);
      }
      _exit(0);
    }
    pids.push_back(pid);
  }
  close(fds[1]);
  Totals sum;
  FILE* in = fdopen(fds[0], "r");
  Totals t;
  while (std::fscanf(in, "%lf %lf %lf %lf %lf", &t.cycles, &t.lease_s, &t.population_s, &t.publish_s, &t.release_s) ==
         5) {
    sum.cycles += t.cycles;
    sum.lease_s += t.lease_s;
    sum.population_s += t.population_s;
    sum.publish_s += t.publish_s;
    sum.release_s += t.release_s;
  }
  fclose(in);
  for (pid_t p : pids) {
    int status = 0;
    waitpid(p, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error("a bench worker failed");
  }
  return sum;
}

struct Throughput {
  double write_mb_s, read_mb_s;
};

Throughput checkpoint_throughput(pbt::Store& store, const std::string& experiment, std::size_t bytes, int reps) {
  std::vector<double> writes, reads;
  for (int r = 0; r < reps; ++r) {
    auto leased = store.lease(experiment, "ckpt", 600);
    if (!leased) throw std::runtime_error("no member to lease");
    pbt::Publication pub;
    pub.step = leased->member.step + 1;
    pub.score = 0;
    pub.h = leased->member.h;
    pub.checkpoint_bytes.assign(bytes, '\0');
    for (std::size_t i = 0; i < bytes; i += 4096)
      pub.checkpoint_bytes[i] = static_cast<char>((i / 4096 + r * 7) & 0xff);
    std::memcpy(pub.checkpoint_bytes.data(), &r, sizeof r);
    auto t0 = Clock::now();
    store.publish(leased->lease, pub);
    writes.push_back(bytes / 1e6 / since(t0));
    store.release(leased->lease);
    const std::string id = store.population(experiment)[leased->member.id].checkpoint;
    t0 = Clock::now();
    std::string back = store.checkpoint(id);
    reads.push_back(bytes / 1e6 / since(t0));
    if (back.size() != bytes) throw std::runtime_error("checkpoint read back with the wrong size");
  }
  return {bench::median(writes), bench::median(reads)};
}

}  // namespace

int main(int argc, char** argv) {
  std::string sqlite_dir, pg_uri, out, parts = "ops,decision,checkpoints";
  double seconds = 2.0;
  int reps = 3;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--sqlite-dir") sqlite_dir = next();
    else if (a == "--postgres") pg_uri = next();
    else if (a == "--seconds") seconds = std::stod(next());
    else if (a == "--reps") reps = std::stoi(next());
    else if (a == "--out") out = next();
    else if (a == "--parts") parts = next();
    else {
      std::cerr << "usage: store_ops [--sqlite-dir DIR] [--postgres URI] [--seconds S] [--reps R] [--out FILE] "
                   "[--parts ops,decision,checkpoints]\n";
      return 2;
    }
  }
  if (pg_uri.empty() && std::getenv("PBT_TEST_POSTGRES_URI")) pg_uri = std::getenv("PBT_TEST_POSTGRES_URI");
  const std::string load = bench::loadavg();
  if (sqlite_dir.empty())
    sqlite_dir = (fs::temp_directory_path() / ("pbt-store-ops-" + std::to_string(getpid()))).string();
  fs::create_directories(sqlite_dir);

  std::vector<std::pair<std::string, std::string>> backends = {{"sqlite", "sqlite:" + sqlite_dir + "/ops.db"}};
  if (!pg_uri.empty()) backends.push_back({"postgresql", pg_uri});

  std::ostringstream md;
  md << "# Store operations: 1 to 16 worker processes, SQLite and PostgreSQL side by side\n\n"
     << "Reproduce (from the repository root; the PostgreSQL column needs a server, e.g. the one "
        "scripts/pg-server.sh starts):\n\n```sh\nscripts/setup.sh build\n"
     << "./build/bench/perf/store_ops --seconds " << seconds << " --reps " << reps
     << (pg_uri.empty() ? "" : " --postgres postgresql://USER@127.0.0.1:PORT/DB")
     << " --out docs/results/store-ops.md\n```\n\n"
     << bench::machine_markdown(load) << "- SQLite file in " << sqlite_dir << " (WAL, synchronous=NORMAL); PostgreSQL "
     << (pg_uri.empty() ? "not measured (no --postgres URI given)" : "on loopback, fsync as configured by the server")
     << "\n\n## Operations per second (population " << kPopulation << ")\n\n"
     << "Each worker process repeats lease → read the population → publish (64-byte checkpoint, one score point) → "
        "release for "
     << seconds << " s; a cycle is one of each, so publishes/s = leases/s = population reads/s = cycles/s. "
     << "Median over " << reps << " repetitions of the total over all processes; latencies are means per operation. "
     << "The machine has 2 cores, so beyond 2 processes they share them.\n\n"
     << "| store | processes | cycles/s (= publishes/s = leases/s = reads/s) | lease ms | read population ms | publish "
        "ms | release ms |\n"
     << "|---|---:|---:|---:|---:|---:|---:|\n";
  auto part = [&](const char* p) { return ("," + parts + ",").find(std::string(",") + p + ",") != std::string::npos; };
  std::map<std::string, std::map<int, double>> summary;
  for (const auto& [name, uri] : backends) {
    if (!part("ops")) break;
    for (int workers : {1, 2, 4, 8, 16}) {
      std::vector<double> rates, lease, pop, publish, release;
      for (int r = 0; r < reps; ++r) {
        const std::string exp =
            "ops_" + std::to_string(workers) + "_" + std::to_string(r) + "_" + std::to_string(getpid());
        {
          auto store = pbt::open_store(uri);
          create(*store, exp, kPopulation);
        }
        Totals t = run_processes(uri, exp, workers, seconds);
        rates.push_back(t.cycles / seconds);
        const double c = std::max(1.0, t.cycles);
        lease.push_back(1e3 * t.lease_s / c);
        pop.push_back(1e3 * t.population_s / c);
        publish.push_back(1e3 * t.publish_s / c);
        release.push_back(1e3 * t.release_s / c);
      }
      summary[name][workers] = bench::median(rates);
      md << "| " << name << " | " << workers << " | " << bench::fmt(bench::median(rates), 0) << " | "
         << bench::fmt(bench::median(lease)) << " | " << bench::fmt(bench::median(pop)) << " | "
         << bench::fmt(bench::median(publish)) << " | " << bench::fmt(bench::median(release)) << " |\n";
      std::cerr << name << " " << workers << " processes: " << bench::fmt(bench::median(rates), 0) << " cycles/s\n";
    }
  }

  // A decision at 1,000 members: read the population and choose a donor, one process,
  // while the population changes a little between decisions (one publish each), as in a run.
  md << "\n## A decision over 1,000 members\n\n"
     << "Read the population (Store::population) and choose with truncation (fraction 0.2), after one publish by "
        "another member; median over 300 decisions, one process. The aim is under 1 ms.\n\n"
     << "| store | read population ms | choose ms | decision ms |\n|---|---:|---:|---:|\n";
  for (const auto& [name, uri] : backends) {
    if (!part("decision")) break;
    auto store = pbt::open_store(uri);
    const std::string exp = "decide_" + std::to_string(getpid());
    create(*store, exp, 1000);
    auto exploit = pbt::make_exploit("truncation", nlohmann::json::object(), "bench");
    std::vector<double> reads, chooses, totals;
    for (int i = 0; i < 1300; ++i) {
      auto leased = store->lease(exp, "decider", 30);
      pbt::Publication pub;
      pub.step = leased->member.step + 1;
      pub.score = (i * 37 % 1000) / 1000.0;
      pub.h = leased->member.h;
      pub.checkpoint_bytes = "ckpt-" + std::to_string(i);
      store->publish(leased->lease, pub);
      store->release(leased->lease);
      auto t0 = Clock::now();
      auto pop = store->population(exp);
      const double read = since(t0);
      t0 = Clock::now();
      std::vector<pbt::Candidate> cands;
      for (const auto& m : pop)
        if (m.score) cands.push_back({m.id, *m.score, m.samples, m.step});
      pbt::Rng rng(i);
      if (!cands.empty()) exploit->choose(cands.back(), cands, rng);
      const double choose = since(t0);
      if (i >= 1000) {  // every member has published once: the steady state
        reads.push_back(1e3 * read);
        chooses.push_back(1e3 * choose);
        totals.push_back(1e3 * (read + choose));
      }
    }
    md << "| " << name << " | " << bench::fmt(bench::median(reads)) << " | " << bench::fmt(bench::median(chooses))
       << " | " << bench::fmt(bench::median(totals)) << " |\n";
    std::cerr << name << " decision at 1000 members: " << bench::fmt(bench::median(totals)) << " ms\n";
  }

  md << "\n## Checkpoint throughput (one process; median of " << reps << ")\n\n"
     << "Write = a publish carrying the checkpoint (hashing, insert, commit); read = fetch by id and verify the "
        "hash.\n\n"
     << "| store | size | write MB/s | read MB/s |\n|---|---:|---:|---:|\n";
  for (const auto& [name, uri] : backends) {
    if (!part("checkpoints")) break;
    auto store = pbt::open_store(uri);
    const std::string exp = "ckpt_" + std::to_string(getpid());
    create(*store, exp, 1);
    for (std::size_t mb : {1, 100}) {
      Throughput t = checkpoint_throughput(*store, exp, mb * 1000 * 1000, reps);
      md << "| " << name << " | " << mb << " MB | " << bench::fmt(t.write_mb_s, 0) << " | "
         << bench::fmt(t.read_mb_s, 0) << " |\n";
      std::cerr << name << " " << mb << " MB: write " << bench::fmt(t.write_mb_s, 0) << " MB/s, read "
                << bench::fmt(t.read_mb_s, 0) << " MB/s\n";
    }
  }
  bench::emit(md.str(), out);
  fs::remove_all(fs::path(sqlite_dir));
  return 0;
}
