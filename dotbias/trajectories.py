"""Training trajectories under the equivalence contract: k optimizer steps from the same canonical
start on the same batches, every variant's parameters held to `equivalence.CONTRACT` after each
step against the baseline and against the baseline trained in float64 (the reference)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .canonical import Canonical
from .equivalence import BASELINE, TensorCheck, check_tensor, describe, expect_exact
from .training import train_steps
from .variants import Variant, get_variant


def reference_trajectory(params: Canonical, batches: Sequence[tuple[Tensor, Tensor]],
                         optimizer: str, y_range=(0, 5.5)) -> list[Canonical]:
    """The baseline trained in float64 from the parameters upcast (targets upcast too)."""
    batches64 = [(x, y.double()) for x, y in batches]
    return train_steps(get_variant(BASELINE), params.to(dtype=torch.float64), batches64, optimizer,
                       y_range)


def check_trajectory(variant: Variant, params: Canonical, batches: Sequence[tuple[Tensor, Tensor]],
                     optimizer: str = "adamw", y_range=(0, 5.5), *,
                     reference: list[Canonical] | None = None,
                     base_run: list[Canonical] | None = None) -> list[list[TensorCheck]]:
    """Per step, the four canonical parameters of `variant` held to the contract; a parameter's
    error scale is its largest value so far (start included: an update is at most the sum of two)
    times sqrt(steps x terms per step (bs + row width + 2))."""
    baseline = get_variant(BASELINE)
    dtype, device = params.user_factors.dtype, params.user_factors.device
    bs = batches[0][0].shape[0] if batches else 0
    label = (f"{variant.name} vs {baseline.name} ({describe(params, bs)}), {optimizer}")
    run = train_steps(variant, params, batches, optimizer, y_range)
    base_run = base_run or train_steps(baseline, params, batches, optimizer, y_range)
    reference = reference or reference_trajectory(params, batches, optimizer, y_range)
    family = variant.exact_with is not None and variant.exact_with == baseline.exact_with
    steps, largest = [], [t.double().abs().amax().item() if t.numel() else 0.0 for t in params]
    for k, (p, pb, pr) in enumerate(zip(run, base_run, reference), 1):
        checks = []
        for j, (name, t, tb, tr) in enumerate(zip(Canonical._fields, p, pb, pr)):
            width = t.shape[1] if t.dim() == 2 else 1
            exact = family and expect_exact(dtype, device, numel=bs * width)
            largest[j] = max(largest[j], tr.abs().max().item() if t.numel() else 0.0)
            scale = largest[j] * (k * (bs + width + 2)) ** 0.5
            checks.append(check_tensor(name, {"variant": t, "baseline": tb, "float64": tr},
                                       f"{label} step {k} of {len(run)}", exact=exact, scale=scale))
        steps.append(checks)
    return steps


def assert_trajectories(variants: Sequence[Variant], params: Canonical,
                        batches: Sequence[tuple[Tensor, Tensor]], optimizer: str = "adamw",
                        y_range=(0, 5.5)) -> None:
    """Every variant's trajectory held to the contract; AssertionError with the first failure
    (the earliest step, then the first tensor)."""
    reference = reference_trajectory(params, batches, optimizer, y_range)
    base_run = train_steps(get_variant(BASELINE), params, batches, optimizer, y_range)
    for v in variants:
        for checks in check_trajectory(v, params, batches, optimizer, y_range,
                                       reference=reference, base_run=base_run):
            bad = next((c for c in checks if not c.passed), None)
            if bad is not None:
                raise AssertionError(bad.message)
