"""What the benchmarks time, and how: a benchmark group, one closure per (operation, variant) built
from shared inputs, and rounds interleaved between variants (A B, B A, ...) so their ratio is stable.

`dotbias.workers` runs `interleave` in fresh processes; `bench/` drives everything through
pytest-benchmark. No pytest code here, so a script or the CLI can time a variant the same way.
"""
from __future__ import annotations

import gc
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from .inputs import make_inputs as _make_inputs
from .training import OPTIMIZERS, train_step
from .variants import get_variant

# The one operation order: kernels first, then whole epochs.
OPERATIONS = ("forward", "forward_backward", "step", "epoch_lean", "epoch_fastai")
KERNELS = OPERATIONS[:3]
EPOCH_RATINGS = 10_000   # an "epoch" is one pass over the train split of this many synthetic ratings
# The interval half-width a default `pytest bench` aims at; the report says when a run misses it.
TARGET_HALF_WIDTH = {"epoch_lean": 0.03, "epoch_fastai": 0.05}
# Epoch rounds per process (lean 110-160 ms, fastai 400-540 ms an epoch here): 6 each gave emb/cp
# +-4.4% (lean) and +-2.7% (fastai); 14 and 4 gave +-2.1% and +-2.4% but the epochs alone took
# 277 s. With one warm-up epoch (not two): 8 and 3 gave +-3.3% and +-3.5-7.1% in a 222 s default
# run with 2 s kernel rounds; with 4 s kernel rounds, 10 lean made the default run 296 s.
EPOCH_ROUNDS = {"epoch_lean": 8, "epoch_fastai": 3}
# Seconds of interleaved rounds per kernel group and process. At 2 s five back-to-back runs' emb/cp
# ratios spread up to 2.0% (forward) and 2.1% (forward_backward): per-round noise, not the process,
# dominated. 4 s halves that variance for 24 s more per default run.
INTERLEAVE_S = 4.0
EPOCH_NOTE = (f"an epoch is one fit over the train split (80%) of the first {EPOCH_RATINGS:,} synthetic "
              "MovieLens-shaped ratings, batch 64, from the same canonical parameters every round")


def synced_perf_counter() -> float:
    """`time.perf_counter` that first waits for queued CUDA work (pytest-benchmark's timer does not)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()
    return time.perf_counter()


def synchronize(device: str | torch.device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


@dataclass(frozen=True)
class Size:
    """One problem size: table rows, factors and batch; `name` is how ids and reports show it."""
    name: str
    n_users: int
    n_items: int
    n_factors: int
    bs: int


@dataclass(frozen=True)
class Group:
    """What one benchmark group times: every variant runs this operation on the same inputs."""
    operation: str
    device: str
    size: Size
    dtype: str

    @property
    def label(self) -> str:
        return f"{self.operation} {self.device} {self.size.name} {self.dtype}"

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Group:
        """The inverse of `as_dict`; a malformed dict raises ValueError."""
        try:
            return cls(str(d["operation"]), str(d["device"]), Size(**d["size"]), str(d["dtype"]))
        except (KeyError, TypeError) as e:
            raise ValueError(f"not a benchmark group: {d!r:.120} ({e})") from None


def make_inputs(size: Size, device: str = "cpu", dtype: torch.dtype = torch.float32, seed: int = 0):
    """The benchmark's inputs for one size: `inputs.make_inputs` with fastai's init scale."""
    return _make_inputs(size.n_users, size.n_items, size.n_factors, size.bs, seed=seed,
                        dtype=dtype, device=device)


def make_op(group: Group, variant: str, seed: int = 0) -> Callable[[], None]:
    """A no-argument closure running `group.operation` of `variant` on the group's seeded inputs.

    forward: the model's forward under `torch.no_grad()` (inference);
    forward_backward: forward with autograd, MSE loss on the squeezed output, backward;
    step: zero_grad, forward, loss, backward and one AdamW step (the training inner loop);
    epoch_lean / epoch_fastai: one epoch (see EPOCH_NOTE) through `fit_lean` / `fit_fastai`."""
    if group.operation not in OPERATIONS:
        raise ValueError(f"unknown operation {group.operation!r}; expected one of {', '.join(OPERATIONS)}")
    if group.operation not in KERNELS:
        return _epoch_op(group, variant, seed)
    size, dtype = group.size, getattr(torch, group.dtype)
    inputs = make_inputs(size, group.device, dtype, seed)
    model = get_variant(variant).make(size.n_users, size.n_items, size.n_factors, dtype=dtype,
                                      device=group.device, params=inputs.params)
    x, y = inputs.x, inputs.y
    if group.operation == "forward":
        model.eval()

        def forward():
            with torch.no_grad():
                model(x)
        return forward
    model.train()
    opt = OPTIMIZERS["fastai"](model.parameters()) if group.operation == "step" else None
    return lambda: train_step(model, opt, x, y)


def _epoch_op(group: Group, variant: str, seed: int) -> Callable[[], None]:
    from .data import collab_dls, synthetic_ratings, tensors_from_dls
    from .inputs import random_canonical
    from .training import fit_fastai, fit_lean

    if group.dtype != "float32":
        raise ValueError("epochs run in float32 only (fastai's loaders yield float32 targets)")
    dls = collab_dls(synthetic_ratings(n_ratings=EPOCH_RATINGS, seed=seed).ratings, bs=64, seed=42,
                     device=group.device)
    data = tensors_from_dls(dls)
    n_factors = group.size.n_factors
    params = random_canonical(data.n_users, data.n_items, n_factors,
                              generator=torch.Generator().manual_seed(seed))
    v = get_variant(variant)
    make = lambda: v.make(data.n_users, data.n_items, n_factors, device=group.device, params=params)
    if group.operation == "epoch_fastai":
        return lambda: fit_fastai(make(), dls, epochs=1, seed=seed)
    return lambda: fit_lean(make(), data, epochs=1, seed=seed, device=group.device)


def time_block(fn: Callable[[], None], iterations: int, device: str | torch.device = "cpu") -> float:
    """Seconds per call of `fn`, over `iterations` back-to-back calls (CUDA synchronized at both ends)."""
    synchronize(device)
    t0 = time.perf_counter()
    for _ in range(iterations):
        fn()
    synchronize(device)
    return (time.perf_counter() - t0) / iterations


@dataclass(frozen=True)
class Rounds:
    """Seconds per call of each variant, round by round; round r of every variant ran back to back."""
    seconds: dict[str, list[float]]
    iterations: int


def interleave(fns: dict[str, Callable[[], None]], *, device: str | torch.device = "cpu",
               budget_s: float = 0.5, block_s: float = 5e-3, min_rounds: int = 4,
               max_rounds: int = 2000, seed: int = 0) -> Rounds:
    """Time `fns` in interleaved rounds so a change of machine load hits every variant alike and
    their per-round ratio cancels it. Each pair of rounds runs a random order, then that order
    reversed: every variant gets the same mean position, and none is always at an end (a fixed
    order ran the variant at each end twice in a row at every other round boundary, with its
    data still in cache: the A/A check of `step` read 0.966 [0.955, 0.978]).

    Own loop rather than `torch.utils.benchmark.Timer`, which times one statement at a time: the
    ratio needs the variants alternated block by block. Every function gets the same number of
    calls per round, enough for the fastest to take `block_s`; the rounds fill `budget_s` (within
    `min_rounds`..`max_rounds`). One warm-up call each first (and, when `block_s` > 0, a short
    calibration on warm calls); the garbage collector is off."""
    names = list(fns)
    rng = random.Random(seed)
    per_call = {n: time_block(fns[n], 1, device) for n in names}        # warm-up, lazy init
    if block_s > 0:     # calibrate on warm calls; one call a round (epochs) needs no calibration
        per_call = {n: time_block(fns[n], 1 if per_call[n] > block_s else 3, device) for n in names}
    iterations = max(1, math.ceil(block_s / max(min(per_call.values()), 1e-9)))
    round_s = iterations * sum(per_call.values())
    rounds = int(min(max(budget_s / max(round_s, 1e-9), min_rounds), max_rounds))
    seconds: dict[str, list[float]] = {n: [] for n in names}
    order = names
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(rounds):
            order = rng.sample(names, len(names)) if r % 2 == 0 else order[::-1]
            for n in order:
                seconds[n].append(time_block(fns[n], iterations, device))
    finally:
        if was_enabled:
            gc.enable()
    return Rounds(seconds, iterations)
