#!/usr/bin/python3
"""Optuna's TPE as a baseline for PBT at the same budget (issue #19, item 4).

Each TPE trial is one `pbt run` of the given config with population 1, exploit none, explore
none and the trial's h fixed from step 0 (`[[initial]]`): plain training under one h for
`budget.steps`. A search gets `--population` trials, so its total training steps equal a PBT
run's (population x budget.steps). Trials run one after another (TPE's sequential form).

TPE sees what PBT's selection sees: the objective (`--objective`, default the final `score`,
maximised) of each trial's member, as `pbt best --json` reports it. The search's result is the
held-out figure (`--metric`, e.g. `metrics.true_loss`) of the trial with the best objective:
selection never sees it. Per seed s, TPE's sampler is seeded with s and trial t's run with
seed s * 100000 + t (each trial its own training noise).

    /usr/bin/python3 bench/paper/tpe_baseline.py --config examples/nqm.toml --pbt build/pbt \\
        --seeds 0,1,2,3,4 --population 4,16 --metric metrics.true_loss --lower-is-better \\
        --out tpe.md

Writes markdown (--out) with the command, the machine, a row per (population, seed) and the
median over seeds per population; --json prints the same figures. Runs go under --work-dir
(default: a temporary directory, removed at the end). Needs Debian's python3-optuna.
"""
import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib


# --- configs -------------------------------------------------------------------------------------

def toml_scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        r = repr(v)
        return r if any(c in r for c in ".eEn") else r + ".0"
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string (JSON's escapes are TOML's)
    if isinstance(v, list) and not any(isinstance(x, dict) for x in v):
        return "[" + ", ".join(toml_scalar(x) for x in v) + "]"
    raise ValueError("cannot write %r as a TOML value" % (v,))


def toml_dumps(d, prefix=""):
    """The TOML for a parsed config (what tomllib returns): scalars first, then tables and
    arrays of tables. Enough for pbt configs (no dates)."""
    out = []
    for k, v in d.items():
        if not isinstance(v, dict) and not (isinstance(v, list) and v and all(isinstance(x, dict) for x in v)):
            out.append("%s = %s" % (json.dumps(k), toml_scalar(v)))
    for k, v in d.items():
        name = prefix + json.dumps(k)
        if isinstance(v, dict):
            out += ["", "[%s]" % name, toml_dumps(v, name + ".")]
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for x in v:
                out += ["", "[[%s]]" % name, toml_dumps(x, name + ".")]
    return "\n".join(x for x in out if x is not None)


def trial_config(base, base_path, name, seed, h):
    """The base config as one plain training run under h."""
    c = json.loads(json.dumps(base))  # a deep copy
    c["name"] = name
    c["seed"] = seed
    c["population"] = 1
    c["exploit"] = {"strategy": "none"}
    c["explore"] = {"strategy": "none"}
    c["initial"] = [h]
    c.setdefault("workers", {})["count"] = 1
    c["workers"].pop("gpus", None)
    c.get("store", {}).pop("uri", None)  # each trial in its own run directory
    plugin = c.get("trainable", {}).get("plugin")
    if plugin and "/" in plugin and not os.path.isabs(plugin):  # relative to the base file
        c["trainable"]["plugin"] = os.path.join(os.path.dirname(os.path.abspath(base_path)), plugin)
    return c


def suggest(trial, space):
    """h for a trial from the config's [space], as the engine's prior reads it."""
    h = {}
    for name, s in space.items():
        kind = s.get("type", "float")
        if kind == "float":
            h[name] = trial.suggest_float(name, float(s["low"]), float(s["high"]), log=bool(s.get("log", False)))
        elif kind == "int":
            h[name] = trial.suggest_int(name, int(s["low"]), int(s["high"]), log=bool(s.get("log", False)))
        elif kind == "categorical":
            h[name] = trial.suggest_categorical(name, list(s["choices"]))
        else:
            raise SystemExit("space.%s.type: %r is not float, int or categorical" % (name, kind))
    return h


def figure(best, key):
    """`score` or `metrics.NAME` from `pbt best --json`."""
    if key == "score":
        return best["score"]
    if key.startswith("metrics."):
        name = key[len("metrics."):]
        if name not in (best.get("metrics") or {}):
            raise SystemExit("pbt best reports no metric %r (it has: %s)" % (name, ", ".join(best.get("metrics") or {})))
        return best["metrics"][name]
    raise SystemExit("--metric/--objective must be score or metrics.NAME, got %r" % key)


# --- one search ----------------------------------------------------------------------------------

def search(args, base, population, seed, work):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials = []

    def objective(trial):
        h = suggest(trial, base["space"])
        name = "tpe-p%d-s%d-t%d" % (population, seed, trial.number)
        run_dir = os.path.join(work, name)
        cfg_path = run_dir + ".toml"
        with open(cfg_path, "w") as f:
            f.write(toml_dumps(trial_config(base, args.config, name, seed * 100000 + trial.number, h)) + "\n")
        shutil.rmtree(run_dir, ignore_errors=True)
        started = time.monotonic()
        r = subprocess.run([args.pbt, "run", cfg_path, "--run", run_dir, "--quiet"], capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit("pbt run %s failed (exit %d):\n%s" % (cfg_path, r.returncode, r.stderr[-2000:]))
        b = subprocess.run([args.pbt, "best", "--run", run_dir, "--json"], capture_output=True, text=True, check=True)
        best = json.loads(b.stdout)
        obj = figure(best, args.objective)
        trials.append(dict(trial=trial.number, h=h, objective=obj, metric=figure(best, args.metric),
                           steps=best.get("step"), wall=time.monotonic() - started))
        if not args.keep:
            shutil.rmtree(run_dir, ignore_errors=True)
            os.remove(cfg_path)
        return obj

    direction = "minimize" if args.objective_lower_is_better else "maximize"
    study = optuna.create_study(direction=direction, sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=population)
    chosen = trials[study.best_trial.number]
    return dict(population=population, seed=seed, trials=len(trials), total_steps=sum(t["steps"] for t in trials),
                best_trial=chosen["trial"], h=chosen["h"], objective=chosen["objective"], metric=chosen["metric"],
                wall=sum(t["wall"] for t in trials))


# --- report --------------------------------------------------------------------------------------

def markdown(args, rows, budget_steps):
    lines = ["# Optuna TPE baseline", "",
             "Command: `%s`" % " ".join(shlex.quote(a) for a in [sys.executable] + sys.argv), "",
             "Machine: %s, %s, %d CPUs, Python %s, Optuna %s." % (
                 platform.node(), platform.platform(), os.cpu_count() or 0, platform.python_version(), optuna_version()),
             "",
             "Config `%s`, budget.steps %d per trial; a search of population N runs N trials of one member "
             "(N x %d training steps, a PBT run's budget). TPE maximises `%s`%s; the figure is `%s` "
             "(%s is better) of the trial with the best objective." % (
                 args.config, budget_steps, budget_steps, args.objective,
                 " (lower is better)" if args.objective_lower_is_better else "", args.metric,
                 "lower" if args.lower_is_better else "higher"), "",
             "| population | seed | trials | total steps | best trial | h | objective | %s | wall s |" % args.metric,
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append("| %d | %d | %d | %d | %d | %s | %.6g | %.6g | %.1f |" % (
            r["population"], r["seed"], r["trials"], r["total_steps"], r["best_trial"],
            ", ".join("%s=%.4g" % (k, v) if isinstance(v, float) else "%s=%s" % (k, v) for k, v in r["h"].items()),
            r["objective"], r["metric"], r["wall"]))
    lines += ["", "| population | seeds | median %s | median objective |" % args.metric, "|---|---|---|---|"]
    for p, s in medians(rows).items():
        lines.append("| %d | %d | %.6g | %.6g |" % (p, s["n"], s["metric"], s["objective"]))
    return "\n".join(lines) + "\n"


def medians(rows):
    out = {}
    for p in sorted({r["population"] for r in rows}):
        rs = [r for r in rows if r["population"] == p]
        out[p] = dict(n=len(rs), metric=statistics.median(r["metric"] for r in rs),
                      objective=statistics.median(r["objective"] for r in rs))
    return out


def optuna_version():
    try:
        import optuna
        return optuna.__version__
    except ImportError:
        return "missing"


def ints(text):
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("expected integers separated by commas, got %r" % text)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="the PBT config (its [space], budget and trainable)")
    p.add_argument("--pbt", default="pbt", help="the pbt binary (default: pbt on PATH)")
    p.add_argument("--seeds", type=ints, default=[0, 1, 2, 3, 4], help="seeds, comma-separated (default 0-4)")
    p.add_argument("--population", type=ints, default=None,
                   help="trials per search, comma-separated, to match a PBT run's budget (default: the config's)")
    p.add_argument("--metric", default="score", help="the held-out figure reported: score or metrics.NAME")
    p.add_argument("--lower-is-better", action="store_true", help="the metric's direction (for the report)")
    p.add_argument("--objective", default="score", help="what TPE optimises: score (default) or metrics.NAME")
    p.add_argument("--objective-lower-is-better", action="store_true", help="minimise the objective")
    p.add_argument("--out", help="write the markdown here")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--work-dir", help="where trial runs go (default: a temporary directory)")
    p.add_argument("--keep", action="store_true", help="keep each trial's run directory")
    args = p.parse_args()
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise SystemExit("tpe_baseline.py needs Optuna: apt-get install python3-optuna (scripts/setup.sh does)")
    with open(args.config, "rb") as f:
        base = tomllib.load(f)
    if not base.get("space"):
        raise SystemExit("%s: no [space]: nothing for TPE to tune" % args.config)
    pops = args.population or [int(base["population"])]
    work = args.work_dir or tempfile.mkdtemp(prefix="pbt-tpe-")
    os.makedirs(work, exist_ok=True)
    rows = []
    try:
        for population in pops:
            for seed in args.seeds:
                r = search(args, base, population, seed, work)
                rows.append(r)
                print("population %d seed %d: trial %d, %s %.6g, %s %.6g" % (
                    population, seed, r["best_trial"], args.objective, r["objective"], args.metric, r["metric"]),
                    file=sys.stderr)
                if args.out:  # rewritten after every search: an interrupted bench keeps what it has
                    with open(args.out, "w") as f:
                        f.write(markdown(args, rows, int(base["budget"]["steps"])))
    finally:
        if not args.work_dir and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(dict(metric=args.metric, objective=args.objective, rows=rows,
                              medians={str(k): v for k, v in medians(rows).items()}), indent=1))


if __name__ == "__main__":
    main()
