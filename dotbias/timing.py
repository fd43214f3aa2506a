"""What the benchmarks time, and how: one closure per (operation, variant) built from shared inputs,
a timer that waits for CUDA, and rounds interleaved between variants so their ratio is stable.

`bench/` drives these through pytest-benchmark; they hold no pytest code so a script or the CLI
can time a variant the same way.
"""
from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from .inputs import Inputs, make_inputs as _make_inputs
from .training import OPTIMIZERS, train_step
from .variants import get_variant

OPERATIONS = ("forward", "forward_backward", "step")


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

    def as_dict(self) -> dict:
        return asdict(self)


def make_inputs(size: Size, device: str = "cpu", dtype: torch.dtype = torch.float32,
                seed: int = 0) -> Inputs:
    """The benchmark's inputs for one size: `inputs.make_inputs` with fastai's init scale."""
    return _make_inputs(size.n_users, size.n_items, size.n_factors, size.bs, seed=seed,
                        dtype=dtype, device=device)


def make_op(operation: str, variant: str, size: Size, inputs: Inputs, device: str = "cpu",
            dtype: torch.dtype = torch.float32) -> Callable[[], None]:
    """A no-argument closure running one `operation` of `variant` on `inputs`.

    forward: the model's forward under `torch.no_grad()` (inference);
    forward_backward: forward with autograd, MSE loss on the squeezed output, backward;
    step: zero_grad, forward, loss, backward and one AdamW step (the training inner loop)."""
    if operation not in OPERATIONS:
        raise ValueError(f"unknown operation {operation!r}; expected one of {', '.join(OPERATIONS)}")
    model = get_variant(variant).make(size.n_users, size.n_items, size.n_factors, dtype=dtype, device=device,
                   params=inputs.params)
    x, y = inputs.x, inputs.y

    if operation == "forward":
        model.eval()

        def forward():
            with torch.no_grad():
                model(x)
        return forward

    model.train()
    opt = OPTIMIZERS["fastai"](model.parameters()) if operation == "step" else None
    return lambda: train_step(model, opt, x, y)


def time_block(fn: Callable[[], None], iterations: int, device: str | torch.device = "cpu") -> float:
    """Seconds per call of `fn`, over `iterations` back-to-back calls (CUDA synchronized at both ends)."""
    synchronize(device)
    t0 = time.perf_counter()
    for _ in range(iterations):
        fn()
    synchronize(device)
    return (time.perf_counter() - t0) / iterations


@dataclass
class Interleaved:
    """Per-round seconds per call for each variant; round r of every variant ran back to back."""
    seconds: dict[str, list[float]]
    iterations: int
    rounds: int

    def info(self, variant: str) -> dict:
        """What one variant's benchmark stores in `extra_info["interleaved"]`."""
        return {"seconds": self.seconds[variant], "iterations": self.iterations, "rounds": self.rounds,
                "variants": list(self.seconds), "order": "alternating (ABAB.., reversed every other round)"}


def interleave(fns: dict[str, Callable[[], None]], *, device: str | torch.device = "cpu",
               budget_s: float = 2.0, block_s: float = 2e-3, warmup_s: float = 0.2,
               min_rounds: int = 10, max_rounds: int = 1000) -> Interleaved:
    """Time `fns` in alternating rounds (A B, B A, A B, ...) so a change of machine load hits every
    variant alike, and their per-round ratio cancels it.

    Every function gets the same number of calls per round, enough for the fastest to take
    `block_s`; the number of rounds fills `budget_s` (within `min_rounds`..`max_rounds`).
    The garbage collector is off while timing."""
    names = list(fns)
    for fn in fns.values():             # warm-up: caches, allocator, lazy init
        t_end = time.perf_counter() + warmup_s / len(fns)
        while True:
            fn()
            synchronize(device)
            if time.perf_counter() >= t_end:
                break
    per_call = {n: time_block(fns[n], 3, device) for n in names}
    iterations = max(1, math.ceil(block_s / max(min(per_call.values()), 1e-9)))
    round_s = iterations * sum(per_call.values())
    rounds = int(min(max(budget_s / max(round_s, 1e-9), min_rounds), max_rounds))
    seconds: dict[str, list[float]] = {n: [] for n in names}
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(rounds):
            for n in (names if r % 2 == 0 else names[::-1]):
                seconds[n].append(time_block(fns[n], iterations, device))
    finally:
        if was_enabled:
            gc.enable()
    return Interleaved(seconds, iterations, rounds)
