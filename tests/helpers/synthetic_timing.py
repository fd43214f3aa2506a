"""Synthetic timings with a known ratio and known noise, shaped as `pytest bench` stores them:
several processes, each with interleaved rounds of every variant. Shared by the stats, report
and cross-version tests (no test builds `emb = cp * 1.2` exactly: every ratio here is noisy)."""
from __future__ import annotations

import numpy as np


def paired(ratio: float, *, processes: int = 6, rounds: int = 60, seed: int = 0, base_s: float = 1e-4,
           process_sd: float = 0.01, load_sd: float = 0.2, noise_sd: float = 0.02
           ) -> tuple[list[list[float]], list[list[float]]]:
    """(num, den) seconds per process and round with exp(E log(num/den)) = `ratio`.

    Per process: a shared layout/load level (both variants) and its own shift of the ratio
    (sd `process_sd`: what only more processes average out); per round: a load level shared
    by both variants of the round (sd `load_sd`: what pairing cancels) and independent noise."""
    rng = np.random.default_rng(seed)
    num, den = [], []
    for _ in range(processes):
        level = rng.normal(0, 0.03)     # quiet runs' baseline: 0.92-1.09x its median process
        shift = rng.normal(0, process_sd)
        load = rng.normal(0, load_sd, rounds)
        den.append((base_s * np.exp(level + load + rng.normal(0, noise_sd, rounds))).tolist())
        num.append((base_s * ratio * np.exp(level + shift + load + rng.normal(0, noise_sd, rounds))).tolist())
    return num, den


class FakeWorker:
    """A stand-in for `timing.workers.run_process`: each call is one process whose groups get
    `paired` rounds (the first variant `ratios[label]` x the baseline, noise `noise[label]`), as
    many rounds as `rounds` x the group's share, blocks of `iterations` calls (the baseline's one
    more) unless the spec says; it records every spec it was given. `busy`: process index -> how
    many times slower the machine ran it (the baseline that much slower, the variant's ratio 10%
    higher: a slowdown that hit them differently)."""

    def __init__(self, ratios: dict[str, float], noise: dict[str, float], *, rounds: int = 30,
                 process_sd: float = 0.005, seed: int = 0, iterations: int = 7,
                 busy: dict[int, float] | None = None):
        self.ratios, self.noise, self.rounds = ratios, noise, rounds
        self.process_sd, self.seed, self.iterations = process_sd, seed, iterations
        self.busy = busy or {}
        self.specs: list = []

    def __call__(self, spec, index: int, timeout_s: float) -> dict:
        from dotbias.timing.rounds import Rounds
        self.specs.append(spec)
        out = {}
        for i, g in enumerate(spec.groups):
            n = max(2, round(self.rounds * spec.share(i)))
            num, den = paired(self.ratios[g.label], processes=1, rounds=n, load_sd=0.0,
                              seed=self.seed * 100_003 + index * 1009 + i, noise_sd=self.noise[g.label],
                              process_sd=self.process_sd)
            slow = self.busy.get(index, 1.0)
            if slow != 1.0:
                num, den = [[t * slow * 1.1 for t in num[0]]], [[t * slow for t in den[0]]]
            names = (spec.variants[0], spec.baseline)
            its = (spec.iterations[i] if spec.iterations else {}) or {
                name: self.iterations + k for k, name in enumerate(names)}
            out[g.label] = Rounds(dict(zip(names, (num[0], den[0]))), dict(its))
        return out
