"""The candidate timed against the baseline, adaptively, and their peak memory.

Timing: fresh worker processes (`timing.workers`), one after the other, each running interleaved
rounds of every operation still open; after each process the ratio and its 95% next-run interval
(`timing.stats.ratio`) are recomputed, and an operation closes when the interval's half-width is
within its target, or when the seconds spent timing it reach its budget (as `adaptive_autorange`
does, but over processes, whose spread belongs in the interval). Each result says which of the two
stopped it. Memory: `timing.memory.op_peak_bytes` of one call of each operation, in this process."""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from dotbias.models.registry import Registry
from dotbias.timing.groups import DEFAULT_SIZES, KERNELS, Group
from dotbias.timing.memory import op_peak_bytes
from dotbias.timing.rounds import Rounds
from dotbias.timing.stats import Ratio, group_times, ratio
from dotbias.timing.worker_server import Workers, servers_of
from dotbias.timing.workers import WorkSpec

MIN_PROCESSES = 2                      # a t interval needs two processes
TARGET = {"kernel": 0.01, "epoch": 0.03}


@dataclass(frozen=True)
class Budget:
    """How long timing may go on: seconds of timed rounds per operation (both variants), seconds
    of rounds per kernel per process, epoch rounds per process (None: timing's defaults), a cap on
    processes and the moment the whole command should be done by."""
    operation_s: float
    kernel_s: float
    epoch_rounds: int | None
    max_processes: int
    deadline: float = math.inf        # time.perf_counter() after which no new process should end


@dataclass(frozen=True)
class Timed:
    """One operation of the candidate against the baseline."""
    operation: str
    ratio: Ratio | None
    candidate_s: float
    baseline_s: float
    target: float                      # the half-width aimed at
    stopped: str                       # "target", "budget", "deadline", or "failed: <why>"
    processes: int
    spent_s: float                     # seconds of timed rounds, both variants

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["ratio"] = self.ratio.as_dict() if self.ratio else None
        return d


def target(operation: str) -> float:
    return TARGET["kernel" if operation in KERNELS else "epoch"]


def _timed(g: Group, results: list[Rounds], names: tuple[str, str], spent: float, stopped: str,
           uses: int = 0) -> Timed:
    cand, base = ([r.seconds[n] for r in results] for n in names)
    r = ratio(cand, base, names, servers=servers_of(len(results), uses)) if results else None
    shown = group_times(dict(zip(names, (cand, base))), names[1], [r] if r else [])
    return Timed(g.operation, r, shown[names[0]], shown[names[1]], target(g.operation), stopped,
                 len(results), spent)


def _state(g: Group, results: list[Rounds], spent: float, budget: Budget, names, uses: int = 0
           ) -> str | None:
    """Why timing of `g` stops now ("target", "budget"), or None to go on; never before
    MIN_PROCESSES processes, nor at its target before MIN_PROCESSES of them count (not set aside
    on a busy machine, `spread.busy`)."""
    if len(results) < MIN_PROCESSES:
        return None
    r = ratio(*([p.seconds[n] for p in results] for n in names), names,
              servers=servers_of(len(results), uses))
    if r.processes >= MIN_PROCESSES and r.half_width <= target(g.operation):
        return "target"
    if spent >= budget.operation_s or len(results) >= budget.max_processes:
        return "budget"
    return None


def time_pair(candidate: str, baseline: str, operations: list[str], budget: Budget,
              threads: int = 1, say: Callable[[str], None] = lambda s: None,
              specs: tuple[str, ...] = ()) -> list[Timed]:
    """Every operation of `operations` timed until its target or its budget (see module doc);
    `specs`: the plug-in specs of the run's registry (`Registry.specs`), loaded by each worker."""
    groups = [Group(op, "cpu", DEFAULT_SIZES[0], "float32") for op in operations]
    names = (candidate, baseline)
    results: dict[str, list[Rounds]] = {g.label: [] for g in groups}
    spent = dict.fromkeys(results, 0.0)
    done: dict[str, Timed] = {}
    open_, n, last_s = list(groups), 0, 0.0
    workers = Workers(threads)     # forked from servers that import ahead (timing.worker_server)
    while open_:
        if n >= MIN_PROCESSES and time.perf_counter() + last_s > budget.deadline:
            done.update({g.label: _timed(g, results[g.label], names, spent[g.label], "deadline",
                                         workers.uses)
                         for g in open_})
            break
        spec = WorkSpec(tuple(open_), names, baseline, budget_s=budget.kernel_s,
                        epoch_rounds=budget.epoch_rounds, threads=threads,
                        plugins=specs, process=n)
        started = time.perf_counter()
        try:
            out = workers.run(spec, n, timeout_s=600)
        except RuntimeError as e:
            done.update({g.label: _timed(g, results[g.label], names, spent[g.label],
                                         f"failed: {e}", workers.uses) for g in open_})
            break
        n, last_s = n + 1, time.perf_counter() - started
        for g in list(open_):
            results[g.label].append(out[g.label])
            spent[g.label] += out[g.label].spent_s
            why = _state(g, results[g.label], spent[g.label], budget, names, workers.uses)
            if why:
                done[g.label] = _timed(g, results[g.label], names, spent[g.label], why, workers.uses)
                open_.remove(g)
        say(f"speed: process {n} done, {len(open_)} operation(s) still open")
    workers.close()
    return [done[g.label] for g in groups]


@dataclass(frozen=True)
class Memory:
    """Peak bytes of one call of an operation, for each of the two."""
    operation: str
    candidate_bytes: int | None
    baseline_bytes: int | None
    failure: str = ""

    @property
    def ratio(self) -> float:
        if not self.candidate_bytes or not self.baseline_bytes:
            return math.nan
        return self.candidate_bytes / self.baseline_bytes

    def as_dict(self) -> dict:
        return dataclasses.asdict(self) | {"ratio": None if math.isnan(self.ratio) else self.ratio}


def memory_pair(candidate: str, baseline: str, operations: list[str], registry: Registry,
                say: Callable[[str], None] = lambda s: None) -> list[Memory]:
    """Peak bytes per operation for both (looked up in the run's `registry`); a candidate that
    raises is a failing row."""
    out = []
    for op in operations:
        say(f"memory: {op}")
        g = Group(op, "cpu", DEFAULT_SIZES[0], "float32")
        t0 = time.perf_counter()
        try:
            out.append(Memory(op, op_peak_bytes(g, candidate, registry),
                              op_peak_bytes(g, baseline, registry)))
        except Exception as e:       # noqa: BLE001  (the candidate's error is the result)
            out.append(Memory(op, None, None, f"{candidate}: {type(e).__name__}: {e}".split("\n")[0]))
        say(f"memory: {op} took {time.perf_counter() - t0:.1f} s")
    return out
