"""Instruction counts: a load-independent second opinion beside every CPU timing, and a gate.

`torch.utils.benchmark.Timer(...).collect_callgrind` runs the operation under valgrind's callgrind
in a fresh `python` (the one on PATH, so this interpreter's folder goes first), several repeats;
counts are denoised (`counts(denoise=True)`: CPython's own bookkeeping removed). The gate compares
the minimum count per call with a saved run's and fails above a threshold (default 1%).

The report reads `Counts` without torch: torch is imported only where counts are collected.
"""
from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from dotbias.timing.groups import Group

THRESHOLD = 0.01
TOP = 15
# Calls per measurement by operation, so that every measurement runs a similar number of
# instructions: a count's noise is a roughly fixed number of instructions per measurement, so the
# cheap forward needs more calls to keep its relative noise as low as the step's.
CALLS = {"forward": 100, "forward_backward": 50, "step": 10}


def calls_for(group: Group, number: int | None = None) -> int:
    """Calls per measurement for `group`: `number` when given, else CALLS by its operation."""
    return number if number else CALLS.get(group.operation, 20)


def unsupported() -> str | None:
    """Why instruction counts cannot be collected here (one line), or None when they can."""
    if shutil.which("valgrind") is None:
        return "valgrind is not installed (apt-get install valgrind): --instructions skipped"
    import torch  # only here: the report reads Counts without torch
    if not torch._C._valgrind_supported_platform():
        return f"this torch build ({torch.__version__}) has no valgrind support: --instructions skipped"
    return None


@dataclass(frozen=True)
class Counts:
    """Denoised instructions per call of one variant in one group, one value per repeat."""
    per_call: tuple[float, ...]
    number: int                       # calls per measurement
    top: tuple[tuple[str, float], ...] = ()      # (function, instructions per call), exclusive
    delta: tuple[tuple[str, float], ...] = ()    # vs the baseline: largest per-call differences

    @property
    def minimum(self) -> float:
        return min(self.per_call)

    @property
    def spread(self) -> float:
        return (max(self.per_call) - self.minimum) / self.minimum

    def as_dict(self) -> dict:
        return asdict(self) | {"min": self.minimum, "spread": self.spread}

    @classmethod
    def from_dict(cls, d: dict) -> Counts:
        return cls(tuple(d["per_call"]), int(d["number"]), tuple(map(tuple, d.get("top", ()))),
                   tuple(map(tuple, d.get("delta", ()))))


CHILD = Path(__file__).with_name("callgrind_child.py")     # what callgrind runs, by path


ADDR_NO_RANDOMIZE = 0x0040000


def _no_aslr() -> int | None:
    """Start children without address-space randomization (Linux personality, as `setarch -R`):
    random addresses change hashing, alignment and cache behaviour from run to run, and with them
    the instruction counts. Returns the persona to restore, or None where it cannot be set."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        old = libc.personality(0xFFFFFFFF)
        if old < 0 or libc.personality(old | ADDR_NO_RANDOMIZE) < 0:
            return None
        return old
    except (OSError, AttributeError):
        return None


@contextmanager
def _environment(**values: str):
    """Environment variables set for the duration of the block, then put back as they were."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _restore_persona(old: int | None) -> None:
    if old is not None:
        ctypes.CDLL(None).personality(old)


def collect_all(jobs: Sequence[tuple[Group, str]], number: int | None = None, repeats: int = 3,
                threads: int = 1, plugins: Sequence[str] = ()
                ) -> dict[tuple[str, str], tuple]:
    """callgrind stats of `calls_for(group, number)` calls of each (group, variant) job, `repeats`
    each, all in one valgrind process running `callgrind_child.py`: {(group label, variant):
    (CallgrindStats, ...)}. `plugins` (variant specs) register variants defined outside."""
    from torch.utils.benchmark import Timer  # torch only here: the report reads Counts without it

    config = {"threads": threads, "plugins": list(plugins), "repeats": repeats,
              "jobs": [[g.as_dict(), v, calls_for(g, number)] for g, v in jobs],
              "parent": os.getpid()}
    with tempfile.TemporaryDirectory(prefix="dotbias-callgrind") as tmp:
        config["moves_file"] = moves_file = os.path.join(tmp, "moves")
        config_file = Path(tmp, "jobs.json")
        config_file.write_text(json.dumps(config))
        setup = f"import runpy\nfn = runpy.run_path({str(CHILD)!r})['start']({str(config_file)!r})"
        # torch runs the `python` on PATH: this interpreter's; string hashes decide dict probes,
        # hence counts: one hash seed. Both only for the child, then put back.
        path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
        persona = _no_aslr()
        try:
            with _environment(PATH=path, PYTHONHASHSEED="0"):
                stats = Timer("fn()", setup=setup, num_threads=threads).collect_callgrind(
                    number=1, repeats=repeats * len(jobs))      # fn() runs the job's calls
        finally:
            _restore_persona(persona)
        moves = int(open(moves_file).read()) if os.path.exists(moves_file) else 0
    if moves != repeats * len(jobs) + 1:
        raise RuntimeError(f"callgrind: expected {repeats * len(jobs) + 1} job switches, saw {moves} "
                           "(this torch's collect_callgrind script differs): counts not trusted")
    out: dict[tuple[str, str], list] = {}
    for i, st in enumerate(stats):
        g, v = jobs[i // repeats]
        out.setdefault((g.label, v), []).append(st)
    return {k: tuple(v) for k, v in out.items()}


def short_name(function: str) -> str:
    """A C++ symbol without template and parameter lists, naming the first `at::native` kernel
    inside them: 'c10::function_ref::callback_fn [at::native::cpu_index_kernel]'."""
    kernel = re.search(r"at::native::(?:\(anonymous namespace\)::)?(\w+)", function)
    short = function
    for pattern in (r"<[^<>]*>", r"\([^()]*\)"):
        while re.search(pattern, short):
            short = re.sub(pattern, "", short)
    short = short.replace("???:", "").strip()
    if kernel and kernel.group(1) not in short:
        short += f" [at::native::{kernel.group(1)}]"
    return short


def _per_call(function_counts, number: int, n: int) -> tuple[tuple[str, float], ...]:
    return tuple((short_name(fc.function), fc.count / number) for fc in list(function_counts)[:n])


def counts(stats, number: int, baseline_stats=None) -> Counts:
    """Counts from `collect`'s stats; with the baseline's, the functions that differ most."""
    per_call = tuple(s.counts(denoise=True) / number for s in stats)
    top = _per_call(stats[0].as_standardized().stats(inclusive=False), number, TOP)
    delta = ()
    if baseline_stats is not None:
        d = stats[0].as_standardized().delta(baseline_stats[0].as_standardized())
        ranked = sorted(d, key=lambda fc: -abs(fc.count))
        delta = _per_call(ranked, number, TOP)
    return Counts(per_call, number, top, delta)


def gate(now: dict[tuple[str, str], float], before: dict[tuple[str, str], float],
         threshold: float = THRESHOLD) -> list[str]:
    """One line per (group label, variant) whose instructions per call changed by more than
    `threshold` against the saved run (both present)."""
    out = []
    for key in sorted(set(now) & set(before)):
        change = now[key] / before[key] - 1
        if abs(change) > threshold:
            out.append(f"instruction count regression: {key[0]} {key[1]}: {before[key]:,.0f} -> "
                       f"{now[key]:,.0f} per call ({change:+.2%}, threshold {threshold:.1%})")
    return out
