"""pytest-benchmark JSON at the edge: a saved run read once into records (`Run`, `Benchmark`,
`Environment`), through the one upgrade path from any older dotbias format (as pyperf does);
nothing past `load_run` touches a JSON dict. Every benchmark's extra_info carries its dotbias
`format`; a newer or unknown one is refused in one line naming the file."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from dotbias.equivalence.contract_note import ContractNote
from dotbias.io.files import read_json
from dotbias.timing.groups import Floor, Group
from dotbias.timing.instruction_counts import Counts

FORMAT = 3               # extra_info["format"] of the benchmarks `pytest bench` saves now
DEFAULT_BASELINE = "cp"  # what a run that recorded no baseline was judged against
Rounds = tuple[tuple[float, ...], ...]     # seconds per call: one tuple of rounds per process


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


@dataclass(frozen=True)
class Benchmark:
    """One (group, variant) benchmark as the report reads it."""
    name: str
    group: Group
    variant: str
    baseline: str = DEFAULT_BASELINE    # the variant its run judged every other against
    rounds: Rounds = ()                 # the interleaved rounds, per worker process
    aa: Rounds = ()                     # the baseline's copy in the same rounds (--aa)
    median: float | None = None         # pytest-benchmark's own median (a run without rounds)
    compiled: bool = False
    threads: int | None = None
    sweep_axes: tuple[str, ...] = ()    # the size-sweep axes its size lies on (none: default)
    first_call_s: float | None = None   # the slowest first call over the processes
    compiles_in_rounds: int = 0         # graphs compiled inside the timed rounds, all processes
    peak_bytes: int | None = None       # of one call (`timing.memory`), where measured
    floor: Floor | None = None
    instructions: Counts | None = None
    notes: tuple[str, ...] = ()
    fullname: str = ""                  # pytest's node id: what --benchmark-compare matches
    contract: ContractNote | None = None    # held to the contract at this shape (not the baseline)
    servers: tuple[int, ...] = ()       # the server each process forked from (): each its own


def _rounds(info: dict, key: str, where: str) -> Rounds:
    seconds = ((info.get(key) or {}).get("seconds")) or []
    for p in seconds:
        bad = next((s for s in p if not isinstance(s, (int, float)) or s <= 0), None)
        if bad is not None:
            raise ValueError(f"{where}: {key} holds a time of {bad!r} s; every round must be positive")
    return tuple(tuple(p) for p in seconds)


def _servers(timing: dict, processes: int, where: str) -> tuple[int, ...]:
    """timing["servers"]: one server index (an int >= 0) per process, or absent (each its own)."""
    servers = timing.get("servers")
    if servers is None:
        return ()
    if (not isinstance(servers, list) or len(servers) != processes
            or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in servers)):
        raise ValueError(f"{where}: timing.servers is {servers!r:.60}; expected one server index "
                         f"(an int >= 0) for each of its {processes} processes")
    return tuple(servers)


def read_benchmark(b: object, where: str) -> Benchmark:
    """One benchmark of pytest-benchmark's JSON (dotbias extra_info of any format this dotbias
    reads) as a record; ValueError in one line naming `where`."""
    info = b.get("extra_info") if isinstance(b, dict) else None
    if isinstance(info, dict):
        info = upgrade(info, where)
    if not isinstance(info, dict) or not isinstance(info.get("group"), dict):
        raise ValueError(f"{where} has no extra_info.group; not a dotbias pytest-benchmark file "
                         "(rerun `pytest bench`)")
    try:
        group = Group.from_dict(info["group"])
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    timing, rounds = info.get("timing") or {}, _rounds(info, "timing", where)
    return Benchmark(
        str(b.get("name", "?")), group, str(info.get("variant")),
        info.get("baseline") or DEFAULT_BASELINE, rounds,
        _rounds(info, "aa", where), (b.get("stats") or {}).get("median"), bool(info.get("compiled")),
        info.get("threads"), tuple(info.get("sweep_axes") or ()),
        max(timing["first_call_s"]) if timing.get("first_call_s") else None,
        sum(timing.get("compiles_in_rounds") or ()),
        (info.get("memory") or {}).get("peak_bytes"),
        Floor(**info["floor"]) if info.get("floor") else None,
        Counts.from_dict(info["instructions"]) if info.get("instructions") else None,
        tuple(info.get("notes") or ()), str(b.get("fullname", "")),
        ContractNote.from_dict(info["contract"], where) if info.get("contract") else None,
        _servers(timing, len(rounds), where))


@dataclass(frozen=True)
class Environment:
    """Where and with what a run was made, from pytest-benchmark's machine_info and commit_info
    (and dotbias's part of machine_info); REPORT.md's environment table has one row of these."""
    run: str
    file: str
    datetime: str
    commit: str
    node: str
    cpu: str
    cpu_count: int | None
    python: str | None
    torch: str
    fastai: str | None
    torch_threads: int | None
    cuda: str | None
    gpu: str | None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Run:
    """One pytest-benchmark JSON file, read once: its benchmarks and where it was made."""
    path: Path
    environment: Environment
    benchmarks: tuple[Benchmark, ...]

    @property
    def label(self) -> str:
        return self.environment.run

    @property
    def torch(self) -> str:
        return self.environment.torch


def _environment(data: dict, path: Path, label: str) -> Environment:
    machine, commit = data.get("machine_info") or {}, data.get("commit_info") or {}
    d, cpu = machine.get("dotbias") or {}, machine.get("cpu") or {}
    dirty = " (dirty)" if commit.get("dirty") else ""
    return Environment(label, path.name, str(data.get("datetime", "?")),
                       (commit.get("id") or "?")[:10] + dirty, machine.get("node", "?"),
                       cpu.get("brand_raw") or "?", d.get("cpu_count", cpu.get("count")),
                       machine.get("python_version"), d.get("torch") or "?", d.get("fastai"),
                       d.get("torch_threads"), d.get("cuda"), d.get("gpu"))


def load_run(path: str | Path, label: str = "") -> Run:
    """Read one pytest-benchmark JSON file into a `Run` (`label`: how the report names it); a bad
    file raises with a one-line message naming it."""
    path = Path(path)
    data = read_json(path, "pytest-benchmark JSON")
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise ValueError(f"{path}: not a pytest-benchmark file (no 'benchmarks' list at the top level)")
    if not data["benchmarks"]:
        raise ValueError(f"{path}: holds no benchmarks (was it saved from a --benchmark-disable run?)")
    benches = tuple(read_benchmark(b, f"{path}: benchmark #{i} "
                                   f"({b.get('name', '?') if isinstance(b, dict) else '?'})")
                    for i, b in enumerate(data["benchmarks"]))
    return Run(path, _environment(data, path, label), benches)


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
