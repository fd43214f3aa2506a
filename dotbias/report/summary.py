"""Benchmark reports: runs read once into records (`benchmark_json.load_run`), each benchmark group
summarised: every variant's time, each variant's ratio to the baseline with its interval
(`timing.stats`), the A/A self-check, physical floors and instruction counts.

`report.markdown` turns a `Summary` into REPORT.md and terminal lines; `report.write` writes them.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from dotbias.report.benchmark_json import (  # noqa: F401
    DEFAULT_BASELINE,
    FORMAT,
    UPGRADES,
    Benchmark,
    Environment,
    Run,
    default_runs,
    load_run,
    read_benchmark,
    upgrade,
)
from dotbias.timing import stats
from dotbias.timing.groups import OPERATIONS, Group

CAP_ROUNDS = 5_000       # rounds per group kept for the interval: memory stays bounded


@dataclass(frozen=True)
class VariantTime:
    """One variant's time in one group (`stats.group_times`: the baseline's own, the others'
    paired with it), and the benchmark it was measured in (`measured`: floor, instruction
    counts, peak memory, first call, notes)."""
    name: str
    seconds: float
    processes: int
    rounds: int
    measured: Benchmark | None = field(default=None, compare=False)

    @property
    def peak_bytes(self) -> int | None:
        """Peak bytes of one call (`timing.memory`), when the run measured it."""
        return self.measured.peak_bytes if self.measured else None


@dataclass(frozen=True)
class Row:
    """One benchmark group of one run, summarised."""
    group: Group
    run: str
    torch: str
    threads: int | None
    times: tuple[VariantTime, ...]
    ratios: tuple[stats.Ratio, ...]
    aa: stats.Ratio | None
    thinned: int = 1              # every k-th round kept (1: all)
    sweep_axes: tuple[str, ...] = ()   # the size-sweep axes this size lies on (none: a default size)
    baseline: str = DEFAULT_BASELINE   # the variant every ratio's denominator is, as the run recorded


    def time(self, name: str) -> VariantTime | None:
        return next((t for t in self.times if t.name == name), None)


def recorded_baseline(benches: Sequence[Benchmark], where: str = "") -> str:
    """The baseline a group was judged against, as its benchmarks recorded it (a run that recorded
    none: cp); benchmarks that disagree raise ValueError naming `where`. A group run without its
    baseline (deselected) has no ratios, only times."""
    named = sorted({b.baseline for b in benches})
    if len(named) > 1:
        raise ValueError(f"{where}benchmarks of one group record different baselines "
                         f"{', '.join(named)}; each run is judged against one")
    return named[0]


def summarise_group(benches: Sequence[Benchmark], run: str = "", torch: str = "?",
                    where: str = "") -> Row:
    """One group's row from its benchmarks' records (a saved run's, read by `load_run`, or those
    `pytest_bench/session.py` builds as it measures)."""
    by_name = {b.variant: b for b in benches}
    base = recorded_baseline(benches, where)
    rounds = {v: b.rounds for v, b in by_name.items()}
    step = 1
    if base in rounds and sum(len(p) for p in rounds[base]) > CAP_ROUNDS:
        step = stats.thin(rounds[base], CAP_ROUNDS)[1]
        rounds = {v: tuple(p[::step] for p in ps) for v, ps in rounds.items()}
    servers = by_name[base].servers if base in by_name else ()
    ratios = tuple(stats.ratio(rounds[v], rounds[base], (v, base), servers=servers) for v in rounds
                   if v != base and rounds[v] and rounds.get(base))
    shown = stats.group_times({v: ps for v, ps in rounds.items() if ps}, base, ratios)
    times = tuple(VariantTime(v, shown[v] if ps else by_name[v].median,
                              len(ps), sum(map(len, ps)), by_name[v])
                  for v, ps in rounds.items())
    copy = [p[::step] for p in by_name[base].aa] if base in by_name else []
    aa = stats.ratio(copy, rounds[base], (f"{base}_copy", base), servers=servers) if copy else None
    first = by_name.get(base, benches[0])
    return Row(benches[0].group, run, torch, first.threads, times, ratios, aa, step,
               first.sweep_axes, base)


def row_order(row: Row) -> tuple:
    g = row.group
    rank = OPERATIONS.index(g.operation) if g.operation in OPERATIONS else 99
    return (rank, g.operation, g.device, g.size.n_users, g.size.n_factors, g.size.bs, g.size.name,
            g.dtype, row.torch, row.run)


@dataclass(frozen=True)
class Summary:
    rows: tuple[Row, ...]
    runs: tuple[Environment, ...]
    partial: tuple[str, ...] = ()           # one line per run that lacks groups others have

    @property
    def baselines(self) -> list[str]:
        """The baselines the rows were judged against, in row order (one, unless runs differ)."""
        return list(dict.fromkeys(r.baseline for r in self.rows))


def summarise(runs: Sequence[Run]) -> Summary:
    """One row per (group, run), in the one operation order; partial runs named. A run without a
    label is named by its place: #1, #2, ..."""
    runs = [r if r.label else replace(r, environment=replace(r.environment, run=f"#{i}"))
            for i, r in enumerate(runs, 1)]
    rows = []
    for run in runs:
        groups: dict[Group, list[Benchmark]] = {}
        for b in run.benchmarks:
            groups.setdefault(b.group, []).append(b)
        rows += [summarise_group(benches, run.label, run.torch, f"{run.path}: ")
                 for benches in groups.values()]
    return Summary(tuple(sorted(rows, key=row_order)), tuple(r.environment for r in runs),
                   partial_runs(runs))


def partial_runs(runs: Sequence[Run]) -> tuple[str, ...]:
    """A line for each run missing operations that a full `pytest bench` times."""
    out = []
    for run in runs:
        ops = {b.group.operation for b in run.benchmarks}
        missing = [op for op in OPERATIONS if op not in ops]
        if missing:
            out.append(f"run {run.label} ({run.path.name}) is partial: no {', '.join(missing)}")
    return tuple(out)
