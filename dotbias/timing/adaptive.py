"""Adaptive timing: fresh worker processes, one after the other, until every group's widest 95%
next-run interval reaches its target or the run's budget runs out; each group says which.

After each process every open group's ratios to the baseline (and the A/A copy) are recomputed
(`timing.stats.ratio`, a t prediction interval over the processes' median log-ratios). A group
closes at "target" when its widest half-width is within its target and at least `min_processes`
processes that the interval counts timed it (none on a busy machine: `spread.busy`); all open
groups close at "budget" when the next process would pass `max_s` or the process cap ran. The
seconds a closed group no longer needs go to the open ones of its kind, split evenly (every
process's estimate of a group equally precise: see `shares`).

A busy machine takes longer rather than stopping wide: past the default budget the run goes on,
up to `stretch` times it and its process cap (STRETCH; an explicit --max-time or --max-processes
is a hard limit), for the open groups whose interval is still wider than `stretch_width` times
their target (STRETCH_WIDTH); those that get within it close at "stretched", the others at
"limit" when the next process would pass it, and the run says which. A group within
STRETCH_WIDTH x its target at the budget stops there ("budget", short of its target, said), as
does one whose width is its servers' layouts (which more processes of the same servers do not
average: `processes_needed` is inf); docs/timing.md (rounds 28, 29) has the runs behind both. A
worker that fails closes every open group at FAILED + its line (`failure`): `dotbias compare`
keeps them as rows, `pytest bench` exits in that one line.

Why peeking stays honest: the interval is a t interval over process means, whose spread is
estimated from the processes themselves; stopping at the first look where it is narrow favours
looks where that spread came out small by chance. With few processes that estimate is loose
(2 processes: one degree of freedom), so no group stops before `min_processes` (4: the look's
spread then has 3 degrees of freedom and the t quantile 3.18 carries their uncertainty), and a
group stops for its target only, never because it looks good against another group.
tests/test_adaptive.py checks on synthetic processes that the rule keeps a run's value inside
another run's interval about 95% of the time, and that stopping at 2 processes would not."""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from dotbias.timing.groups import KERNELS, Group
from dotbias.timing.rounds import Rounds
from dotbias.timing.spread import busy
from dotbias.timing.stats import Ratio, ratio
from dotbias.timing.worker_server import servers_of
from dotbias.timing.workers import WorkSpec, run_process

MIN_PROCESSES = 4
MAX_PROCESSES = 20      # the default process cap at the budget (`Plan.cap`)
TARGET = {"kernel": 0.01, "epoch": 0.03}
# The default budget of a run: seconds of worker processes per selected group.
BUDGET_S = {"kernel": 16.0, "epoch": 80.0}
STRETCH = 2.0       # past the default budget, at most this multiple of it (module doc)
STRETCH_WIDTH = 1.5     # past the budget, only intervals wider than this multiple of their target


FAILED = "failed: "      # a group's stop when a worker failed; the worker's one line follows


def kind(operation: str) -> str:
    return "kernel" if operation in KERNELS else "epoch"


def failure(stops: Iterable[str]) -> str | None:
    """The first worker failure's line among these stop reasons (FAILED ...), None if none."""
    return next((s.removeprefix(FAILED) for s in stops if s.startswith(FAILED)), None)


@dataclass(frozen=True)
class Plan:
    """When an adaptive run stops: the half-widths aimed at, the run's budget (wall seconds of
    worker processes; None: BUDGET_S per group), how far a busy machine may stretch it
    (`stretch` times; 1 with an explicit `max_s`), and the process counts (`max_processes`: the
    cap, None: MAX_PROCESSES at the budget and `stretch` times it past). `fixed`: exactly
    `max_processes` processes and no stopping rule (the design before adaptive rounds)."""
    kernel_target: float = TARGET["kernel"]
    epoch_target: float = TARGET["epoch"]
    max_s: float | None = None
    min_processes: int = MIN_PROCESSES
    max_processes: int | None = None
    fixed: bool = False
    stretch: float = STRETCH
    stretch_width: float = STRETCH_WIDTH

    def target(self, operation: str) -> float:
        return self.kernel_target if kind(operation) == "kernel" else self.epoch_target

    def budget(self, groups: Sequence[Group]) -> float:
        return self.max_s if self.max_s is not None else sum(BUDGET_S[kind(g.operation)] for g in groups)

    def limit(self, groups: Sequence[Group]) -> float:
        """The budget a busy machine may stretch to: `stretch` x the default, an explicit max_s."""
        return self.budget(groups) * (self.stretch if self.max_s is None else 1.0)

    def cap(self, stretched: bool = False) -> int:
        """The process cap at the budget (MAX_PROCESSES unless given), and past it where
        `stretched` (`stretch` x the default cap, when the time budget is the default too)."""
        if self.max_processes is not None:
            return self.max_processes
        return round(MAX_PROCESSES * (self.stretch if stretched and self.max_s is None else 1.0))


@dataclass(frozen=True)
class GroupTiming:
    """One group's rounds, one `Rounds` per process, and why its timing stopped."""
    group: Group
    rounds: tuple[Rounds, ...]
    stopped: str     # "target", "stretched" (past the budget), "budget", "limit", "fixed", "failed: <why>"
    half_width: float            # its widest interval's half-width (0.01 = +-1%)
    target: float
    servers: tuple[int, ...] = ()    # the server each process forked from (): each its own

    def seconds(self, name: str) -> list[list[float]]:
        return [r.seconds[name] for r in self.rounds]

    def set_aside(self) -> int:
        """Its processes where any of its names ran on a busy machine (`spread.busy`)."""
        flags = [busy(self.seconds(n)) for n in (self.rounds[0].seconds if self.rounds else ())]
        return sum(any(process) for process in zip(*flags))


def group_ratios(rounds: Sequence[Rounds], baseline: str, servers: Sequence[int] = ()) -> list[Ratio]:
    """Every other name's ratio to `baseline` over `rounds` (one per process)."""
    if not rounds:
        return []
    base = [r.seconds[baseline] for r in rounds]
    return [ratio([r.seconds[n] for r in rounds], base, (n, baseline), servers=servers)
            for n in rounds[0].seconds if n != baseline]


def processes_needed(processes: int, half_width: float, server_share: float, aim: float) -> float:
    """The processes at which an interval `half_width` wide now would be `aim` wide (the t
    quantile as now), when more processes of the same servers shrink only the processes' own
    (1 - server_share) of its variance: inf where they never would."""
    q = (aim / half_width) ** 2
    return processes * (1 - server_share) / (q - server_share) if q > server_share else math.inf


def shares(open_: Sequence[Group], all_: Sequence[Group]) -> tuple[float, ...]:
    """Each open group's multiple of the per-process budget: the run's per-process time of its
    kind (one unit per group of that kind in the run) split evenly among the open groups of that
    kind, so a closed group's time goes to the open ones and every process's estimate of a group
    has the same precision, as the t interval over process medians assumes (split by each
    group's (half-width / target)^2, 4 rounds of a group in some processes and 24 in others
    widened 5 quiet runs' intervals to +-7%)."""
    out = []
    for g in open_:
        same = sum(kind(o.operation) == kind(g.operation) for o in open_)
        units = sum(kind(a.operation) == kind(g.operation) for a in all_)
        out.append(units / same)
    return tuple(out)


class _Run:
    """The state of one adaptive run: each group's rounds so far, widths, and which are open."""

    def __init__(self, spec: WorkSpec, plan: Plan, uses: int = 0):
        self.spec, self.plan, self.groups = spec, plan, list(spec.groups)
        # Workers a server forks (0: fresh interpreters). Every open group times every process,
        # so a group's processes are the run's first ones, forked from `servers_of(len, uses)`.
        self.uses = uses
        self.open = list(self.groups)
        self.got: dict[str, list[Rounds]] = {g.label: [] for g in self.groups}
        self.width: dict[str, float] = {}
        self.share: dict[str, float] = {}      # the widest ratio's `server_share`
        self.iterations: dict[str, dict[str, int]] = {}     # group label -> calls per block
        self.done: dict[str, GroupTiming] = {}
        self.n, self.past_budget = 0, False

    def next_spec(self) -> WorkSpec:
        """The next process's work: the open groups, their shares and calls per block."""
        share = shares(self.open, self.groups)
        return dataclasses.replace(
            self.spec, groups=tuple(self.open), process=self.n,
            shares=share if self.n >= 2 and not self.plan.fixed else (),
            iterations=tuple(self.iterations.get(g.label, {}) for g in self.open))

    def add(self, out: dict[str, Rounds]) -> None:
        """One process's rounds; a group whose interval reached its target closes."""
        self.n += 1
        for g in list(self.open):
            got = self.got[g.label]
            got.append(out[g.label])
            self.iterations.setdefault(g.label, out[g.label].iterations)
            servers = servers_of(len(got), self.uses)
            ratios = group_ratios(got, self.spec.baseline, servers) if self.n >= 2 else []
            worst = max(ratios, key=lambda x: x.half_width, default=None)
            self.width[g.label] = (worst.half_width if worst else 0.0) if self.n >= 2 else math.inf
            self.share[g.label] = worst.server_share if worst else 0.0
            counted = min((r.processes for r in ratios), default=len(got))     # not set aside
            if (not self.plan.fixed and counted >= self.plan.min_processes
                    and self.width[g.label] <= self.plan.target(g.operation)):
                self._close(g, "stretched" if self.past_budget else "target")

    def stop(self, elapsed: float, next_s: float, budget: float, limit: float) -> None:
        """After a process, close the groups the module doc's rules end: at the fixed count or
        the process cap (which counts as the budget); past the budget (the next process, `next_s`
        long, would end after it) those near enough ("budget" there, "stretched" later) or out of
        the processes' reach ("budget"), the rest at `limit` or the stretched cap ("limit";
        "budget" where the limit is the budget: an explicit --max-time or --max-processes)."""
        plan = self.plan
        if plan.fixed:
            if self.n >= plan.cap():
                for g in list(self.open):
                    self._close(g, "fixed")
            return
        enough = self.n >= plan.min_processes
        if self.n < plan.cap() and not (enough and elapsed + next_s > budget):
            return
        at_limit = self.n >= plan.cap(stretched=True) or (enough and elapsed + next_s > limit)
        first, self.past_budget = not self.past_budget, True
        for g in list(self.open):
            aim, width = plan.stretch_width * plan.target(g.operation), self.width[g.label]
            if width <= aim:                    # near enough: at the budget, or got there past it
                self._close(g, "budget" if first else "stretched")
            elif first and math.isinf(processes_needed(self.n, width, self.share[g.label], aim)):
                self._close(g, "budget")
            elif at_limit:                      # at a hard limit, or past the budget to the stretch's
                self._close(g, "budget" if first else "limit")

    def _close(self, g: Group, why: str) -> None:
        got = tuple(self.got[g.label])
        self.done[g.label] = GroupTiming(g, got, why, self.width.get(g.label, math.inf),
                                         self.plan.target(g.operation), servers_of(len(got), self.uses))
        self.open.remove(g)


def time_adaptively(spec: WorkSpec, plan: Plan, progress: Callable[[str], None] = lambda s: None,
                    run: Callable[[WorkSpec, int, float], dict[str, Rounds]] = run_process,
                    clock: Callable[[], float] = time.perf_counter, uses: int = 0
                    ) -> dict[str, GroupTiming]:
    """Every group of `spec` timed until its target or the budget (see the module doc); group
    label -> its timing. `uses`: `run` forks process i from the (i // uses)-th server
    (`Workers`; 0: fresh interpreters, none shared). A worker that fails (`run` raises
    RuntimeError, one line, as `run_process` does) ends the run (the module doc)."""
    state, start = _Run(spec, plan, uses), clock()
    budget, limit = plan.budget(state.groups), plan.limit(state.groups)
    while state.open:
        began = clock()
        try:
            out = run(state.next_spec(), state.n, 600.0)
        except RuntimeError as e:       # one line naming the process: every open group says it
            for g in list(state.open):
                state._close(g, f"{FAILED}{e}")
            break
        state.add(out)
        now = clock()
        state.stop(now - start, now - began, budget, limit)
        busy = f" (busy: on up to {limit:.0f} s)" if limit > budget and state.open else ""
        past = f", at the {budget:.0f} s budget{busy}" if state.past_budget else ""
        progress(f"  process {state.n} done ({now - start:.0f} s{past}), {len(state.open)} group(s) open")
    return {g.label: state.done[g.label] for g in state.groups}
