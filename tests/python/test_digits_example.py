"""Tests of the PyTorch example trainer (examples/python/digits.py). Needs Debian's
python3-torch and python3-sklearn (scripts/setup.sh installs them)."""
import os
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(ROOT, "examples", "python"))
import pbt_trainer  # noqa: E402
import digits  # noqa: E402

H = {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4}


class DigitsTest(unittest.TestCase):
    def test_the_split_is_fixed_and_disjoint(self):
        xtr, ytr, xva, yva, xte, yte = digits.load_data()
        self.assertEqual((len(xtr), len(xva), len(xte)), (1000, 400, 397))
        self.assertLessEqual(float(xtr.max()), 1.0)

    def test_it_learns(self):
        t = digits.Digits(pbt_trainer.Context(0, 1))
        t.apply(H)
        before = t.eval()["score"]
        t.step(300)
        r = t.eval()
        self.assertGreater(r["score"], 0.85)
        self.assertGreater(r["score"], before + 0.5)
        self.assertGreater(r["metrics"]["test_acc"], 0.8)

    def test_save_then_load_continues_exactly(self):
        a = digits.Digits(pbt_trainer.Context(0, 1))
        a.apply(H)
        a.step(50)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "ckpt")
            a.save(path)
            b = digits.Digits(pbt_trainer.Context(1, 2))  # another member's init, overwritten by load
            b.load(path)
        b.apply(H)
        a.step(20)
        b.step(20)
        self.assertEqual(a.eval(), b.eval(), "weights, momentum and the batch generator all came along")

    def test_apply_changes_the_optimizer_in_place(self):
        t = digits.Digits(pbt_trainer.Context(0, 1))
        t.apply(H)
        t.step(5)
        opt = t.opt
        t.apply({"lr": 0.01, "momentum": 0.5, "weight_decay": 0.0})
        self.assertIs(t.opt, opt)
        self.assertEqual(t.opt.param_groups[0]["lr"], 0.01)
        self.assertTrue(any("momentum_buffer" in s for s in t.opt.state.values()), "momentum kept")

    def test_members_start_from_different_weights(self):
        a = digits.Digits(pbt_trainer.Context(0, 1))
        b = digits.Digits(pbt_trainer.Context(1, 2))
        self.assertNotEqual(float(a.model[0].weight.sum()), float(b.model[0].weight.sum()))


if __name__ == "__main__":
    unittest.main()
