"""`row_step`: the whole step of the book's model in one C function (models/row_step.py). The
trajectory contract judges it like every implementation (test_mutants.py counts it); these tests
hold what the contract cannot see from outside: float64 agreement with torch AdamW step by step
over batches of changing size with repeated rows, the refusals (a forward that is not the book's,
a layout that is not canonical, an index outside the tables: no write out of bounds) and the
build (no compiler, a failing one, one build per machine)."""
from __future__ import annotations

import os

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from dotbias.models.c_library import library_path, load_library
from dotbias.models.inputs import random_canonical
from dotbias.models.optimizers import BOOK, BUILT_IN_IMPLS
from dotbias.models.row_step import RowStep
from dotbias.models.training import mse_flat, scheduled_steps, train_step

ROW_STEP = BUILT_IN_IMPLS["row_step"]


@pytest.fixture(autouse=True)
def _row_step_trains_the_baseline(request):
    """With a baseline row_step cannot train (`--baseline packed`: not the four canonical
    tensors), the tests that train it sit out, saying why."""
    if "baseline" in request.fixturenames:
        baseline = request.getfixturevalue("baseline")
        if (why := ROW_STEP.cannot_train(baseline.make(3, 4, 2))) is not None:
            pytest.skip(why)


def _batches(n_users: int, n_items: int, sizes: list[int], seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for bs in sizes:
        x = torch.stack([torch.randint(0, n_users, (bs,), generator=g),
                         torch.randint(0, n_items, (bs,), generator=g)], dim=1)
        out.append((x, torch.rand(bs, generator=g, dtype=torch.float64) * 5.5))
    return out


def test_it_steps_as_torch_adamw_in_float64_over_changing_batches(baseline):
    """Every parameter after every step within 1e-9 (relative) of torch AdamW's, batches of 1 to
    40 rows drawn from 5 users and 7 items (rows repeat within a batch; most rows sit out a step).
    Caught: repeated rows not summed, rows outside the batch not decayed, scratch not regrown for
    a larger batch, a bias correction off by a step."""
    params = random_canonical(5, 7, 3, dtype=torch.float64, std=0.5,
                              generator=torch.Generator().manual_seed(1))
    batches = _batches(5, 7, [4, 1, 40, 3, 17, 2, 40, 8])
    book = scheduled_steps(baseline, params, batches, impl=BOOK, lr=0.05)
    mine = scheduled_steps(baseline, params, batches, impl=ROW_STEP, lr=0.05)
    for step, (a, b) in enumerate(zip(mine, book), 1):
        for name, got, want in zip(a._fields, a, b):
            torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12,
                                       msg=lambda m, at=f"step {step}, {name}": f"{at}: {m}")
    assert not torch.equal(mine[-1].user_factors, params.user_factors)


def _stepper(baseline, dtype=torch.float32):
    model = baseline.make(6, 9, 4, dtype=dtype)
    return model, ROW_STEP.make(list(model.parameters()), 1e-2, 0.1)


class _FactorsFirst(nn.Module):
    """The book's arithmetic with its parameters in another order (factors, then biases) and one
    factor: shapes alone cannot tell a bias from a factor, nor users from items."""
    def __init__(self, n: int):
        super().__init__()
        g = torch.Generator().manual_seed(3)
        self.users, self.items, self.user_b, self.item_b = (
            nn.Parameter(torch.randn(*s, generator=g, dtype=torch.float64))
            for s in ((n, 1), (n, 1), (n,), (n,)))
        self.y_range = (0, 5.5)

    def forward(self, x):
        u, i = x[:, 0], x[:, 1]
        res = (self.users[u] * self.items[i]).sum(dim=1) + self.user_b[u] + self.item_b[i]
        return torch.sigmoid(res) * 5.5


def test_where_shapes_are_ambiguous_the_roles_are_the_ones_that_give_the_models_forward():
    """Caught: biases trained as factors, or users as items, when shapes allow both (seen with
    `--baseline torch_emb` at one factor: 'forward differs', or worse, a wrong training)."""
    a, b = _FactorsFirst(3), _FactorsFirst(3)
    opt_a = ROW_STEP.make(list(a.parameters()), 0.05, 0.1)
    opt_b = BOOK.make(list(b.parameters()), 0.05, 0.1)
    for x, y in _batches(3, 3, [4, 6, 2]):
        train_step(a, opt_a, x, y)
        train_step(b, opt_b, x, y)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-9, atol=1e-12)


def test_an_index_outside_the_tables_is_an_index_error_and_writes_nothing(baseline):
    """Caught: a C step that reads or writes past a table for a bad batch (torch raises)."""
    model, opt = _stepper(baseline)
    x, y = _batches(6, 9, [5])[0]
    train_step(model, opt, x, y)
    before = [p.detach().clone() for p in model.parameters()]
    bad = x.clone()
    bad[3, 1] = 9
    with pytest.raises(IndexError, match=r"batch row 3 indexes outside the tables \(6 users, 9 items\)"):
        train_step(model, opt, bad, y)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before))


def test_a_model_whose_forward_is_not_the_books_is_refused(baseline):
    """The C step computes the book's forward, not the model's: a model that differs (here by
    0.01 on every output) is refused on its first batch, naming the forward. Caught: row_step
    training a variant it does not compute, and calling it the same training."""
    model, _ = _stepper(baseline)
    forward = model.forward
    model.forward = lambda x: forward(x) + 0.01
    opt = ROW_STEP.make(list(model.parameters()), 1e-2, 0.1)
    x, y = _batches(6, 9, [5])[0]
    with pytest.raises(ValueError, match="this model's forward differs on the first batch"):
        train_step(model, opt, x, y)
    book_model, _ = _stepper(baseline)
    with pytest.raises(ValueError, match="this model's loss differs on the first batch"):
        RowStep(list(book_model.parameters()), 1e-2, 0.1).train(
            book_model, x, y, lambda out, y: mse_flat(out, y) * 2)


@pytest.mark.parametrize("shapes", [[[3, 2], [3, 2], [4, 2], [4]], [[3, 2], [3], [4, 2]],
                                    [[3, 2], [4], [4, 2], [3, 1, 1]]])
def test_a_layout_that_is_not_the_canonical_four_is_refused(shapes):
    with pytest.raises(ValueError, match="row_step"):
        RowStep([nn.Parameter(torch.zeros(*s)) for s in shapes], 1e-2, 0.1)


def test_float16_and_mixed_dtypes_are_refused_naming_them():
    params = [torch.zeros(3, 2), torch.zeros(3), torch.zeros(4, 2, dtype=torch.float64), torch.zeros(4)]
    with pytest.raises(ValueError, match="one dtype, float32 or float64, got .*torch.float64"):
        RowStep(params, 1e-2, 0.1)


def test_without_a_compiler_it_says_which_and_with_a_failing_one_its_first_line(tmp_path, monkeypatch):
    monkeypatch.setenv("DOTBIAS_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", "no-such-cc-here")
    with pytest.raises(OSError, match="row_step needs a C compiler: 'no-such-cc-here' is not on PATH"):
        load_library()
    monkeypatch.setenv("CC", "false")
    with pytest.raises(OSError, match="row_step: building row_step.c failed"):
        load_library()
    assert not list(tmp_path.iterdir()), "a failed build left a file in the cache"


def test_it_is_built_once_per_machine(tmp_path, monkeypatch):
    """Caught: a rebuild on every stepper (seconds a worker process) or a cache that is not used."""
    monkeypatch.setenv("DOTBIAS_CACHE", str(tmp_path))
    load_library()
    built = library_path()
    stamp = built.stat().st_mtime_ns
    load_library()
    assert os.listdir(tmp_path) == [built.name] and built.stat().st_mtime_ns == stamp


class _Watching(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        return func(*args, **(kwargs or {}))


def test_watched_through_its_op_or_called_directly_it_steps_bit_for_bit_the_same(baseline):
    """Under a dispatch mode (the floor counter) the step goes through `dotbias::row_step`;
    otherwise it calls the C function directly. Caught: two paths that diverge (the floor
    counted for one step, the time measured for another)."""
    (a, opt_a), (b, opt_b) = _stepper(baseline), _stepper(baseline)
    b.load_state_dict(a.state_dict())
    for x, y in _batches(6, 9, [5, 3, 7]):
        loss_a = train_step(a, opt_a, x, y)
        with _Watching():
            loss_b = train_step(b, opt_b, x, y)
        assert torch.equal(loss_a, loss_b)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_a_batch_off_the_cpu_or_of_the_wrong_length_is_refused_before_the_c_step_reads_it(baseline):
    """Caught: a device pointer handed to C, or fewer targets than rows (a crash, not an error)."""
    model, opt = _stepper(baseline)
    x, y = _batches(6, 9, [5])[0]
    train_step(model, opt, x, y)
    with pytest.raises(ValueError, match=r"row_step takes a CPU batch .* on meta"):
        opt.train(model, x.to("meta"), y.to("meta"), mse_flat)
    with pytest.raises(ValueError, match=r"got \[5, 2\] on cpu and \[4\] on cpu"):
        opt.train(model, x, y[:4], mse_flat)         # caught: C reading targets past the end
