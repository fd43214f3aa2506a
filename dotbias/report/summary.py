"""Benchmark reports: read pytest-benchmark JSON runs (one or many machines / torch versions) and
summarise each benchmark group: every variant's time, each variant's ratio to the baseline with
its interval (`timing.stats`), the A/A self-check, physical floors and instruction counts.

Every benchmark's extra_info carries its dotbias `format`; `upgrade` is the one path from any older
format to the current one (as pyperf does), and refuses a newer or unknown one in one line.
`report.markdown` turns a `Summary` into REPORT.md and terminal lines; `report.write` writes them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dotbias.io.files import read_json
from dotbias.timing import stats
from dotbias.timing.groups import OPERATIONS, Group

CAP_ROUNDS = 5_000       # rounds per group kept for the interval: memory stays bounded
FORMAT = 3               # extra_info["format"] of the benchmarks `pytest bench` saves now
DEFAULT_BASELINE = "cp"  # what a run that recorded no baseline was judged against


def _from_format_1(info: dict) -> dict:
    """Format 1, the runs saved before benchmarks carried a format: the same layout, unmarked; the
    oldest recorded no baseline, and were judged against cp. (Every format stores the raw rounds,
    so ratios, their standard errors and the process share are recomputed from them.)"""
    return {"baseline": DEFAULT_BASELINE, **info}


def _from_format_2(info: dict) -> dict:
    """Format 2 did not record whether a variant is compiled: dotbias names its compiled twins
    `<name>_compiled[_mode][_dynamic]`, so the name says it."""
    return {"compiled": "_compiled" in f"_{info.get('variant', '')}", **info}


UPGRADES = {1: _from_format_1, 2: _from_format_2}      # format n -> its extra_info turned into format n + 1's


def upgrade(info: dict, where: str) -> dict:
    """One benchmark's extra_info in the current FORMAT, from any format this dotbias reads (no
    "format" key: 1). A newer or unknown format raises ValueError: one line naming `where`."""
    version = info.get("format", 1)
    known = isinstance(version, int) and not isinstance(version, bool) and 1 <= version <= FORMAT
    if not known:
        newer = isinstance(version, int) and not isinstance(version, bool) and version > FORMAT
        raise ValueError(f"{where} is dotbias format {version!r}: "
                         + (f"newer than this dotbias reads (1 to {FORMAT}); upgrade dotbias" if newer
                            else f"unknown (this dotbias reads formats 1 to {FORMAT})"))
    while version < FORMAT:
        info, version = UPGRADES[version](info), version + 1
    return {**info, "format": FORMAT}


@dataclass
class Run:
    """One pytest-benchmark JSON file."""
    path: Path
    machine: dict
    commit: dict
    datetime: str
    benchmarks: list[dict]
    label: str = ""

    @property
    def torch(self) -> str:
        return (self.machine.get("dotbias") or {}).get("torch") or "?"

    def environment(self) -> dict:
        d = self.machine.get("dotbias") or {}
        cpu = self.machine.get("cpu") or {}
        dirty = " (dirty)" if self.commit.get("dirty") else ""
        return {"run": self.label, "file": self.path.name, "datetime": self.datetime,
                "commit": (self.commit.get("id") or "?")[:10] + dirty,
                "node": self.machine.get("node", "?"), "cpu": cpu.get("brand_raw") or "?",
                "cpu_count": d.get("cpu_count", cpu.get("count")),
                "python": self.machine.get("python_version"),
                "torch": self.torch, "fastai": d.get("fastai"), "torch_threads": d.get("torch_threads"),
                "cuda": d.get("cuda"), "gpu": d.get("gpu")}


def load_run(path: str | Path) -> Run:
    """Read one pytest-benchmark JSON file; a bad file raises with a one-line message naming it."""
    path = Path(path)
    data = read_json(path, "pytest-benchmark JSON")
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise ValueError(f"{path}: not a pytest-benchmark file (no 'benchmarks' list at the top level)")
    if not data["benchmarks"]:
        raise ValueError(f"{path}: holds no benchmarks (was it saved from a --benchmark-disable run?)")
    for i, b in enumerate(data["benchmarks"]):
        info = b.get("extra_info") if isinstance(b, dict) else None
        name = b.get("name", "?") if isinstance(b, dict) else "?"
        if isinstance(info, dict):
            info = b["extra_info"] = upgrade(info, f"{path}: benchmark #{i} ({name})")
        if not isinstance(info, dict) or not isinstance(info.get("group"), dict):
            raise ValueError(f"{path}: benchmark #{i} ({name}) has no extra_info.group; "
                             "not a dotbias pytest-benchmark file (rerun `pytest bench`)")
    return Run(path, data.get("machine_info") or {}, data.get("commit_info") or {},
               str(data.get("datetime", "?")), data["benchmarks"])


def default_runs(storage: Path) -> list[Path]:
    """The newest saved run of each machine folder in pytest-benchmark's file storage."""
    storage = Path(storage)
    if not storage.is_dir():
        return []
    newest = []
    for folder in sorted(p for p in storage.iterdir() if p.is_dir()):
        runs = sorted(folder.glob("[0-9][0-9][0-9][0-9]_*.json"))
        if runs:
            newest.append(runs[-1])
    return newest


@dataclass(frozen=True)
class VariantTime:
    """One variant's time in one group: geometric mean over processes and rounds."""
    name: str
    seconds: float
    processes: int
    rounds: int
    extra: dict = field(default_factory=dict, compare=False)   # floor, instructions, memory

    @property
    def peak_bytes(self) -> int | None:
        """Peak bytes of one call (`timing.memory`), when the run measured it."""
        return (self.extra.get("memory") or {}).get("peak_bytes")


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


def recorded_baseline(benches: list[dict], where: str = "") -> str:
    """The baseline a group was judged against, as its benchmarks recorded it (`extra_info`
    "baseline"; a run that recorded none: cp); benchmarks that disagree raise ValueError naming
    `where`. A group run without its baseline (deselected) has no ratios, only times."""
    named = sorted({b["extra_info"].get("baseline") or DEFAULT_BASELINE for b in benches})
    if len(named) > 1:
        raise ValueError(f"{where}benchmarks of one group record different baselines "
                         f"{', '.join(named)}; each run is judged against one")
    return named[0]


def _processes(b: dict, key: str, where: str) -> stats.Processes:
    seconds = ((b["extra_info"].get(key) or {}).get("seconds")) or []
    for p in seconds:
        bad = next((s for s in p if not isinstance(s, (int, float)) or s <= 0), None)
        if bad is not None:
            raise ValueError(f"{where}: {key} holds a time of {bad!r} s; every round must be positive")
    return seconds


def summarise_group(benches: list[dict], run: str = "", torch: str = "?", where: str = "") -> Row:
    """One group's row from its benchmarks (pytest-benchmark JSON dicts with dotbias extra_info)."""
    group = Group.from_dict(benches[0]["extra_info"]["group"])
    by_name = {b["extra_info"]["variant"]: b for b in benches}
    base = recorded_baseline(benches, where)
    rounds = {v: _processes(b, "timing", f"{where}{b.get('name', v)}") for v, b in by_name.items()}
    step = 1
    if base in rounds and sum(len(p) for p in rounds[base]) > CAP_ROUNDS:
        step = stats.thin(rounds[base], CAP_ROUNDS)[1]
        rounds = {v: [p[::step] for p in ps] for v, ps in rounds.items()}
    times = tuple(VariantTime(v, stats.geomean_time(ps) if ps else by_name[v]["stats"]["median"],
                              len(ps), sum(map(len, ps)), _extra(by_name[v]))
                  for v, ps in rounds.items())
    ratios = tuple(stats.ratio(rounds[v], rounds[base], (v, base)) for v in rounds
                   if v != base and rounds[v] and rounds.get(base))
    copy = [p[::step] for p in _processes(by_name[base], "aa", f"{where}{base}")] if base in by_name else []
    aa = stats.ratio(copy, rounds[base], (f"{base}_copy", base)) if copy else None
    info = by_name.get(base, benches[0])["extra_info"]
    return Row(group, run, torch, info.get("threads"), times, ratios, aa, step,
               tuple(info.get("sweep_axes") or ()), base)


def _extra(b: dict) -> dict:
    """Floor and instruction counts as stored, whether the variant is compiled; the slowest first
    call (compilation, or an eager variant's warm-up) and the graphs compiled inside the timed
    rounds, over the processes."""
    info = b["extra_info"]
    out = {k: info[k] for k in ("floor", "instructions", "memory", "notes") if info.get(k)}
    out["compiled"] = bool(info.get("compiled"))
    timing = info.get("timing") or {}
    if timing.get("first_call_s"):
        out["first_call_s"] = max(timing["first_call_s"])
    if timing.get("compiles_in_rounds"):
        out["compiles_in_rounds"] = sum(timing["compiles_in_rounds"])
    return out


def row_order(row: Row) -> tuple:
    g = row.group
    rank = OPERATIONS.index(g.operation) if g.operation in OPERATIONS else 99
    return (rank, g.operation, g.device, g.size.n_users, g.size.n_factors, g.size.bs, g.size.name,
            g.dtype, row.torch, row.run)


@dataclass(frozen=True)
class Summary:
    rows: tuple[Row, ...]
    runs: tuple[dict, ...]                  # environments
    partial: tuple[str, ...] = ()           # one line per run that lacks groups others have

    @property
    def baselines(self) -> list[str]:
        """The baselines the rows were judged against, in row order (one, unless runs differ)."""
        return list(dict.fromkeys(r.baseline for r in self.rows))


def summarise(runs: list[Run]) -> Summary:
    """One row per (group, run), in the one operation order; partial runs named."""
    for i, run in enumerate(runs, 1):
        run.label = run.label or f"#{i}"
    rows = []
    for run in runs:
        groups: dict[Group, list[dict]] = {}
        for b in run.benchmarks:
            groups.setdefault(Group.from_dict(b["extra_info"]["group"]), []).append(b)
        rows += [summarise_group(bs, run.label, run.torch, f"{run.path}: ") for bs in groups.values()]
    return Summary(tuple(sorted(rows, key=row_order)), tuple(r.environment() for r in runs),
                   partial_runs(runs))


def partial_runs(runs: list[Run]) -> tuple[str, ...]:
    """A line for each run missing operations that a full `pytest bench` times."""
    out = []
    for run in runs:
        ops = {b["extra_info"]["group"]["operation"] for b in run.benchmarks}
        missing = [op for op in OPERATIONS if op not in ops]
        if missing:
            out.append(f"run {run.label} ({run.path.name}) is partial: no {', '.join(missing)}")
    return tuple(out)
