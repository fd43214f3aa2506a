"""Which worker processes an interval counts, and how (`stats.ratio` applies both): a ratio sets
aside the processes where either of its variants ran on a busy machine (`busy`, each variant
against its own median process), and processes forked from one server share its layout, a
random effect the standard error counts (`standard_error`). docs/timing.md, rounds 27 and 28.

Judging the numerator too does not bias a ratio: a variant's median time moves between quiet
processes by about 1% (sd), so 10% is ten of those, reached only where the machine slowed it;
and the rule is the same for both variants, cutting either tail only there. A disturbance can
slow one variant much more than the other (memory traffic: in one process forward+backward bag
ran 1.16x its median process and cp 1.05x, bag/cp +13%), which the baseline alone missed."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

BUSY = 1.10             # a process where a variant ran this much slower than in its median process
MIN_FOR_BUSY = 4        # fewer processes than this say too little of what is usual: none set aside

Processes = list[list[float]]     # seconds per call: one list of rounds per worker process


def busy(processes: Processes) -> list[bool]:
    """Which of one variant's processes ran on a busy machine: its median log time over its rounds
    at least log(BUSY) above the median over processes (the module doc); none of fewer than
    MIN_FOR_BUSY processes with rounds, nor one without rounds."""
    centres = [float(np.median(np.log(np.asarray(p, float)))) if len(p) else math.nan
               for p in processes]
    timed = [c for c in centres if not math.isnan(c)]
    if len(timed) < MIN_FOR_BUSY:
        return [False] * len(processes)
    usual = float(np.median(timed))
    return [c >= usual + math.log(BUSY) for c in centres]     # nan compares False


def standard_error(means: np.ndarray, servers: Sequence[int]) -> tuple[float, float, float]:
    """The standard error of `means.mean()`, its degrees of freedom and the share of its square
    that is the servers' (which more processes of the same servers do not shrink), a process's
    server a random effect (one-way ANOVA): var = s_server^2 sum(n_k^2)/n^2 + s_within^2/n,
    s_server^2 = (MSB - MSW)/n0 (at most 0: MSW/n, n - a degrees of freedom), Satterthwaite's
    degrees of freedom. Balanced, the t over server means (a - 1); each process its own server,
    the t over processes."""
    n, labels = len(means), np.asarray(servers)
    keys = np.unique(labels)
    a = len(keys)
    if a == n or a < 2:
        return float(means.std(ddof=1)) / math.sqrt(n), n - 1, 0.0
    members = [means[labels == k] for k in keys]
    sizes = np.array([len(m) for m in members], float)
    centres = np.array([m.mean() for m in members])
    msw = float(sum(((m - c) ** 2).sum() for m, c in zip(members, centres))) / (n - a)
    msb = float((sizes * (centres - means.mean()) ** 2).sum()) / (a - 1)
    n0 = (n - float((sizes ** 2).sum()) / n) / (a - 1)
    c1 = float((sizes ** 2).sum()) / n ** 2 / n0
    c2 = 1 / n - c1
    v = c1 * msb + c2 * msw
    if v <= msw / n:        # the servers differ no more than their processes do
        return math.sqrt(msw / n), n - a, 0.0
    df = v ** 2 / ((c1 * msb) ** 2 / (a - 1) + (c2 * msw) ** 2 / (n - a))
    return math.sqrt(v), df, 1.0 - msw / n / v
