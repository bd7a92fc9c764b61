"""Tests of python/pbt_trainer.py: the protocol as the module speaks it, over in-memory
streams and over real pipes to a child process. Standard library only:
python3 -m unittest discover -s tests/python"""
import io
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import textwrap
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))
import pbt_trainer  # noqa: E402


def converse(trainer=None, requests=(), **functions):
    """Runs serve() over in-memory streams; returns (exit status, [messages sent])."""
    lines = []
    for i, r in enumerate(requests):
        if isinstance(r, (bytes, str)):
            lines.append(r if isinstance(r, bytes) else r.encode())
        else:
            r = dict(r)
            r.setdefault("id", i + 1)
            lines.append(json.dumps(r).encode() + b"\n")
    inp = io.BytesIO(b"".join(lines))
    out = io.BytesIO()
    rc = pbt_trainer.serve(trainer, stdin=inp, stdout=out, name="test", **functions)
    return rc, [json.loads(l) for l in out.getvalue().decode().splitlines()]


class Counter:
    instances = []

    def __init__(self, ctx):
        self.ctx = ctx
        self.n = 0
        self.h = None
        Counter.instances.append(self)

    def apply(self, h):
        self.h = h

    def step(self, n):
        self.n += n

    def eval(self):
        return {"score": self.n, "metrics": {"h": self.h}}

    def save(self, path):
        with open(path, "w") as f:
            f.write(str(self.n))

    def load(self, path):
        with open(path) as f:
            self.n = int(f.read())


INIT = {"op": "init", "protocol": "1.0", "member": 3, "seed": 99}


class ProtocolTest(unittest.TestCase):
    def test_hello_first_then_one_reply_per_request(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "ckpt")
            rc, msgs = converse(Counter, [INIT, {"op": "apply", "h": {"lr": 0.1, "act": "relu"}},
                                          {"op": "step", "n": 5}, {"op": "eval"}, {"op": "save", "path": path},
                                          {"op": "step", "n": 1}, {"op": "load", "path": path}, {"op": "eval"},
                                          {"op": "shutdown"}])
        self.assertEqual(rc, 0)
        self.assertEqual(msgs[0]["hello"], "test")
        self.assertEqual(msgs[0]["protocol"], "1.3")
        replies = msgs[1:]
        self.assertEqual([r["id"] for r in replies], list(range(1, 10)))
        self.assertTrue(all(r["ok"] for r in replies))
        self.assertEqual(replies[3]["score"], 5.0)
        self.assertEqual(replies[3]["metrics"], {"h": {"lr": 0.1, "act": "relu"}})
        self.assertEqual(replies[7]["score"], 5.0, "load restored the saved state")
        t = Counter.instances[-1]
        self.assertEqual((t.ctx.member, t.ctx.seed), (3, 99), "the class gets the Context at init")

    def test_a_trainer_that_saves_front_to_back_says_so_in_its_hello(self):
        class Sequential(Counter):
            sequential_save = True
        _, msgs = converse(Sequential, [INIT])
        self.assertIs(msgs[0].get("sequential_save"), True)
        _, msgs = converse(Counter, [INIT])
        self.assertNotIn("sequential_save", msgs[0], "not promised unless the trainer says so")
        _, msgs = converse(None, [INIT], step=lambda n: None, eval=lambda: 0.0, save=lambda p: None,
                           load=lambda p: None, sequential_save=True)
        self.assertIs(msgs[0].get("sequential_save"), True)

        class Unclear(Counter):
            sequential_save = "yes"
        with self.assertRaisesRegex(TypeError, "sequential_save must be True or False"):
            converse(Unclear, [INIT])

    def test_functions_instead_of_a_class(self):
        state = {"n": 0}
        rc, msgs = converse(None, [INIT, {"op": "step", "n": 2}, {"op": "eval"}],
                            step=lambda n: state.update(n=state["n"] + n),
                            eval=lambda: state["n"] * 0.5, save=lambda p: None, load=lambda p: None)
        self.assertEqual(rc, 0, "end of input ends serve quietly")
        self.assertEqual(msgs[-1], {"id": 3, "ok": True, "score": 1.0})

    def test_an_error_in_user_code_comes_back_with_its_traceback_and_serving_goes_on(self):
        def step(n):
            raise ZeroDivisionError("exploded at step %d" % n)

        rc, msgs = converse(None, [INIT, {"op": "step", "n": 7}, {"op": "eval"}],
                            step=step, eval=lambda: 0.5, save=lambda p: None, load=lambda p: None)
        err = msgs[2]
        self.assertFalse(err["ok"])
        self.assertEqual(err["error"], "ZeroDivisionError: exploded at step 7")
        self.assertIn("Traceback (most recent call last)", err["traceback"])
        self.assertIn("in step", err["traceback"])
        self.assertTrue(msgs[3]["ok"], "the engine decides what to do next")

    def test_an_error_in_the_constructor_is_reported_at_init(self):
        class Broken:
            def __init__(self, ctx):
                raise RuntimeError("no data")

            step = eval = save = load = None

        rc, msgs = converse(Broken, [INIT])
        self.assertFalse(msgs[1]["ok"])
        self.assertEqual(msgs[1]["error"], "RuntimeError: no data")

    def test_eval_results_in_every_form(self):
        cases = [
            (0.25, {"score": 0.25}),
            (3, {"score": 3.0}),
            ((0.5, {"acc": 1}), {"score": 0.5, "metrics": {"acc": 1}}),
            ({"score": 1, "samples": [1, 2.5]}, {"score": 1.0, "samples": [1.0, 2.5]}),
            (float("nan"), {"score": "NaN"}),
            (float("-inf"), {"score": "-Infinity"}),
            ({"score": 1, "metrics": {"loss": float("inf"), "v": [float("nan")]}},
             {"score": 1.0, "metrics": {"loss": "Infinity", "v": ["NaN"]}}),
        ]
        for value, expected in cases:
            rc, msgs = converse(None, [INIT, {"op": "eval"}], step=lambda n: None, eval=lambda: value,
                                save=lambda p: None, load=lambda p: None)
            reply = msgs[2]
            reply.pop("id")
            self.assertEqual(reply, dict(ok=True, **expected), value)

    def test_bad_eval_results_are_errors(self):
        for value in [True, "high", {"loss": 1}, {"score": 1, "extra": 2}, None]:
            rc, msgs = converse(None, [INIT, {"op": "eval"}], step=lambda n: None, eval=lambda: value,
                                save=lambda p: None, load=lambda p: None)
            self.assertFalse(msgs[2]["ok"], value)
            self.assertTrue(msgs[2]["error"].startswith("TypeError"), msgs[2])

    def test_unknown_ops_and_unreadable_requests_get_error_replies(self):
        rc, msgs = converse(Counter, [INIT, {"op": "teleport"}, b"this is not json\n", {"op": "step", "n": -1}])
        self.assertIn("unknown op 'teleport'", msgs[2]["error"])
        self.assertEqual(msgs[3]["id"], None)
        self.assertIn("unreadable request", msgs[3]["error"])
        self.assertIn("non-negative integer", msgs[4]["error"])

    def test_a_class_with_only_optional_arguments_is_built_without_the_context(self):
        class Opt(Counter):
            def __init__(self, scale=2):
                super().__init__(None)
                self.scale = scale

        rc, msgs = converse(Opt, [INIT, {"op": "eval"}])
        self.assertTrue(msgs[2]["ok"])
        self.assertEqual(Counter.instances[-1].scale, 2)

    def test_a_trainer_without_step_is_refused_before_the_hello(self):
        class NoStep:
            def eval(self):
                return 1

        with self.assertRaisesRegex(TypeError, "no step"):
            pbt_trainer.serve(NoStep(), stdin=io.BytesIO(), stdout=io.BytesIO())
        with self.assertRaisesRegex(TypeError, "needs a trainer, or the functions step"):
            pbt_trainer.serve(stdin=io.BytesIO(), stdout=io.BytesIO())

    def test_run_locally_trains_one_configuration(self):
        results = pbt_trainer.run_locally(Counter, {"lr": 1}, steps=10, eval_every=4)
        self.assertEqual([s for s, _ in results], [4, 8, 10])
        self.assertEqual(results[-1][1]["score"], 10.0)

    def test_context_comes_from_the_environment(self):
        os.environ["PBT_MEMBER"], os.environ["PBT_SEED"] = "4", "17"
        try:
            c = pbt_trainer.context()
        finally:
            del os.environ["PBT_MEMBER"], os.environ["PBT_SEED"]
        self.assertEqual((c.member, c.seed), (4, 17))


class Walker(Counter):
    """Draws from Python's global generator in every step: what a copy must not replay."""

    def __init__(self, ctx):
        super().__init__(ctx)
        self.x = 0.0

    def step(self, n):
        super().step(n)
        for _ in range(n):
            self.x += random.random()

    def eval(self):
        return self.x


def copied(seed, donor=1, donor_step=30):
    return {"op": "copied", "donor": donor, "donor_step": donor_step, "seed": seed}


class CopiedTest(unittest.TestCase):
    """Protocol 1.1: after a load of another member's checkpoint, `copied` with a fresh seed."""

    def walk_after_copy(self, seed, trainer=Walker):
        rc, msgs = converse(trainer, [INIT, copied(seed), {"op": "step", "n": 5}, {"op": "eval"}])
        self.assertTrue(all(m["ok"] for m in msgs[1:]), msgs)
        return msgs[-1]["score"]

    def test_by_default_a_copy_reseeds_pythons_generator_from_the_seed(self):
        random.seed(7)  # what the donor's stream would have been
        first = self.walk_after_copy(2 ** 64 - 1)  # the whole unsigned 64-bit range is a seed
        random.seed(8)
        self.assertEqual(self.walk_after_copy(2 ** 64 - 1), first, "the seed alone decides what follows")
        self.assertNotEqual(self.walk_after_copy(12345), first, "another seed, another stream")

    def test_the_default_reseeds_numpy_and_torch_only_when_imported(self):
        calls = []
        fake_torch = type(sys)("torch")
        fake_torch.manual_seed = calls.append
        saved = sys.modules.get("torch")
        sys.modules["torch"] = fake_torch
        try:
            seeded = pbt_trainer.reseed(2 ** 63 + 5)
        finally:
            if saved is None:
                del sys.modules["torch"]
            else:
                sys.modules["torch"] = saved
        self.assertEqual(calls, [2 ** 63 + 5])
        self.assertIn("torch", seeded)
        self.assertEqual("numpy" in seeded, "numpy" in sys.modules)
        try:
            import numpy
        except ImportError:
            self.skipTest("numpy is not installed")
        pbt_trainer.reseed(2 ** 40 + 3)
        a = numpy.random.rand(3)
        numpy.random.rand(5)
        pbt_trainer.reseed(2 ** 40 + 3)
        self.assertEqual(list(numpy.random.rand(3)), list(a))
        pbt_trainer.reseed(3)  # the high word counts too
        self.assertNotEqual(list(numpy.random.rand(3)), list(a))

    def test_a_trainers_own_copied_replaces_the_default(self):
        class Own(Walker):
            def copied(self, info):
                self.info = info

        random.seed(7)
        state = random.getstate()
        rc, msgs = converse(Own, [INIT, copied(99, donor=4, donor_step=120)])
        self.assertTrue(msgs[2]["ok"], msgs)
        info = Counter.instances[-1].info
        self.assertEqual((info.donor, info.donor_step, info.seed), (4, 120, 99))
        self.assertEqual(random.getstate(), state, "the default did not run")

        got = []
        rc, msgs = converse(None, [INIT, copied(5)], step=lambda n: None, eval=lambda: 0, save=lambda p: None,
                            load=lambda p: None, copied=got.append)
        self.assertTrue(msgs[2]["ok"], msgs)
        self.assertEqual(got[0].seed, 5)

    def test_an_error_in_copied_comes_back_as_an_error_reply(self):
        class Broken(Walker):
            def copied(self, info):
                raise ValueError("cannot reseed the environment")

        rc, msgs = converse(Broken, [INIT, copied(1)])
        self.assertFalse(msgs[2]["ok"])
        self.assertEqual(msgs[2]["error"], "ValueError: cannot reseed the environment")


NUMPY_TRAINER = """
import json, sys
sys.path.insert(0, %r)
import numpy as np
import pbt_trainer

class T:  # a random walk on NumPy's global generator; the checkpoint holds x only
    def __init__(self, ctx):
        np.random.seed(ctx.seed)
        self.x = 0.0
    def step(self, n):
        self.x += float(np.random.standard_normal(n).sum())
    def eval(self):
        return self.x
    def save(self, p):
        json.dump(self.x, open(p, "w"))
    def load(self, p):
        self.x = json.load(open(p))

sys.exit(pbt_trainer.serve(T))
"""


class RealProcessTest(unittest.TestCase):
    """The module in a child process with real pipes, as the engine runs it."""

    def test_print_in_user_code_goes_to_stderr_not_into_the_protocol(self):
        script = textwrap.dedent("""
            import os, sys
            sys.path.insert(0, %r)
            import pbt_trainer
            class T:
                def step(self, n):
                    print("training", n)           # would corrupt the protocol
                    os.write(1, b"from C code\\n")   # so would a C extension writing to fd 1
                def eval(self): return 0.5
                def save(self, p): pass
                def load(self, p): pass
            sys.exit(pbt_trainer.serve(T))
        """ % os.path.join(ROOT, "python"))
        reqs = [INIT, {"op": "step", "n": 2, "id": 2}, {"op": "eval", "id": 3}, {"op": "shutdown", "id": 4}]
        reqs[0] = dict(INIT, id=1)
        p = subprocess.run([sys.executable, "-c", script], input="".join(json.dumps(r) + "\n" for r in reqs),
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        msgs = [json.loads(l) for l in p.stdout.splitlines()]  # every stdout line is JSON
        self.assertEqual([m.get("id") for m in msgs], [None, 1, 2, 3, 4])
        self.assertIn("training 2", p.stderr)
        self.assertIn("from C code", p.stderr)

    def test_two_members_that_copy_one_donor_diverge_and_one_seed_replays_exactly(self):
        try:
            import numpy  # noqa: F401
        except ImportError:
            self.skipTest("numpy is not installed")
        script = NUMPY_TRAINER % os.path.join(ROOT, "python")

        def last_reply(init_seed, reqs):
            reqs = [dict(INIT, seed=init_seed)] + reqs + [{"op": "shutdown"}]
            lines = "".join(json.dumps(dict(r, id=i + 1)) + "\n" for i, r in enumerate(reqs))
            p = subprocess.run([sys.executable, "-c", script], input=lines, capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            msgs = [json.loads(l) for l in p.stdout.splitlines()]
            self.assertTrue(all(m["ok"] for m in msgs[1:]), msgs)
            return msgs[-2]

        with tempfile.TemporaryDirectory() as d:
            ckpt = os.path.join(d, "donor.ckpt")
            last_reply(1000, [{"op": "step", "n": 10}, {"op": "save", "path": ckpt}])

            # Both copies start alike (same init seed, same checkpoint, same steps): only
            # the seed in `copied` tells them apart.
            def copy(seed):
                return last_reply(7, [{"op": "load", "path": ckpt}, copied(seed, donor=0, donor_step=10),
                                      {"op": "step", "n": 20}, {"op": "eval"}])["score"]

            one, two, one_again = copy(111), copy(222), copy(111)
        self.assertNotEqual(one, two, "two copies of one donor with the same h diverge")
        self.assertEqual(one, one_again, "the same member and seed replay exactly")

    def test_the_stdlib_example_speaks_the_protocol(self):
        reqs = [dict(INIT, id=1), {"op": "apply", "h": {"h0": 1.0, "h1": 0.0}, "id": 2},
                {"op": "step", "n": 10, "id": 3}, {"op": "eval", "id": 4}, {"op": "shutdown", "id": 5}]
        p = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "python", "toy_trainer.py")],
                           input="".join(json.dumps(r) + "\n" for r in reqs), capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        score = json.loads(p.stdout.splitlines()[4])["score"]
        self.assertAlmostEqual(score, 1.2 - (0.9 * 0.9 ** 10) ** 2 - 0.81, places=9)


def member(m, seed):
    return {"op": "member", "member": m, "seed": seed}


def run_child(argv, reqs, env=None):
    """Runs a trainer script with `reqs` on its stdin; returns (hello, replies, stderr)."""
    lines = "".join(json.dumps(dict(r, id=i + 1)) + "\n" for i, r in enumerate(reqs))
    p = subprocess.run(argv, input=lines, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, **(env or {})))
    msgs = [json.loads(l) for l in p.stdout.splitlines()]
    if p.returncode != 0 or not all(m["ok"] for m in msgs[1:]):
        raise AssertionError("trainer failed (%d): %s\n%s" % (p.returncode, msgs, p.stderr))
    return msgs[0], msgs[1:], p.stderr


class MemberSwitchTest(unittest.TestCase):
    """Protocol 1.2: `member` makes the process serve another member, as a new one would."""

    def setUp(self):
        self.saved_env = {k: os.environ.get(k) for k in ("PBT_MEMBER", "PBT_SEED", "PBT_PROTOCOL_MINOR")}
        for k in self.saved_env:
            os.environ.pop(k, None)

    def tearDown(self):
        for k, v in self.saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    def test_by_default_the_trainer_is_built_again_for_the_new_member_and_seed(self):
        closed = []

        class Closing(Counter):
            def close(self):
                closed.append(self.ctx.member)

        Counter.instances.clear()
        rc, msgs = converse(Closing, [INIT, {"op": "step", "n": 4}, member(5, 2 ** 64 - 1),
                                      {"op": "eval"}, {"op": "step", "n": 1}, {"op": "eval"}])
        self.assertEqual(msgs[0]["protocol"], "1.3")
        self.assertTrue(all(m["ok"] for m in msgs[1:]), msgs)
        self.assertEqual(len(Counter.instances), 2, "a new object for the new member")
        old, new = Counter.instances
        self.assertEqual((old.ctx.member, old.ctx.seed), (3, 99))
        self.assertEqual((new.ctx.member, new.ctx.seed), (5, 2 ** 64 - 1))
        self.assertEqual(msgs[4]["score"], 0.0, "nothing of member 3's model is left")
        self.assertEqual(msgs[6]["score"], 1.0)
        self.assertEqual(closed, [3], "the old object is closed")
        self.assertEqual(pbt_trainer.context().member, 5, "context() names the new member")
        self.assertEqual(pbt_trainer.context().seed, 2 ** 64 - 1)

    def test_the_default_switch_reseeds_the_global_generators(self):
        def walk(first_seed):
            random.seed(first_seed)  # the previous member's stream
            rc, msgs = converse(Walker, [INIT, {"op": "step", "n": 3}, member(1, 4242),
                                         {"op": "step", "n": 5}, {"op": "eval"}])
            return msgs[-1]["score"]

        self.assertEqual(walk(1), walk(2), "after a switch, the new member's stream, whatever came before")

    def test_a_trainers_own_switch_member_replaces_the_default(self):
        class InPlace(Counter):
            def switch_member(self, ctx):
                self.ctx = ctx
                self.n = 100

        Counter.instances.clear()
        rc, msgs = converse(InPlace, [INIT, {"op": "step", "n": 4}, member(2, 8), {"op": "eval"}])
        self.assertTrue(all(m["ok"] for m in msgs[1:]), msgs)
        self.assertEqual(len(Counter.instances), 1, "not built again")
        self.assertEqual(Counter.instances[0].ctx.member, 2)
        self.assertEqual(msgs[-1]["score"], 100.0)

    def test_an_instance_or_functions_without_switch_member_say_1_1(self):
        rc, msgs = converse(Counter(pbt_trainer.Context()), [INIT, member(1, 2)])
        self.assertEqual(msgs[0]["protocol"], "1.1", "an instance cannot be rebuilt")
        self.assertFalse(msgs[2]["ok"])
        self.assertIn("unknown op 'member'", msgs[2]["error"])
        fns = dict(step=lambda n: None, eval=lambda: 0.0, save=lambda p: None, load=lambda p: None)
        rc, msgs = converse(None, [INIT], **fns)
        self.assertEqual(msgs[0]["protocol"], "1.1")
        seen = []
        rc, msgs = converse(None, [INIT, member(4, 5)], switch_member=lambda ctx: seen.append(ctx.member), **fns)
        self.assertEqual(msgs[0]["protocol"], "1.3")
        self.assertTrue(msgs[2]["ok"])
        self.assertEqual(seen, [4])

    def test_an_older_minor_version_can_be_stated(self):
        rc, msgs = converse(Counter, [INIT, member(1, 2)], protocol_minor=1)
        self.assertEqual(msgs[0]["protocol"], "1.1")
        self.assertFalse(msgs[2]["ok"], "a 1.1 trainer knows no `member`")
        os.environ["PBT_PROTOCOL_MINOR"] = "0"
        rc, msgs = converse(Counter, [INIT])
        self.assertEqual(msgs[0]["protocol"], "1.0")
        os.environ["PBT_PROTOCOL_MINOR"] = "4"
        with self.assertRaises(ValueError):
            converse(Counter, [INIT])

    def test_a_failed_rebuild_is_an_error_reply_and_leaves_no_half_switched_trainer(self):
        class Picky(Counter):
            def __init__(self, ctx):
                if ctx.member == 6:
                    raise RuntimeError("no GPU for member 6")
                super().__init__(ctx)

        rc, msgs = converse(Picky, [INIT, member(6, 1), {"op": "eval"}])
        self.assertFalse(msgs[2]["ok"])
        self.assertEqual(msgs[2]["error"], "RuntimeError: no GPU for member 6")
        self.assertFalse(msgs[3]["ok"])
        self.assertIn("before init", msgs[3]["error"])

    def test_the_examples_serve_a_new_member_as_a_new_process_would(self):
        """toy_trainer.py and digits.py (when PyTorch and scikit-learn are there): a process
        that served member 0 and then switched to member 1 gives what a new process for
        member 1 gives, and a 1.1 example (PBT_PROTOCOL_MINOR=1) is still what it was."""
        examples = [("toy_trainer.py", {"h0": 1.0, "h1": 0.5})]
        probe = subprocess.run([sys.executable, "-c", "import torch, sklearn"], capture_output=True)
        if probe.returncode == 0:
            examples.append(("digits.py", {"lr": 0.1, "momentum": 0.9}))
        with tempfile.TemporaryDirectory() as d:
            for name, h in examples:
                with self.subTest(name):
                    argv = [sys.executable, os.path.join(ROOT, "examples", "python", name)]
                    ckpt = os.path.join(d, name + ".ckpt")
                    train = [{"op": "apply", "h": h}, {"op": "step", "n": 20}, {"op": "eval"}]
                    init1 = dict(INIT, member=1, seed=1234)
                    # A fresh process for member 1: train, save.
                    hello, fresh, _ = run_child(argv, [init1] + train + [{"op": "save", "path": ckpt}])
                    self.assertEqual(hello["protocol"], "1.3")
                    # One process: member 0 trains, then serves member 1 from scratch ...
                    _, switched, err = run_child(argv, [dict(INIT, member=0, seed=77)] + train +
                                                 [member(1, 1234)] + train)
                    self.assertEqual(switched[-1]["score"], fresh[3]["score"], err)  # member 0's model is gone
                    # ... and continues member 1 from its checkpoint as a new process would.
                    _, after_load, _ = run_child(argv, [dict(INIT, member=0, seed=77)] + train +
                                                 [member(1, 1234), {"op": "load", "path": ckpt}] + train)
                    _, new_proc, _ = run_child(argv, [init1, {"op": "load", "path": ckpt}] + train)
                    self.assertEqual(after_load[-1]["score"], new_proc[-1]["score"])
                    hello, _, _ = run_child(argv, [init1], env={"PBT_PROTOCOL_MINOR": "1"})
                    self.assertEqual(hello["protocol"], "1.1")


class Clamping(Counter):
    """Accepts h its own way (protocol 1.3): batch rounded to a whole number, then the
    minibatch lowered to at most half of it; returns what it put in force."""

    def apply(self, h):
        batch = int(round(h["batch"]))
        minibatch = min(int(h["minibatch"]), batch // 2)
        self.h = dict(h, batch=batch, minibatch=minibatch)
        return self.h


class AcceptedHTest(unittest.TestCase):
    """Protocol 1.3: apply() may return the h it accepted, which goes back in the reply."""

    def setUp(self):
        self.saved = os.environ.pop("PBT_PROTOCOL_MINOR", None)

    def tearDown(self):
        if self.saved is not None:
            os.environ["PBT_PROTOCOL_MINOR"] = self.saved

    def test_a_returned_dict_is_the_replys_h_and_none_sends_nothing(self):
        apply = {"op": "apply", "h": {"batch": 100.4, "minibatch": 64, "lr": 0.1}}
        rc, msgs = converse(Clamping, [INIT, apply])
        self.assertEqual(msgs[0]["protocol"], "1.3")
        self.assertEqual(msgs[2], {"id": 2, "ok": True, "h": {"batch": 100, "minibatch": 50, "lr": 0.1}})
        rc, msgs = converse(Counter, [INIT, apply])
        self.assertEqual(msgs[2], {"id": 2, "ok": True}, "apply() returned None: h as given")

    def test_an_older_minor_version_sends_no_h(self):
        rc, msgs = converse(Clamping, [INIT, {"op": "apply", "h": {"batch": 64, "minibatch": 64}}], protocol_minor=2)
        self.assertEqual(msgs[0]["protocol"], "1.2")
        self.assertEqual(msgs[2], {"id": 2, "ok": True})

    def test_a_returned_h_that_is_no_h_is_an_error_naming_it(self):
        cases = [(["batch"], "apply() must return None or a dict of the hyperparameters it accepted, got 'list'"),
                 ({"fused": True}, "apply() returned True for 'fused': a hyperparameter is a number or a string"),
                 ({"lr": float("nan")}, "apply() returned nan for 'lr': not a finite number"),
                 ({1: 2}, "apply() returned a hyperparameter name that is not a string: 1")]
        for ret, error in cases:
            with self.subTest(ret):
                rc, msgs = converse(None, [INIT, {"op": "apply", "h": {"lr": 0.1}}], apply=lambda h, r=ret: r,
                                    step=lambda n: None, eval=lambda: 0.0, save=lambda p: None, load=lambda p: None,
                                    switch_member=lambda ctx: None)
                self.assertFalse(msgs[2]["ok"])
                self.assertEqual(msgs[2]["error"], "TypeError: " + error)

    def test_over_real_pipes_a_trainer_that_rounds_and_clamps_returns_what_it_accepted(self):
        script = textwrap.dedent("""
            import sys
            sys.path.insert(0, %r)
            import pbt_trainer

            class Trainer:
                def __init__(self):
                    self.h = None
                def apply(self, h):
                    batch = int(round(h["batch"]))
                    self.h = dict(h, batch=batch, minibatch=min(int(h["minibatch"]), batch // 2))
                    return self.h
                def step(self, n):
                    pass
                def eval(self):
                    return {"score": 0.0, "metrics": {"in_force": self.h}}
                def save(self, path):
                    open(path, "w").close()
                def load(self, path):
                    pass

            sys.exit(pbt_trainer.serve(Trainer))
            """ % os.path.join(ROOT, "python"))
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "clamping.py")
            with open(path, "w") as f:
                f.write(script)
            reqs = [INIT, {"op": "apply", "h": {"batch": 129.0, "minibatch": 100, "lr": 0.01}}, {"op": "eval"},
                    {"op": "apply", "h": {"batch": 256, "minibatch": 8, "lr": 0.02}}, {"op": "shutdown"}]
            hello, replies, _ = run_child([sys.executable, path], reqs)
        self.assertEqual(hello["protocol"], "1.3")
        self.assertEqual(replies[1]["h"], {"batch": 129, "minibatch": 64, "lr": 0.01})
        self.assertIsInstance(replies[1]["h"]["batch"], int, "sent as a JSON integer")
        self.assertEqual(replies[2]["metrics"]["in_force"], replies[1]["h"])
        self.assertEqual(replies[3]["h"], {"batch": 256, "minibatch": 8, "lr": 0.02}, "kept as given")


if __name__ == "__main__":
    unittest.main()
