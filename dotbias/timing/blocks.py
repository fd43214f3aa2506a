"""How long a timed block of one function is and what comes before it: its length for the
machine's state now (`block_seconds`), its calls (`calls_per_block`, calibrated) and the untimed
lead-in calls before it (`lead_in_calls`); `timing.rounds` interleaves such blocks."""
from __future__ import annotations

import math
import os
import time
from collections.abc import Callable

import torch


def synchronize(device: str | torch.device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def time_block(fn: Callable[[], None], iterations: int, device: str | torch.device = "cpu") -> float:
    """Seconds per call of `fn`, over `iterations` back-to-back calls (CUDA synchronized at both ends)."""
    synchronize(device)
    t0 = time.perf_counter()
    for _ in range(iterations):
        fn()
    synchronize(device)
    return (time.perf_counter() - t0) / iterations


# Calls per timed block: enough for each variant to run this long (docs/timing.md). Where
# no other process waits for a core, short blocks: four times the rounds, and the two blocks of a
# round close enough in time to share the machine's changes of speed (five alternating runs of
# `pytest bench -k "not epoch"`, load about 1 on 2 cores: widest interval +-0.9..6.4% against
# +-1.6..23% with 20 ms blocks, coverage 81% against 77%). On an oversubscribed machine a block
# much shorter than the scheduler's time slice either escapes or loses a whole slice (+50..100%,
# load 8 on 2 cores), so blocks are long there.
SHORT_BLOCK_S, LONG_BLOCK_S = 0.005, 0.02

# Untimed calls before each timed block, as a fraction of its calls (at least two): the calls
# right after another variant's block run slow while caches and predictors refill (with the seven
# built-in variants of forward_backward at ml100k, 2026-12-07: +50% on the first call, +10% on the
# second, then +1-2% for a few more; about 100-150 us a block in every kernel operation). Timed, that
# refill was a share of the block that followed its length: blocks calibrated 25% longer for one
# variant and 25% shorter for the other moved their ratio by 1.9% (forward_backward) and 2.2%
# (step), and each run calibrates its own lengths, so runs differed by it (the run-level drift of
# round 26: forward_backward emb/cp 1.191 in the runs whose emb blocks came out long, 1.209 where
# short). After a lead-in of 4 calls (forward_backward) or 2 (step) the same swap moved them
# by -0.1% and 0.3% (+-0.4%) (docs/timing.md). At least MIN_LEAD_IN calls: the second call's
# refill timed in a block of a few long calls is a percent of it, and an eighth rounded up gave a
# block of 8 calls one lead-in call and a block of 9 two (step emb/cp 1.057 in the run whose
# blocks were 8 and 9 calls, 1.044-1.048 in four runs of 8 and 8 or 9 and 9; round 28).
LEAD_IN = 1 / 8
MIN_LEAD_IN = 2


def runnable_now(samples: int = 21, pause_s: float = 0.001) -> float | None:
    """Threads runnable on the machine now, this one included: the median of `samples` reads of
    /proc/stat's procs_running `pause_s` apart (None where the system does not say). Not the load
    average: that remembers the last minute, a run's own imports and the run before it (eight
    servers importing at once left it at 2.1-2.6 on 2 cores, and the blocks long, 2026-12-07)."""
    counts = []
    for _ in range(samples):
        try:
            with open("/proc/stat") as f:
                counts += [int(line.split()[1]) for line in f if line.startswith("procs_running ")]
        except (OSError, ValueError, IndexError):
            return None
        time.sleep(pause_s)
    return float(sorted(counts)[len(counts) // 2]) if len(counts) == samples else None


def block_seconds(load: float | None = None, cores: int | None = None) -> float:
    """The timed block's length for this machine now: SHORT_BLOCK_S while the threads runnable
    now (`runnable_now`, this one included; else the 1-minute load average) are at most the
    cores this process may run on, else LONG_BLOCK_S (also where the system says neither)."""
    if load is None:
        load = runnable_now()
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            return LONG_BLOCK_S
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return SHORT_BLOCK_S if load <= cores else LONG_BLOCK_S


def lead_in_calls(iterations: int) -> int:
    """Untimed calls before a timed block of `iterations` calls (LEAD_IN, at least MIN_LEAD_IN)."""
    return max(MIN_LEAD_IN, math.ceil(iterations * LEAD_IN - 1e-9))


CALIBRATION_ROUNDS = 5     # interleaved calibration blocks of each function (`calls_per_block`)


def calls_per_block(fns: dict[str, Callable[[], None]], block_s: float,
                    device: str | torch.device) -> dict[str, int]:
    """Calls of each of `fns` that take about `block_s`: a first count from the fastest of three
    warm calls, then the count from the fastest per call of CALIBRATION_ROUNDS blocks of that
    many, the functions' blocks interleaved round by round, each after its lead-in as in the
    timed rounds; 1 when `block_s` is 0 (an epoch: one call a round, no calibration call).
    Single calls right after the warm-up ran 1.1-2x their steady time in a run's first process,
    so the baseline's blocks came out 2.3-4.5 ms from run to run where the others' were 4.5-4.9,
    and with them its ratios (forward+backward emb/cp 1.193-1.206 in five runs, in the order of
    the baseline's block length, 2026-12-07). Interleaved, not one function after the other: a
    slow moment of the machine during one function's calibration gave that function blocks of
    half the length for the whole run (step cp 4 calls where 7-9 is usual: bag/cp 1.192 in that
    run against 1.210-1.226 in 19 others; round 29, docs/timing.md); the fastest block of each
    lets a slow moment pass, and one that lasts the whole calibration slows every function
    alike."""
    if block_s <= 0:
        return dict.fromkeys(fns, 1)

    def filling(seconds_per_call: float) -> int:
        return max(1, math.ceil(block_s / max(seconds_per_call, 1e-9) - 1e-6))
    first = {n: filling(min(time_block(fn, 1, device) for _ in range(3))) for n, fn in fns.items()}
    names, per_call = list(fns), dict.fromkeys(fns, math.inf)
    for r in range(CALIBRATION_ROUNDS):
        for n in names[r % len(names):] + names[:r % len(names)]:
            for _ in range(lead_in_calls(first[n])):
                fns[n]()
            per_call[n] = min(per_call[n], time_block(fns[n], first[n], device))
    return {n: filling(t) for n, t in per_call.items()}
