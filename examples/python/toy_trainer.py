#!/usr/bin/env python3
"""The paper's toy problem (Figure 2) as an external trainer, standard library only.

Maximise Q(theta) = 1.2 - (theta0^2 + theta1^2) by gradient ascent on the surrogate
Q^(theta|h) = 1.2 - (h0 theta0^2 + h1 theta1^2); the hyperparameters are h0 and h1.
The same problem as the built-in `toy` trainable, here behind the process protocol:

    pbt run examples/python/toy.toml      (from the repository root)
"""
import json
import os
import sys

sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import pbt_trainer  # noqa: E402


class Toy:
    def __init__(self, eta=0.05):
        self.eta = eta
        self.theta = [0.9, 0.9]
        self.h = [0.0, 0.0]

    def apply(self, h):
        self.h = [float(h["h0"]), float(h["h1"])]

    def step(self, n):
        for _ in range(n):
            for k in range(2):
                self.theta[k] += self.eta * (-2.0 * self.h[k] * self.theta[k])

    def eval(self):
        q = 1.2 - (self.theta[0] ** 2 + self.theta[1] ** 2)
        return {"score": q, "metrics": {"theta0": self.theta[0], "theta1": self.theta[1]}}

    def save(self, path):
        with open(path, "w") as f:
            json.dump({"theta": self.theta}, f)

    def load(self, path):
        with open(path) as f:
            self.theta = json.load(f)["theta"]


if __name__ == "__main__":
    sys.exit(pbt_trainer.serve(Toy))
