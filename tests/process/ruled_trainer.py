#!/usr/bin/env python3
"""A trainer with a rule of its own, through python/pbt_trainer.py (protocol 1.3): it keeps
batch >= 2 x minibatch by lowering the minibatch, and returns from apply() the h it put in
force, so that the engine records that h. The model: x climbs toward 1 at a rate that is
best with a minibatch near 32 (members differ, so truncation copies and explore runs).

--bad: apply() returns a batch outside [space] (the engine must refuse it, naming it).
--silent: apply() enforces the rule but returns nothing (the engine keeps what it sent).
"""
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import pbt_trainer  # noqa: E402

BAD = "--bad" in sys.argv
SILENT = "--silent" in sys.argv


class Ruled:
    def __init__(self):
        self.x = 0.0
        self.rate = 0.0

    def apply(self, h):
        batch = int(h["batch"])
        minibatch = min(int(h["minibatch"]), batch // 2)
        self.rate = 0.05 / (1.0 + abs(minibatch - 32) / 32.0)
        accepted = dict(h, batch=batch, minibatch=minibatch)
        if BAD:
            accepted["batch"] = 4096
        return None if SILENT else accepted

    def step(self, n):
        for _ in range(n):
            self.x += self.rate * (1.0 - self.x)

    def eval(self):
        return self.x

    def save(self, path):
        with open(path, "w") as f:
            json.dump({"x": self.x}, f)

    def load(self, path):
        with open(path) as f:
            self.x = json.load(f)["x"]


if __name__ == "__main__":
    sys.exit(pbt_trainer.serve(Ruled))
