#!/usr/bin/env python3
"""The toy problem behind the process protocol (python/pbt_trainer.py), a trainer that
also leaves descendants behind on purpose, for the fault suite: at start it forks one
process that stays in its process group and one that calls setsid() and double-forks
(a daemon), writing each pid to --state-dir. Nothing the trainer started may outlive
its worker, however the worker ends.

    spawning_trainer.py --state-dir DIR [--step-ms MS]
"""
import argparse
import json
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import pbt_trainer  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--state-dir", required=True)
p.add_argument("--step-ms", type=float, default=2.0)
args = p.parse_args()


def record(kind, pid):
    # Written beside the state directory, then renamed into it: a kill mid-write (which
    # switching members makes likelier: every switch builds the trainer anew) leaves no
    # empty record for the test to read.
    name = "%s-%d-%d" % (kind, os.getpid(), pid)
    tmp = os.path.join(os.path.dirname(os.path.abspath(args.state_dir)), "." + name)
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.rename(tmp, os.path.join(args.state_dir, name))


def sleep_forever():
    try:
        os.close(0)  # hold nothing of the worker's pipes open but what it inherited on purpose
    except OSError:
        pass
    while True:
        time.sleep(1000)


def spawn_descendants():
    os.makedirs(args.state_dir, exist_ok=True)
    record("trainer", os.getpid())
    pid = os.fork()
    if pid == 0:  # stays in the trainer's process group
        sleep_forever()
    record("group", pid)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # a daemon: new session, then fork again so its parent is gone
        os.close(r)
        os.setsid()
        grandchild = os.fork()
        if grandchild == 0:
            os.close(w)
            sleep_forever()
        os.write(w, str(grandchild).encode())
        os._exit(0)
    os.close(w)
    daemon = int(os.read(r, 64).decode())
    os.close(r)
    os.waitpid(pid, 0)
    record("daemon", daemon)


class Toy:
    def __init__(self):
        spawn_descendants()
        self.theta = [0.9, 0.9]
        self.h = [0.0, 0.0]

    def apply(self, h):
        self.h = [float(h["h0"]), float(h["h1"])]

    def step(self, n):
        time.sleep(args.step_ms * n / 1000.0)
        for _ in range(n):
            for k in range(2):
                self.theta[k] += 0.05 * (-2.0 * self.h[k] * self.theta[k])

    def eval(self):
        return 1.2 - (self.theta[0] ** 2 + self.theta[1] ** 2)

    def save(self, path):
        with open(path, "w") as f:
            json.dump({"theta": self.theta}, f)

    def load(self, path):
        with open(path) as f:
            self.theta = json.load(f)["theta"]


if __name__ == "__main__":
    sys.exit(pbt_trainer.serve(Toy))
