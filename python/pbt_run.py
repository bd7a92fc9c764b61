"""Read a pbt run into Python, for notebooks. Standard library only; pandas when present.

Everything comes from the ``pbt`` command's machine-readable output (``status --json``,
``best --json``, ``events --json``, ``export --format jsonl``, ``replay --schedule-only
--json``), never from the store's tables, so it reads SQLite and PostgreSQL stores alike
and does not depend on their schema::

    import pbt_run

    run = pbt_run.load_run("runs/toy")                     # a run directory
    run = pbt_run.load_run(store="postgresql://...", experiment="toy")
    run["population"]   # one dict per member: id, step, score, h, done, failed, ...
    run["best"]         # the best member: id, score, step, h, ...
    run["events"]       # every exploit/explore: member, step, donor, old_h, new_h, ...
    run["scores"]       # every eval: member, step, score, ... (`pbt export --what scores`)
    run["hyperparameters"]  # h over time, per member (`pbt export --what hyperparameters`)
    run["schedule"]     # the best member's inherited schedule: root, total_steps, and
                        # segments [{member, from_step, to_step, h}, ...]

    frames = pbt_run.load_run("runs/toy", pandas=True)      # population, events, scores,
    frames["scores"].pivot(index="step", columns="member", values="score").plot()

``pandas=None`` (the default) returns DataFrames for the tables when pandas can be
imported and plain lists of dicts otherwise; ``False`` always returns plain data; ``True``
needs pandas. The ``pbt`` binary is ``pbt=`` if given, else ``$PBT_BINARY``, else ``pbt``
on the PATH. A failing command raises ``PbtError`` with its stderr.
"""
import json
import os
import shutil
import subprocess

__all__ = ["PbtError", "load_run", "find_pbt"]

# The tables that become DataFrames with pandas; the rest stay dicts.
TABLES = ("population", "events", "scores", "hyperparameters")


class PbtError(RuntimeError):
    """A `pbt` command failed: its arguments, exit status and stderr are in the message."""


def find_pbt(pbt=None):
    """The path of the `pbt` binary: `pbt`, $PBT_BINARY or `pbt` on the PATH."""
    exe = pbt or os.environ.get("PBT_BINARY") or shutil.which("pbt")
    if not exe:
        raise PbtError("no `pbt` binary: pass pbt=PATH, set PBT_BINARY, or put pbt on the PATH")
    return exe


def _target(run, store, experiment):
    if (run is None) == (store is None):
        raise ValueError("give a run directory or store= (and experiment=), not both")
    args = ["--run", str(run)] if run is not None else ["--store", str(store)]
    if experiment is not None:
        args += ["--experiment", str(experiment)]
    return args


def _pbt(exe, args):
    p = subprocess.run([exe] + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise PbtError("pbt %s: exit %d: %s" % (" ".join(args), p.returncode, p.stderr.strip()))
    return p.stdout


def _lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def load_run(run=None, *, store=None, experiment=None, pbt=None, pandas=None, schedule=True):
    """The run as a dict: experiment, population, best, events, scores, hyperparameters,
    schedule (see the module's doc). `schedule=False` skips the inherited schedule (and
    `best` is None while no member has a score, schedule too)."""
    exe = find_pbt(pbt)
    target = _target(run, store, experiment)
    status = json.loads(_pbt(exe, ["status"] + target + ["--json"]))
    out = {
        "experiment": status.get("experiment"),
        "status": {k: v for k, v in status.items() if k != "members"},
        "population": status.get("members", []),
        "events": _lines(_pbt(exe, ["events"] + target + ["--json"])),
        "scores": _lines(_pbt(exe, ["export"] + target + ["--format", "jsonl", "--what", "scores", "-o", "-"])),
        "hyperparameters": _lines(
            _pbt(exe, ["export"] + target + ["--format", "jsonl", "--what", "hyperparameters", "-o", "-"])),
        "best": None,
        "schedule": None,
    }
    if any(m.get("score") is not None for m in out["population"]):
        out["best"] = json.loads(_pbt(exe, ["best"] + target + ["--json"]))
        if schedule:
            s = json.loads(_pbt(exe, ["replay"] + target + ["--schedule-only", "--json"]))
            out["schedule"] = {"member": s["member"], "root": s["root"], "total_steps": s["total_steps"],
                               "segments": s["schedule"]}
    return _frames(out, pandas)


def _frames(out, pandas):
    if pandas is False:
        return out
    try:
        import pandas as pd
    except ImportError:
        if pandas:
            raise
        return out
    for name in TABLES:
        out[name] = pd.json_normalize(out[name]) if out[name] else pd.DataFrame()
    return out
