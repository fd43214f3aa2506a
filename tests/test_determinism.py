"""Devices and determinism: CPU and CUDA hold to the contract (skipped without a GPU); under
`torch.use_deterministic_algorithms(True)` repeated runs are bit-identical and the baseline's
family is bitwise equal even for large float32 gradients."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dotbias.equivalence.contract import check_variant
from dotbias.equivalence.reference import run_batch
from helpers.strategies import Case, cases

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture
def deterministic():
    was = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was)


@given(cases())
def test_repeated_runs_are_bit_identical_under_deterministic_algorithms(deterministic, registry, case):
    params = case.params()
    x, y = case.batch()
    for name, v in registry.variants.items():
        out1, g1 = run_batch(v, params, x, y, case.y_range)
        out2, g2 = run_batch(v, params, x, y, case.y_range)
        assert torch.equal(out1, out2), f"{name}: output differs between runs ({case})"
        for field, a, b in zip(g1._fields, g1, g2):
            assert torch.equal(a, b), f"{name}: d{field} differs between runs ({case})"


def test_large_float32_family_is_bitwise_under_deterministic_algorithms(deterministic, baseline, registry):
    case = Case(50, 60, 128, 3000, "duplicates", torch.float32, "cpu", 3)
    base = baseline
    for v in registry.variants.values():
        r = check_variant(v, case.params(), *case.batch(), baseline=base)
        assert r.passed, r.first_failure().message
        if v.same_family(base):
            assert r.exact and {c.rule for c in r.checks} == {"bitwise"}


@cuda
@given(cases(device=st.just("cuda")))
def test_every_variant_holds_to_the_contract_on_cuda(baseline, registry, case):
    x, y = case.batch()
    for v in registry.variants.values():
        r = check_variant(v, case.params(), x, y, case.y_range, baseline=baseline)
        assert r.passed, r.first_failure().message


@cuda
def test_cuda_runs_are_bit_identical_under_deterministic_algorithms(deterministic, registry):
    case = Case(100, 120, 64, 2048, "duplicates", torch.float32, "cuda", 0)
    params = case.params()
    x, y = case.batch()
    for v in registry.variants.values():
        first = run_batch(v, params, x, y)
        second = run_batch(v, params, x, y)
        assert torch.equal(first[0], second[0])
        assert all(torch.equal(a, b) for a, b in zip(first[1], second[1]))
