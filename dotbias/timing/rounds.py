"""Interleaved rounds: the variants of one group timed block by block (A B, B A, ...) so that a
change of machine load hits every variant alike and their per-round ratio cancels it."""
from __future__ import annotations

import gc
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from dotbias.models.compiled import compile_count


def synced_perf_counter() -> float:
    """`time.perf_counter` that first waits for queued CUDA work (pytest-benchmark's timer does not)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()
    return time.perf_counter()


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


@dataclass(frozen=True)
class Rounds:
    """Seconds per call of each variant, round by round; round r of every variant ran back to back.
    `first_call_s`: each variant's first call (compilation, lazy init); `compiles_in_rounds`: graphs
    dynamo compiled inside each variant's timed blocks (0 unless a recompile spoiled the rounds)."""
    seconds: dict[str, list[float]]
    iterations: int
    first_call_s: dict[str, float] = field(default_factory=dict)
    compiles_in_rounds: dict[str, int] = field(default_factory=dict)


WARM_UP_CALLS = 5       # at most this many warm-up calls while each one still compiles a graph


def warm_up(fn: Callable[[], None], device: str | torch.device) -> float:
    """Seconds of `fn`'s first call; then more calls while a call compiled something (a compiled
    backward, a second graph), so that no compilation is left for the timed rounds."""
    before = compile_count()
    first = time_block(fn, 1, device)
    for _ in range(WARM_UP_CALLS - 1):
        if compile_count() == before:
            break
        before = compile_count()
        time_block(fn, 1, device)
    return first


def interleave(fns: dict[str, Callable[[], None]], *, device: str | torch.device = "cpu",
               budget_s: float = 0.5, block_s: float = 5e-3, min_rounds: int = 4,
               max_rounds: int = 2000, seed: int = 0) -> Rounds:
    """Time `fns` in interleaved rounds so a change of machine load hits every variant alike and
    their per-round ratio cancels it. Each pair of rounds runs a random order, then that order
    reversed: every variant gets the same mean position, and none is always at an end (a fixed
    order runs the variant at each end twice in a row at every other round boundary, its data
    still in cache, which biases its times: the A/A check would show that bias).

    Own loop rather than `torch.utils.benchmark.Timer`, which times one statement at a time: the
    ratio needs the variants alternated block by block. Every function gets the same number of
    calls per round, enough for the fastest to take `block_s`; the rounds fill `budget_s` (within
    `min_rounds`..`max_rounds`). One warm-up call each first (and, when `block_s` > 0, a short
    calibration on warm calls); the garbage collector is off. Compilation belongs to the warm-up
    (`warm_up`); a graph compiled inside a timed block is counted in `compiles_in_rounds`."""
    names = list(fns)
    rng = random.Random(seed)
    first = {n: warm_up(fns[n], device) for n in names}         # lazy init, compilation
    per_call = dict(first)
    if block_s > 0:     # calibrate on warm calls; one call a round (epochs) needs no calibration
        per_call = {n: time_block(fns[n], 1 if per_call[n] > block_s else 3, device) for n in names}
    iterations = max(1, math.ceil(block_s / max(min(per_call.values()), 1e-9)))
    round_s = iterations * sum(per_call.values())
    rounds = int(min(max(budget_s / max(round_s, 1e-9), min_rounds), max_rounds))
    seconds, compiles = _timed_rounds(fns, rounds, iterations, rng, device)
    return Rounds(seconds, iterations, first, compiles)


def _timed_rounds(fns: dict[str, Callable[[], None]], rounds: int, iterations: int,
                  rng: random.Random, device) -> tuple[dict[str, list[float]], dict[str, int]]:
    """The rounds (random order, then reversed), garbage collector off: seconds per call of each
    function per round, and the graphs compiled inside each one's timed blocks."""
    names = list(fns)
    seconds: dict[str, list[float]] = {n: [] for n in names}
    compiles = dict.fromkeys(names, 0)
    order = names
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(rounds):
            order = rng.sample(names, len(names)) if r % 2 == 0 else order[::-1]
            for n in order:
                before = compile_count()
                seconds[n].append(time_block(fns[n], iterations, device))
                compiles[n] += (compile_count() - before).graphs
    finally:
        if was_enabled:
            gc.enable()
    return seconds, compiles
