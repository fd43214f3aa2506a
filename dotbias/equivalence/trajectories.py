"""Training trajectories under the equivalence contract: k optimizer steps from the same canonical
start on the same batches, every variant's parameters held to `equivalence.CONTRACT` after each
step against the baseline and against the book's create_params model trained in float64 (the
reference). The baseline is first held to the a-priori bound on each batch. Training setups
(`models.optimizers.Training`: a variant with an optimizer implementation) are held the same way
over fastai's one-cycle schedule (`check_training`), against the book's setup in float64.

Training amplifies rounding: with SGD at lr 0.5 and momentum 0.9 a 1-ulp difference at step 1 can
be hundreds of ulps by step 5, and one run of the baseline can land far closer to float64 than a
correct reordering does (seen: 8x at step 5 in float32; in float64 the default baseline *is*
the reference, error 0). So the baseline's error is measured on several runs: as computed, and
`NUDGES` runs with a random rounding error in every output (up to eps x the sum of |terms|) and every gradient
(1 ulp), standing for a correct reordering of every sum. `.ci/trajectory-scan 3000 11` (3,000
random cases x the 4 variants outside the baseline's family, 5 steps, float32 and float64): the
rule without the nudged runs rejected a correct variant 15 times (error/allowed up to 7.39); with
them 0 times, error/allowed at most 0.583."""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from fastai.layers import sigmoid_range
from torch import Tensor

from dotbias.equivalence.contract import (
    NUDGES,
    TensorCheck,
    assert_baseline,
    check_tensor,
    describe,
    expect_exact,
)
from dotbias.models.book import CP, DotProductBiasCP
from dotbias.models.canonical import Canonical
from dotbias.models.optimizers import BOOK, BOOK_IMPL, Training
from dotbias.models.registry import Registry
from dotbias.models.training import scheduled_steps, train_steps
from dotbias.models.variant import Variant


def reference_trajectory(params: Canonical, batches: Sequence[tuple[Tensor, Tensor]],
                         optimizer: str, y_range=(0, 5.5)) -> list[Canonical]:
    """The book's create_params model trained in float64 from the parameters upcast (targets
    upcast too): like `reference_batch`, a yardstick no chosen baseline enters."""
    batches64 = [(x, y.double()) for x, y in batches]
    return train_steps(CP, params.to(dtype=torch.float64), batches64, optimizer, y_range)


class RoundedCP(DotProductBiasCP):
    """The baseline with a random rounding error in every output: its pre-sigmoid sum moved by
    up to one eps of the sum of its terms' magnitudes (the size of a reordered sum's error, which
    can be many ulps of the result where terms cancel). `gen` must be set before forward."""
    gen: torch.Generator | None = None

    def forward(self, x):
        users, movies = self.user_factors[x[:, 0]], self.movie_factors[x[:, 1]]
        biases = self.user_bias[x[:, 0]] + self.movie_bias[x[:, 1]]
        prod = users * movies
        res = prod.sum(dim=1) + biases
        with torch.no_grad():
            terms = prod.abs().sum(dim=1) + biases.abs()
            u = torch.rand(terms.shape, generator=self.gen, dtype=terms.dtype).to(terms.device)
            noise = (2 * u - 1) * torch.finfo(res.dtype).eps * terms
        return sigmoid_range(res + noise, *self.y_range)


def _nudge(t: Tensor, gen: torch.Generator) -> Tensor:
    """`t` with every value moved 1 ulp up or down at random."""
    up = (torch.rand(t.shape, generator=gen) < 0.5).to(t.device)
    return torch.nextafter(t, torch.where(up, torch.inf, -torch.inf).to(t.dtype))


def _rounding(seed: int):
    """A `train_steps` prepare hook for `RoundedCP`: seed its output rounding, nudge gradients."""
    def prepare(model: RoundedCP) -> None:
        model.gen = torch.Generator().manual_seed(seed)
        for p in model.parameters():
            p.register_hook(lambda g: _nudge(g, model.gen))
    return prepare


def nudged_trajectories(params: Canonical, batches: Sequence[tuple[Tensor, Tensor]],
                        optimizer: str, y_range=(0, 5.5), n: int = NUDGES) -> list[list[Canonical]]:
    """`n` runs of the book's create_params model with a random rounding error in every output
    and gradient: the baseline's error as a correct reordering could make it, whichever the
    baseline is."""
    rounded = dataclasses.replace(CP, name="rounded", build=RoundedCP)
    return [train_steps(rounded, params, batches, optimizer, y_range, prepare=_rounding(seed))
            for seed in range(n)]


def assert_baseline_on(baseline: Variant, params: Canonical,
                       batches: Sequence[tuple[Tensor, Tensor]], y_range=(0, 5.5)) -> None:
    """The baseline within the a-priori bound on each batch from the starting parameters (the
    bound is per batch: training carries rounding errors further, see the module's docstring)."""
    for x, y in batches:
        assert_baseline(baseline, params, x, y, y_range)


def check_trajectory(variant: Variant, params: Canonical, batches: Sequence[tuple[Tensor, Tensor]],
                     optimizer: str = "adamw", y_range=(0, 5.5), *,
                     reference: list[Canonical] | None = None,
                     base_run: list[Canonical] | None = None,
                     nudged: list[list[Canonical]] | None = None,
                     baseline_checked: bool = False, baseline: Variant) -> list[list[TensorCheck]]:
    """Per step, the four canonical parameters of `variant` held to the contract; a parameter's
    error scale is its largest value so far (start included: an update is at most the sum of two)
    times sqrt(steps x terms per step (bs + row width + 2)). The baseline's error is the largest
    of `base_run` and the `nudged` runs (see the module's docstring). The baseline is first held to
    the a-priori bound on every batch at the start (BaselineError naming it), unless
    `baseline_checked`."""
    if not baseline_checked:
        assert_baseline_on(baseline, params, batches, y_range)
    bs = batches[0][0].shape[0] if batches else 0
    label = (f"{variant.name} vs {baseline.name} ({describe(params, bs)}), {optimizer}")
    run = train_steps(variant, params, batches, optimizer, y_range)
    base_run = base_run or train_steps(baseline, params, batches, optimizer, y_range)
    reference = reference or reference_trajectory(params, batches, optimizer, y_range)
    nudged = nudged if nudged is not None else nudged_trajectories(params, batches, optimizer,
                                                                   y_range)
    return _hold(label, params, bs, variant.same_family(baseline), run, base_run, reference, nudged)


def _hold(label: str, params: Canonical, bs: int, family: bool, run: list[Canonical],
          base_run: list[Canonical], reference: list[Canonical],
          nudged: list[list[Canonical]]) -> list[list[TensorCheck]]:
    """Every step's four canonical parameters of `run` held to the contract (see
    `check_trajectory`); bitwise against `base_run` where `family` and `expect_exact` say so."""
    dtype, device = params.user_factors.dtype, params.user_factors.device
    steps, largest = [], [t.double().abs().amax().item() if t.numel() else 0.0 for t in params]
    for k, (p, pb, pr) in enumerate(zip(run, base_run, reference), 1):
        checks = []
        for j, (name, t, tb, tr) in enumerate(zip(Canonical._fields, p, pb, pr)):
            width = t.shape[1] if t.dim() == 2 else 1
            exact = family and expect_exact(dtype, device, numel=bs * width)
            largest[j] = max(largest[j], tr.abs().max().item() if t.numel() else 0.0)
            scale = largest[j] * (k * (bs + width + 2)) ** 0.5
            checks.append(check_tensor(name, {"variant": t, "baseline": tb, "float64": tr},
                                       f"{label} step {k} of {len(run)}", exact=exact, scale=scale,
                                       more_baselines=[n[k - 1][j] for n in nudged]))
        steps.append(checks)
    return steps


def assert_trajectories(variants: Sequence[Variant], params: Canonical,
                        batches: Sequence[tuple[Tensor, Tensor]], optimizer: str = "adamw",
                        y_range=(0, 5.5), *, baseline: Variant) -> None:
    """Every variant's trajectory held to the contract against `baseline`; AssertionError with
    the first failure (the earliest step, then the first tensor)."""
    assert_baseline_on(baseline, params, batches, y_range)
    reference = reference_trajectory(params, batches, optimizer, y_range)
    base_run = train_steps(baseline, params, batches, optimizer, y_range)
    nudged = nudged_trajectories(params, batches, optimizer, y_range)
    for v in variants:
        for checks in check_trajectory(v, params, batches, optimizer, y_range, reference=reference,
                                       base_run=base_run, nudged=nudged, baseline_checked=True,
                                       baseline=baseline):
            bad = next((c for c in checks if not c.passed), None)
            if bad is not None:
                raise AssertionError(bad.message)


# --- training setups: one optimizer implementation over the one-cycle schedule ------------------
# An implementation's own rounding is a few ulps of each update lr * (m/(sqrt(v) + eps) + wd * p),
# an update being O(lr); the book's loop in float32 rounds the same updates (its error counts in
# the baseline's), and the floor alone (FLOOR_ULPS ulps of a scale at least twice the largest
# parameter) exceeds it wherever lr x a few ops stays below the parameters' size. A wrong
# optimizer (bias correction, coupled decay, eps, a stale beta1) is off by a part of lr per step.

def training_runs(params: Canonical, batches: Sequence[tuple[Tensor, Tensor]], y_range=(0, 5.5),
                  *, baseline: Variant
                  ) -> tuple[list[Canonical], list[Canonical], list[list[Canonical]]]:
    """(float64 reference, baseline run, nudged runs) of the book's setup (its variant `cp`
    trained by torch AdamW) over the one-cycle schedule: what every training setup is held to."""
    batches64 = [(x, y.double()) for x, y in batches]
    reference = scheduled_steps(CP, params.to(dtype=torch.float64), batches64, BOOK,
                                y_range=y_range)
    base_run = scheduled_steps(baseline, params, batches, BOOK, y_range=y_range)
    rounded = dataclasses.replace(CP, name="rounded", build=RoundedCP)
    nudged = [scheduled_steps(rounded, params, batches, BOOK, y_range=y_range,
                              prepare=_rounding(seed)) for seed in range(NUDGES)]
    return reference, base_run, nudged


def check_training(setup: Training, params: Canonical, batches: Sequence[tuple[Tensor, Tensor]],
                   y_range=(0, 5.5), *, runs=None, baseline_checked: bool = False,
                   baseline: Variant, registry: Registry) -> list[list[TensorCheck]]:
    """Per step of `fit_one_cycle`'s schedule squeezed into len(batches) steps (lr 5e-3, wd 0.1),
    the canonical parameters of `setup` (its variant trained by its optimizer implementation)
    held to the contract against the book's setup trained in float64 (`training_runs`, or
    `runs` already made). Bitwise only where the implementation is the book's. `registry`: the
    run's, where the setup's variant and implementation are looked up."""
    if not baseline_checked:
        assert_baseline_on(baseline, params, batches, y_range)
    variant = registry.get_variant(setup.variant)
    bs = batches[0][0].shape[0] if batches else 0
    label = f"{setup.name} vs {baseline.name} ({describe(params, bs)}), one-cycle"
    reference, base_run, nudged = runs or training_runs(params, batches, y_range, baseline=baseline)
    run = scheduled_steps(variant, params, batches, registry.get_impl(setup.impl), y_range=y_range)
    family = setup.impl == BOOK_IMPL and variant.same_family(baseline)
    return _hold(label, params, bs, family, run, base_run, reference, nudged)


def assert_training(setups: Sequence[Training], params: Canonical,
                    batches: Sequence[tuple[Tensor, Tensor]], y_range=(0, 5.5), *,
                    baseline: Variant, registry: Registry) -> None:
    """Every setup's one-cycle trajectory held to the contract against `baseline` (each looked
    up in `registry`, the run's); AssertionError
    with the first failure (the earliest step, then the first tensor), naming the setup."""
    assert_baseline_on(baseline, params, batches, y_range)
    runs = training_runs(params, batches, y_range, baseline=baseline)
    for setup in setups:
        for checks in check_training(setup, params, batches, y_range, runs=runs,
                                     baseline_checked=True, baseline=baseline, registry=registry):
            bad = next((c for c in checks if not c.passed), None)
            if bad is not None:
                raise AssertionError(bad.message)
