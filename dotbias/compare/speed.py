"""The candidate timed against the baseline, adaptively, and their peak memory.

Timing: the bench's adaptive run (`timing.adaptive.time_adaptively`), one stopping rule for both
commands: fresh worker processes, one after the other, each running interleaved rounds of every
operation still open, with the calls per block the first process calibrated; after each process the
ratio and its 95% next-run interval (`timing.stats.ratio`) are recomputed, and an operation closes
when the interval is within its target and at least `adaptive.MIN_PROCESSES` processes count (a
target reached at 2 processes is a lucky small spread: `tests/test_adaptive.py`), or when the
budget runs out. The budget is `Budget.operation_s` seconds of worker processes per operation,
or what is left before `Budget.deadline` where that is less ("deadline"); it is hard (no busy
machine's stretch: the command has a time limit). Each result says which stopped it. Memory:
`timing.memory.op_peak_bytes` of one call of each operation, in this process."""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from dotbias.models.registry import Registry
from dotbias.timing.adaptive import (
    FAILED,
    GroupTiming,
    Plan,
    failure,
    group_ratios,
    kind,
    time_adaptively,
)
from dotbias.timing.groups import DEFAULT_SIZES, Group
from dotbias.timing.memory import op_peak_bytes
from dotbias.timing.stats import Ratio, group_times
from dotbias.timing.worker_server import Workers
from dotbias.timing.workers import WorkSpec


@dataclass(frozen=True)
class Budget:
    """How long timing may go on: seconds of worker processes per operation, seconds of rounds
    per kernel per process, epoch rounds per process (None: timing's defaults), a cap on
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
    stopped: str                       # "target", "budget", "deadline", or adaptive.FAILED + why
    processes: int
    spent_s: float                     # seconds of timed rounds, both variants

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["ratio"] = self.ratio.as_dict() if self.ratio else None
        return d


def _timed(t: GroupTiming, names: tuple[str, str], stopped: str) -> Timed:
    """The adaptive run's timing of one group as the candidate's row."""
    r = next(iter(group_ratios(t.rounds, names[1], t.servers)), None)
    shown = group_times({n: t.seconds(n) for n in names}, names[1], [r] if r else [])
    return Timed(t.group.operation, r, shown[names[0]], shown[names[1]], t.target, stopped,
                 len(t.rounds), sum(x.spent_s for x in t.rounds))


def time_pair(candidate: str, baseline: str, operations: list[str], budget: Budget,
              threads: int = 1, say: Callable[[str], None] = lambda s: None,
              specs: tuple[str, ...] = ()) -> list[Timed]:
    """Every operation of `operations` timed until its target or its budget (see module doc);
    `specs`: the plug-in specs of the run's registry (`Registry.specs`), loaded by each worker.
    Kernels and epochs are timed in runs of their own, one after the other: in one run every
    process times every open group, and an epoch's rounds (0.1-0.7 s each here) would take the
    kernels' processes (4 instead of 6 with the default budget, 2026-12-07)."""
    groups = [Group(op, "cpu", DEFAULT_SIZES[0], "float32") for op in operations]
    names = (candidate, baseline)
    done: dict[str, Timed] = {}
    workers = Workers(threads)     # forked from servers that import ahead (timing.worker_server)
    try:
        for part in ([g for g in groups if kind(g.operation) == k] for k in ("kernel", "epoch")):
            failed = failure(t.stopped for t in done.values())
            if failed:      # a worker failed: the later operations say so, untimed
                done |= {g.label: Timed(g.operation, None, math.nan, math.nan, Plan().target(g.operation),
                                        FAILED + failed, 0, 0.0) for g in part}
            elif part:
                done |= _time_run(part, names, budget, threads, say, specs, workers)
    finally:
        workers.close()
    return [done[g.label] for g in groups]


def _time_run(groups: list[Group], names: tuple[str, str], budget: Budget, threads: int,
              say: Callable[[str], None], specs: tuple[str, ...], workers: Workers) -> dict[str, Timed]:
    """One adaptive run of `groups` (of one kind): group label -> its row."""
    spec = WorkSpec(tuple(groups), names, names[1], budget_s=budget.kernel_s,
                    epoch_rounds=budget.epoch_rounds, threads=threads, plugins=specs)
    own, left = budget.operation_s * len(groups), budget.deadline - time.perf_counter()
    plan = Plan(max_s=max(0.0, min(own, left)), max_processes=budget.max_processes)
    timed = time_adaptively(spec, plan, progress=lambda line: say(f"speed: {line.strip()}"),
                            run=workers.run, uses=workers.uses)

    def why(t: GroupTiming) -> str:     # the budget that ran out: the command's own, or the cap
        late = t.stopped == "budget" and left < own and len(t.rounds) < budget.max_processes
        return "deadline" if late else t.stopped
    return {label: _timed(t, names, why(t)) for label, t in timed.items()}


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
