"""bench/paper/tpe_baseline.py, Optuna's TPE at PBT's budget, on a small real search: two
trials of examples/nqm.toml (population 1 each, the built-in nqm trainable) through the `pbt`
binary that ctest names in PBT_BINARY. Skipped, saying why, without Optuna or a `pbt`."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import unittest

sys.dont_write_bytecode = True
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
SCRIPT = os.path.join(ROOT, "bench", "paper", "tpe_baseline.py")
PBT = os.environ.get("PBT_BINARY") or shutil.which("pbt")

try:
    import optuna  # noqa: F401
    HAVE_OPTUNA = True
except ImportError:
    HAVE_OPTUNA = False

sys.path.insert(0, os.path.dirname(SCRIPT))
import tpe_baseline  # noqa: E402


class TomlWriter(unittest.TestCase):
    def test_a_config_survives_the_round_trip(self):
        with open(os.path.join(ROOT, "examples", "nqm.toml"), "rb") as f:
            base = tomllib.load(f)
        trial = tpe_baseline.trial_config(base, "examples/nqm.toml", "t", 7, {"lr": 0.05})
        back = tomllib.loads(tpe_baseline.toml_dumps(trial))
        self.assertEqual(back, trial)
        self.assertEqual(back["population"], 1)
        self.assertEqual(back["exploit"], {"strategy": "none"})
        self.assertEqual(back["explore"], {"strategy": "none"})
        self.assertEqual(back["initial"], [{"lr": 0.05}])
        self.assertEqual(back["trainable"], base["trainable"])


@unittest.skipUnless(HAVE_OPTUNA, "Optuna is missing: apt-get install python3-optuna (scripts/setup.sh does)")
@unittest.skipUnless(PBT, "no pbt binary: set PBT_BINARY (ctest does) or put pbt on PATH")
class TpeBaseline(unittest.TestCase):
    def test_two_trials_report_the_held_out_metric_of_the_best_one(self):
        tmp = tempfile.mkdtemp(prefix="pbt-tpe-test-")
        self.addCleanup(shutil.rmtree, tmp, True)
        out = os.path.join(tmp, "tpe.md")
        r = subprocess.run([sys.executable, SCRIPT, "--config", os.path.join(ROOT, "examples", "nqm.toml"),
                            "--pbt", PBT, "--seeds", "3", "--population", "2", "--metric", "metrics.true_loss",
                            "--lower-is-better", "--out", out, "--json", "--work-dir", os.path.join(tmp, "work")],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        j = json.loads(r.stdout)
        self.assertEqual(len(j["rows"]), 1)
        row = j["rows"][0]
        self.assertEqual((row["population"], row["seed"], row["trials"]), (2, 3, 2))
        with open(os.path.join(ROOT, "examples", "nqm.toml"), "rb") as f:
            steps = tomllib.load(f)["budget"]["steps"]
        self.assertEqual(row["total_steps"], 2 * steps)  # the budget of a PBT run of 2 members
        self.assertIn(row["best_trial"], (0, 1))
        self.assertTrue(0.001 <= row["h"]["lr"] <= 1.0, row["h"])
        # The exact loss of θ: positive, and below the loss at the start (½ Σ 1/i, about 2.59).
        self.assertGreater(row["metric"], 0)
        self.assertLess(row["metric"], 2.59)
        self.assertEqual(j["medians"]["2"]["metric"], row["metric"])
        with open(out) as f:
            md = f.read()
        self.assertIn("tpe_baseline.py", md)  # the command
        self.assertIn("| 2 | 3 | 2 |", md)


if __name__ == "__main__":
    unittest.main()
