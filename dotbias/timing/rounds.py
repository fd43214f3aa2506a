"""Interleaved rounds: the variants of one group timed block by block (A B, B A, ...) so that a
change of machine load hits every variant alike and their per-round ratio cancels it."""
from __future__ import annotations

import gc
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch

from dotbias.models.compiled import compile_count
from dotbias.timing.blocks import block_seconds, calls_per_block, lead_in_calls, time_block


def synced_perf_counter() -> float:
    """`time.perf_counter` that first waits for queued CUDA work (pytest-benchmark's timer does not)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()
    return time.perf_counter()


@dataclass(frozen=True)
class Rounds:
    """Seconds per call of each variant, round by round; round r of every variant ran back to back.
    `iterations`: each variant's calls per timed block. `first_call_s`: each variant's first call
    (compilation, lazy init); `compiles_in_rounds`: graphs dynamo compiled inside each variant's
    timed blocks (0 unless a recompile spoiled the rounds). A worker writes it as JSON (`as_dict`)
    and the parent reads it back once (`from_dict`)."""
    seconds: dict[str, list[float]]
    iterations: dict[str, int]
    first_call_s: dict[str, float] = field(default_factory=dict)
    compiles_in_rounds: dict[str, int] = field(default_factory=dict)

    @property
    def spent_s(self) -> float:
        """Seconds of timed calls in these rounds, every variant."""
        return sum(sum(s) * self.iterations[n] for n, s in self.seconds.items())

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Rounds:
        """The inverse of `as_dict`; anything else raises ValueError in one line."""
        try:
            seconds = {str(n): [float(t) for t in s] for n, s in d["seconds"].items()}
            return cls(seconds, {str(n): int(i) for n, i in d["iterations"].items()},
                       {str(n): float(t) for n, t in d.get("first_call_s", {}).items()},
                       {str(n): int(c) for n, c in d.get("compiles_in_rounds", {}).items()})
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ValueError(f"not a worker's rounds: {d!r:.120} ({e})") from None


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
               budget_s: float = 0.5, block_s: float | None = None, min_rounds: int = 4,
               max_rounds: int = 2000, seed: int = 0, iterations: dict[str, int] | None = None
               ) -> Rounds:
    """Time `fns` in interleaved rounds so a change of machine load hits every variant alike and
    their per-round ratio cancels it, in the order `OrderedRounds` gives each round.

    Own loop rather than `torch.utils.benchmark.Timer`, which times one statement at a time: the
    ratio needs the variants alternated block by block. Each function's block is `iterations[name]`
    calls, or enough for it to take `block_s` (by default `block_seconds()`), from the fastest of
    interleaved calibration blocks (`calls_per_block`: a slow moment does not shrink one
    variant's blocks): every block about as long, whatever
    the variant's speed. (One count for all, sized for the fastest, gave a variant 18x slower
    than `cp+row_step` blocks of 92 ms and 4 rounds a process: the step's ratios +-10-18%.)
    Each timed block follows `lead_in_calls` untimed calls of the same function (LEAD_IN): what is
    timed is a call in steady state, not the refill after another variant's block, whatever the
    block's length; epochs (`block_s=0`, one call a round) have none.
    Rounds run, a pair at a time, until the rounds' own clock says the next pair would pass
    `budget_s` (within `min_rounds`..`max_rounds`): a round count fixed in advance from a
    calibration that load slowed would cut the rounds short.
    One warm-up call each first; the garbage collector is off. Compilation belongs to the warm-up
    (`warm_up`); a graph compiled inside a timed block is counted in `compiles_in_rounds`."""
    names = list(fns)
    first = {n: warm_up(fns[n], device) for n in names}         # lazy init, compilation
    if iterations is None:
        block_s = block_seconds() if block_s is None else block_s
        iterations = calls_per_block(fns, block_s, device)
    lead = {n: 0 if block_s == 0 else lead_in_calls(iterations[n]) for n in names}
    order = OrderedRounds(names, random.Random(seed))
    seconds, compiles = _timed_rounds(fns, order, (budget_s, min_rounds, max_rounds),
                                      (iterations, lead), device)
    return Rounds(seconds, iterations, first, compiles)


class OrderedRounds:
    """The order of each round: pair k runs a random base order rotated by k, then that order
    reversed. Within every len(names) pairs each variant holds every position equally often and
    runs twice in a row (end of a round, start of its reverse, its data still in cache) exactly
    once; a fresh random order per pair gave those by chance, a noise in each process's mean. A
    fixed order would give them to the same variants every time, a bias the A/A check shows."""

    def __init__(self, names: list[str], rng: random.Random):
        self.base = rng.sample(names, len(names))

    def __call__(self, r: int) -> list[str]:
        k = (r // 2) % len(self.base)
        order = self.base[k:] + self.base[:k]
        return order if r % 2 == 0 else order[::-1]


def _timed_rounds(fns: dict[str, Callable[[], None]], order: OrderedRounds,
                  limits: tuple[float, int, int], blocks: tuple[dict[str, int], dict[str, int]],
                  device) -> tuple[dict[str, list[float]], dict[str, int]]:
    """The rounds in `order`, garbage collector off, until `limits` (budget_s, min_rounds,
    max_rounds) say stop: seconds per call of each function per round, and the graphs compiled
    inside each one's timed blocks. `blocks`: each function's timed calls a block and the untimed
    calls before them."""
    budget_s, min_rounds, max_rounds = limits
    iterations, lead = blocks
    seconds: dict[str, list[float]] = {n: [] for n in fns}
    compiles = dict.fromkeys(fns, 0)
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        start, done = time.perf_counter(), 0
        while done < max(1, max_rounds):
            for n in order(done):
                for _ in range(lead[n]):
                    fns[n]()
                before = compile_count()
                seconds[n].append(time_block(fns[n], iterations[n], device))
                compiles[n] += (compile_count() - before).graphs
            done += 1
            spent = time.perf_counter() - start
            if done >= min_rounds and done % 2 == 0 and spent + 2 * spent / done > budget_s:
                break
    finally:
        if was_enabled:
            gc.enable()
    return seconds, compiles
