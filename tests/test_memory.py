"""Peak memory per call is measured from the allocator: a known extra buffer shows as its bytes, the
same call gives the same figure, and the noise rule flags only real differences."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from dotbias.report.markdown import _group_table, row_json, verdict_lines
from dotbias.report.summary import read_benchmark, summarise_group
from dotbias.timing.groups import Group, Size
from dotbias.timing.groups import memory_differs as differs
from dotbias.timing.memory import op_peak_bytes, peak_bytes

SIZE = Size("mem", 300, 400, 24, 256)


def with_extra_buffer(build):
    """The baseline's model class, allocating one more [bs, n_factors] float32 buffer that stays
    alive through its forward."""
    class ExtraBuffer(build):
        def forward(self, x):
            buffer = torch.ones(x.shape[0], SIZE.n_factors, dtype=torch.float32)
            out = super().forward(x)
            return out + 0 * buffer[:, 0].sum()
    return ExtraBuffer


@pytest.fixture
def twin(baseline):
    """The baseline with an extra buffer, registered for this test only."""
    base = baseline
    return dataclasses.replace(base, name="extra_buffer_twin", build=with_extra_buffer(base.build),
                               exact_with=None)


def test_an_extra_buffer_per_forward_shows_as_its_bytes(twin, baseline, registry):
    group, reg = Group("forward", "cpu", SIZE, "float32"), registry.with_variants(twin)
    base, more = op_peak_bytes(group, baseline.name, reg), op_peak_bytes(group, twin.name, reg)
    expected = SIZE.bs * SIZE.n_factors * 4
    assert abs((more - base) - expected) <= 0.1 * expected, (
        f"{twin.name} vs {baseline.name}, {group.label}: {more - base} bytes more, expected {expected}")


@pytest.mark.parametrize("operation", ["forward_backward", "step"])
def test_the_same_call_gives_the_same_figure(operation, registry):
    group = Group(operation, "cpu", SIZE, "float32")
    for name in registry.variants:
        first, second = op_peak_bytes(group, name, registry), op_peak_bytes(group, name, registry)
        assert first == second > 0, f"{name}, {group.label}: {first} then {second} bytes"


def test_peak_counts_live_bytes_not_the_sum_of_allocations():
    def two_in_turn():
        a = torch.ones(1000, dtype=torch.float64)
        del a
        b = torch.ones(1000, dtype=torch.float64)
        del b

    def two_at_once():
        a = torch.ones(1000, dtype=torch.float64)
        b = torch.ones(1000, dtype=torch.float64)
        del a, b
    assert peak_bytes(two_in_turn) == 8000
    assert peak_bytes(two_at_once) == 16000


def test_a_difference_counts_beyond_one_percent_and_4_kib():
    assert not differs(1_000_000, 1_009_000)      # 0.9%
    assert differs(1_000_000, 1_011_000)
    assert not differs(10_000, 13_000)            # 30% but under 4 KiB
    assert differs(10_000, 15_000)


def _bench(variant: str, peak: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    seconds = [(1e-4 * np.exp(rng.normal(0, 0.02, 20))).tolist() for _ in range(3)]
    info = {"group": {"operation": "step", "device": "cpu", "dtype": "float32",
                      "size": {"name": "s", "n_users": 9, "n_items": 9, "n_factors": 4, "bs": 8}},
            "variant": variant, "baseline": "base", "threads": 1, "memory": {"peak_bytes": peak},
            "timing": {"seconds": seconds, "iterations": [10] * 3}}
    return {"name": f"test_step[{variant}]", "extra_info": info, "stats": {"median": 1e-4}}


@pytest.mark.parametrize("cand_peak, named", [(150_000, True), (100_500, False), (102_000, False)])
def test_report_shows_peak_memory_and_names_a_real_difference(cand_peak, named):
    """A memory column per variant in REPORT.md and report.json; a verdict line only beyond noise
    (against the baseline the run recorded)."""
    row = summarise_group([read_benchmark(_bench("cand", cand_peak, 0), "cand"),
                           read_benchmark(_bench("base", 100_000, 1), "base")])
    lines = [ln for ln in verdict_lines(row) if "peak memory" in ln]
    assert bool(lines) == named, lines
    if named:
        assert "peak memory cand/base 1.50x" in lines[0]
    table = _group_table([row], several=False).splitlines()
    assert "peak memory" in table[0]
    [cand] = [ln for ln in table if "| cand |" in ln]
    [base] = [ln for ln in table if "| base |" in ln]
    assert "97.7 KiB" in base and ("146.5 KiB" if named else "KiB") in cand
    assert ("peak memory cand/base 1.50x" in cand) == named and "peak memory cand" not in base
    assert row_json(row)["times"]["cand"]["memory"] == {"peak_bytes": cand_peak}
