#!/usr/bin/python3
"""The process protocol's cost on a real trainer (examples/python/digits.py, PyTorch on the
8x8 digits), parts 1 and 2 of docs/results/protocol.md:

1. the protocol's own cost (runs build/bench/perf/protocol_cost);
2. the wall-clock overhead of a PBT run over the same trainer run plainly (the same
   members, steps and evals, as plain processes side by side).

    /usr/bin/python3 bench/paper/process_pbt.py --build build

Part 3 (PBT vs random search on the digits) is a study: examples/studies/digits.toml;
Optuna's TPE at the same budget: bench/paper/tpe_baseline.py. Needs Debian's python3-torch
and python3-sklearn. Run from the repository root; about 2 minutes on 2 cores (more when
they are busy). docs/results/protocol.md also has a hand-written analysis.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(ROOT, "examples", "python"))
PY = "/usr/bin/python3"

SPACE = {"lr": (0.001, 1.0, True), "momentum": (0.0, 0.99, False), "weight_decay": (1e-6, 1e-2, True)}


def config(name, seed, population, steps, interval, workers, exploit=True):
    space = ""
    for k, (lo, hi, log) in SPACE.items():
        space += '[space.%s]\ntype = "float"\nlow = %r\nhigh = %r\nlog = %s\n\n' % (k, lo, hi, "true" if log else "false")
    if exploit:
        strategy = '[exploit]\nstrategy = "truncation"\nfraction = 0.25\n\n' \
                   '[explore]\nstrategy = "perturb"\nresample_probability = 0.25\n'
    else:
        strategy = '[exploit]\nstrategy = "none"\n\n[explore]\nstrategy = "none"\n'
    return f'''name = "{name}"
seed = {seed}
population = {population}

[trainable]
kind = "process"
argv = ["{PY}", "{ROOT}/examples/python/digits.py"]
timeouts = {{ start = 300, step = 600, eval = 120, save = 120, load = 120 }}

[budget]
steps = {steps}

[ready]
interval = {interval}
eval_every = 0

{strategy}
{space}
[workers]
count = {workers}
lease_seconds = 60
'''


def pbt_run(pbt, work, name, text):
    path = os.path.join(work, name + ".toml")
    with open(path, "w") as f:
        f.write(text)
    run_dir = os.path.join(work, name)
    t0 = time.monotonic()
    p = subprocess.run([pbt, "run", path, "--run", run_dir, "--quiet"], cwd=ROOT, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        raise RuntimeError("pbt run %s failed:\n%s\n%s" % (name, p.stdout, p.stderr))
    best = json.loads(subprocess.run([pbt, "best", "--run", run_dir, "--json"], capture_output=True, text=True,
                                     check=True).stdout)
    status = json.loads(subprocess.run([pbt, "status", "--run", run_dir, "--json"], capture_output=True, text=True,
                                       check=True).stdout)
    return wall, best, status


def plain_runs(hs, steps, eval_every, seeds):
    """The same trainer without the engine: one process per member, all side by side."""
    t0 = time.monotonic()
    procs = []
    for h, seed in zip(hs, seeds):
        procs.append(subprocess.Popen(
            [PY, os.path.join(ROOT, "examples", "python", "digits.py"), "--plain", "--steps", str(steps),
             "--eval-every", str(eval_every), "--lr", str(h["lr"]), "--momentum", str(h["momentum"]),
             "--weight-decay", str(h["weight_decay"]), "--seed", str(seed)],
            stdout=subprocess.DEVNULL))
    for p in procs:
        if p.wait() != 0:
            raise RuntimeError("a plain run failed")
    return time.monotonic() - t0


def overhead(pbt, work, reps, members, steps, interval):
    rows = []
    for rep in range(reps):
        name = "overhead%d" % rep
        wall_pbt, best, status = pbt_run(pbt, work, name, config(name, 100 + rep, members, steps, interval, members))
        hs = [m["h"] for m in status["members"]]
        wall_plain = plain_runs(hs, steps, interval, range(members))
        rows.append((wall_pbt, wall_plain, wall_pbt / wall_plain))
        print("overhead rep %d: pbt %.1f s, plain %.1f s, ratio %.3f" % (rep, wall_pbt, wall_plain, rows[-1][2]),
              file=sys.stderr)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--out", default="")
    ap.add_argument("--overhead-reps", type=int, default=3)
    ap.add_argument("--overhead-members", type=int, default=4)
    ap.add_argument("--overhead-steps", type=int, default=12000)
    ap.add_argument("--overhead-interval", type=int, default=500)
    ap.add_argument("--skip-cost", action="store_true")
    args = ap.parse_args()
    pbt = os.path.abspath(os.path.join(args.build, "pbt"))
    work = tempfile.mkdtemp(prefix="pbt-bench-process-")
    load_start = open("/proc/loadavg").read().split()[:3]
    out = []

    cmd = "/usr/bin/python3 bench/paper/process_pbt.py --build %s%s" % (args.build, " --out " + args.out if args.out else "")
    out.append("# The process protocol: cost and overhead\n")
    out.append("Made by `%s` (--overhead-reps %d --overhead-members %d --overhead-steps %d "
               "--overhead-interval %d), which also runs `%s/bench/perf/protocol_cost`.\n"
               % (cmd, args.overhead_reps, args.overhead_members, args.overhead_steps,
                  args.overhead_interval, args.build))

    if not args.skip_cost:
        cost = subprocess.run([os.path.join(args.build, "bench", "perf", "protocol_cost"), "--n", "20000"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout
        out.append("## 1. The protocol's own cost\n\n`%s/bench/perf/protocol_cost --n 20000`:\n\n%s" % (args.build, cost))

    rows = overhead(pbt, work, args.overhead_reps, args.overhead_members, args.overhead_steps,
                    args.overhead_interval)
    if rows:
        overhead_section(out, args, rows)

    machine_section(out, load_start)
    text = "\n".join(out) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    shutil.rmtree(work, ignore_errors=True)


def overhead_section(out, args, rows):
    out.append("## 2. Overhead of a PBT run over the same trainer run plainly\n")
    out.append("examples/python/digits.py, %d members, %d steps each, eval every %d steps. **PBT**: `pbt run` "
               "with one worker per member (truncation + perturb; each interval also saves a checkpoint into the "
               "SQLite store, and a member that copies loads one and evaluates again). **Plain**: `digits.py "
               "--plain` with the same steps and eval cadence, %d processes side by side (the same h). Both "
               "include starting Python and importing torch in every process.\n"
               % (args.overhead_members, args.overhead_steps, args.overhead_interval, args.overhead_members))
    out.append("| repetition | PBT wall (s) | plain wall (s) | ratio |\n|---|---|---|---|")
    for i, (a, b, r) in enumerate(rows):
        out.append("| %d | %.1f | %.1f | %.3f |" % (i, a, b, r))
    out.append("| **median** | %.1f | %.1f | **%.3f** |\n" % (statistics.median(r[0] for r in rows),
                                                              statistics.median(r[1] for r in rows),
                                                              statistics.median(r[2] for r in rows)))


def machine_section(out, load_start):
    load_end = open("/proc/loadavg").read().split()[:3]
    cpu = "unknown"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    import torch
    out.append("\n- Machine: %d cores (%s), %s; Python %s, torch %s (CPU, 1 thread per trainer); load average "
               "%s at the start, %s at the end (the cores are shared with other work)." % (
                   os.cpu_count(), cpu, platform.platform(), platform.python_version(), torch.__version__,
                   " ".join(load_start), " ".join(load_end)))


if __name__ == "__main__":
    main()
