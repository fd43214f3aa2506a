"""Interleaved rounds repeated in fresh worker processes (pyperf's lesson: each process draws its own
memory layout and meets its own load, so between-process spread belongs in the interval).

A worker process times every group of a `WorkSpec` and hands back its `Rounds` (`timing.adaptive`
decides how many, one after the other). `run_process` starts each in a fresh interpreter
(`python -m dotbias.timing.workers`, JSON in on stdin, out on stdout), paying torch's, fastai's
and dotbias's imports again: 2.5-3.7 s a process here, a third of a benchmark run;
`worker_server.Workers` (what `pytest bench` and `dotbias compare` use) forks them from one
server that imported everything once. A worker that fails, dies or hangs raises one line naming
the process and what went wrong.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass

import torch

from dotbias.models.optimizers import parse_setups
from dotbias.models.plugins import load_variants
from dotbias.models.registry import Registry
from dotbias.timing.groups import EPOCH_ROUNDS, INTERLEAVE_S, KERNELS, Group
from dotbias.timing.operations import make_op, setups_for
from dotbias.timing.rounds import Rounds, interleave


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
    # Per group (aligned with `groups`; empty: all 1): a multiple of `budget_s` (kernel) or of its
    # epoch rounds, so an adaptive run spends more where an interval is widest (`timing.adaptive`).
    shares: tuple[float, ...] = ()
    # Per group: each name's calls per timed block, calibrated by the first process (empty:
    # calibrate here), so every process times blocks of the same length.
    iterations: tuple[dict[str, int], ...] = ()
    # Per group label, the names its benchmarks selected (pytest -k); a group not listed times
    # every variant and setup. The baseline is timed in every group whatever the selection.
    selected: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def share(self, i: int) -> float:
        return self.shares[i] if self.shares else 1.0

    def names(self, group: Group, registry: Registry) -> tuple[str, ...]:
        """What `group` times: every variant and the setups it trains, as far as selected
        (`registry`: the worker's, built from `plugins`)."""
        every = self.variants + setups_for(group, parse_setups(self.setups, registry.impls), registry)
        chosen = dict(self.selected).get(group.label)
        return every if chosen is None else tuple(n for n in every if n in chosen or n == self.baseline)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkSpec:
        d = json.loads(text)
        d["groups"] = tuple(Group.from_dict(g) for g in d["groups"])
        d["variants"] = tuple(d["variants"])
        d["plugins"] = tuple(d.get("plugins", ()))
        d["setups"] = tuple(d.get("setups", ()))
        d["shares"] = tuple(d.get("shares", ()))
        d["iterations"] = tuple({str(n): int(i) for n, i in its.items()} for its in d.get("iterations", ()))
        d["selected"] = tuple((label, tuple(names)) for label, names in d.get("selected", ()))
        return cls(**d)


def aa_name(baseline: str) -> str:
    """The name under which a second copy of the baseline is timed for the A/A check."""
    return f"{baseline}_copy"


def time_group(spec: WorkSpec, group: Group, registry: Registry, share: float = 1.0,
               iterations: dict[str, int] | None = None) -> Rounds:
    """One group's interleaved rounds in this process: kernels for `budget_s` x `share` seconds,
    epochs for their rounds x `share` (at least one); `iterations`: each name's calls a block
    (empty or None: calibrate). `registry`: the worker's, built from `spec.plugins`."""
    fns = {v: make_op(group, v, registry, spec.seed) for v in spec.names(group, registry)}
    if spec.aa:
        fns[aa_name(spec.baseline)] = make_op(group, spec.baseline, registry, spec.seed)
    if group.operation in KERNELS:
        rounds = interleave(fns, device=group.device, budget_s=spec.budget_s * share,
                            seed=spec.process, iterations=iterations or None)
    else:   # an epoch: one call per round, a fixed number of rounds
        n = max(1, round((spec.epoch_rounds or EPOCH_ROUNDS[group.operation]) * share))
        rounds = interleave(fns, device=group.device, budget_s=0, block_s=0, seed=spec.process,
                            min_rounds=n, max_rounds=n)
    del fns
    if group.device.startswith("cuda"):
        torch.cuda.empty_cache()
    return rounds


def work(spec: WorkSpec) -> dict[str, Rounds]:
    """Time every group of `spec` in this process: group label -> its rounds. The registry is
    this process's own, loaded from the specs the caller loaded (`spec.plugins`)."""
    torch.set_num_threads(spec.threads)
    registry = load_variants(spec.plugins, env=False, entry_points=False)
    its = spec.iterations or ({},) * len(spec.groups)
    return {g.label: time_group(spec, g, registry, spec.share(i), its[i])
            for i, g in enumerate(spec.groups)}


def worker_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONHASHSEED="0")
    return env


def run_process(spec: WorkSpec, index: int, timeout_s: float) -> dict[str, Rounds]:
    """One worker in a fresh interpreter: group label -> its rounds (its JSON read here, once), or
    RuntimeError with one line saying what went wrong."""
    cmd = [sys.executable, "-m", "dotbias.timing.workers"]
    try:
        done = subprocess.run(cmd, input=spec.to_json(), capture_output=True, text=True,
                              timeout=timeout_s, env=worker_env(spec.threads))
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"timing worker {index + 1} did not finish within {timeout_s:.0f} s") from None
    return read_result(done.returncode, done.stdout, done.stderr, index)


def read_result(done_rc: int, out: str, err: str, index: int) -> dict[str, Rounds]:
    """A worker's exit status and output -> its rounds, or RuntimeError in one line."""
    if done_rc != 0:
        last = (err.strip().splitlines() or ["no message"])[-1]
        raise RuntimeError(f"timing worker {index + 1} exited {done_rc}: {last}")
    try:
        raw = json.loads(out.strip().splitlines()[-1])
        return {str(label): Rounds.from_dict(r) for label, r in raw.items()}
    except (json.JSONDecodeError, IndexError, ValueError, AttributeError):
        raise RuntimeError(f"timing worker {index + 1} wrote no JSON result") from None


def run_spec(text: str, out, err) -> int:
    """Time the `WorkSpec` JSON `text`: results JSON (one line) on `out`, or one line on `err`."""
    try:
        result = work(WorkSpec.from_json(text))
    except Exception as e:      # the parent prints this one line
        print(f"{type(e).__name__}: {e}".replace("\n", " "), file=err)
        return 2
    print(json.dumps({label: r.as_dict() for label, r in result.items()}), file=out)
    return 0


def main() -> int:
    """`python -m dotbias.timing.workers`: WorkSpec JSON on stdin, results JSON on stdout (one line)."""
    return run_spec(sys.stdin.read(), sys.stdout, sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
