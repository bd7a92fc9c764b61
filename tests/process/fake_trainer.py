#!/usr/bin/env python3
"""A trainer for the tests of the process protocol, written against docs/protocol.md
directly (not through python/pbt_trainer.py), standard library only, with ways to
misbehave on purpose.

The model: one number theta, trained towards 0 by theta -= rate * theta per step;
score = 1 - theta**2; hyperparameter "rate".

--mode (what goes wrong, for member --bad-member only (-1: every member), once the
trainer's step count reached --bad-after):
  ok          nothing
  crash       dies of SIGSEGV in the middle of step
  hang        sleeps for ever in step (after starting a grandchild that sleeps too)
  garbage     answers step with binary garbage on stdout
  not_json    answers step with a line of plain text
  exit        exits at once when started (from its --after-starts-th start on)
  nan         eval returns NaN
  empty_save  save replies ok but writes nothing
  error       step raises an exception (reported with its traceback)
  version     says hello with protocol version 2.0
  noop        step does nothing at all (for the protocol cost benchmark)
  exit_holding  step forks `sleep 1000` that holds its stdout, then exits with code 1
  deep        eval returns metrics nested --depth deep
  big_error   step fails with a two-line error message and a 4.4 MB traceback
  bad_switch  `member` (1.2) to member --bad-member replies with an error, once
              (the first time; counted in STATE_DIR/bad-switches)

--spawn: the first step starts descendants that try to outlive the trainer: a `sleep`
in its process group, one that calls setsid(), and a double-forked daemon in a session
of its own; their pids go to STATE_DIR/descendants-MEMBER-START, one a line, and the
line "complete" follows once all three are running.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time
import traceback

p = argparse.ArgumentParser()
p.add_argument("--mode", default="ok")
p.add_argument("--bad-member", type=int, default=-1)
p.add_argument("--bad-after", type=int, default=0)
p.add_argument("--after-starts", type=int, default=1, help="exit mode: starts that still work")
p.add_argument("--state-dir", default="", help="where starts are counted and pids written")
p.add_argument("--echo", default="", help="append argv and every h received to this file (JSON lines)")
p.add_argument("--step-ms", type=float, default=0.0, help="sleep this long per step")
p.add_argument("--spawn", action="store_true", help="the first step starts descendants (see above)")
p.add_argument("--depth", type=int, default=100000, help="deep mode: how deep")
p.add_argument("--protocol", default="1.0", help="the version the hello states; from 1.1 on, `copied` is "
               "answered (and echoed), from 1.2 on `member`; before, each is an unknown op")
p.add_argument("--pid-log", default="", help="append this process's pid to this file at start, one a line")
p.add_argument("--seeded", action="store_true",
               help="theta starts at a value drawn from the member's seed, and the model keeps a running "
               "digest of its history (member at start, every step's rate and n) reported by eval")
p.add_argument("--hello-extra", default="{}", help="a JSON object of fields added to the hello")
args, rest = p.parse_known_args()

member = int(os.environ.get("PBT_MEMBER", "-1"))
bad = args.bad_member < 0 or args.bad_member == member
out = sys.stdout
minor = int(args.protocol.split(".")[1]) if "." in args.protocol else 0


def log(msg):
    sys.stderr.write("fake[%d]: %s\n" % (member, msg))
    sys.stderr.flush()


def send(obj):
    out.write(json.dumps(obj) + "\n")
    out.flush()


def spawn_descendants():
    pids = []
    pids.append(subprocess.Popen(["sleep", "1000"]).pid)  # in the trainer's process group
    pids.append(subprocess.Popen(["sleep", "1000"], start_new_session=True).pid)  # setsid()
    r, w = os.pipe()
    first = os.fork()
    if first == 0:  # the classic daemon: fork, setsid, fork, the middle one exits
        os.close(r)
        os.setsid()
        second = os.fork()
        if second == 0:
            os.write(w, b"%d\n" % os.getpid())
            os.close(w)
            os.execvp("sleep", ["sleep", "1000"])
        os._exit(0)
    os.close(w)
    pids.append(int(os.read(r, 64).decode().strip()))
    os.close(r)
    os.waitpid(first, 0)
    with open(os.path.join(args.state_dir, "descendants-%d-%d" % (member, starts)), "w") as f:
        f.write("".join("%d\n" % pid for pid in pids) + "complete\n")
    log("started descendants %s" % pids)


def echo(obj):
    if args.echo:
        with open(args.echo, "a") as f:
            f.write(json.dumps(obj) + "\n")


echo({"argv": sys.argv, "member": member})

if args.state_dir:
    os.makedirs(args.state_dir, exist_ok=True)
    counter = os.path.join(args.state_dir, "starts-%d" % member)
    starts = int(open(counter).read()) + 1 if os.path.exists(counter) else 1
    with open(counter, "w") as f:
        f.write(str(starts))
    with open(os.path.join(args.state_dir, "pid-%d-%d" % (member, starts)), "w") as f:
        f.write(str(os.getpid()))
else:
    starts = 1

if args.mode == "exit" and bad and starts > args.after_starts:
    log("exiting at once (start %d)" % starts)
    sys.exit(3)

if args.pid_log:
    with open(args.pid_log, "a") as f:
        f.write("%d\n" % os.getpid())


def fresh(seed):
    """The model of a new member: (theta, steps, rate, digest), as init builds it."""
    if not args.seeded:
        return 0.9, 0, 0.1, 0
    return 0.5 + (seed % 1000) / 2000.0, 0, 0.1, seed % 1000003


def mix(digest, *values):
    """A digest of the model's history: every member's differs, and so does every order."""
    for v in values:
        digest = (digest * 1000003 + int(round(v * 1e6))) % (1 << 61)
    return digest


theta, steps, rate, digest = 0.9, 0, 0.1, 0
hello = {"hello": "fake_trainer", "protocol": "2.0" if args.mode == "version" and bad else args.protocol}
hello.update(json.loads(args.hello_extra))
send(hello)
log("started, pid %d, start %d" % (os.getpid(), starts))

for line in sys.stdin:
    req = json.loads(line)
    rid, op = req["id"], req["op"]
    # step misbehaves from --bad-after on; eval and save only after a step past it, so
    # the interval that reaches --bad-after is still published
    triggered = bad and steps >= args.bad_after
    triggered_after = bad and steps > args.bad_after
    if op == "init":
        theta, steps, rate, digest = fresh(int(req["seed"]))
        send({"id": rid, "ok": True})
    elif op == "member" and minor >= 2:
        new_member = int(req["member"])
        echo({"member_op": {"from": member, "to": new_member, "seed": req["seed"]}})
        if args.mode == "bad_switch" and new_member == args.bad_member and args.state_dir:
            counter = os.path.join(args.state_dir, "bad-switches")
            n = int(open(counter).read()) + 1 if os.path.exists(counter) else 1
            if n == 1:
                with open(counter, "w") as f:
                    f.write(str(n))
                log("refusing to serve member %d" % new_member)
                send({"id": rid, "ok": False, "error": "RuntimeError: cannot serve member %d" % new_member})
                continue
        member, was = new_member, member
        log("now serving member %d (was %d)" % (member, was))
        bad = args.bad_member < 0 or args.bad_member == member
        theta, steps, rate, digest = fresh(int(req["seed"]))
        send({"id": rid, "ok": True})
    elif op == "apply":
        echo({"h": req["h"]})
        rate = float(req["h"].get("rate", rate))
        send({"id": rid, "ok": True})
    elif op == "step":
        n = req["n"]
        if args.mode == "noop":
            send({"id": rid, "ok": True})
            continue
        if args.spawn and steps == 0:
            spawn_descendants()
        if triggered and args.mode == "exit_holding":
            subprocess.Popen(["sleep", "1000"])  # inherits stdout, and holds it
            log("exiting with code 1 while a child holds stdout")
            os._exit(1)
        if triggered and args.mode == "crash":
            log("about to crash in step at step %d" % steps)
            os.kill(os.getpid(), signal.SIGSEGV)
        if triggered and args.mode == "hang":
            helper = subprocess.Popen(["sleep", "1000"])
            if args.state_dir:
                with open(os.path.join(args.state_dir, "grandchild-%d-%d" % (member, starts)), "w") as f:
                    f.write(str(helper.pid))
            log("hanging in step at step %d (helper pid %d)" % (steps, helper.pid))
            while True:
                time.sleep(1000)
        if triggered and args.mode == "garbage":
            log("writing garbage")
            sys.stdout.buffer.write(b"\x00\xff\xfe garbage \x89PNG\r\n")
            sys.stdout.flush()
            continue
        if triggered and args.mode == "not_json":
            log("writing plain text")
            out.write("step done, loss=0.25\n")
            out.flush()
            continue
        if triggered and args.mode == "error":
            try:
                raise ValueError("the learning rate exploded at step %d" % steps)
            except ValueError as e:
                send({"id": rid, "ok": False, "error": "ValueError: %s" % e, "traceback": traceback.format_exc()})
            continue
        if triggered and args.mode == "big_error":
            frames = "".join('  File "deep.py", line %d, in f%d\n    return f%d(x)\n' % (i, i, i + 1)
                             for i in range(60000))
            send({"id": rid, "ok": False, "error": "RecursionError: too deep\nsecond line " + "y" * 100000,
                  "traceback": "Traceback (most recent call last):\n" + frames + "RecursionError: the innermost\n"})
            continue
        if args.step_ms > 0:
            time.sleep(args.step_ms * n / 1000.0)
        for _ in range(n):
            theta -= rate * theta
        steps += n
        if args.seeded:
            digest = mix(digest, rate, n)
        send({"id": rid, "ok": True})
    elif op == "eval":
        if triggered_after and args.mode == "nan":
            log("returning NaN")
            send({"id": rid, "ok": True, "score": "NaN"})
            continue
        if triggered_after and args.mode == "deep":
            log("returning metrics nested %d deep" % args.depth)
            out.write('{"id": %d, "ok": true, "score": 0.5, "metrics": {"x": %s1%s}}\n'
                      % (rid, "[" * args.depth, "]" * args.depth))
            out.flush()
            continue
        metrics = {"theta": theta, "steps": steps}
        if args.seeded:
            metrics["digest"] = digest
        send({"id": rid, "ok": True, "score": 1.0 - theta * theta, "metrics": metrics})
    elif op == "save":
        if triggered_after and args.mode == "empty_save":
            log("not writing the checkpoint")
            send({"id": rid, "ok": True})
            continue
        with open(req["path"], "w") as f:
            json.dump({"theta": theta, "steps": steps, "digest": digest}, f)
        send({"id": rid, "ok": True})
    elif op == "load":
        with open(req["path"]) as f:  # read-only: it may be a link to the store's own file
            s = json.load(f)
        theta, steps, digest = s["theta"], s["steps"], s.get("digest", 0)
        log("loaded a checkpoint at steps=%d" % steps)
        send({"id": rid, "ok": True})
    elif op == "copied" and args.protocol != "1.0":
        echo({"copied": {k: req[k] for k in ("donor", "donor_step", "seed")}})
        send({"id": rid, "ok": True})
    elif op == "shutdown":
        send({"id": rid, "ok": True})
        log("shutting down")
        break
    else:
        send({"id": rid, "ok": False, "error": "unknown op %r" % op})
