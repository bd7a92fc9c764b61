#!/usr/bin/python3
"""The short-horizon bias of the noisy quadratic model in closed form (docs/nqm.md).

Expected loss E[L] = ½ Σ hᵢ (E[θᵢ]² + Var θᵢ) of plain SGD (no momentum) on the nqm trainable,
exact per interval: over k steps at lr η, with a = 1 − η hᵢ and gradient noise variance
σᵢ² = noise · hᵢ / batch, E[θᵢ] ← aᵏ E[θᵢ] and Var θᵢ ← a²ᵏ Var θᵢ + η² σᵢ² (1 − a²ᵏ) / (1 − a²).

Schedules compared at the budget, lr on a log grid:
  - fixed: one lr for the whole budget (what random search and TPE can find);
  - greedy: each interval, the lr of the grid that gives the lowest expected loss at the
    interval's end (selection over one interval with exact scores, the horizon PBT sees);
  - local greedy: the same, but the lr can only move by explore's factors (x0.8 / x1.25) or
    stay, from the lr greedy takes in the first interval (PBT's perturbation rate);
  - two-phase: the best schedule lr1 until step s, then lr2 (s on interval ends).

And what selection has to see: along the best fixed lr's path, the expected gain over one
interval of lr x 0.8 against lr (what a perturbed copy shows), next to the noise of the score
(the sd of minus the eval minibatch loss, eval_batch examples: docs/nqm.md).

No third-party modules (Debian's python3 alone):
    /usr/bin/python3 bench/paper/nqm_horizon.py --dim 100 --spectrum power --steps 2000 --interval 20
"""
import argparse
import math


def curvatures(a):
    h = []
    for i in range(a.dim):
        if a.spectrum == "power":
            h.append(a.h_max * (i + 1) ** -a.power)
        else:
            f = 0.0 if a.dim == 1 else i / (a.dim - 1)
            h.append(a.h_max * (a.h_min / a.h_max) ** f)
    return h


class Nqm:
    def __init__(self, a):
        self.h = curvatures(a)
        self.s2 = [a.noise * hi / a.batch for hi in self.h]
        self.init = a.init

    def start(self):
        return ([self.init] * len(self.h), [0.0] * len(self.h))

    def advance(self, state, lr, k):
        m, v = state
        m2, v2 = [], []
        for hi, s2, mi, vi in zip(self.h, self.s2, m, v):
            a = 1.0 - lr * hi
            if abs(a) >= 1.0:  # diverged (or stalled at a = ±1): infinite expected loss
                return None
            ak = a ** k
            a2 = a * a
            m2.append(ak * mi)
            v2.append(ak * ak * vi + lr * lr * s2 * (1.0 - ak * ak) / (1.0 - a2))
        return (m2, v2)

    def loss(self, state):
        if state is None:
            return math.inf
        m, v = state
        return 0.5 * sum(hi * (mi * mi + vi) for hi, mi, vi in zip(self.h, m, v))

    def floor(self, lr):
        """The stationary loss at lr (the noise floor), ≈ ¼ · noise · lr · Σ hᵢ / batch."""
        return 0.5 * sum(hi * lr * s2 / (hi * (2.0 - lr * hi)) for hi, s2 in zip(self.h, self.s2))


def run_schedule(model, lrs, interval, steps):
    """lrs[j]: the lr of interval j. Returns the expected loss at `steps`."""
    st = model.start()
    t, j = 0, 0
    while t < steps and st is not None:
        k = min(interval, steps - t)
        st = model.advance(st, lrs[j], k)
        t += k
        j += 1
    return model.loss(st)


def greedy(model, grid, interval, steps, moves=None):
    """Per interval, the lr with the lowest expected loss at the interval's end. With `moves`,
    only lr x f for f in moves (and the first interval from the whole grid)."""
    st = model.start()
    t, sched = 0, []
    while t < steps:
        k = min(interval, steps - t)
        if moves is None or not sched:
            cands = grid
        else:
            cands = [sched[-1] * f for f in moves]
        best = min(cands, key=lambda lr: model.loss(model.advance(st, lr, k)))
        st = model.advance(st, best, k)
        sched.append(best)
        t += k
    return sched, model.loss(st)


def two_phase(model, grid, interval, steps):
    n = (steps + interval - 1) // interval
    best = (math.inf, None)
    # states after j intervals at lr1, for every lr1: reuse prefixes
    for lr1 in grid:
        st = model.start()
        t = 0
        for j in range(0, n + 1):
            if j > 0:
                k = min(interval, steps - t)
                st = model.advance(st, lr1, k)
                t += k
                if st is None:
                    break
            rest = steps - t
            for lr2 in grid:
                if lr2 >= lr1 and j < n:
                    continue  # a second phase at a higher lr is not a decay
                l = model.loss(model.advance(st, lr2, rest) if rest > 0 else st)
                if l < best[0]:
                    best = (l, (lr1, t, lr2))
    return best


def score_sd(model, state, noise, eval_batch):
    """sd of the nqm score at a state: ½ hᵢ ξᵢ² terms (ξᵢ ~ N(0, noise / (hᵢ E))) and the cross
    terms hᵢ θᵢ ξᵢ, with E[θᵢ²] for θᵢ²."""
    m, v = state
    c = noise / eval_batch
    var = 0.5 * len(model.h) * c * c + sum(hi * (mi * mi + vi) * c for hi, mi, vi in zip(model.h, m, v))
    return math.sqrt(var)


def describe(sched, interval):
    """'1 x2, 0.3 x3, ...' runs of equal lr, with the step each run starts."""
    out, i = [], 0
    while i < len(sched):
        j = i
        while j < len(sched) and sched[j] == sched[i]:
            j += 1
        out.append("%.3g from %d" % (sched[i], i * interval))
        i = j
    return ", ".join(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--spectrum", default="power", choices=["power", "log"])
    p.add_argument("--power", type=float, default=1.0)
    p.add_argument("--h-max", type=float, default=1.0)
    p.add_argument("--h-min", type=float, default=1e-3)
    p.add_argument("--noise", type=float, default=1.0)
    p.add_argument("--batch", type=float, default=10.0)
    p.add_argument("--init", type=float, default=1.0)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--interval", type=int, default=20)
    p.add_argument("--lr-low", type=float, default=0.001)
    p.add_argument("--lr-high", type=float, default=1.0)
    p.add_argument("--eval-batch", type=float, default=1000.0)
    p.add_argument("--grid", type=int, default=4, help="grid points per decade of lr (default 4)")
    p.add_argument("--factors", default="0.8,1.25", help="explore's factors, for the local greedy")
    a = p.parse_args()

    model = Nqm(a)
    decades = math.log10(a.lr_high / a.lr_low)
    n = int(round(decades * a.grid))
    grid = [a.lr_low * 10 ** (decades * i / n) for i in range(n + 1)]
    moves = [float(x) for x in a.factors.split(",")] + [1.0]

    print("nqm: dim %d, %s spectrum (power %g, h_max %g, h_min %g), noise %g, batch %g, init %g;"
          " %d steps, interval %d; lr grid %d points in [%g, %g]" % (
              a.dim, a.spectrum, a.power, a.h_max, a.h_min, a.noise, a.batch, a.init, a.steps, a.interval,
              len(grid), a.lr_low, a.lr_high))
    print("initial loss %.4g; sum h %.4g; h from %.3g to %.3g" % (
        model.loss(model.start()), sum(model.h), max(model.h), min(model.h)))
    fixed = [(run_schedule(model, [lr] * (a.steps // a.interval + 1), a.interval, a.steps), lr) for lr in grid]
    print("\nfixed lr: expected loss at step %d (noise floor at that lr)" % a.steps)
    for l, lr in fixed:
        print("  lr %-8.3g %.4g  (floor %.3g)" % (lr, l, model.floor(lr)))
    bf = min(fixed)
    gs, gl = greedy(model, grid, a.interval, a.steps)
    ls, ll = greedy(model, grid, a.interval, a.steps, moves)
    tl, (lr1, s, lr2) = two_phase(model, grid, a.interval, a.steps)
    print("\n| schedule | expected loss at step %d | / best fixed |" % a.steps)
    print("|---|---|---|")
    print("| best fixed lr %.3g | %.4g | 1 |" % (bf[1], bf[0]))
    print("| greedy (%s) | %.4g | %.2f |" % (describe(gs, a.interval), gl, gl / bf[0]))
    print("| local greedy, x%s per interval (ends at lr %.3g; at lr %.3g at half-way) | %.4g | %.2f |" % (
        "/".join(a.factors.split(",")), ls[-1], ls[len(ls) // 2], ll, ll / bf[0]))
    print("| two-phase: %.3g until step %d, then %.3g | %.4g | %.2f |" % (lr1, s, lr2, tl, tl / bf[0]))

    lr = bf[1]
    print("\nalong fixed lr %.3g: one interval of lr x 0.8 against lr, and the score's noise (eval_batch %g)" % (
        lr, a.eval_batch))
    print("| step | E loss | gain of lr x 0.8 over one interval | score sd | gain / sd |")
    print("|---|---|---|---|---|")
    st, t = model.start(), 0
    marks = [m for m in (a.interval, 5 * a.interval, a.steps // 10, a.steps // 4, a.steps // 2, 3 * a.steps // 4)]
    for mark in sorted(set(marks)):
        st = model.advance(st, lr, mark - t)
        t = mark
        gain = model.loss(model.advance(st, lr, a.interval)) - model.loss(model.advance(st, 0.8 * lr, a.interval))
        sd = score_sd(model, st, a.noise, a.eval_batch)
        print("| %d | %.4g | %.3g | %.3g | %.2f |" % (t, model.loss(st), gain, sd, gain / sd))


if __name__ == "__main__":
    main()
