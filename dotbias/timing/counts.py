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
from dataclasses import asdict, dataclass

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
    import torch            # only here: the report reads Counts without torch
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


# One process measures every (group, variant) job: valgrind's start-up (importing torch under
# callgrind) dwarfs a measurement, so one process for all jobs, not one per job. torch's script
# calls gc.collect() after each dump; a gc callback moves `fn` to the next job there (outside the
# measured region) and counts its moves. Each job's repeats run one after the other: round-robin
# over the jobs makes every job's count drift from one repeat to the next. Timer also runs the
# setup once in the calling process; the pid check keeps the hook out of it.
_SETUP = """
import gc, json, os, torch
torch.set_num_threads({threads})
{prelude}
from dotbias.models.plugins import load_variants
load_variants({plugins!r}, env=False, entry_points=False)
from dotbias.timing.groups import Group
from dotbias.timing.operations import make_op
def _calls(op, k):
    def run():
        for _ in range(k):
            op()
    return run
_jobs = json.loads({jobs!r})
_ops = [make_op(Group.from_dict(g), v) for g, v, k in _jobs]
for _op in _ops:
    _op(); _op()
_fns = [_calls(op, k) for op, (g, v, k) in zip(_ops, _jobs)]
_order = [j for j in range(len(_fns)) for _ in range({repeats})]
_moves = []
def _next_job(phase, info):
    global fn
    if phase == "stop":
        _moves.append(1)
        if len(_moves) <= len(_order):
            fn = _fns[_order[len(_moves) - 1]]
        with open({moves_file!r}, "w") as f:
            f.write(str(len(_moves)))
fn = _fns[0]
if os.getpid() != {parent}:
    gc.disable()
    gc.callbacks.append(_next_job)
"""


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


def _restore_persona(old: int | None) -> None:
    if old is not None:
        ctypes.CDLL(None).personality(old)


def collect_all(jobs: Sequence[tuple[Group, str]], number: int | None = None, repeats: int = 3,
                threads: int = 1, prelude: str = "", plugins: Sequence[str] = ()
                ) -> dict[tuple[str, str], tuple]:
    """callgrind stats of `calls_for(group, number)` calls of each (group, variant) job, `repeats`
    each, all in one valgrind process: {(group label, variant): (CallgrindStats, ...)}. `prelude`
    (code run first there) and `plugins` (variant specs) register variants defined outside."""
    from torch.utils.benchmark import Timer     # torch only here: the report reads Counts without it

    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    spec = json.dumps([[g.as_dict(), v, calls_for(g, number)] for g, v in jobs])
    with tempfile.TemporaryDirectory(prefix="dotbias-callgrind") as tmp:
        moves_file = os.path.join(tmp, "moves")
        setup = _SETUP.format(threads=threads, prelude=prelude, plugins=list(plugins), jobs=spec,
                              repeats=repeats, moves_file=moves_file, parent=os.getpid())
        hash_seed = os.environ.get("PYTHONHASHSEED")
        os.environ["PYTHONHASHSEED"] = "0"      # string hashes decide dict probes, hence counts
        persona = _no_aslr()
        try:
            stats = Timer("fn()", setup=setup, num_threads=threads).collect_callgrind(
                number=1, repeats=repeats * len(jobs))      # fn() runs the job's calls
        finally:
            _restore_persona(persona)
            if hash_seed is None:
                os.environ.pop("PYTHONHASHSEED")
            else:
                os.environ["PYTHONHASHSEED"] = hash_seed
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
