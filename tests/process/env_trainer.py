#!/usr/bin/env python3
"""A process trainer that records the GPU placement it sees: when it starts it appends
one line to the file argv[1]: {"pid", "ancestors" (its parent's pid, theirs, ...),
"cuda_visible_devices" (null when unset)}. It trains the toy problem of
examples/python/toy_trainer.py (standard library only).

With `--kill-worker-of MEMBER` (after the file), the first trainer started for that
member kills its worker (SIGKILL), once per file: it writes the devices it saw to the
marker FILE.killed first. `pbt run` must then start a replacement in the same slot,
with the same devices.
"""
import json
import os
import signal
import sys

sys.dont_write_bytecode = True
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "python"))
sys.path.insert(0, os.path.join(here, "..", "..", "examples", "python"))
import pbt_trainer  # noqa: E402
from toy_trainer import Toy  # noqa: E402


def ancestors():
    out, pid = [], os.getppid()
    while pid > 1 and len(out) < 8:
        out.append(pid)
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
        pid = int(stat[stat.rfind(")") + 2:].split()[1])
    return out


def worker_of(pids):
    """The `pbt worker` among the ancestors: the topmost of the first run of processes
    with its command line (the worker's guard process is a fork of it, below it)."""
    found = None
    for pid in pids:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = f.read().split(b"\0")
        if b"worker" in argv and b"--experiment" in argv:
            found = pid
        elif found is not None:
            break
    return found


if __name__ == "__main__":
    record = {"pid": os.getpid(), "ancestors": ancestors(),
              "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
    with open(sys.argv[1], "a") as f:
        f.write(json.dumps(record) + "\n")
    if len(sys.argv) == 4 and sys.argv[2] == "--kill-worker-of" and pbt_trainer.context().member == int(sys.argv[3]):
        marker = sys.argv[1] + ".killed"
        if not os.path.exists(marker):
            with open(marker, "w") as f:
                f.write(str(record["cuda_visible_devices"]))
            os.kill(worker_of(record["ancestors"]), signal.SIGKILL)
    sys.exit(pbt_trainer.serve(Toy))
