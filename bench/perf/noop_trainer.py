#!/usr/bin/env python3
"""A trainer that does nothing, through python/pbt_trainer.py: what the protocol costs
by itself (bench/perf/protocol_cost.cpp). save writes BENCH_CKPT_BYTES bytes (default 16)."""
import os
import sys

sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import pbt_trainer  # noqa: E402

SIZE = int(os.environ.get("BENCH_CKPT_BYTES", "16"))


class Noop:
    def __init__(self):
        self.blob = os.urandom(SIZE)

    def step(self, n):
        pass

    def eval(self):
        return 0.0

    def save(self, path):
        with open(path, "wb") as f:
            f.write(self.blob)

    def load(self, path):
        with open(path, "rb") as f:
            self.blob = f.read()


if __name__ == "__main__":
    sys.exit(pbt_trainer.serve(Noop))
