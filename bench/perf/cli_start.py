#!/usr/bin/env python3
"""How fast `pbt` starts and how much memory it takes (issue #20): `pbt --help`,
`pbt status --run DIR` and `pbt best --run DIR` (wall time, median over --runs runs, and peak
RSS from wait4's rusage), and the peak RSS (VmHWM) of a `pbt worker` driving a process
trainer (examples/python/toy.toml). Give one or more binaries as LABEL=PATH; their runs are
interleaved so that a change in the machine's load falls on each alike.

  python3 bench/perf/cli_start.py old=/path/to/old/pbt new=build/pbt --runs 15
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# A small toy run for status and best, in keys every pbt since the CLI began reads (an older
# binary can be measured beside a newer one).
TOY = """name = "toy"
population = 4
[trainable]
kind = "toy"
[budget]
steps = 40
[ready]
interval = 4
[exploit]
strategy = "truncation"
[explore]
strategy = "perturb"
[space.h0]
low = 0.0
high = 1.0
[space.h1]
low = 0.0
high = 1.0
"""


def timed(argv, cwd):
    """(seconds, peak RSS in KiB) of one run of argv, which must exit 0."""
    start = time.perf_counter()
    p = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    elapsed = time.perf_counter() - start
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    if p.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {p.returncode}: {err}")
    return elapsed, usage.ru_maxrss


def worker_hwm(pbt, work):
    """Peak RSS (KiB) of `pbt worker` alone (not its trainer) over a few intervals of the
    Python toy, read from /proc/PID/status until it exits."""
    run = os.path.join(work, "py-" + str(abs(hash(pbt))))
    shutil.rmtree(run, ignore_errors=True)
    subprocess.run([pbt, "create", "examples/python/toy.toml", "--run", run], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    p = subprocess.Popen([pbt, "worker", "--store", "sqlite:" + os.path.join(run, "store.db"), "--experiment",
                          "python_toy", "--max-intervals", "6", "--log", os.path.join(run, "worker.log")], cwd=ROOT)
    hwm = 0
    while p.poll() is None:
        try:
            with open(f"/proc/{p.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        hwm = max(hwm, int(line.split()[1]))
        except (FileNotFoundError, ProcessLookupError):
            pass
        time.sleep(0.01)
    if p.returncode != 0:
        sys.exit(f"pbt worker exited {p.returncode}")
    return hwm


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binaries", nargs="+", help="LABEL=PATH of a pbt binary")
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    bins = [b.split("=", 1) for b in args.binaries]
    work = tempfile.mkdtemp(prefix="pbt-cli-start-")
    try:
        runs = {}
        toy = os.path.join(work, "toy.toml")
        with open(toy, "w") as f:
            f.write(TOY)
        for label, pbt in bins:  # a finished toy run for status and best
            runs[label] = os.path.join(work, "toy-" + label)
            subprocess.run([pbt, "run", toy, "--run", runs[label], "--workers", "1"], cwd=ROOT,
                           check=True, stdout=subprocess.DEVNULL)
        commands = {
            "pbt --help": lambda pbt, run: [pbt, "--help"],
            "pbt status --run DIR": lambda pbt, run: [pbt, "status", "--run", run],
            "pbt best --run DIR": lambda pbt, run: [pbt, "best", "--run", run],
        }
        print(f"load average before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
        print(f"| command | {' | '.join(l + ' median ms' for l, _ in bins)} | "
              f"{' | '.join(l + ' peak RSS MiB' for l, _ in bins)} |")
        print("|---|" + "---|" * (2 * len(bins)))
        for name, make in commands.items():
            times = {l: [] for l, _ in bins}
            rss = {l: [] for l, _ in bins}
            for _ in range(args.runs):
                for label, pbt in bins:
                    t, r = timed(make(pbt, runs[label]), ROOT)
                    times[label].append(t)
                    rss[label].append(r)
            print(f"| `{name}` | " + " | ".join(f"{statistics.median(times[l]) * 1000:.1f}" for l, _ in bins) + " | " +
                  " | ".join(f"{statistics.median(rss[l]) / 1024:.1f}" for l, _ in bins) + " |")
        hwm = {label: worker_hwm(pbt, work) for label, pbt in bins}
        print(f"| `pbt worker` (Python toy, process trainer), its own VmHWM | " + " | ".join("" for _ in bins) + " | " +
              " | ".join(f"{hwm[l] / 1024:.1f}" for l, _ in bins) + " |")
        print(f"load average after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
