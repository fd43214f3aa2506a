"""The floors beside a time (`timing.floors`): what the counter counts and at which bandwidth it
prices it. Times themselves are never asserted here (noisy); counts are exact."""
from __future__ import annotations

import pytest
import torch

from dotbias.models.optimizers import BUILT_IN_IMPLS
from dotbias.models.training import train_step
from dotbias.timing import floors
from dotbias.timing.floors import count_ops

F32 = 4


def test_an_op_that_writes_in_place_and_returns_nothing_counts_its_writes():
    """`_foreach_add_` returns nothing: its written list counts as read and written. Caught: a
    counter that saw only the arguments of such ops (fused and foreach optimizers, and custom
    ops), which halved their written bytes and made their floors too low."""
    a, b = [torch.zeros(10), torch.zeros(30)], [torch.ones(10), torch.ones(30)]
    ops, nbytes = count_ops(lambda: torch._foreach_add_(a, b))
    assert ops == 1 and nbytes == (40 + 40 + 40) * F32


def test_an_in_place_op_that_returns_its_argument_counts_it_once_each_way():
    """`add_` returns its first argument: read once, written once, not a third time."""
    a, b = torch.zeros(25), torch.ones(25)
    assert count_ops(lambda: a.add_(b)) == (1, 3 * 25 * F32)


def test_row_step_is_one_op_moving_every_parameter_and_both_moments_each_way(baseline):
    """The C step declares its tensors through its op: at least 24 bytes a float32 parameter
    (parameter, m and v, read and written). Caught: a step the counter cannot see (no floor, or
    one of a few bytes), or moments left out of what it declares."""
    model, impl = baseline.make(50, 70, 8), BUILT_IN_IMPLS["row_step"]
    if (why := impl.cannot_train(model)) is not None:
        pytest.skip(why)
    opt = impl.make(list(model.parameters()), 1e-3, 0.1)
    x = torch.stack([torch.arange(16) % 50, torch.arange(16) % 70], dim=1)
    y = torch.rand(16)
    ops, nbytes = count_ops(lambda: train_step(model, opt, x, y))
    n = sum(p.numel() for p in model.parameters())
    assert ops <= 3 and 24 * n <= nbytes < 26 * n + 10_000


def test_the_bandwidth_floor_is_priced_at_a_copy_as_big_as_the_bytes_counted(monkeypatch):
    """Caught: every floor priced at one big copy's bandwidth, which a cache-resident step beats
    (it was no floor for a small model's step)."""
    asked = []
    monkeypatch.setattr(floors, "copy_bandwidth", lambda device, nbytes: asked.append(nbytes) or 1e9)
    a, b = torch.zeros(1000), torch.ones(1000)
    fl = floors.floor(lambda: a.add_(b), 1e-6)
    assert asked == [3 * 1000 * F32] and fl.bytes == asked[0] and fl.bytes_per_second == 1e9


def test_copy_bandwidth_moves_the_bytes_asked_within_its_limits(monkeypatch):
    sizes = []
    real_ones = torch.ones
    # the copy itself runs on at most 1024 floats: only the size asked for is checked
    monkeypatch.setattr(floors.torch, "ones",
                        lambda n, **kw: sizes.append(n) or real_ones(min(n, 1024), **kw))
    for nbytes in (1, 80_000, 2**40):
        assert floors.copy_bandwidth("cpu", nbytes) > 0
    assert sizes == [2**13 // 8, 80_000 // 8, 2**29 // 8]
