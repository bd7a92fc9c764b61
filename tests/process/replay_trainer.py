#!/usr/bin/env python3
"""Replays one fuzzed protocol line for tests/e2e/process_fuzz_test.cpp.

usage: replay_trainer.py CASES_FILE INDEX ROLE
CASES_FILE holds records "<length>\\n<bytes>\\n"; ROLE is "hello" (the record is the
hello) or "eval" (a proper hello, then the record is the reply to the first eval).
Every other request gets a plain ok; shutdown or end of input ends it."""
import json
import sys

path, index, role = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(path, "rb") as f:
    data = f.read()
at = 0
for i in range(index + 1):
    nl = data.index(b"\n", at)
    n = int(data[at:nl])
    record = data[nl + 1:nl + 1 + n]
    at = nl + 1 + n + 1

out = sys.stdout.buffer


def send(raw):
    out.write(raw + b"\n")
    out.flush()


send(record if role == "hello" else b'{"hello": "replay", "protocol": "1.0"}')
for line in sys.stdin:
    try:
        req = json.loads(line)
    except ValueError:
        break
    if req.get("op") == "eval" and role == "eval":
        send(record)
        role = "done"
        continue
    send(json.dumps({"id": req.get("id"), "ok": True}).encode())
    if req.get("op") == "shutdown":
        break
