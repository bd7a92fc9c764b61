#!/usr/bin/python3
"""The process protocol on a real trainer (examples/python/digits.py, PyTorch on the 8x8
digits), written to docs/results/protocol.md:

1. the protocol's own cost (runs build/bench/perf/protocol_cost);
2. the wall-clock overhead of a PBT run over the same trainer run plainly (the same
   members, steps and evals, as plain processes side by side);
3. PBT vs random search (the same config with exploit and explore "none") vs Optuna's
   TPE sampler (each trial one full training run at fixed hyperparameters), with the
   same total budget of training steps, over several seeds.

    /usr/bin/python3 bench/paper/process_pbt.py --build build --out docs/results/protocol.md

Needs Debian's python3-torch, python3-sklearn and python3-optuna. Run from the
repository root. Takes 1.5-3 minutes per seed on 2 cores (more when they are busy), plus
about 2 minutes for parts 1 and 2. docs/results/protocol.md also has a hand-written analysis.
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


def optuna_tpe(seed, trials, steps, startup):
    import optuna
    import pbt_trainer
    import digits

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    results = {}

    def objective(trial):
        h = {k: trial.suggest_float(k, lo, hi, log=log) for k, (lo, hi, log) in SPACE.items()}
        ctx = pbt_trainer.Context(trial.number, seed * 1000 + trial.number)
        (_, r), = pbt_trainer.run_locally(digits.Digits, h, steps, 0, ctx)
        results[trial.number] = r
        return r["score"]

    t0 = time.monotonic()
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup))
    study.optimize(objective, n_trials=trials)
    wall = time.monotonic() - t0
    best = results[study.best_trial.number]
    return wall, {"score": best["score"], "metrics": best["metrics"], "h": study.best_trial.params}


def fmt_h(h):
    return " ".join("%s=%.3g" % (k, v) for k, v in sorted(h.items()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--out", default="")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--population", type=int, default=16)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--interval", type=int, default=100)
    ap.add_argument("--tpe-startup", type=int, default=5)
    ap.add_argument("--variant-interval", type=int, default=500,
                    help="also run PBT with this ready interval (0: don't)")
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
    out.append("# The process protocol: cost, overhead, and PBT vs random search vs Optuna TPE\n")
    out.append("Made by `%s` (--seeds %d --population %d --steps %d --interval %d --variant-interval %d "
               "--tpe-startup %d --overhead-reps %d --overhead-members %d --overhead-steps %d "
               "--overhead-interval %d), which also runs `%s/bench/perf/protocol_cost`.\n"
               % (cmd, args.seeds, args.population, args.steps, args.interval, args.variant_interval,
                  args.tpe_startup, args.overhead_reps, args.overhead_members, args.overhead_steps,
                  args.overhead_interval, args.build))

    if not args.skip_cost:
        cost = subprocess.run([os.path.join(args.build, "bench", "perf", "protocol_cost"), "--n", "20000"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout
        out.append("## 1. The protocol's own cost\n\n`%s/bench/perf/protocol_cost --n 20000`:\n\n%s" % (args.build, cost))

    rows = overhead(pbt, work, args.overhead_reps, args.overhead_members, args.overhead_steps,
                    args.overhead_interval)
    if rows:
        overhead_section(out, args, rows)

    per_seed = []
    for seed in range(args.seeds):
        pop, steps = args.population, args.steps
        res = {}
        w, b, _ = pbt_run(pbt, work, "pbt%d" % seed,
                          config("pbt%d" % seed, seed, pop, steps, args.interval, pop, exploit=True))
        res["PBT"] = (w, b)
        if args.variant_interval:
            w, b, _ = pbt_run(pbt, work, "pbtslow%d" % seed,
                              config("pbtslow%d" % seed, seed, pop, steps, args.variant_interval, pop, exploit=True))
            res["PBT, ready every %d" % args.variant_interval] = (w, b)
        w, b, _ = pbt_run(pbt, work, "random%d" % seed,
                          config("random%d" % seed, seed, pop, steps, args.interval, pop, exploit=False))
        res["random search"] = (w, b)
        w, b = optuna_tpe(seed, pop, steps, args.tpe_startup)
        res["Optuna TPE"] = (w, b)
        per_seed.append(res)
        for k, (w, b) in res.items():
            print("seed %d %-14s val %.4f test %.4f wall %.1f s  %s" % (
                seed, k, b["score"], b["metrics"]["test_acc"], w, fmt_h(b["h"])), file=sys.stderr)

    if not per_seed:  # --seeds 0: cost and overhead only
        methods = []
    else:
        methods = list(per_seed[0].keys())
    if methods:
        quality_section(out, args, per_seed, methods)
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


def quality_section(out, args, per_seed, methods):
    out.append("## 3. PBT vs random search vs Optuna TPE (same total budget of training steps)\n")
    out.append("examples/python/digits.py (MLP 64-64-10, SGD with momentum, batch 32, one step = one minibatch), "
               "search space lr ∈ [0.001, 1] (log), momentum ∈ [0, 0.99], weight_decay ∈ [1e-6, 1e-2] (log). "
               "Budget per method and seed: %d × %d = %d steps.\n" % (args.population, args.steps,
                                                                     args.population * args.steps))
    out.append("- **PBT**: population %d, one worker each, ready every %d steps, truncation (bottom 25%% copy "
               "the top 25%%), perturb ×0.8/×1.2 or resample with p = 0.25." % (args.population, args.interval))
    if args.variant_interval:
        out.append("- **PBT, ready every %d**: the same, with fewer and later exploit decisions (%d instead of "
                   "%d)." % (args.variant_interval, args.steps // args.variant_interval - 1,
                             args.steps // args.interval - 1))
    out.append("- **Random search**: the same config with `exploit` and `explore` \"none\": %d members with "
               "the same initial h (drawn from the prior with the same seed), trained to the end." % args.population)
    out.append("- **Optuna TPE** (python3-optuna %s): %d trials, `TPESampler(seed, n_startup_trials=%d)`, each "
               "trial one full run of %d steps at fixed h (`pbt_trainer.run_locally`, the same trainer class), "
               "in one process." % (__import__("optuna").__version__, args.population, args.tpe_startup, args.steps))
    out.append("- Each method picks its best model by **validation** accuracy (400 images) at the end; the "
               "table gives that model's validation accuracy and its accuracy on the **held-out test set** "
               "(397 images), which no method ever sees. Wall time on 2 shared cores.\n")
    out.append("| seed | method | val acc (selected) | test acc | wall (s) | h of the selected model (at the end) |")
    out.append("|---|---|---|---|---|---|")
    for seed, res in enumerate(per_seed):
        for m in methods:
            w, b = res[m]
            out.append("| %d | %s | %.4f | %.4f | %.0f | %s |" % (seed, m, b["score"], b["metrics"]["test_acc"], w,
                                                                  fmt_h(b["h"])))
    out.append("\n| method | val acc, mean over seeds | test acc, mean (min–max) | mean wall (s) |")
    out.append("|---|---|---|---|")
    for m in methods:
        vals = [r[m][1]["score"] for r in per_seed]
        tests = [r[m][1]["metrics"]["test_acc"] for r in per_seed]
        walls = [r[m][0] for r in per_seed]
        out.append("| %s | %.4f | %.4f (%.4f–%.4f) | %.0f |" % (m, statistics.mean(vals), statistics.mean(tests),
                                                                min(tests), max(tests), statistics.mean(walls)))


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
