"""The suite's properties as plain functions (each test module and tests/test_mutants.py run them
on drawn cases, for every registered variant or a given list), and `scaled_baseline`, a baseline
off by 1e-3 for the bound tests."""
from __future__ import annotations

import contextlib
import dataclasses

import torch
from fastai.layers import sigmoid_range

from dotbias.equivalence.contract import DEFAULT_BASELINE, assert_equivalent
from dotbias.equivalence.hunt import aim
from dotbias.equivalence.inits import check_init
from dotbias.equivalence.strategies import Case
from dotbias.equivalence.trajectories import assert_training, assert_trajectories
from dotbias.models.book import DotProductBiasCP
from dotbias.models.optimizers import BUILT_IN_IMPLS, Training
from dotbias.models.registry import Registry
from dotbias.models.variant import Variant

# One rating at logit 11.04 (sigmoid 0.99998): `cp`'s correct float32 gradients were 18x over
# the a-priori bound before the bound took the sigmoid's saturation into account.
SATURATED = Case(747, 247, 247, 1, "uniform", torch.float32, "cpu", 7980)
EAGER_IMPLS = [name for name, impl in BUILT_IN_IMPLS.items() if not impl.compiles]
COMPILED_IMPLS = [name for name, impl in BUILT_IN_IMPLS.items() if impl.compiles]


def equivalence_property(case: Case, variants: list[Variant], *, baseline: Variant) -> None:
    """The property on one drawn case, for every variant of `variants` (the run's registry's, or
    a given list) against `baseline`, driving error / allowed up with `hypothesis.target` inside
    a hypothesis test (`hunt.aim`)."""
    x, y = case.batch()
    aim(assert_equivalent(variants, case.params(), x, y, case.y_range, baseline=baseline))


def training_property(case: Case, k: int, setups: list[Training] | None = None, *,
                      baseline: Variant, registry: Registry) -> None:
    """k steps of the one-cycle schedule: every setup (default: the baseline's variant with every
    eager optimizer implementation of `registry`) within the contract of the book's setup in
    float64."""
    batches = [case.batch(step) for step in range(k)]
    eager = [name for name, impl in registry.impls.items()
             if not impl.compiles and trains(name, baseline, registry)]
    setups = [Training(baseline.name, name) for name in eager] if setups is None else setups
    assert_training(setups, case.params(), batches, case.y_range, baseline=baseline, registry=registry)


def trains(impl: str, variant: Variant, registry: Registry) -> bool:
    """Whether implementation `impl` of `registry` can train `variant`'s layout (row_step takes
    the four canonical tensors only: with `--baseline packed` it sits out)."""
    return registry.get_impl(impl).cannot_train(variant.make(3, 4, 2)) is None


def init_property(sizes: tuple[int, int, int], seed: int, variants: list[Variant], *,
                  registry: Registry) -> None:
    for v in variants:
        r = check_init(v, *sizes, seed=seed, registry=registry)
        assert r.passed, f"{v.name} init ({r.source}: {r.init.text}) at sizes {sizes}: {r.failures}"


def trajectory_property(case: Case, optimizer: str, k: int, variants: list[Variant], *,
                        baseline: Variant) -> None:
    batches = [case.batch(step) for step in range(k)]
    assert_trajectories(variants, case.params(), batches, optimizer, case.y_range, baseline=baseline)


def _scale_column_0(g: torch.Tensor) -> torch.Tensor:
    return g * torch.tensor([1.001] + [1.0] * (g.shape[1] - 1), dtype=g.dtype)


class ScaledUserGrad(DotProductBiasCP):
    """The book's create_params model with column 0 of user_factors' gradient scaled by 1.001."""
    def forward(self, x):
        users = self.user_factors[x[:, 0]]
        if users.requires_grad:
            users.register_hook(_scale_column_0)
        res = (users * self.movie_factors[x[:, 1]]).sum(dim=1)
        res += self.user_bias[x[:, 0]] + self.movie_bias[x[:, 1]]
        return sigmoid_range(res, *self.y_range)


@contextlib.contextmanager
def scaled_baseline(registry: Registry):
    """A copy of `cp` with one gradient off by 1e-3 (relative), the test judges against it; yields
    it, a list recording every other variant built meanwhile, and `registry` (the run's) with the
    copy and a spy of each of its variants registered, for the block only."""
    copy = dataclasses.replace(registry.get_variant(DEFAULT_BASELINE), name="cp_scaled_grad",
                               build=ScaledUserGrad)
    built: list[str] = []

    def spy(v: Variant) -> Variant:
        return dataclasses.replace(v, name=f"spy_{v.name}",
                                   build=lambda *a, **k: built.append(v.name) or v.build(*a, **k))
    yield copy, built, registry.with_variants(copy, *[spy(v) for v in registry.variants.values()])
