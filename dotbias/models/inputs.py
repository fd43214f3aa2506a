"""Seeded inputs for every comparison and benchmark, made in one place: canonical parameters, a
batch of (user, item) indices following an index pattern, and targets inside a y range.

Everything is drawn in float32 on the CPU from one `torch.Generator`, then moved, so the same seed
gives the same numbers on every device and dtype."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from dotbias.models.canonical import Canonical

INDEX_KINDS = ("uniform", "duplicates", "same", "boundaries")
TARGET_KINDS = ("uniform", "low", "high")


def random_canonical(n_users: int, n_items: int, n_factors: int, *, std: float = 0.01,
                     dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
                     generator: torch.Generator | None = None, bias_std: float | None = None
                     ) -> Canonical:
    """Canonical parameters drawn from N(0, std) (biases from N(0, bias_std), default `std`)."""
    bias_std = std if bias_std is None else bias_std
    shapes = [(n_users, n_factors), (n_users,), (n_items, n_factors), (n_items,)]
    stds = [std, bias_std, std, bias_std]
    return Canonical(*(torch.randn(s, generator=generator).mul_(sd).to(device=device, dtype=dtype)
                       for s, sd in zip(shapes, stds)))


def index_batch(n_users: int, n_items: int, bs: int, kind: str, gen: torch.Generator) -> torch.Tensor:
    """A [bs, 2] long batch of (user, item) indices following `kind` (one of INDEX_KINDS)."""
    def column(n: int) -> torch.Tensor:
        if kind == "uniform":
            return torch.randint(0, n, (bs,), generator=gen)
        if kind == "duplicates":        # at most three distinct rows, many repeats each
            return torch.randint(0, min(n, 3), (bs,), generator=gen)
        if kind == "same":
            return torch.randint(0, n, (1,), generator=gen).repeat(bs)
        if kind == "boundaries":        # only the first and the last row
            return torch.randint(0, 2, (bs,), generator=gen) * (n - 1)
        raise ValueError(f"unknown index kind {kind!r}; expected one of {', '.join(INDEX_KINDS)}")
    return torch.stack([column(n_users), column(n_items)], 1)


@dataclass(frozen=True)
class Inputs:
    """What every variant of one comparison or benchmark gets: the same parameters and batches."""
    params: Canonical
    x: torch.Tensor         # [bs, 2] long: user, item
    y: torch.Tensor         # [bs] targets inside y_range, in the parameters' dtype


def make_inputs(n_users: int, n_items: int, n_factors: int, bs: int, *, seed: int = 0,
                kind: str = "uniform", std: float = 0.01, y_range: tuple[float, float] = (0, 5.5),
                dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
                step: int = 0, bias_std: float | None = None, targets: str = "uniform") -> Inputs:
    """Seeded canonical parameters and one batch. `step` > 0 gives further batches (for training
    trajectories) from the same parameters: the parameters depend on `seed` only. `targets`
    (one of TARGET_KINDS): uniform inside `y_range`, or all at its low or high end."""
    gen = torch.Generator().manual_seed(seed)
    params = random_canonical(n_users, n_items, n_factors, std=std, dtype=dtype, device=device,
                              generator=gen, bias_std=bias_std)
    if step:
        gen = torch.Generator().manual_seed(seed + 7919 * step)
    x = index_batch(n_users, n_items, bs, kind, gen)
    lo, hi = y_range
    y = torch.rand(bs, generator=gen) * (hi - lo) + lo
    if targets != "uniform":
        if targets not in TARGET_KINDS:
            raise ValueError(f"unknown targets {targets!r}; expected one of {', '.join(TARGET_KINDS)}")
        y = torch.full((bs,), float(lo if targets == "low" else hi))
    return Inputs(params, x.to(device), y.to(device=device, dtype=dtype))
