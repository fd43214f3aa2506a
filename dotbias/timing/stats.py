"""Ratios of timings and their intervals, defined once.

A group is timed in several fresh worker processes; inside each, the variants run in interleaved
rounds (A B, B A, ...). Each process gives one paired estimate per variant: the median over its
rounds of log(t_variant / t_baseline), the two blocks of one round. The median, not the mean:
on a shared machine a round's ratio has heavy tails (a burst of other work lands in one block of
a round, not in both: per-round spread 3-4x what its interquartile range implies, measured here),
and one such round moved a process's mean by percents. The ratio is exp(mean over processes of
those medians). The time shown for the baseline is exp(mean over processes of the median log time
of its rounds), and every other variant's time is the baseline's times its ratio, so the ratio
shown is exactly the ratio of the times shown (`group_times`).

Its interval says where the *next* run's ratio will land (same settings, 95%): a Student t
prediction interval from the per-process medians, so between-process spread (layout, load) is in
it. A confidence interval for the true ratio would be sqrt(2) narrower, and another run's estimate
falls inside it only about 83% of the time (two estimates of equal precision differ by sqrt(2) x
the standard error). With one process only, a percentile bootstrap (scipy.stats.bootstrap's) of the median
over that process's paired rounds, widened the same way and flagged as within-process only.

Processes forked from one server share its layout, so where a run records them the interval
counts servers as well as processes (`spread.standard_error`). A ratio sets aside the processes
where either of its variants ran at least BUSY times its own median process's time (a busy
machine: every ratio there moved by 4-13%); the criterion is each variant's own time, never a
ratio, and a machine busy all run long sets nothing aside (`spread`, docs/timing.md, rounds 27
and 28).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special
from scipy import stats as sps

from dotbias.timing.spread import Processes, busy, standard_error

CONFIDENCE = 0.95
MIN_ROUNDS = 10          # no winner is named from fewer paired rounds than this
METHOD = ("ratio: per process the median of its paired per-round ratios, then their geometric mean "
          "over processes (the baseline's time: the same; every other time is the baseline's times "
          "its ratio); interval: where the next run's ratio lands, a Student t prediction interval "
          "over the per-process medians (fresh workers, interleaved rounds in a random order), "
          "processes forked from one server counted as sharing its layout; one process: a "
          "bootstrap over its paired rounds; a process where either variant of a ratio ran at "
          "least 1.1x its own median process's time (a busy machine) is set aside from that ratio")
NEXT_RUN = math.sqrt(2)     # this run's mean and the next one's each carry one standard error
RESAMPLES = 2000            # a one-process interval's bootstrap resamples (`_bootstrap_median`)


@dataclass(frozen=True)
class Ratio:
    """numerator/denominator time ratio with its interval; above 1 the numerator is slower."""
    numerator: str
    denominator: str
    value: float
    low: float
    high: float
    processes: int
    rounds: int
    method: str
    se: float = math.nan     # standard error of this run's mean log-ratio
    # Share of the spread between processes' mean log-ratios that their rounds' own noise does not
    # explain (0: the rounds explain it all, more rounds help; near 1: the processes differ, more
    # processes help); nan with one process.
    process_share: float = math.nan
    set_aside: int = 0       # processes on a busy machine, left out of the ratio (`busy`)
    # Share of se^2 that more processes of the same servers would not shrink: the servers' layouts
    server_share: float = 0.0

    @property
    def faster(self) -> str | None:
        """The faster variant when the interval excludes 1 and there are enough paired rounds."""
        if self.rounds < MIN_ROUNDS:
            return None
        return self.denominator if self.low > 1 else self.numerator if self.high < 1 else None

    @property
    def half_width(self) -> float:
        """Half the interval's width relative to the ratio (0.03 = +-3%)."""
        return (self.high - self.low) / 2 / self.value

    def as_dict(self) -> dict:
        return {"numerator": self.numerator, "denominator": self.denominator, "value": self.value,
                "low": self.low, "high": self.high, "processes": self.processes, "rounds": self.rounds,
                "method": self.method, "faster": self.faster, "se": self.se,
                "process_share": self.process_share, "set_aside": self.set_aside,
                "server_share": self.server_share}


def typical_time(processes: Processes) -> float:
    """exp(mean over processes of the median log time of their rounds): one variant's time on its
    own (the baseline's time shown; the others' are paired with it, `group_times`)."""
    centres = [np.median(np.log(np.asarray(p, float))) for p in processes if len(p)]
    return float(math.exp(np.mean(centres))) if centres else math.nan


def group_times(rounds: dict[str, Processes], baseline: str, ratios: Sequence[Ratio]) -> dict[str, float]:
    """Every variant's time shown: the baseline's `typical_time` over its quiet processes (`busy`),
    the others' that times their ratio to it (`ratios`, made once by the caller: numerator -> the
    variant), so that a ratio shown is exactly the quotient of the times shown; a variant without
    a ratio (no baseline rounds) gets its own `typical_time`."""
    ps = rounds.get(baseline) or []
    base = typical_time([p for p, b in zip(ps, busy(ps)) if not b]) if ps else math.nan
    paired = {x.numerator: base * x.value for x in ratios} if math.isfinite(base) else {}
    paired |= {baseline: base} if math.isfinite(base) else {}
    return {name: paired[name] if name in paired else typical_time(ps) for name, ps in rounds.items()}


def _log_ratios(num: Processes, den: Processes) -> list[np.ndarray]:
    if len(num) != len(den) or any(len(a) != len(b) for a, b in zip(num, den)):
        raise ValueError("the two variants were not timed in the same rounds (unpaired data)")
    out = [np.log(np.asarray(a, float)) - np.log(np.asarray(b, float)) for a, b in zip(num, den)]
    return [r for r in out if len(r)]


def ratio(num: Processes, den: Processes, names: tuple[str, str] = ("a", "b"),
          confidence: float = CONFIDENCE, servers: Sequence[int] = ()) -> Ratio:
    """The ratio num/den of two variants timed in the same rounds of the same processes, `den`
    the baseline: the processes where either ran on a busy machine (`busy`, each against its own
    median process) are left out and counted.
    `servers`: the server each process forked from (`timing.worker_server`), () each its own.
    Processes of one server share its layout, so the interval counts them as such
    (`spread.standard_error`)."""
    if servers and len(servers) != len(den):
        raise ValueError(f"{names[0]}/{names[1]}: {len(servers)} servers for {len(den)} processes")
    flags = ([a or b for a, b in zip(busy(num), busy(den))]
             if len(num) == len(den) else [])     # unpaired: _log_ratios says so
    servers = list(servers) or list(range(len(den)))
    if any(flags):
        num, den, servers = ([p for p, b in zip(ps, flags) if not b] for ps in (num, den, servers))
    logs = _log_ratios(num, den)
    if not logs:
        raise ValueError(f"{names[0]}/{names[1]}: no timed rounds")
    servers = [s for s, p in zip(servers, num) if len(p)]      # the processes _log_ratios kept
    means, quartiles = _medians_and_quartiles(logs)
    centre = float(means.mean())
    rounds = sum(len(r) for r in logs)
    if len(logs) >= 2:
        se, df, server_share = standard_error(means, servers)
        half = _t_quantile((1 + confidence) / 2, df) * se * NEXT_RUN
        layouts = len(set(servers))
        method = f"t over {len(logs)} processes" + (f" of {layouts} servers" if layouts < len(logs) else "")
        low, high = centre - half, centre + half
    else:
        low, high = _bootstrap_median(logs[0], confidence)
        se = (high - low) / (2 * float(sps.norm.ppf((1 + confidence) / 2)))
        low, high = centre - NEXT_RUN * (centre - low), centre + NEXT_RUN * (high - centre)
        method = "bootstrap over rounds of 1 process"
        server_share = 0.0
    return Ratio(*names, math.exp(centre), math.exp(low), math.exp(high), len(logs), rounds, method,
                 se, _process_share(logs, means, quartiles), sum(flags), server_share)


def _t_quantile(q: float, df: float) -> float:
    """Student t quantile: the function `scipy.stats.t.ppf` calls, without its 30 us of argument
    handling (the same value; `ratio` is called thousands of times by the adaptive runs' tests)."""
    return float(special.stdtrit(df, q))


def _medians_and_quartiles(logs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Each process's median and (q1, q3) of its rounds: one numpy call over every process when
    they have as many rounds (the usual case; the same values as process by process)."""
    if len({len(r) for r in logs}) == 1:
        stacked = np.stack(logs)
        return np.median(stacked, axis=1), np.percentile(stacked, [25, 75], axis=1).T
    return (np.array([np.median(r) for r in logs]),
            np.array([np.percentile(r, [25, 75]) for r in logs]))


def _process_share(logs: list[np.ndarray], means: np.ndarray, quartiles: np.ndarray) -> float:
    """1 - (mean over processes of var(rounds)/n) / var(process medians), clipped at 0: how much
    of the between-process spread is the processes themselves rather than noise in their rounds
    (a round's variance from its interquartile range, the scale the median sees: a normal's IQR is
    1.349 sd)."""
    if len(logs) < 2 or any(len(r) < 2 for r in logs):
        return math.nan
    between = float(means.var(ddof=1))
    within = float(np.mean([float(((q3 - q1) / 1.349) ** 2) * MEDIAN_EFFICIENCY / len(r)
                            for (q1, q3), r in zip(quartiles, logs)]))
    return max(0.0, 1.0 - within / between) if between > 0 else 0.0


MEDIAN_EFFICIENCY = math.pi / 2      # var(median) / var(mean) of normal rounds


def _bootstrap_median(x: np.ndarray, confidence: float) -> tuple[float, float]:
    """Percentile bootstrap interval of the median of `x`, RESAMPLES resamples from a generator
    seeded 0 (the same data give the same interval; BCa's jackknife is degenerate for a median):
    the draws and the interval of `scipy.stats.bootstrap((x,), np.median, method="percentile",
    n_resamples=RESAMPLES, random_state=np.random.default_rng(0))`, each resample's median read
    from its sorted ranks (1.6 ms against scipy's 4.2 ms for 80 rounds; tests/test_stats.py)."""
    if len(x) < 3 or np.ptp(x) == 0:
        return float(np.median(x)), float(np.median(x))
    n, order = len(x), np.argsort(x, kind="stable")
    ranks = np.empty(n, dtype=np.intp)
    ranks[order] = np.arange(n)
    draws = np.random.default_rng(0).integers(0, n, (RESAMPLES, n))
    middle = np.sort(ranks[draws], axis=1)[:, [(n - 1) // 2, n // 2]]
    medians = x[order][middle].mean(axis=1)
    low, high = np.percentile(medians, [50 * (1 - confidence), 50 * (1 + confidence)])
    return float(low), float(high)


def change(now: Ratio, before: Ratio) -> tuple[float, float, float]:
    """now/before (same numerator and denominator, two runs) with the interval it lies in when
    nothing changed but noise: the two runs' next-run intervals, each side's log half-widths
    combined in quadrature. Each next-run interval already spans the spread between two runs with
    the same settings (t quantile, sqrt(2) standard errors), so together they also allow for drift
    between runs that the processes inside one run share and cannot show (the two standard errors
    combined with a normal quantile called unchanged reruns changed). An unchanged rerun lands
    inside about 99% of the time without such drift, about 95% with a drift as large as 1.5 of a
    run's standard errors (tests/test_saved.py)."""
    centre = math.log(now.value) - math.log(before.value)
    down = math.hypot(math.log(now.value / now.low), math.log(before.high / before.value))
    up = math.hypot(math.log(now.high / now.value), math.log(before.value / before.low))
    return math.exp(centre), math.exp(centre - down), math.exp(centre + up)


def thin(processes: Processes, cap: int) -> tuple[Processes, int]:
    """Every k-th round of each process so that at most about `cap` rounds remain (k is the same
    for every variant of a group, which keeps rounds paired); returns the rounds and k."""
    total = sum(len(p) for p in processes)
    step = max(1, math.ceil(total / cap))
    return ([list(p[::step]) for p in processes] if step > 1 else processes), step
