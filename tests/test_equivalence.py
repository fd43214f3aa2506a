"""Every registered variant, at identical canonical parameters, holds to the one contract
(`dotbias.equivalence.CONTRACT`) against the baseline and the float64 reference: declared output
shape, then outputs and the four canonical gradients bitwise within a family where promised,
within error otherwise; every variant, the baseline first, within the a-priori bound of float64.
No test names a pair: each runs over the registry, against the chosen baseline (--baseline)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hypothesis import example, given

from dotbias.equivalence import baseline as chosen
from dotbias.equivalence.contract import (
    APRIORI_ULPS,
    DEFAULT_BASELINE,
    FACTOR,
    FLOOR_ULPS,
    GRAIN_SIZE,
    BaselineError,
    assert_equivalent,
    check_tensor,
    check_variant,
    expect_exact,
)
from dotbias.equivalence.mismatches import close_message, surely_close
from dotbias.models.variant import Variant
from dotbias.pytest_bench.options import BASELINE
from helpers.properties import SATURATED, equivalence_property, scaled_baseline
from helpers.strategies import ALL_DTYPES, Case, all_dtypes, cases, duplicate_cases, half_dtypes, tensor_pairs

REPO = Path(__file__).resolve().parents[1]

@given(cases())
@example(SATURATED)
def test_every_variant_holds_to_the_contract(baseline, registry, case):
    equivalence_property(case, list(registry.variants.values()), baseline=baseline)


@given(cases(half_dtypes))
def test_every_variant_holds_to_the_contract_in_half_precision(baseline, registry, case):
    equivalence_property(case, list(registry.variants.values()), baseline=baseline)


# One (user, item) pair 2,260 times: equal terms summed in another order (einsum's) in float64,
# where the baseline's own error is 0 and the floor alone holds the variant. Its rounding grew
# as the count, not its square root: 2.7x the square-root floor (a draw of `pytest tests`,
# 2026-12-07); the floor now grows as the pair's repeats (`reference.error_bounds`).
EQUAL_TERMS = Case(2916, 186, 47, 2260, "same", torch.float64, "cpu", 174, bias_std=0.5, targets="high")


@given(duplicate_cases)
@example(EQUAL_TERMS)
def test_duplicate_indices_accumulate_within_the_contract(baseline, registry, case):
    equivalence_property(case, list(registry.variants.values()), baseline=baseline)


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
@pytest.mark.each_variant("name", sort=True)
def test_each_variant_at_a_large_table_and_batch(name, dtype, baseline, registry):
    """Every variant and dtype at least once at 100,000 rows and a batch of 5,000."""
    case = Case(100_000, 3000, 4, 5000, "uniform", dtype, "cpu", 7)
    equivalence_property(case, [registry.variants[name]], baseline=baseline)


def test_families_are_bitwise_and_the_rest_within_error(baseline, registry):
    case = Case(50, 60, 8, 300, "duplicates", torch.float32, "cpu", 3)
    x, y = case.batch()
    base = baseline
    for v in registry.variants.values():
        r = check_variant(v, case.params(), x, y, baseline=base)
        same_family = v.same_family(base)
        rules = {c.rule for c in r.checks}
        assert rules == ({"bitwise"} if same_family else {"within error"}), f"{r.where}: rules {rules}"
        assert r.passed, r.first_failure().message
        assert r.exact or not same_family, f"{r.where}: same family, not bitwise equal"


def test_exactness_is_stated_per_dtype_and_device():
    big = GRAIN_SIZE
    assert expect_exact(torch.float32, "cpu", numel=big - 1, threads=8, deterministic=False)
    assert not expect_exact(torch.float32, "cpu", numel=big, threads=8, deterministic=False)
    assert expect_exact(torch.float32, "cpu", numel=big, threads=1, deterministic=False)
    assert expect_exact(torch.float32, "cpu", numel=big, threads=8, deterministic=True)
    for dtype in (torch.float64, torch.float16, torch.bfloat16):
        assert expect_exact(dtype, "cpu", numel=10 * big, threads=8, deterministic=False)
    assert not expect_exact(torch.float32, "cuda", numel=1, threads=8, deterministic=True)


def test_the_a_priori_bound_caps_what_a_poor_baseline_would_allow():
    """A baseline 10 ulps of the scale off would let a variant 42 off; the bound allows 16."""
    eps, ref = torch.finfo(torch.float32).eps, torch.zeros(3, dtype=torch.float64)
    runs = {"variant": torch.tensor([0, 20 * eps, 0]), "baseline": torch.tensor([10 * eps, 0, 0]),
            "float64": ref}
    loose = check_tensor("output", runs, "v vs b", exact=False, scale=1.0)
    capped = check_tensor("output", runs, "v vs b", exact=False, scale=1.0,
                          bound=APRIORI_ULPS * eps)
    assert loose.passed and loose.allowed == pytest.approx((FACTOR * 10 + FLOOR_ULPS) * eps)
    assert not capped.passed and capped.allowed == pytest.approx(APRIORI_ULPS * eps)
    assert capped.message.startswith(f"v vs b: output index 1: |variant - float64| up to "
                                     f"{20 * eps:.3g} > allowed a-priori bound {APRIORI_ULPS} ulps")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_a_baseline_off_by_1e_3_fails_the_a_priori_bound_naming_itself_first(dtype, registry):
    case = Case(50, 60, 8, 300, "duplicates", dtype, "cpu", 3)
    x, y = case.batch()
    with scaled_baseline(registry) as (copy, built, scaled):
        others = [v for v in scaled.variants.values() if v.name.startswith("spy_")]
        with pytest.raises(BaselineError) as e:
            check_variant(others[0], case.params(), x, y, baseline=copy)
        with pytest.raises(BaselineError) as e2:
            assert_equivalent(others, case.params(), x, y, baseline=copy)
    for err in (e, e2):
        assert str(err.value).startswith(f"baseline {copy.name} (n_users=50, n_items=60, n_factors=8, "
                                         f"bs=300, {str(dtype)[6:]}, cpu): user_factors grad row ")
        assert f"> a-priori bound {APRIORI_ULPS} ulps per rounding = " in str(err.value)
    assert built == [], f"variants built against a baseline outside the bound: {built}"


def test_any_registered_variant_can_be_the_baseline(registry):
    """The baseline is a choice: with each registered variant as the baseline, every other holds."""
    case = Case(30, 40, 6, 200, "duplicates", torch.float32, "cpu", 5)
    x, y = case.batch()
    for name, base in registry.variants.items():
        for r in assert_equivalent(list(registry.variants.values()), case.params(), x, y,
                                   baseline=base):
            assert r.baseline == name, r.where


def test_the_chosen_baseline_is_the_one_asked_for(request, monkeypatch, baseline, registry):
    asked = request.config.getoption("baseline") or os.environ.get(chosen.ENV) or DEFAULT_BASELINE
    assert baseline.name == asked
    other = next(n for n in registry.variants if n != asked)
    monkeypatch.setenv(chosen.ENV, other)
    assert chosen.choose_baseline(None, registry) == (other, registry)
    assert chosen.choose_baseline(asked, registry) == (asked, registry)   # the option wins
    with pytest.raises(ValueError, match=r"^--baseline 'nope': no variant of that name; "
                                         r"registered: "):
        chosen.choose_baseline("nope", registry)
    monkeypatch.setenv(chosen.ENV, "nope")
    with pytest.raises(ValueError, match=rf"^\${chosen.ENV} 'nope': no variant of that name"):
        chosen.choose_baseline(None, registry)
    assert request.config.stash[BASELINE] == asked      # choosing again leaves the run's choice


def test_a_bad_variant_spec_or_baseline_is_one_error_line_in_pytest_tests_and_bench(nested_pytest):
    runs = {"tests": nested_pytest("tests", env={"DOTBIAS_VARIANTS": "mine"}),
            "bench": nested_pytest("bench", "--baseline", "nope", env={"DOTBIAS_VARIANTS": ""})}
    for key, want in (("tests", "ERROR: variant spec 'mine': expected pkg.module:attr"),
                      ("bench", "ERROR: --baseline 'nope': no variant of that name; registered: ")):
        out = runs[key].outlines + runs[key].errlines
        lines = [ln for ln in out if ln.strip()]
        assert runs[key].ret == 4 and len(lines) == 1 and lines[0].startswith(want), out[-20:]


@given(cases(all_dtypes))
def test_a_copy_of_any_variant_is_accepted(baseline, registry, case):
    """Registering an exact copy must keep everything green: a copy checks like its original."""
    copies = [Variant(f"{v.name}_copy", v.build, v.description, v.output_shape, v.paths,
                      v.to_canonical, v.load_canonical, v.canonical_grads, v.init, v.exact_with)
              for v in registry.variants.values()]
    equivalence_property(case, copies, baseline=baseline)


def test_example_counts_come_from_the_profile(request):
    """No property sets its own max_examples, so `--hypothesis-profile thorough` takes effect: every
    property this session collected (all of them in `pytest tests`) runs with the profile's count,
    and no test file but the profiles' (conftest.py), the bounded mutation runs' and the fuzz's
    (its case count is its CI budget, scaled by DOTBIAS_FUZZ_SCALE) names one."""
    from hypothesis import settings

    own = [f for f in vars(__import__(__name__)).values() if hasattr(f, "hypothesis")]
    collected = {getattr(it, "obj", None) for it in request.session.items}
    props = own + [f for f in collected if hasattr(f, "hypothesis") and f not in own
                   and not f.__module__.endswith("test_fuzz")]           # the fuzz: its CI budget
    assert len(own) >= 4
    for f in props:
        assert f._hypothesis_internal_use_settings.max_examples == settings.default.max_examples, f
    tests = Path(__file__).parent
    setters = {p.name for p in tests.rglob("*.py") if "max_examples" in p.read_text()}
    assert setters == {"conftest.py", "test_mutants.py", "test_fuzz.py", Path(__file__).name}, setters


@given(tensor_pairs)
@example(([(0.0, float("inf"))], torch.float64, float("inf"), False))     # inf apart, atol inf
@example(([(float("nan"), 1.0)], torch.float64, 1.0, False))
@example(([(1.0, 1.0 + 2**-20)], torch.float16, 1e-6, False))            # equal once rounded
@example(([(1.0, 1.0)], torch.float64, 0.0, True))                        # other shapes
def test_the_quick_pass_of_a_comparison_is_one_assert_close_would_give(pair):
    """`surely_close` lets `close_message` skip torch.testing.assert_close: it must never pass a
    pair that assert_close fails (NaN, infinities, dtypes, shapes), and the message is unchanged.
    Caught: a quick pass in float16 (rounded differences), on a NaN, or of different shapes."""
    values, dtype, atol, reshape = pair
    a = torch.tensor([v for v, _ in values], dtype=torch.float64).to(dtype)
    e = torch.tensor([w for _, w in values], dtype=torch.float64).to(dtype)
    e = e.reshape(-1, 1) if reshape and len(values) else e
    head = lambda d: "head"          # noqa: E731
    try:
        torch.testing.assert_close(a, e, rtol=0, atol=atol, equal_nan=True)
        passes = True
    except AssertionError:
        passes = False
    assert not surely_close(a, e, atol) or passes, (values, dtype, atol)
    assert (close_message(a, e, atol, head) == "") == passes, (values, dtype, atol)
