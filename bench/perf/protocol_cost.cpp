// What the process protocol costs by itself (docs/protocol.md): round trips per second
// for a no-op step and eval, the time to start and stop a trainer, and checkpoint
// save/load through files. Trainers: tests/process/fake_trainer.py --mode noop (the
// protocol by hand) and bench/perf/noop_trainer.py (through python/pbt_trainer.py).
//
//   ./build/bench/perf/protocol_cost [--python /usr/bin/python3] [--root .] [--n 20000] [--out FILE]
// Run it from the repository root (or give --root).
#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>

#include "pbt/trainable.hpp"
#include "bench_common.hpp"

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::unique_ptr<pbt::Trainable> start(const std::vector<std::string>& argv, std::size_t ckpt_bytes = 16) {
  pbt::TrainableContext ctx;
  ctx.member = 0;
  ctx.seed = 1;
  ctx.options = {{"argv", argv}, {"env", {{"BENCH_CKPT_BYTES", std::to_string(ckpt_bytes)}}}};
  ctx.log = [](const std::string&) {};
  return pbt::make_trainable("process", ctx);
}

// Median of `reps` timings of `n` calls: calls per second.
double rate(int reps, int n, const std::function<void()>& call) {
  std::vector<double> r;
  for (int k = 0; k < reps; ++k) {
    auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) call();
    r.push_back(n / seconds_since(t0));
  }
  return bench::median(r);
}

}  // namespace

int main(int argc, char** argv) {
  std::string python = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
  std::string root = ".", out;
  int n = 20000;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--python") python = argv[i + 1];
    else if (a == "--root") root = argv[i + 1];
    else if (a == "--n") n = std::atoi(argv[i + 1]);
    else if (a == "--out") out = argv[i + 1];
    else {
      std::cerr << "unknown argument " << a << "\n";
      return 2;
    }
  }
  const std::string load_at_start = bench::loadavg();
  const std::map<std::string, std::vector<std::string>> trainers = {
      {"by hand (tests/process/fake_trainer.py --mode noop)",
       {python, root + "/tests/process/fake_trainer.py", "--mode", "noop"}},
      {"pbt_trainer.py (bench/perf/noop_trainer.py)", {python, root + "/bench/perf/noop_trainer.py"}},
  };

  std::ostringstream o;
  o << "### Round trips (no-op trainer, " << n << " requests, median of 3)\n\n"
    << "| trainer | step(1) round trips/s | µs per round trip | eval round trips/s | start + handshake + shutdown (ms, "
       "median of 10) |\n"
    << "|---|---|---|---|---|\n";
  for (const auto& [name, args] : trainers) {
    auto t = start(args);
    for (int i = 0; i < 500; ++i) t->step(1);  // warm up
    const double steps = rate(3, n, [&] { t->step(1); });
    const double evals = rate(3, n / 4, [&] { t->eval(); });
    t.reset();
    std::vector<double> starts;
    for (int k = 0; k < 10; ++k) {
      auto t0 = Clock::now();
      auto s = start(args);
      s.reset();
      starts.push_back(seconds_since(t0) * 1e3);
    }
    o << "| " << name << " | " << bench::fmt(steps, 0) << " | " << bench::fmt(1e6 / steps, 1) << " | "
      << bench::fmt(evals, 0) << " | " << bench::fmt(bench::median(starts), 1) << " |\n";
    std::cerr << name << ": " << steps << " step round trips/s\n";
  }

  o << "\n### Checkpoints through files (bench/perf/noop_trainer.py; median of 5)\n\n"
    << "| checkpoint | save (ms) | load (ms) | save MB/s | load MB/s |\n|---|---|---|---|---|\n";
  for (std::size_t mb : {1, 64}) {
    const std::size_t bytes = mb << 20;
    auto t = start({python, root + "/bench/perf/noop_trainer.py"}, bytes);
    std::vector<double> saves, loads;
    std::string blob;
    for (int k = 0; k < 5; ++k) {
      pbt::CheckpointWriter w;
      auto t0 = Clock::now();
      t->save(w);
      saves.push_back(seconds_since(t0));
      blob = w.take();
      if (blob.size() != bytes) throw std::runtime_error("checkpoint size mismatch");
      pbt::CheckpointReader r(blob);
      t0 = Clock::now();
      t->load(r);
      loads.push_back(seconds_since(t0));
    }
    const double s = bench::median(saves), l = bench::median(loads);
    o << "| " << mb << " MB | " << bench::fmt(s * 1e3, 1) << " | " << bench::fmt(l * 1e3, 1) << " | "
      << bench::fmt(mb / s, 0) << " | " << bench::fmt(mb / l, 0) << " |\n";
  }
  o << "\n"
    << bench::machine_markdown(load_at_start) << "- Python: " << python << " ("
    << bench::shell_line(python + " --version 2>&1") << ")\n";
  bench::emit(o.str(), out);
  return 0;
}
