"""Every registered variant, at identical canonical parameters, holds to the one contract
(`dotbias.equivalence.CONTRACT`) against the baseline and the float64 reference: declared output
shape, then outputs and the four canonical gradients bitwise within a family where promised,
within error otherwise. No test names a pair: each runs over the registry."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given
from strategies import ALL_DTYPES, Case, all_dtypes, cases, duplicate_cases, half_dtypes

from dotbias.equivalence.contract import (BASELINE, CONTRACT, GRAIN_SIZE, assert_equivalent, check_variant,
    expect_exact)
from dotbias.models.registry import VARIANTS
from dotbias.models.variant import Variant


def equivalence_property(case: Case, variants: list[Variant] | None = None) -> None:
    """The property on one drawn case, for every registered variant (or `variants`)."""
    x, y = case.batch()
    assert_equivalent(list(VARIANTS.values()) if variants is None else variants, case.params(),
                      x, y, case.y_range)


@given(cases())
def test_every_variant_holds_to_the_contract(case):
    equivalence_property(case)


@given(cases(half_dtypes))
def test_every_variant_holds_to_the_contract_in_half_precision(case):
    equivalence_property(case)


@given(duplicate_cases)
def test_duplicate_indices_accumulate_within_the_contract(case):
    equivalence_property(case)


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_each_variant_at_a_large_table_and_batch(name, dtype):
    """Every variant and dtype at least once at 100,000 rows and a batch of 5,000."""
    case = Case(100_000, 3000, 4, 5000, "uniform", dtype, "cpu", 7)
    equivalence_property(case, [VARIANTS[name]])


def test_families_are_bitwise_and_the_rest_within_error():
    case = Case(50, 60, 8, 300, "duplicates", torch.float32, "cpu", 3)
    x, y = case.batch()
    base = VARIANTS[BASELINE]
    for v in VARIANTS.values():
        r = check_variant(v, case.params(), x, y)
        same_family = v.same_family(base)
        assert {c.rule for c in r.checks} == ({"bitwise"} if same_family else {"within error"})
        assert r.passed and (r.exact or not same_family), r.first_failure()


def test_exactness_is_stated_per_dtype_and_device():
    big = GRAIN_SIZE
    assert expect_exact(torch.float32, "cpu", numel=big - 1, threads=8, deterministic=False)
    assert not expect_exact(torch.float32, "cpu", numel=big, threads=8, deterministic=False)
    assert expect_exact(torch.float32, "cpu", numel=big, threads=1, deterministic=False)
    assert expect_exact(torch.float32, "cpu", numel=big, threads=8, deterministic=True)
    for dtype in (torch.float64, torch.float16, torch.bfloat16):
        assert expect_exact(dtype, "cpu", numel=10 * big, threads=8, deterministic=False)
    assert not expect_exact(torch.float32, "cuda", numel=1, threads=8, deterministic=True)


def test_the_contract_states_its_numbers():
    from dotbias.equivalence.contract import FACTOR, FLOOR_ULPS
    assert f"{FACTOR} x max |{BASELINE} - float64| + {FLOOR_ULPS} ulps" in CONTRACT
    assert f"{GRAIN_SIZE:,}" in CONTRACT


@given(cases(all_dtypes))
def test_a_copy_of_any_variant_is_accepted(case):
    """Registering an exact copy must keep everything green: a copy checks like its original."""
    copies = [Variant(f"{v.name}_copy", v.build, v.description, v.output_shape, v.paths,
                      v.to_canonical, v.load_canonical, v.canonical_grads, v.init, v.exact_with)
              for v in VARIANTS.values()]
    equivalence_property(case, copies)


def test_example_counts_come_from_the_profile():
    """No property sets its own max_examples, so `--hypothesis-profile thorough` takes effect."""
    import test_determinism
    import test_init
    import test_trajectories
    from hypothesis import settings

    props = [f for m in (test_determinism, test_init, test_trajectories, __import__(__name__))
             for f in vars(m).values() if hasattr(f, "hypothesis")]
    assert len(props) >= 7
    for f in props:
        assert f._hypothesis_internal_use_settings.max_examples == settings.default.max_examples, f
