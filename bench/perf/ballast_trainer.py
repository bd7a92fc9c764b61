#!/usr/bin/env python3
"""A trainer whose model is BALLAST_BYTES bytes and nothing else, through python/pbt_trainer.py:
what saving and loading a large checkpoint costs through the process protocol
(bench/perf/checkpoints.cpp).

save writes the bytes to the path it is given in 1 MiB chunks, never holding them whole:
chunk i is a random block drawn once from BALLAST_SEED with its first 16 bytes replaced by
(seed, i), so every chunk differs. load reads the file in 1 MiB chunks and checks its size
and each chunk's first 16 bytes. With BALLAST_TIMES set, each save and load appends
"save SECONDS" or "load SECONDS" to that file: the trainer's own share of the time."""
import os
import random
import struct
import sys
import time

sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import pbt_trainer  # noqa: E402

CHUNK = 1 << 20
SIZE = int(os.environ.get("BALLAST_BYTES", "16"))
SEED = int(os.environ.get("BALLAST_SEED", "0"))
TIMES = os.environ.get("BALLAST_TIMES", "")
SEQUENTIAL = os.environ.get("BALLAST_SEQUENTIAL", "0") == "1"


def note(what, seconds):
    if TIMES:
        with open(TIMES, "a") as f:
            f.write("%s %.9f\n" % (what, seconds))


class Ballast:
    sequential_save = SEQUENTIAL  # save writes front to back: with it, the engine hashes as it writes

    def __init__(self):
        self.block = bytearray(random.Random(SEED).randbytes(CHUNK))

    def step(self, n):
        pass

    def eval(self):
        return 0.0

    def save(self, path):
        t0 = time.perf_counter()
        view = memoryview(self.block)
        with open(path, "wb") as f:
            i = 0
            for offset in range(0, SIZE, CHUNK):
                n = min(CHUNK, SIZE - offset)
                self.block[0:16] = struct.pack("<QQ", SEED, i)
                f.write(view[:n])
                i += 1
        note("save", time.perf_counter() - t0)

    def load(self, path):
        t0 = time.perf_counter()
        buf = bytearray(CHUNK)
        got = 0
        i = 0
        with open(path, "rb", buffering=0) as f:
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                # A short read mid-file would shift the chunk boundaries: read up to a whole chunk.
                while n < CHUNK and got + n < SIZE:
                    m = f.readinto(memoryview(buf)[n:])
                    if not m:
                        break
                    n += m
                if n >= 16 and bytes(buf[0:16]) != struct.pack("<QQ", SEED, i):
                    raise ValueError("chunk %d of %s is not the one saved" % (i, path))
                got += n
                i += 1
        if got != SIZE:
            raise ValueError("%s holds %d bytes, not %d" % (path, got, SIZE))
        note("load", time.perf_counter() - t0)


if __name__ == "__main__":
    sys.exit(pbt_trainer.serve(Ballast))
