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
        level = rng.normal(0, 0.1)
        shift = rng.normal(0, process_sd)
        load = rng.normal(0, load_sd, rounds)
        den.append((base_s * np.exp(level + load + rng.normal(0, noise_sd, rounds))).tolist())
        num.append((base_s * ratio * np.exp(level + shift + load + rng.normal(0, noise_sd, rounds))).tolist())
    return num, den
