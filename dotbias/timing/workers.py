"""Interleaved rounds repeated in fresh worker processes (pyperf's lesson: each process draws its own
memory layout and meets its own load, so between-process spread belongs in the interval).

`run_processes` starts `python -m dotbias.timing.workers` several times, one after the other; each reads a
JSON `WorkSpec` on stdin, times every group in it and writes JSON on stdout. A process that fails
or hangs raises one line naming the process and its last stderr line.
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass

import torch

from dotbias.timing.groups import EPOCH_ROUNDS, INTERLEAVE_S, KERNELS, Group
from dotbias.models.plugins import load_variants
from dotbias.models.optimizers import parse_setups
from dotbias.timing.operations import make_op, setups_for
from dotbias.timing.rounds import interleave


@dataclass(frozen=True)
class WorkSpec:
    """What each worker process times: every group, every variant, plus an A/A copy if `aa`."""
    groups: tuple[Group, ...]
    variants: tuple[str, ...]
    baseline: str
    aa: bool = False
    budget_s: float = INTERLEAVE_S   # seconds of interleaved rounds per kernel group per process
    epoch_rounds: int | None = None  # rounds per epoch group per process (None: EPOCH_ROUNDS)
    threads: int = 1
    seed: int = 0
    plugins: tuple[str, ...] = ()   # variant specs from outside dotbias, loaded again in the worker
    process: int = 0                # which process this is: seeds its rounds' random order
    setups: tuple[str, ...] = ()    # training setups ("cp+fused"), timed in the groups that train

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkSpec:
        d = json.loads(text)
        d["groups"] = tuple(Group.from_dict(g) for g in d["groups"])
        d["variants"] = tuple(d["variants"])
        d["plugins"] = tuple(d.get("plugins", ()))
        d["setups"] = tuple(d.get("setups", ()))
        return cls(**d)


def aa_name(baseline: str) -> str:
    """The name under which a second copy of the baseline is timed for the A/A check."""
    return f"{baseline}_copy"


def time_group(spec: WorkSpec, group: Group) -> dict:
    """One group's interleaved rounds in this process: {"seconds": {name: [...]}, "iterations": n,
    "first_call_s": {name: s}, "compiles_in_rounds": {name: graphs compiled inside its rounds}}."""
    names = spec.variants + setups_for(group, parse_setups(spec.setups))
    fns = {v: make_op(group, v, spec.seed) for v in names}
    if spec.aa:
        fns[aa_name(spec.baseline)] = make_op(group, spec.baseline, spec.seed)
    if group.operation in KERNELS:
        rounds = interleave(fns, device=group.device, budget_s=spec.budget_s, seed=spec.process)
    else:   # an epoch: one call per round, a fixed number of rounds
        n = spec.epoch_rounds or EPOCH_ROUNDS[group.operation]
        rounds = interleave(fns, device=group.device, budget_s=0, block_s=0, seed=spec.process,
                            min_rounds=n, max_rounds=n)
    del fns
    if group.device.startswith("cuda"):
        torch.cuda.empty_cache()
    return {"seconds": rounds.seconds, "iterations": rounds.iterations,
            "first_call_s": rounds.first_call_s, "compiles_in_rounds": rounds.compiles_in_rounds}


def work(spec: WorkSpec) -> dict[str, dict]:
    """Time every group of `spec` in this process; group label -> `time_group`'s result."""
    torch.set_num_threads(spec.threads)
    return {g.label: time_group(spec, g) for g in spec.groups}


def worker_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONHASHSEED="0")
    return env


def run_process(spec: WorkSpec, index: int, timeout_s: float) -> dict[str, dict]:
    """One fresh worker process; its result, or RuntimeError with one line saying what went wrong."""
    cmd = [sys.executable, "-m", "dotbias.timing.workers"]
    try:
        done = subprocess.run(cmd, input=spec.to_json(), capture_output=True, text=True,
                              timeout=timeout_s, env=worker_env(spec.threads))
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"timing worker {index + 1} did not finish within {timeout_s:.0f} s") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise RuntimeError(f"timing worker {index + 1} exited {done.returncode}: {last}")
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        raise RuntimeError(f"timing worker {index + 1} wrote no JSON result") from None


def run_processes(spec: WorkSpec, processes: int, timeout_s: float = 600.0,
                  progress=None) -> list[dict[str, dict]]:
    """`processes` workers one after the other (never in parallel: they would time each other).
    `progress`, if given, is called as progress(done, total) after each."""
    results = []
    for i in range(processes):
        results.append(run_process(dataclasses.replace(spec, process=i), i, timeout_s))
        if progress is not None:
            progress(i + 1, processes)
    return results


def main() -> int:
    """`python -m dotbias.timing.workers`: WorkSpec JSON on stdin, results JSON on stdout (one line)."""
    try:
        spec = WorkSpec.from_json(sys.stdin.read())
        load_variants(spec.plugins, env=False, entry_points=False)
        result = work(spec)
    except Exception as e:      # the parent prints this one line
        print(f"{type(e).__name__}: {e}".replace("\n", " "), file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
