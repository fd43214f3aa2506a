"""Devices and determinism: CPU and CUDA agree within TOLERANCES (skipped without a GPU); under
`torch.use_deterministic_algorithms(True)` repeated runs are bit-identical."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from strategies import Case, cases, examples, pairs

from dotbias.equivalence import compare_pair, diff, run_batch
from dotbias.equivalence import compare_trajectories
from dotbias.variants import VARIANTS

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture
def deterministic():
    was = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was)


@examples(60)
@given(cases())
def test_repeated_runs_are_bit_identical_under_deterministic_algorithms(deterministic, case):
    params = case.params()
    x, y = case.batch()
    for name in VARIANTS:
        out1, g1 = run_batch(VARIANTS[name], params, x, y, case.y_range)
        out2, g2 = run_batch(VARIANTS[name], params, x, y, case.y_range)
        assert torch.equal(out1, out2), f"{name}: output differs between runs ({case})"
        for field, a, b in zip(g1._fields, g1, g2):
            assert torch.equal(a, b), f"{name}: d{field} differs between runs ({case})"


def test_large_float32_pairs_are_exact_under_deterministic_algorithms(deterministic):
    case = Case(50, 60, 128, 3000, "duplicates", torch.float32, "cpu", 3)
    params = case.params()
    for a, b in pairs():
        assert compare_pair(VARIANTS[a], VARIANTS[b], params, *case.batch()).exact
        t = compare_trajectories(VARIANTS[a], VARIANTS[b], params,
                                 [case.batch(s) for s in range(3)], "adamw")
        assert t.exact, str(t)


@cuda
@examples(40)
@given(cases(device=st.just("cpu")))
def test_cpu_and_cuda_agree_within_tolerance(case):
    params = case.params()
    x, y = case.batch()
    for name in VARIANTS:
        out_c, g_c = run_batch(VARIANTS[name], params, x, y, case.y_range)
        out_g, g_g = run_batch(VARIANTS[name], params.to("cuda"), x.cuda(), y.cuda(), case.y_range)
        for label, a, b in [("output", out_c, out_g), *zip(g_c._fields, g_c, g_g)]:
            d = diff(label, a, b.cpu())
            assert d.close, f"{name} cpu vs cuda ({case}): {d}"


@cuda
def test_cuda_runs_are_bit_identical_under_deterministic_algorithms(deterministic):
    case = Case(100, 120, 64, 2048, "duplicates", torch.float32, "cuda", 0)
    params = case.params()
    x, y = case.batch()
    for name in VARIANTS:
        first = run_batch(VARIANTS[name], params, x, y)
        second = run_batch(VARIANTS[name], params, x, y)
        assert torch.equal(first[0], second[0])
        assert all(torch.equal(a, b) for a, b in zip(first[1], second[1]))
