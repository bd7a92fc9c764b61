#!/usr/bin/python3
"""A PyTorch model trained under PBT through the process protocol.

The data: the 8x8 handwritten digits that Debian's python3-sklearn ships
(sklearn.datasets.load_digits reads the file inside the package; nothing is downloaded):
1,797 images, split once with a fixed seed into train (1,000), validation (400) and
held-out test (397). The model: a small MLP (64 -> hidden -> 10), trained with SGD with
momentum on minibatches; one step is one minibatch update.

Hyperparameters (set in place on the optimizer by apply, so a change keeps the
momentum buffers): lr, momentum, weight_decay.

eval returns the validation accuracy as the score (what PBT maximises) and, as metrics,
the validation loss and the accuracy on the held-out test set, which PBT never looks
at: `pbt best` shows the best member's test accuracy.

Run it under pbt from the repository root:

    pbt run examples/python/digits.toml

or train one configuration plainly (no engine), e.g. for a baseline:

    python3 examples/python/digits.py --plain --lr 0.1 --momentum 0.9 --steps 2000
"""
import argparse
import io
import os
import sys

import torch

sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import pbt_trainer  # noqa: E402

torch.set_num_threads(1)  # one core per trainer: the population shares the machine

SPLIT_SEED = 0  # the same split for every member and every run
N_TRAIN, N_VAL = 1000, 400

_data = None


def load_data():
    """(x_train, y_train, x_val, y_val, x_test, y_test) as tensors, pixels scaled to [0, 1]."""
    global _data
    if _data is None:
        from sklearn.datasets import load_digits
        d = load_digits()
        x = torch.tensor(d.data, dtype=torch.float32) / 16.0
        y = torch.tensor(d.target, dtype=torch.long)
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(SPLIT_SEED))
        tr, va, te = perm[:N_TRAIN], perm[N_TRAIN:N_TRAIN + N_VAL], perm[N_TRAIN + N_VAL:]
        _data = (x[tr], y[tr], x[va], y[va], x[te], y[te])
    return _data


class Digits:
    """One member: model, optimizer, and the generator that draws its minibatches."""

    sequential_save = True  # torch.save writes front to back: the engine hashes while it writes

    def __init__(self, ctx, hidden=None, batch_size=None):
        seed = ctx.seed % (2 ** 62)
        self.hidden = hidden or int(os.environ.get("DIGITS_HIDDEN", "64"))
        self.batch_size = batch_size or int(os.environ.get("DIGITS_BATCH", "32"))
        self.xtr, self.ytr, self.xva, self.yva, self.xte, self.yte = load_data()
        torch.manual_seed(seed)
        self.model = torch.nn.Sequential(
            torch.nn.Linear(64, self.hidden), torch.nn.ReLU(), torch.nn.Linear(self.hidden, 10))
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.0)
        self.gen = torch.Generator().manual_seed(seed + 1)
        self.steps = 0
        self.train_loss = float("nan")

    def apply(self, h):
        for g in self.opt.param_groups:
            g["lr"] = float(h.get("lr", g["lr"]))
            g["momentum"] = float(h.get("momentum", g["momentum"]))
            g["weight_decay"] = float(h.get("weight_decay", g["weight_decay"]))

    def step(self, n):
        self.model.train()
        total = 0.0
        for _ in range(n):
            idx = torch.randint(0, len(self.xtr), (self.batch_size,), generator=self.gen)
            loss = torch.nn.functional.cross_entropy(self.model(self.xtr[idx]), self.ytr[idx])
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            total += loss.item()
        self.steps += n
        if n:
            self.train_loss = total / n

    def _accuracy(self, x, y):
        with torch.no_grad():
            logits = self.model(x)
            return (logits.argmax(1) == y).float().mean().item(), \
                torch.nn.functional.cross_entropy(logits, y).item()

    def eval(self):
        self.model.eval()
        val_acc, val_loss = self._accuracy(self.xva, self.yva)
        test_acc, _ = self._accuracy(self.xte, self.yte)
        return {"score": val_acc,
                "metrics": {"val_loss": val_loss, "test_acc": test_acc, "train_loss": self.train_loss}}

    def save(self, path):
        buf = io.BytesIO()
        torch.save({"model": self.model.state_dict(), "opt": self.opt.state_dict(),
                    "gen": self.gen.get_state(), "steps": self.steps, "hidden": self.hidden}, buf)
        with open(path, "wb") as f:
            f.write(buf.getvalue())

    def load(self, path):
        state = torch.load(path)
        if state.get("hidden") != self.hidden:
            raise ValueError("checkpoint has hidden=%r, this trainer %r" % (state.get("hidden"), self.hidden))
        self.model.load_state_dict(state["model"])
        # The optimizer's state (momentum buffers) comes with the weights; its lr etc. are
        # set again by apply, since the h in force is the engine's, not the checkpoint's.
        self.opt.load_state_dict(state["opt"])
        self.gen.set_state(state["gen"])
        self.steps = state["steps"]

    def copied(self, info):
        # The checkpoint was another member's: draw this member's own batches from here on
        # (the batch order is this trainer's generator), and torch's global stream too.
        pbt_trainer.reseed(info.seed)
        self.gen.manual_seed(info.seed % (1 << 63))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--plain", action="store_true", help="train one configuration without the engine")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--eval-every", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if not args.plain:
        return pbt_trainer.serve(Digits)
    h = {"lr": args.lr, "momentum": args.momentum, "weight_decay": args.weight_decay}
    for step, r in pbt_trainer.run_locally(Digits, h, args.steps, args.eval_every,
                                          pbt_trainer.Context(0, args.seed)):
        print("step %d: val_acc %.4f test_acc %.4f" % (step, r["score"], r["metrics"]["test_acc"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
