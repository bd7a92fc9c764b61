"""python/pbt_run.py on a small real run (the built-in toy trainable, run by the `pbt`
binary that ctest names in PBT_BINARY), and the package's offline install."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import types
import unittest

sys.dont_write_bytecode = True
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(ROOT, "python"))
import pbt_run  # noqa: E402

PBT = os.environ.get("PBT_BINARY") or shutil.which("pbt")

CONFIG = """
name = "notebook"
seed = 3
population = 3
[trainable]
kind = "toy"
[budget]
steps = 24
[ready]
interval = 4
eval_every = 2
[exploit]
strategy = "truncation"
fraction = 0.34
[explore]
strategy = "perturb"
[space.h0]
low = 0.0
high = 1.0
[space.h1]
low = 0.0
high = 1.0
"""


@unittest.skipUnless(PBT, "no pbt binary: ctest sets PBT_BINARY (run the tests through ctest)")
class LoadRun(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="pbt-run-py-")
        cfg = os.path.join(cls.dir, "notebook.toml")
        with open(cfg, "w") as f:
            f.write(CONFIG)
        cls.run_dir = os.path.join(cls.dir, "run")
        p = subprocess.run([PBT, "run", cfg, "--run", cls.run_dir, "--quiet"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        assert p.returncode == 0, p.stdout
        cls.data = pbt_run.load_run(cls.run_dir, pbt=PBT, pandas=False)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_population_is_every_member_at_the_budget(self):
        pop = self.data["population"]
        self.assertEqual(self.data["experiment"], "notebook")
        self.assertEqual(sorted(m["id"] for m in pop), [0, 1, 2])
        for m in pop:
            self.assertTrue(m["done"], m)
            self.assertEqual(m["step"], 24)
            self.assertEqual(set(m["h"]), {"h0", "h1"})
        self.assertEqual(self.data["status"]["budget_steps"], 24)

    def test_best_is_the_member_with_the_highest_score(self):
        best = self.data["best"]
        top = max(self.data["population"], key=lambda m: m["score"])
        self.assertEqual(best["member"], top["id"])
        self.assertEqual(best["score"], top["score"])

    def test_scores_are_every_eval_of_every_member(self):
        scores = self.data["scores"]
        # An eval every 2 steps, 24 steps: 12 per member at least (a copy's member re-evals too).
        for member in range(3):
            steps = {s["step"] for s in scores if s["member"] == member}
            self.assertTrue({2, 4, 22, 24} <= steps, (member, sorted(steps)))
        self.assertTrue(all(isinstance(s["score"], float) for s in scores))

    def test_events_are_the_lineage(self):
        events = self.data["events"]
        self.assertGreater(len(events), 0)
        for e in events:
            self.assertIn(e["kind"], ("exploit", "explore"))
            self.assertIn(e["member"], (0, 1, 2))
            self.assertIn("new_h", e)
        self.assertTrue(any(e["donor"] is not None for e in events), "truncation copied someone")

    def test_schedule_is_the_best_members_inherited_one(self):
        s, best = self.data["schedule"], self.data["best"]
        self.assertEqual(s["member"], best["member"])
        segs = s["segments"]
        self.assertEqual(sum(x["to_step"] - x["from_step"] for x in segs), s["total_steps"])
        self.assertEqual(s["total_steps"], best["trained_steps"])
        self.assertEqual(segs[0]["from_step"], 0)
        self.assertEqual(segs[0]["member"], s["root"])
        self.assertEqual(segs[-1]["member"], best["member"])
        self.assertEqual(segs[-1]["to_step"], 24)
        self.assertEqual(segs[-1]["h"], best["h"])

    def test_a_store_uri_and_experiment_read_the_same_run(self):
        other = pbt_run.load_run(store="sqlite:" + os.path.join(self.run_dir, "store.db"),
                                 experiment="notebook", pbt=PBT, pandas=False)
        self.assertEqual(other["population"], self.data["population"])
        self.assertEqual(other["events"], self.data["events"])
        self.assertEqual(other["schedule"], self.data["schedule"])

    def test_the_result_is_plain_json_data(self):
        self.assertEqual(json.loads(json.dumps(self.data)), self.data)

    def test_a_missing_run_raises_with_pbts_message(self):
        with self.assertRaises(pbt_run.PbtError) as e:
            pbt_run.load_run(os.path.join(self.dir, "nowhere"), pbt=PBT)
        self.assertIn("nowhere", str(e.exception))
        with self.assertRaises(ValueError):
            pbt_run.load_run(self.run_dir, store="sqlite:x.db", pbt=PBT)

    def test_tables_become_dataframes_when_pandas_is_there(self):
        # A stand-in for pandas (it is not a dependency): what load_run hands it.
        calls = []
        fake = types.ModuleType("pandas")
        fake.json_normalize = lambda rows: calls.append(rows) or ("frame", len(rows))
        fake.DataFrame = lambda: ("frame", 0)
        saved = sys.modules.get("pandas")
        sys.modules["pandas"] = fake
        try:
            frames = pbt_run.load_run(self.run_dir, pbt=PBT)
        finally:
            if saved is None:
                del sys.modules["pandas"]
            else:
                sys.modules["pandas"] = saved
        self.assertEqual(frames["population"], ("frame", 3))
        self.assertEqual(frames["scores"], ("frame", len(self.data["scores"])))
        self.assertEqual(frames["events"], ("frame", len(self.data["events"])))
        self.assertEqual(frames["schedule"], self.data["schedule"], "not a table: stays a dict")
        self.assertEqual(calls[0], self.data["population"])

    def test_without_pandas_the_tables_are_lists(self):
        saved = sys.modules.get("pandas")
        sys.modules["pandas"] = None  # import fails
        try:
            plain = pbt_run.load_run(self.run_dir, pbt=PBT)
            with self.assertRaises(ImportError):
                pbt_run.load_run(self.run_dir, pbt=PBT, pandas=True)
        finally:
            if saved is None:
                del sys.modules["pandas"]
            else:
                sys.modules["pandas"] = saved
        self.assertEqual(plain, self.data)


class Install(unittest.TestCase):
    def test_pip_installs_the_package_offline_and_its_modules_import(self):
        if subprocess.run([sys.executable, "-m", "pip", "--version"], stdout=subprocess.DEVNULL).returncode != 0:
            self.fail("no pip for %s: scripts/setup.sh installs python3-pip" % sys.executable)
        tmp = tempfile.mkdtemp(prefix="pbt-pip-")
        try:
            # From a copy: a build writes build/ and *.egg-info next to the sources.
            src = os.path.join(tmp, "python")
            shutil.copytree(os.path.join(ROOT, "python"), src,
                            ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
            target = os.path.join(tmp, "site")
            p = subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-index",
                                "--no-cache-dir", "--disable-pip-version-check", "--target", target, src],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            self.assertEqual(p.returncode, 0, p.stdout)
            # From elsewhere, with only the target on the path (not python/).
            probe = ("import pbt_run, pbt_trainer; print(pbt_run.__file__); print(pbt_trainer.__file__); "
                     "print(pbt_trainer.PROTOCOL)")
            p = subprocess.run([sys.executable, "-c", probe], cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=dict(os.environ, PYTHONPATH=target))
            self.assertEqual(p.returncode, 0, p.stdout)
            files = p.stdout.split()
            self.assertEqual(files[:2], [os.path.join(target, "pbt_run.py"), os.path.join(target, "pbt_trainer.py")])
            self.assertEqual(files[2], "1.3")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
