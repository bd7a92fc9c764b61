#!/usr/bin/python3
"""Issue #16: what a ready member copies when the population is larger than the workers,
written to docs/results/efficiency.md.

With more members than workers, members drift apart in step. Three conditions, on the
shipped examples at population = 1x, 2x and 4x the workers, over several seeds:

- **old**: a `pbt` built before the change (today's rule): a ready member may copy a
  donor whose step is behind its own, throwing away the steps it trained since;
- **async**: the new `pbt`, default ready mode: decided at the start of the member's next
  interval, copying only donors at a step >= its own;
- **sync**: the new `pbt` with `[ready] mode = "sync"`: the whole generation decides at once.

Per run: the best member's score (and the held-out metric the trainable reports), its
*efficiency* (the steps its model was really trained, following weight copies back, over
its engine steps), the population's median efficiency, and the wall time of `pbt run`.

    /usr/bin/python3 bench/paper/efficiency.py --old OLD/build/pbt --new build/pbt \\
        --out docs/results/efficiency.md

Defaults: toy, cartpole, acrobot, gan_ring and digits, 5 seeds, 2 workers, populations 2, 4
and 8: 225 runs, about 40-50 minutes on 2 busy cores (digits at population 8 is the longest:
~1 min a run). translation is opt-in (--domains all, or --domains translation): ~3 h more at
its default budget. --sizes prints each domain's budget; --budget and --budget-factor shrink them.

Run from anywhere (the configs and the digits trainer are this repository's). Runs one
`pbt run` at a time (--jobs 1) so that wall times do not overlap. The torch domains need
binaries built with LibTorch; digits needs Debian's python3-torch and python3-sklearn.
Results are rewritten to --out after every run, so an interrupted bench keeps what it has.
"""
import argparse
import concurrent.futures
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Per domain: the shipped example, the bench's budget (shorter than the example's, with the
# same ratios of budget to ready interval and min_step), trainable options that make evals
# cheaper, and the held-out metric in the best member's `metrics` (None: the score is the
# true objective). Sized so that the default bench (5 seeds, populations 2, 4, 8 on 2 workers)
# fits in about an hour on 2 shared cores; RL at 40k frames does not saturate CartPole's 500.
DOMAINS = {
    "toy": dict(config="examples/toy.toml", steps=100, interval=4, min_step=0, trainable={}, held_out=None,
                note="the paper's toy problem (Q is exact: no held-out metric)"),
    "cartpole": dict(config="examples/cartpole.toml", steps=40, interval=2, min_step=0,
                     trainable={"fresh_episodes": 20}, held_out="fresh_return",
                     note="A2C on CartPole-v1, 1000 frames per step; held out: return on fresh episodes"),
    "acrobot": dict(config="examples/acrobot.toml", steps=40, interval=2, min_step=0,
                    trainable={"fresh_episodes": 20}, held_out="fresh_return",
                    note="A2C on Acrobot-v1, 1000 frames per step; held out: return on fresh episodes"),
    "gan_ring": dict(config="examples/gan_ring.toml", steps=400, interval=40, min_step=120,
                     trainable={"eval_samples": 1000}, held_out="strict_is",
                     note="GAN on a ring of 8 Gaussians; score: the classifier's IS; held out: the exact strict IS"),
    # Not in the default --domains: BLEU separates the members only after ~150 steps, and at
    # the example's budget one run at population 2 takes ~1.5-2 min here (~3 h for the cell grid).
    "translation": dict(config="examples/translation.toml", steps=600, interval=50, min_step=150,
                        trainable={"dev_size": 100, "test_size": 100},
                        held_out="test_bleu", note="small Transformer, generated corpus; score: dev BLEU; "
                        "held out: test BLEU"),
    # With fewer workers than members a worker starts the member's trainer process (importing
    # torch: ~1.5 s of CPU) at every interval it takes: few, long intervals keep that bounded.
    "digits": dict(config="examples/python/digits.toml", steps=600, interval=150, min_step=0, trainable={},
                   held_out="test_acc", note="PyTorch MLP on 8x8 digits through the process protocol; score: "
                   "validation accuracy; held out: test accuracy"),
}
DEFAULT_DOMAINS = ["toy", "cartpole", "acrobot", "gan_ring", "digits"]
CONDITIONS = ["old", "async", "sync"]


# --- configs -------------------------------------------------------------------------------------

def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string for what these configs hold
    raise ValueError("cannot write %r as a TOML value" % (v,))


def set_key(lines, section, key, value):
    """Sets `key = value` in [section] (None: the top level, before any table), replacing
    the line that sets it or adding one after the header. Text edits keep the example's
    comments and layout; the result is checked with tomllib by the caller."""
    header = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
    setting = re.compile(r"^\s*" + re.escape(key) + r"\s*=")
    current, start, end = None, 0 if section is None else None, None
    for i, line in enumerate(lines):
        m = header.match(line)
        if m:
            if current == section and start is not None and end is None:
                end = i
            current = m.group(1)
            if current == section and start is None:
                start = i + 1
            continue
        if current == section and start is not None and end is None and setting.match(line):
            lines[i] = "%s = %s" % (key, toml_value(value))
            return
    if start is None:  # no such table: add it at the end
        lines += ["", "[%s]" % section, "%s = %s" % (key, toml_value(value))]
        return
    lines.insert(start, "%s = %s" % (key, toml_value(value)))


def make_config(domain, d, sizes, seed, population, workers, condition):
    with open(os.path.join(ROOT, d["config"])) as f:
        lines = f.read().split("\n")
    name = "eff-%s-%s-p%d-s%d" % (domain, condition, population, seed)
    want = {
        (None, "name"): name, (None, "seed"): seed, (None, "population"): population,
        ("budget", "steps"): sizes["steps"], ("ready", "interval"): sizes["interval"],
        ("workers", "count"): workers,
    }
    if sizes["min_step"] or "min_step" in tomllib.loads("\n".join(lines)).get("ready", {}):
        want[("ready", "min_step")] = sizes["min_step"]
    for k, v in d["trainable"].items():
        want[("trainable", k)] = v
    if condition == "sync":  # only the new binary knows the key (the old one refuses it)
        want[("ready", "mode")] = "sync"
    for (section, key), v in want.items():
        set_key(lines, section, key, v)
    if condition == "old":
        # Truncation's copy_ties came with the change (the old rule copied ties by member id
        # anyway): the old binary refuses the key, so it goes.
        lines = [x for x in lines if not re.match(r"\s*copy_ties\s*=", x)]
    text = "\n".join(lines)
    parsed = tomllib.loads(text)
    for (section, key), v in want.items():
        got = parsed.get(key) if section is None else parsed.get(section, {}).get(key)
        if got != v:
            raise RuntimeError("%s: editing %s.%s gave %r, not %r" % (d["config"], section, key, got, v))
    return name, text


def sizes_of(domain, d, factor, overrides):
    steps = overrides.get(domain, max(1, round(d["steps"] * factor)))
    r = steps / d["steps"]
    return {"steps": steps, "interval": max(1, round(d["interval"] * r)), "min_step": round(d["min_step"] * r)}


# --- running and reading -------------------------------------------------------------------------

def run_json(pbt, args, lines=False):
    p = subprocess.run([pbt] + args, cwd=ROOT, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s %s: %s" % (pbt, " ".join(args), (p.stderr or p.stdout).strip()[-500:]))
    if lines:
        return [json.loads(x) for x in p.stdout.splitlines() if x.strip()]
    return json.loads(p.stdout)


def trained_steps_fn(events, members):
    """trained(m, s): the steps member m's model at its step s was trained, following weight
    copies back (an exploit that copied all or weights, or a recover) to the donor's step at
    the copy, recursively; a copy sees only the events published before it (the order of
    `pbt events`), as in src/core/lineage.cpp."""
    weight_copies = {m: [] for m in members}  # per member: indices of its weight copies, in order
    for i, e in enumerate(events):
        kind, copied = e.get("kind"), e.get("copied") or ""
        if e.get("donor") is not None and (kind == "recover" or (kind == "exploit" and copied in ("all", "weights"))):
            weight_copies.setdefault(e["member"], []).append(i)
    memo = {}

    def trained(member, step, before=len(events), depth=0):
        if depth > 100000:
            raise RuntimeError("lineage loops")
        for i in reversed(weight_copies.get(member, [])):
            if i >= before or events[i]["step"] > step:
                continue
            if i not in memo:
                memo[i] = trained(events[i]["donor"], events[i]["donor_step"], i, depth + 1)
            return memo[i] + (step - events[i]["step"])
        return max(step, 0)
    return trained


def read_result(readers, run_dir, held_out):
    last = None
    for pbt in readers:  # the new binary first; the old one if the new cannot read the run
        try:
            best = run_json(pbt, ["best", "--run", run_dir, "--json"])
            status = run_json(pbt, ["status", "--run", run_dir, "--json"])
            events = run_json(pbt, ["events", "--run", run_dir, "--json"], lines=True)
            break
        except (RuntimeError, json.JSONDecodeError) as e:
            last = e
    else:
        raise RuntimeError("cannot read %s: %s" % (run_dir, last))
    members = [m["id"] for m in status["members"]]
    trained = trained_steps_fn(events, members)
    # Prefer what the binary reports (once `pbt best` has trained_steps/efficiency), else ours.
    b_trained = best.get("trained_steps")
    if b_trained is None:
        b_trained = trained(best["member"], best["step"])
    b_eff = best.get("efficiency")
    if b_eff is None and best["step"] > 0:
        b_eff = b_trained / best["step"]
    effs = []
    for m in status["members"]:
        t = m.get("trained_steps")
        if t is None:
            t = trained(m["id"], m["step"])
        if m["step"] > 0:
            effs.append(t / m["step"])
    metric = (best.get("metrics") or {}).get(held_out) if held_out else None
    copies = sum(1 for e in events if e.get("donor") is not None)
    behind = sum(1 for e in events if e.get("donor") is not None and e["donor_step"] < e["step"])
    return {"score": best["score"], "held_out": metric, "member": best["member"], "step": best["step"],
            "trained": b_trained, "eff": b_eff, "pop_eff": statistics.median(effs) if effs else None,
            "copies": copies, "copies_behind": behind, "failed": sum(1 for m in status["members"] if m.get("failed"))}


def one_run(job):
    work, domain, d, sizes, seed, pop, workers, cond, pbt, readers, quiet = job
    name, text = make_config(domain, d, sizes, seed, pop, workers, cond)
    path = os.path.join(work, name + ".toml")
    with open(path, "w") as f:
        f.write(text)
    run_dir = os.path.join(work, name)
    cmd = [pbt, "run", path, "--run", run_dir] + (["--quiet"] if quiet else [])
    log = os.path.join(work, name + ".log")
    with open(log, "w") as out:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        # wait4: this run's CPU time (its workers' and trainers' included), apart from other runs'.
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    row = {"domain": domain, "pop": pop, "cond": cond, "seed": seed, "wall": wall,
           "cpu": usage.ru_utime + usage.ru_stime, "error": None}
    if p.returncode != 0:
        with open(log) as fh:
            row["error"] = "pbt run exited %d: %s" % (p.returncode, fh.read().strip()[-300:])
        return row
    try:
        row.update(read_result(readers, run_dir, d["held_out"]))
    except RuntimeError as e:
        row["error"] = str(e)
    shutil.rmtree(run_dir, ignore_errors=True)  # checkpoints add up over hundreds of runs
    return row


# --- the report ----------------------------------------------------------------------------------

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def f(x, spec="%.3f"):
    return "–" if x is None else spec % x


def signed(x, spec="%+.3g"):
    return "–" if x is None else spec % x


def domain_section(out, domain, d, sizes, pops, rows, conditions):
    out.append("## %s\n" % domain)
    out.append("%s. `%s` with budget %d steps, ready interval %d%s%s.\n" % (
        d["note"], d["config"], sizes["steps"], sizes["interval"],
        ", min_step %d" % sizes["min_step"] if sizes["min_step"] else "",
        "".join(", %s = %s" % (k, toml_value(v)) for k, v in d["trainable"].items())))
    hname = d["held_out"]
    for pop in pops:
        by = {(r["cond"], r["seed"]): r for r in rows if r["domain"] == domain and r["pop"] == pop}
        if not by:
            continue
        out.append("**population %d**\n" % pop)
        head = "| condition | runs | best score | Δ score vs old (wins/losses) |"
        sep = "|---|---|---|---|"
        if hname:
            head += " %s | Δ %s vs old (wins/losses) |" % (hname, hname)
            sep += "---|---|"
        head += " best's efficiency, median (min) | population's median efficiency | copies (of donors behind) " \
                "| wall (s) | wall / old | CPU (s) | CPU / old |"
        sep += "---|---|---|---|---|---|---|"
        out += [head, sep]
        for cond in conditions:
            ok = {s: r for (c, s), r in by.items() if c == cond and not r["error"]}
            failed = sum(1 for (c, s), r in by.items() if c == cond and r["error"])
            if not ok and not failed:
                continue
            base = {s: r for (c, s), r in by.items() if c == "old" and not r["error"]}
            paired = sorted(s for s in ok if s in base)

            def delta(key):
                if cond == "old":
                    return "–"
                ds = [ok[s][key] - base[s][key] for s in paired
                      if ok[s][key] is not None and base[s][key] is not None]
                if not ds:
                    return "–"
                return "%s (%d/%d)" % (signed(statistics.median(ds)), sum(x > 0 for x in ds), sum(x < 0 for x in ds))

            effs = [r["eff"] for r in ok.values() if r["eff"] is not None]
            ratios = [ok[s]["wall"] / base[s]["wall"] for s in paired if base[s]["wall"] > 0]
            cpu_ratios = [ok[s]["cpu"] / base[s]["cpu"] for s in paired if base[s]["cpu"] > 0]
            line = "| %s | %d%s | %s | %s |" % (cond, len(ok), " (+%d failed)" % failed if failed else "",
                                                f(med(r["score"] for r in ok.values()), "%.4g"), delta("score"))
            if hname:
                line += " %s | %s |" % (f(med(r["held_out"] for r in ok.values()), "%.4g"), delta("held_out"))
            line += " %s (%s) | %s | %s (%s) | %s | %s | %s | %s |" % (
                f(med(effs), "%.2f"), f(min(effs) if effs else None, "%.2f"),
                f(med(r["pop_eff"] for r in ok.values()), "%.2f"),
                f(med(r["copies"] for r in ok.values()), "%.0f"),
                f(med(r["copies_behind"] for r in ok.values()), "%.0f"),
                f(med(r["wall"] for r in ok.values()), "%.1f"), "–" if cond == "old" else f(med(ratios), "%.2f"),
                f(med(r["cpu"] for r in ok.values()), "%.1f"), "–" if cond == "old" else f(med(cpu_ratios), "%.2f"))
            out.append(line)
        out.append("")


def machine_line():
    cpu = "unknown"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return "%d cores (`nproc`), %s, %s, Python %s" % (os.cpu_count(), cpu, platform.platform(),
                                                        platform.python_version())


def write_report(path, args, cmdline, started, t0, load_start, domains, sizes, pops, rows, conditions, done, total):
    out = ["# Efficiency of the ready rule with more members than workers (issue #16)\n"]
    out.append("Made by\n\n    %s\n" % cmdline)
    out.append("- Machine: %s; started %s; load average %s at the start, %s now (the cores may be shared)." % (
        machine_line(), started, " ".join(load_start), " ".join(open("/proc/loadavg").read().split()[:3])))
    out.append("- Bench wall time: %.1f min for %d of %d runs%s; runs one at a time (--jobs %d)." % (
        (time.monotonic() - t0) / 60, done, total, "" if done == total else " (**incomplete**)", args.jobs))
    out.append("- Binaries: old `%s`, new `%s`; %d workers; populations %s; seeds %s." % (
        args.old, args.new, args.workers, ", ".join(map(str, pops)),
        ", ".join(map(str, range(args.seed0, args.seed0 + args.seeds)))))
    out.append("- Conditions: **old** (the old binary: today's rule, a ready member may copy a donor behind it), "
               "**async** (the new binary, default ready mode: donors at a step >= the member's), **sync** (the new "
               "binary with `[ready] mode = \"sync\"`: the generation decides at once).")
    out.append("- Each cell is over the seeds: *best score* and the held-out metric are the best member's (`pbt best`) "
               "at the end, median; *Δ vs old* is the median of the per-seed differences (same seed, same config) "
               "with the count of seeds where the condition beat / lost to old; *efficiency* is the best member's "
               "trained steps (following weight copies back to a fresh model) over its engine steps, median (min); "
               "*population's median efficiency* is the median over seeds of each run's median over its members; "
               "*copies* is the median count of copies per run (and of those from a donor at a lower step); "
               "*wall / old* is the median of the per-seed ratios of `pbt run`'s wall time; *CPU* the same for "
               "its CPU time (user + system, its workers and trainers included: less sensitive to other load).\n")
    for domain in domains:
        domain_section(out, domain, DOMAINS[domain], sizes[domain], pops, rows, conditions)
    errors = [r for r in rows if r["error"]]
    if errors:
        out.append("## Failed runs\n")
        for r in errors:
            out.append("- %s p%d %s seed %d: %s" % (r["domain"], r["pop"], r["cond"], r["seed"],
                                                     r["error"].replace("\n", " ")))
        out.append("")
    out.append("<details><summary>Every run</summary>\n")
    out.append("| domain | pop | condition | seed | score | held out | best member@step | trained | efficiency | "
               "pop. median eff. | copies (behind) | wall (s) | CPU (s) |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r["error"]:
            out.append("| %s | %d | %s | %d | failed | | | | | | | %.1f | %.1f |" % (
                r["domain"], r["pop"], r["cond"], r["seed"], r["wall"], r["cpu"]))
            continue
        out.append("| %s | %d | %s | %d | %.5g | %s | %d@%d | %d | %s | %s | %d (%d) | %.1f | %.1f |" % (
            r["domain"], r["pop"], r["cond"], r["seed"], r["score"], f(r["held_out"], "%.4g"), r["member"], r["step"],
            r["trained"], f(r["eff"], "%.2f"), f(r["pop_eff"], "%.2f"), r["copies"], r["copies_behind"], r["wall"],
            r["cpu"]))
    out.append("\n</details>")
    text = "\n".join(out) + "\n"
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path + ".tmp", "w") as fh:
            fh.write(text)
        os.replace(path + ".tmp", path)
    return text


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--old", help="pbt built before the change (today's rule)")
    ap.add_argument("--new", help="pbt with the new ready rule (async default, [ready] mode)")
    ap.add_argument("--domains", default=",".join(DEFAULT_DOMAINS),
                    help="comma-separated, of: %s; or all (default: all but translation)" % ", ".join(DOMAINS))
    ap.add_argument("--conditions", default=",".join(CONDITIONS), help="comma-separated, of: old, async, sync")
    ap.add_argument("--seeds", type=int, default=5, help="seeds per cell (paired across conditions)")
    ap.add_argument("--seed0", type=int, default=0, help="first seed")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scale", default="1,2,4", help="populations as multiples of --workers")
    ap.add_argument("--budget-factor", type=float, default=1.0,
                    help="multiplies every domain's budget (interval and min_step keep their ratios)")
    ap.add_argument("--budget", action="append", default=[], metavar="DOMAIN=STEPS",
                    help="a domain's budget in steps (interval and min_step scaled with it); repeatable")
    ap.add_argument("--jobs", type=int, default=1, help="runs side by side (>1 makes wall times overlap)")
    ap.add_argument("--out", default="", help="markdown to write (rewritten after every run)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (configs; runs are deleted)")
    ap.add_argument("--sizes", action="store_true", help="print each domain's sizes and exit")
    args = ap.parse_args()

    domains = list(DOMAINS) if args.domains == "all" else [x for x in args.domains.split(",") if x]
    for x in domains:
        if x not in DOMAINS:
            ap.error("unknown domain '%s' (expected some of %s)" % (x, ", ".join(DOMAINS)))
    conditions = [x for x in args.conditions.split(",") if x]
    for x in conditions:
        if x not in CONDITIONS:
            ap.error("unknown condition '%s' (expected some of %s)" % (x, ", ".join(CONDITIONS)))
    overrides = {}
    for b in args.budget:
        k, _, v = b.partition("=")
        if k not in DOMAINS or not v.isdigit() or int(v) < 1:
            ap.error("--budget %s: expected DOMAIN=STEPS with a known domain and STEPS >= 1" % b)
        overrides[k] = int(v)
    sizes = {x: sizes_of(x, DOMAINS[x], args.budget_factor, overrides) for x in domains}
    if args.sizes:
        for x in domains:
            print("%-12s %s" % (x, sizes[x]))
        return
    if not args.old or not args.new:
        ap.error("--old and --new are required")
    old, new = os.path.abspath(args.old), os.path.abspath(args.new)
    for p in (old, new):
        if not os.access(p, os.X_OK):
            ap.error("%s is not an executable" % p)
    quiet = {p: "--quiet" in subprocess.run([p, "run", "--help"], capture_output=True, text=True).stdout
             for p in (old, new)}
    pops = [int(float(s) * args.workers) for s in args.scale.split(",") if s]
    cmdline = " ".join(shlex.quote(a) for a in ["/usr/bin/python3", "bench/paper/efficiency.py"] + sys.argv[1:])
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    load_start = open("/proc/loadavg").read().split()[:3]
    work = tempfile.mkdtemp(prefix="pbt-bench-efficiency-")

    # Seeds innermost, conditions interleaved per seed: slow drifts of the machine's load
    # hit the paired runs alike.
    jobs = []
    for domain in domains:
        for pop in pops:
            for seed in range(args.seed0, args.seed0 + args.seeds):
                for cond in conditions:
                    pbt = old if cond == "old" else new
                    jobs.append((work, domain, DOMAINS[domain], sizes[domain], seed, pop, args.workers, cond, pbt,
                                 [new, old], quiet[pbt]))
    t0 = time.monotonic()
    rows = []

    def report():
        return write_report(args.out, args, cmdline, started, t0, load_start, domains, sizes, pops, rows, conditions,
                            len(rows), len(jobs))

    def note(r):
        rows.append(r)
        if r["error"]:
            print("%-11s p%-3d %-5s seed %d FAILED (%.1f s): %s" % (r["domain"], r["pop"], r["cond"], r["seed"],
                                                                   r["wall"], r["error"]), file=sys.stderr)
        else:
            print("%-11s p%-3d %-5s seed %d score %.4g held-out %s eff %.2f pop-eff %.2f copies %d (%d behind) "
                  "%.1f s, CPU %.1f s" % (
                r["domain"], r["pop"], r["cond"], r["seed"], r["score"], f(r["held_out"], "%.4g"), r["eff"] or 0,
                r["pop_eff"] or 0, r["copies"], r["copies_behind"], r["wall"], r["cpu"]), file=sys.stderr)
        report()

    try:
        if args.jobs <= 1:
            for j in jobs:
                note(one_run(j))
        else:
            with concurrent.futures.ThreadPoolExecutor(args.jobs) as ex:
                for r in ex.map(one_run, jobs):
                    note(r)
    finally:
        key = {(j[1], j[5], j[4], j[7]): i for i, j in enumerate(jobs)}
        rows.sort(key=lambda r: key[(r["domain"], r["pop"], r["seed"], r["cond"])])
        print(report())
        if args.keep:
            print("configs kept in %s" % work, file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
