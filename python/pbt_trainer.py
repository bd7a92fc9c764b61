"""Make a Python training script a member of a pbt population.

Standard library only. The engine (``[trainable] kind = "process"``) starts your script
as a child process and drives it over the line-delimited JSON protocol described in
docs/protocol.md (version 1.3). You write the training, this module speaks the protocol::

    import pbt_trainer

    class Trainer:
        def __init__(self, ctx):            # ctx.member, ctx.seed (optional argument)
            ...
        def apply(self, h):                 # optional: h = {"lr": 0.01, ...}, set in place;
            ...                             # may return the h it accepted (see below)
        def step(self, n):                  # train n steps under the last h
            ...
        def eval(self):                     # higher is better: a number, or a dict
            return {"score": acc, "metrics": {"loss": loss}}
        def save(self, path):               # write the whole training state to this file
            ...
        def load(self, path):               # read it back
            ...
        def copied(self, info):             # optional: see below
            ...

    if __name__ == "__main__":
        pbt_trainer.serve(Trainer)

``serve`` also takes an instance, or plain functions: ``serve(step=f, eval=g, save=s,
load=l, apply=a)``. An exception in your code is reported to the engine with its
traceback (the interval fails and is retried from the last published checkpoint); it
is never swallowed. While ``serve`` runs, anything your code prints to stdout goes to
stderr (the member's log), so a stray ``print`` cannot break the protocol.

A copy is a new member (protocol 1.1): when an exploit gives this member another member's
checkpoint, the engine sends ``copied`` right after the ``load``, with a fresh seed for
this member. By default the module then reseeds the global generators from it (``reseed``:
Python's ``random``, and NumPy's and PyTorch's when already imported), so that two members
that copy one donor do not replay the donor's random stream in lockstep. A trainer with
generators of its own (a ``torch.Generator``, a ``numpy.random.Generator``, an
environment) defines ``copied(self, info)`` (``info.donor``, ``info.donor_step``,
``info.seed``) instead; it replaces the default, and may call ``reseed(info.seed)`` too.

One process serves many members (protocol 1.2): when a worker has more members than it
runs at once, the engine tells the trainer to serve another member (``member``) instead of
starting a new process. By default the module then does what a new process would: it calls
the old object's ``close()`` (if any), reseeds the global generators from the new member's
seed (``reseed``) and builds the trainer class again with the new ``Context``; the engine
then loads that member's checkpoint, if it has one. A trainer may define
``switch_member(self, ctx)`` instead (it replaces the default: the object itself must then
become ``ctx.member``'s, as if newly built). A trainer given as an instance, a module or
functions cannot be rebuilt: without a ``switch_member`` it says protocol 1.1 and is
restarted for every other member, as before. ``PBT_PROTOCOL_MINOR=1`` in the environment
(or ``serve(..., protocol_minor=1)``) makes any trainer say 1.1, e.g. to compare the two.

Saves written front to back (``sequential_save``): a trainer whose ``save`` writes its file
from the first byte to the last, never seeking back to rewrite a byte, may say so with a
class attribute ``sequential_save = True`` (or ``serve(..., sequential_save=True)``). The
engine then hashes the file while it is being written instead of after, which takes about
a second per GB off every save. ``torch.save``, ``pickle.dump`` and ``numpy.save`` write
front to back; ``numpy.savez`` and anything else built on ``zipfile`` seek back (a file
rewritten after the engine read it is caught as a corrupt checkpoint when it is loaded).

A trainer may change what it is given (protocol 1.3): ``apply(h)`` returns a dict, the
hyperparameters it actually put in force (rounded, clamped, or made to obey a rule between
two, e.g. ``batch >= 2 * minibatch``), every hyperparameter of ``h`` with a number or a
string. The module sends it back in the reply and the engine records it as the member's h
(published, in the events, in ``pbt status``/``best``) after checking it against
``[space]``: a name that is missing or unknown, a wrong type (an int must be an integer)
or a value outside the bounds fails the interval with a message naming it. ``None`` (no
return) means h as given, as before 1.3. A trainer that states an older minor version
sends no h.

``run_locally`` drives the same trainer without the engine (one training run at fixed
hyperparameters): for debugging, and for baselines that train one configuration.
"""

import inspect
import json
import math
import os
import sys
import traceback

PROTOCOL = "1.3"
PROTOCOL_MAJOR = 1
PROTOCOL_MINOR = 3
SWITCH_SINCE_MINOR = 2  # the minor version from which the engine sends `member`
ACCEPTED_SINCE_MINOR = 3  # the minor version from which an apply reply may carry "h"

__all__ = ["Context", "Copied", "ProtocolError", "context", "reseed", "serve", "run_locally", "PROTOCOL"]


class ProtocolError(Exception):
    """The engine sent something this module cannot follow."""


class Context:
    """What the engine tells a trainer about itself: its member id and seed.

    Available before ``init`` too, from the environment the engine sets (PBT_MEMBER,
    PBT_SEED); outside the engine both are 0.
    """

    def __init__(self, member=0, seed=0):
        self.member = member
        self.seed = seed

    def __repr__(self):
        return "Context(member=%r, seed=%r)" % (self.member, self.seed)


class Copied:
    """What ``copied`` tells a trainer: the checkpoint it just loaded was member ``donor``'s,
    published at ``donor_step``; from now on it is this member's model, and draws its
    randomness from ``seed`` (an unsigned 64-bit int, the same on every replay)."""

    def __init__(self, donor, donor_step, seed):
        self.donor = donor
        self.donor_step = donor_step
        self.seed = seed

    def __repr__(self):
        return "Copied(donor=%r, donor_step=%r, seed=%r)" % (self.donor, self.donor_step, self.seed)


def reseed(seed):
    """Seeds the process's global generators from ``seed`` (any non-negative int): Python's
    ``random``; NumPy's legacy global generator (``numpy.random.seed``) and PyTorch's
    (``torch.manual_seed``: CPU and every GPU), each only if the trainer already imported
    it (one imported later starts from fresh OS entropy anyway, and importing it here
    would cost seconds). Generators the trainer owns are its own to reseed. Returns the
    names of what was seeded."""
    import random
    seed = int(seed) & 0xFFFFFFFFFFFFFFFF
    random.seed(seed)
    seeded = ["random"]
    np = sys.modules.get("numpy")
    if np is not None and hasattr(np, "random"):
        np.random.seed([seed & 0xFFFFFFFF, seed >> 32])  # it takes 32-bit words
        seeded.append("numpy")
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "manual_seed"):
        torch.manual_seed(seed)
        seeded.append("torch")
    return seeded


def context():
    """The member and seed from the environment the engine started this process with."""
    return Context(int(os.environ.get("PBT_MEMBER", "0")), int(os.environ.get("PBT_SEED", "0")))


def _jsonable(x):
    """A value ready for json.dumps: non-finite floats become "NaN"/"Infinity"/"-Infinity"
    (JSON has no such numbers), numpy/torch scalars become Python numbers."""
    if isinstance(x, bool) or x is None or isinstance(x, str):
        return x
    if isinstance(x, int):
        return x
    if isinstance(x, float):
        if math.isnan(x):
            return "NaN"
        if math.isinf(x):
            return "Infinity" if x > 0 else "-Infinity"
        return x
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    item = getattr(x, "item", None)  # numpy / torch scalars
    if callable(item):
        try:
            return _jsonable(item())
        except Exception:
            pass
    tolist = getattr(x, "tolist", None)  # small arrays
    if callable(tolist):
        return _jsonable(tolist())
    try:
        return _jsonable(float(x))
    except Exception:
        return str(x)


def _number(x, what):
    if isinstance(x, bool):
        raise TypeError("%s must be a number, got a bool" % what)
    item = getattr(x, "item", None)
    if callable(item) and not isinstance(x, (int, float)):
        x = item()
    try:
        return float(x)
    except (TypeError, ValueError):
        raise TypeError("%s must be a number, got %r" % (what, x)) from None


def _accepted_h(h):
    """What apply() returned -> the reply's "h": names to numbers or strings (protocol 1.3)."""
    if not isinstance(h, dict):
        raise TypeError("apply() must return None or a dict of the hyperparameters it accepted, got %r"
                        % type(h).__name__)
    out = {}
    for k, v in h.items():
        if not isinstance(k, str):
            raise TypeError("apply() returned a hyperparameter name that is not a string: %r" % (k,))
        item = getattr(v, "item", None)  # numpy / torch scalars
        if callable(item) and not isinstance(v, (int, float, str)):
            v = item()
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            raise TypeError("apply() returned %r for %r: a hyperparameter is a number or a string" % (v, k))
        if isinstance(v, float) and not math.isfinite(v):
            raise TypeError("apply() returned %r for %r: not a finite number" % (v, k))
        out[k] = v
    return out


def _eval_result(r):
    """What eval() returned -> the reply fields: score, samples, metrics."""
    out = {}
    if isinstance(r, dict):
        if "score" not in r:
            raise TypeError("eval() returned a dict without 'score': %r" % sorted(r))
        unknown = set(r) - {"score", "samples", "metrics"}
        if unknown:
            raise TypeError("eval() returned unknown keys %r (allowed: score, samples, metrics)" % sorted(unknown))
        out["score"] = _number(r["score"], "eval()['score']")
        if r.get("samples") is not None:
            out["samples"] = [_number(v, "a sample") for v in r["samples"]]
        if r.get("metrics") is not None:
            if not isinstance(r["metrics"], dict):
                raise TypeError("eval()['metrics'] must be a dict, got %r" % type(r["metrics"]).__name__)
            out["metrics"] = r["metrics"]
    elif isinstance(r, tuple) and len(r) == 2 and isinstance(r[1], dict):
        out["score"] = _number(r[0], "eval()[0]")
        out["metrics"] = r[1]
    else:
        out["score"] = _number(r, "eval()")
    return _jsonable(out)


class _Functions:
    def __init__(self, apply, step, eval, save, load, copied=None, switch_member=None):
        self.apply, self.step, self.eval, self.save, self.load = apply, step, eval, save, load
        self.copied = copied
        self.switch_member = switch_member


def _announced_minor(requested):
    """The minor version to state: ``requested`` (serve's argument), else PBT_PROTOCOL_MINOR,
    else this module's; never more than this module speaks."""
    if requested is None:
        env = os.environ.get("PBT_PROTOCOL_MINOR", "").strip()
        if env:
            try:
                requested = int(env)
            except ValueError:
                raise ValueError("PBT_PROTOCOL_MINOR must be an integer (e.g. 1), got %r" % env) from None
        else:
            requested = PROTOCOL_MINOR
    requested = int(requested)
    if requested < 0 or requested > PROTOCOL_MINOR:
        raise ValueError("protocol minor version must be in 0..%d, got %d" % (PROTOCOL_MINOR, requested))
    return requested


def _accepts_argument(cls):
    """Whether a trainer class wants the Context: its constructor has a positional
    parameter without a default (optional parameters are left to their defaults)."""
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):
        return False
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
               for p in sig.parameters.values())


def _method(obj, *names, required=True):
    for n in names:
        m = getattr(obj, n, None)
        if m is not None:
            if not callable(m):
                raise TypeError("%s.%s is not callable" % (type(obj).__name__, n))
            return m
    if required:
        raise TypeError("the trainer has no %s() method" % names[0])
    return None


class _Server:
    def __init__(self, trainer, functions, name, inp, out, minor=PROTOCOL_MINOR, sequential_save=None):
        self.spec = trainer
        if sequential_save is None:
            sequential_save = getattr(trainer, "sequential_save", False) if trainer is not None else False
        if not isinstance(sequential_save, bool):
            raise TypeError("sequential_save must be True or False, got %r" % (sequential_save,))
        self.sequential_save = sequential_save
        self.functions = functions
        self.name = name
        self.inp = inp
        self.out = out
        self.obj = None
        self.methods = None
        if trainer is not None and not inspect.isclass(trainer):
            self._bind(trainer)  # an instance (or a module): check it now, before the hello
        elif trainer is None:
            self._bind(_Functions(**functions))
        # A class is built again for another member; an instance, a module or functions only
        # switch with a switch_member of their own: without one, say 1.1 (restarted instead).
        rebuildable = inspect.isclass(trainer) or (self.methods is not None and
                                                   self.methods["switch_member"] is not None)
        if minor >= SWITCH_SINCE_MINOR and not rebuildable:
            minor = SWITCH_SINCE_MINOR - 1
        self.minor = minor
        self.protocol = "%d.%d" % (PROTOCOL_MAJOR, minor)

    def _bind(self, obj):
        self.obj = obj
        self.methods = {
            "apply": _method(obj, "apply", "set_hyperparameters", required=False),
            "step": _method(obj, "step"),
            "eval": _method(obj, "eval", "evaluate"),
            "save": _method(obj, "save"),
            "load": _method(obj, "load"),
            "copied": _method(obj, "copied", required=False),
            "switch_member": _method(obj, "switch_member", required=False),
        }

    def _build(self, ctx):
        self._bind(self.spec(ctx) if _accepts_argument(self.spec) else self.spec())

    def _switch(self, ctx):
        """Serve ctx.member from now on, as a new process would (see the module's docs)."""
        os.environ["PBT_MEMBER"] = str(ctx.member)  # context() tells the new member too
        os.environ["PBT_SEED"] = str(ctx.seed)
        if self.methods["switch_member"] is not None:
            self.methods["switch_member"](ctx)
            return
        old = self.obj
        self.obj = self.methods = None  # a failed rebuild leaves no half-switched trainer
        close = getattr(old, "close", None)
        if callable(close):
            close()
        del old, close
        reseed(ctx.seed)
        self._build(ctx)

    def send(self, msg):
        data = json.dumps(msg, allow_nan=False, separators=(",", ":")) + "\n"
        self.out.write(data.encode("utf-8"))
        self.out.flush()

    def handle(self, req):
        op = req.get("op")
        if op == "init":
            ctx = Context(int(req.get("member", 0)), int(req.get("seed", 0)))
            if self.obj is None:  # a class: built now, with the context when it takes one
                self._build(ctx)
            return {}
        if self.methods is None:
            raise ProtocolError("%r before init" % op)
        if op == "member" and self.minor >= SWITCH_SINCE_MINOR:
            self._switch(Context(int(req["member"]), int(req["seed"])))
            return {}
        if op == "apply":
            if self.methods["apply"] is not None:
                accepted = self.methods["apply"](dict(req.get("h", {})))
                if accepted is not None and self.minor >= ACCEPTED_SINCE_MINOR:
                    return {"h": _accepted_h(accepted)}
            return {}
        if op == "step":
            n = req.get("n")
            if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                raise ProtocolError("step needs a non-negative integer n, got %r" % (n,))
            self.methods["step"](n)
            return {}
        if op == "eval":
            return _eval_result(self.methods["eval"]())
        if op == "save":
            self.methods["save"](req["path"])
            return {}
        if op == "load":
            self.methods["load"](req["path"])
            return {}
        if op == "copied":
            info = Copied(int(req["donor"]), int(req["donor_step"]), int(req["seed"]))
            if self.methods["copied"] is not None:
                self.methods["copied"](info)
            else:
                reseed(info.seed)
            return {}
        raise ProtocolError("unknown op %r (this trainer speaks protocol %s)" % (op, self.protocol))

    def run(self):
        hello = {"hello": self.name, "protocol": self.protocol, "pid": os.getpid()}
        if self.sequential_save:
            hello["sequential_save"] = True
        self.send(hello)
        while True:
            line = self.inp.readline()
            if not line:
                return 0  # the engine went away: nothing more to do
            line = line.strip()
            if not line:
                continue
            try:
                req = json.loads(line)
                if not isinstance(req, dict):
                    raise ValueError("not a JSON object")
            except ValueError as e:
                self.send({"id": None, "ok": False, "error": "ProtocolError: unreadable request: %s" % e})
                continue
            rid = req.get("id")
            if req.get("op") == "shutdown":
                close = getattr(self.obj, "close", None) if self.obj is not None else None
                try:
                    if callable(close):
                        close()
                finally:
                    self.send({"id": rid, "ok": True})
                return 0
            try:
                result = self.handle(req)
            except Exception as e:  # the user's error: to the engine, with its traceback
                self.send({"id": rid, "ok": False,
                           "error": "%s: %s" % (type(e).__name__, e),
                           "traceback": traceback.format_exc()})
                continue
            reply = {"id": rid, "ok": True}
            reply.update(result)
            self.send(reply)


def serve(trainer=None, *, apply=None, step=None, eval=None, save=None, load=None, copied=None,
          switch_member=None, name=None, stdin=None, stdout=None, protocol_minor=None, sequential_save=None):
    """Serve the pbt process protocol until the engine says shutdown (or goes away).

    ``trainer`` is a class (built at init; given a Context when its constructor has a
    required positional parameter), an instance, or None with the functions given as keywords. ``stdin`` and
    ``stdout`` (binary streams) default to the process's own; then the real stdout is
    kept for the protocol and file descriptor 1 is pointed at stderr, so output from
    print() or from C extensions lands in the log instead of corrupting the protocol.
    ``protocol_minor`` (default: $PBT_PROTOCOL_MINOR, else 3) is the minor version the hello
    states: 2 sends no accepted h (an apply's return value is dropped), 1 makes the engine restart this trainer for every other member instead of
    sending ``member`` (1.2), 0 leaves out ``copied`` too. ``sequential_save`` (default: the
    trainer's attribute of that name, else False) tells the engine that ``save`` writes its file
    front to back, so it may hash the file while it grows (see the module's docs).
    Returns 0 (the exit status to use).
    """
    minor = _announced_minor(protocol_minor)
    if trainer is None:
        missing = [k for k, f in (("step", step), ("eval", eval), ("save", save), ("load", load)) if f is None]
        if missing:
            raise TypeError("serve() needs a trainer, or the functions %s" % ", ".join(missing))
        functions = dict(apply=apply, step=step, eval=eval, save=save, load=load, copied=copied,
                         switch_member=switch_member)
    else:
        if any(f is not None for f in (apply, step, eval, save, load, copied, switch_member)):
            raise TypeError("serve() takes a trainer or functions, not both")
        functions = None
    if name is None:
        name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
    if stdin is None:
        stdin = sys.stdin.buffer
    if stdout is None:
        sys.stdout.flush()
        stdout = os.fdopen(os.dup(1), "wb")
        os.dup2(2, 1)  # fd 1 is stderr from now on
        sys.stdout = sys.stderr
    return _Server(trainer, functions, name, stdin, stdout, minor, sequential_save).run()


def run_locally(trainer, h, steps, eval_every=0, ctx=None):
    """Train one configuration without the engine: apply(h), then step/eval until
    ``steps``; eval every ``eval_every`` steps (0: once, at the end). Returns the list
    of (step, result) with the eval results as serve() would send them."""
    if ctx is None:
        ctx = Context()
    if inspect.isclass(trainer):
        trainer = trainer(ctx) if _accepts_argument(trainer) else trainer()
    apply_fn = _method(trainer, "apply", "set_hyperparameters", required=False)
    step_fn = _method(trainer, "step")
    eval_fn = _method(trainer, "eval", "evaluate")
    if apply_fn is not None:
        apply_fn(dict(h))
    results = []
    done = 0
    chunk = eval_every if eval_every > 0 else steps
    while done < steps:
        n = min(chunk, steps - done)
        step_fn(n)
        done += n
        results.append((done, _eval_result(eval_fn())))
    if not results:
        results.append((0, _eval_result(eval_fn())))
    return results
