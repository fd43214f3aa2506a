"""The a-priori bound and the relative rule's floor are derived from the arithmetic
(`reference.error_bounds`), then attacked: hypothesis drives error / allowed up
(`hypothesis.target`) in the corners where rounding is worst (saturated sigmoids, targets at the
ends of y_range, batch 1, up to 256 factors, every dtype). Correct variants never reach 1."""
from __future__ import annotations

import pytest
import torch

from dotbias.equivalence.contract import FACTOR, assert_equivalent, check_baseline
from dotbias.equivalence.hunt import hunt
from dotbias.equivalence.reference import APRIORI_ULPS, FLOOR_ULPS, reference_batch
from dotbias.equivalence.strategies import ALL_DTYPES, Case
from dotbias.models.canonical import Canonical
from dotbias.models.registry import OPT_IN
from dotbias.models.sparse import sparse_grad_modules


def eager_zoo(registry) -> list:
    """Every variant of the run's registry and every opt-in one that needs no compiler (sparse
    included)."""
    return list(registry.variants.values()) + [v for v in OPT_IN.values() if v.name not in registry.variants
                                               and not v.name.endswith("_compiled")]


def issue_inputs(nu, ni, nf, bs, std, targets, dtype, seed):
    """Parameters randn * std (biases 3x), drawn in float64 and cast, as issue 27 built them."""
    g = torch.Generator().manual_seed(seed)
    def r(*s):
        return torch.randn(*s, generator=g, dtype=torch.float64)
    p = Canonical(r(nu, nf) * std, r(nu) * std * 3, r(ni, nf) * std, r(ni) * std * 3).to(dtype)
    x = torch.stack([torch.randint(0, nu, (bs,), generator=g),
                     torch.randint(0, ni, (bs,), generator=g)], 1)
    y = (torch.rand(bs, generator=g, dtype=torch.float64) * 5.5 if targets == "uniform"
         else torch.zeros(bs, dtype=torch.float64))
    return p, x, y.to(dtype)


SATURATED = [  # each was outside the old bound (cp 129x, 5x, einsum rejected, cp 99,000x)
    (348, 257, 239, 59, 4.0, "uniform", torch.float32, 32273),
    (380, 6, 139, 16, 2.0, "zeros", torch.float16, 131),
    (675, 180, 179, 37, 4.0, "uniform", torch.float64, 823700257),
    (673, 154, 25, 1, 4.0, "zeros", torch.float32, 673),
]


@pytest.mark.parametrize("spec", SATURATED, ids=lambda s: f"{s[6]}-{s[7]}".replace("torch.", ""))
def test_saturated_sigmoids_keep_the_baseline_and_every_variant_inside(spec, baseline, registry):
    p, x, y = issue_inputs(*spec)
    ref = reference_batch(p, x, y)
    assert check_baseline(baseline, p, x, y, reference=ref).passed
    for r in assert_equivalent(eager_zoo(registry), p, x, y, baseline=baseline):
        assert r.passed and r.usage < 1, r.where


def test_the_first_saturated_case_from_the_strategies(baseline):
    """One rating at logit 11.04: `cp`'s float32 gradients were 18x over the old bound."""
    case = Case(747, 247, 247, 1, "uniform", torch.float32, "cpu", 7980)
    r = check_baseline(baseline, case.params(), *case.batch())
    assert r.passed and r.usage < 1, r.first_failure()


def test_the_floor_is_the_bound_at_fewer_ulps_and_grows_where_the_sigmoid_saturates():
    """Same derivation: the floor is below the bound and both grow with the logit's spread,
    relative to the gradient itself (the slope's relative error is the logit's absolute error)."""
    rel = {}
    for std in (0.1, 3.0):
        case = Case(50, 50, 64, 32, "uniform", torch.float32, "cpu", 1, std=std)
        ref = reference_batch(case.params(), *case.batch())
        for name in ref.bounds:
            assert 0 < ref.floors[name] < ref.bounds[name] * FLOOR_ULPS / APRIORI_ULPS * 1.01
        rel[std] = ref.bounds["user_bias"] / ref.grads.user_bias.abs().max().item()
    assert rel[3.0] > 10 * rel[0.1], rel


def test_a_wrong_gradient_at_a_saturated_sigmoid_is_still_caught(baseline):
    """Sound, not vacuous: at a logit about 11 in float32 a bias gradient 10% off fails the
    relative rule (FACTOR x the baseline's error + the floor), and 30% off the a-priori bound."""
    case = Case(747, 247, 247, 1, "uniform", torch.float32, "cpu", 7980)
    ref = reference_batch(case.params(), *case.batch())
    base = check_baseline(baseline, case.params(), *case.batch(), reference=ref)
    err = next(c.max_err for c in base.checks if c.tensor == "user_bias")
    g = ref.grads.user_bias.abs().max().item()
    assert FACTOR * err + ref.floors["user_bias"] < 0.1 * g and ref.bounds["user_bias"] < 0.3 * g


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_a_targeted_hunt_of_500_cases_finds_no_correct_variant_outside(dtype, capsys, baseline,
                                                                       registry):
    r = hunt(eager_zoo(registry), dtype, 500, baseline=baseline)
    with capsys.disabled():
        print(f"\nhunt {dtype}: {r.cases} cases, largest baseline error/bound {r.baseline_usage:.3g}, "
              f"variant error/allowed {r.variant_usage:.3g}")
    assert r.cases >= 500 and r.baseline_usage < 1 and r.variant_usage < 1


def test_sparse_variants_are_in_the_hunt(registry):
    assert any(sparse_grad_modules(v.make(3, 4, 2)) for v in eager_zoo(registry))
