#!/usr/bin/python3
"""Issue #17: what restarting a process trainer at every member change costs, on the digits
example (examples/python/digits.toml: a PyTorch MLP through python/pbt_trainer.py) with more
members than workers.

Two conditions, the same binary and config:

- **restart**: the trainer announces protocol minor version 1 (PBT_PROTOCOL_MINOR=1 in its
  environment, through the config's [trainable] env), so it cannot be handed another member:
  the worker starts a new trainer (imports torch again) whenever it moves to another member;
- **served**: the trainer announces minor version 2 (the default): the worker's trainer
  process serves the members it leases in turn (the protocol's `member` op).

Per run: the wall time of `pbt run`, the trainer processes started (the "started trainer pid"
lines in the worker logs) and the best member's score. Runs alternate between the conditions
(restart, served, served, restart, ...) so that a drift in the machine's load hits both alike.

    /usr/bin/python3 bench/perf/switch_cost.py --pbt build/pbt --out docs/results/checkpoints.md

--out replaces this bench's section for the same budget in FILE (from its heading to the next
"## " heading, or the end), or appends it. Defaults: population 16 on 2 workers, 3 runs
each, budget 600 steps (the example ships 3000: at population 16 on 2 workers a run would take
well over 5 minutes; 600 keeps the ready interval of 150, so each member still changes
worker and trainer 4 times). Run from anywhere: the config and the trainer are this
repository's, and the runs go to a temp directory under runs/ that is removed at the end.
"""
import argparse
import glob
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(ROOT, "bench", "paper"))
from efficiency import set_key  # noqa: E402  (text edits that keep the example's layout)

def heading(steps):
    """The section's heading: one section per budget, so that runs at two budgets sit side by side."""
    return "## A process trainer at every member change: restarted vs served in turn (budget %d steps)" % steps


def make_config(args, condition, run):
    with open(os.path.join(ROOT, args.config)) as f:
        lines = f.read().split("\n")
    name = "switch-%s-%d" % (condition, run)
    want = {(None, "name"): name, (None, "population"): args.population, ("workers", "count"): args.workers}
    if args.steps:
        want[("budget", "steps")] = args.steps
    for (section, key), v in want.items():
        set_key(lines, section, key, v)
    if condition == "restart":
        k, _, v = args.old_env.partition("=")
        # An inline table; the example has none ([trainable] env is commented out).
        env_line = "env = { %s = %s }" % (k, json.dumps(v))
        if any(re.match(r"\s*env\s*=", x) for x in lines):
            raise RuntimeError("%s already sets [trainable] env; this bench adds its own" % args.config)
        i = next(i for i, x in enumerate(lines) if re.match(r"\s*\[trainable\]", x))
        lines.insert(i + 1, env_line)
    text = "\n".join(lines)
    parsed = tomllib.loads(text)  # the edits are checked, not trusted
    if parsed["population"] != args.population or parsed["workers"]["count"] != args.workers:
        raise RuntimeError("editing %s went wrong" % args.config)
    return name, text


def one_run(args, work, condition, run):
    name, text = make_config(args, condition, run)
    path = os.path.join(work, name + ".toml")
    with open(path, "w") as f:
        f.write(text)
    run_dir = os.path.join(work, name)
    log = os.path.join(work, name + ".log")
    with open(log, "w") as out:
        t0 = time.monotonic()
        p = subprocess.run([args.pbt, "run", path, "--run", run_dir, "--quiet"], cwd=ROOT, stdout=out,
                           stderr=subprocess.STDOUT)
        wall = time.monotonic() - t0
    with open(log) as f:
        output = f.read()
    if p.returncode != 0:
        raise RuntimeError("%s: pbt run exited %d:\n%s" % (name, p.returncode, output[-2000:]))
    started = switched = 0
    for worker_log in glob.glob(os.path.join(run_dir, "logs", "*")):
        with open(worker_log, errors="replace") as f:
            for line in f:
                started += "started trainer pid" in line
                switched += "goes on from member" in line  # the process trainable's switch_member
    m = re.search(r"^best: member (\d+), score (\S+)", output, re.M)
    events = re.search(r"^exploit/explore events: (\d+)", output, re.M)
    shutil.rmtree(run_dir, ignore_errors=True)
    return {"condition": condition, "run": run, "wall": wall, "started": started, "switched": switched,
            "best": m.group(2).rstrip(",") if m else "?", "events": int(events.group(1)) if events else None}


def machine_line():
    cpu = "unknown"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return "nproc %d; CPU model \"%s\"; %s; Python %s" % (os.cpu_count(), cpu, platform.platform(),
                                                           platform.python_version())


def git(*a):
    try:
        return subprocess.run(["git", "-C", ROOT] + list(a), capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def report(args, rows, load_start, started_at, shipped_steps):
    by = {c: [r for r in rows if r["condition"] == c] for c in ("restart", "served")}
    med = {c: statistics.median([r["wall"] for r in by[c]]) if by[c] else None for c in by}
    starts = {c: statistics.median([r["started"] for r in by[c]]) if by[c] else None for c in by}
    with open("/proc/loadavg") as f:
        load_end = f.read().strip()
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "src", "include", "python")
    steps = args.steps or shipped_steps
    o = [heading(steps), ""]
    o.append("Reproduce (from the repository root; needs Debian's python3-torch and python3-sklearn):")
    o += ["", "```sh", "/usr/bin/python3 bench/perf/switch_cost.py --pbt build/pbt --runs %d%s --out "
          "docs/results/checkpoints.md" % (args.runs, "" if args.steps == 600 else " --steps %d" % args.steps),
          "```", ""]
    o.append("- Machine: %s" % machine_line())
    o.append("- Date: %s; /proc/loadavg at the start: %s, at the end: %s (the cores are shared with other work)"
             % (started_at, load_start, load_end))
    o.append("- Source: commit %s%s" % (git("rev-parse", "--short", "HEAD") or "unknown",
                                        " with uncommitted changes in src/, include/ or python/" if dirty else ""))
    o.append("- Config: %s with population %d on %d workers (`pbt run`, SQLite store in the run directory), "
             "budget %d steps%s, ready interval as shipped; restart = the trainer announces protocol 1.1 "
             "(`%s` through [trainable] env), served = 1.2 (the default)"
             % (args.config, args.population, args.workers, steps,
                "" if steps == shipped_steps else " (the example ships %d)" % shipped_steps, args.old_env))
    o += ["", "| run | condition | wall s | trainer processes started | member switches by a running trainer | "
          "exploit/explore events | best score |", "|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        o.append("| %d | %s | %.1f | %d | %d | %s | %s |"
                 % (r["run"] + 1, r["condition"], r["wall"], r["started"], r["switched"],
                    r["events"] if r["events"] is not None else "?", r["best"]))
    o += ["", "| condition | median wall s | median trainer processes started |", "|---|---:|---:|"]
    for c in ("restart", "served"):
        if med[c] is not None:
            o.append("| %s | %.1f | %g |" % (c, med[c], starts[c]))
    if med["restart"] and med["served"]:
        saved = med["restart"] - med["served"]
        avoided = starts["restart"] - starts["served"]
        o += ["", "Median wall time, restarted / served: **%.2f×** (%.1f s %s per run%s)."
              % (med["restart"] / med["served"], abs(saved), "saved" if saved >= 0 else "lost",
                 ", %.2f s per trainer start avoided" % (saved / avoided) if avoided > 0 else
                 "; no trainer start was avoided")]
    return "\n".join(o) + "\n"


def write_section(path, section, head):
    text = open(path).read() if os.path.exists(path) else ""
    start = text.find(head + "\n")
    if start < 0:
        text = (text.rstrip("\n") + "\n\n" if text else "") + section
    else:
        nxt = text.find("\n## ", start + len(head))
        text = text[:start] + section + ("\n" + text[nxt + 1:] if nxt >= 0 else "")
    with open(path, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pbt", default=os.path.join(ROOT, "build", "pbt"))
    ap.add_argument("--config", default="examples/python/digits.toml")
    ap.add_argument("--population", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3, help="runs per condition")
    ap.add_argument("--steps", type=int, default=600, help="budget steps (0: as shipped)")
    ap.add_argument("--old-env", default="PBT_PROTOCOL_MINOR=1",
                    help="NAME=VALUE that makes the trainer announce the old minor version")
    ap.add_argument("--out", help="replace (or append) this bench's section in FILE")
    args = ap.parse_args()
    args.pbt = os.path.abspath(args.pbt)
    with open(os.path.join(ROOT, args.config), "rb") as f:
        shipped_steps = tomllib.load(f)["budget"]["steps"]
    with open("/proc/loadavg") as f:
        load_start = f.read().strip()
    started_at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    work = os.path.join(ROOT, "runs", "switch-cost-%d" % os.getpid())
    os.makedirs(work)
    rows = []
    try:
        for run in range(args.runs):
            order = ("restart", "served") if run % 2 == 0 else ("served", "restart")
            for condition in order:
                r = one_run(args, work, condition, run)
                rows.append(r)
                print("run %d %s: %.1f s, %d trainer processes started, %d switches, best %s"
                      % (run + 1, condition, r["wall"], r["started"], r["switched"], r["best"]), file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    section = report(args, rows, load_start, started_at, shipped_steps)
    print(section, end="")
    if args.out:
        write_section(args.out, section, heading(args.steps or shipped_steps))
        print("wrote %s" % args.out, file=sys.stderr)


if __name__ == "__main__":
    main()
