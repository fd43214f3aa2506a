"""Training loops: return shape, reproducibility, and that both actually learn."""
from __future__ import annotations

import math

import pytest
import torch

from dotbias import VARIANTS
from dotbias.data.ratings import collab_dls, synthetic_ratings, tensors_from_dls
from dotbias.models.training import evaluate, fit_fastai, fit_lean, lean_optimizer, one_cycle


@pytest.fixture(scope="module")
def small():
    syn = synthetic_ratings(60, 80, 3000, seed=0)
    dls = collab_dls(syn.ratings, bs=32, seed=0)
    return dls, tensors_from_dls(dls)


def make(name, data, seed=0):
    torch.manual_seed(seed)
    return VARIANTS[name].make(data.n_users, data.n_items, 8)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_fit_lean_learns_and_is_seeded(small, name):
    _, data = small
    before = evaluate(make(name, data), data)
    a = fit_lean(make(name, data), data, epochs=3, bs=32, seed=1)
    b = fit_lean(make(name, data), data, epochs=3, bs=32, seed=1)
    assert [e.epoch for e in a.epochs] == [0, 1, 2]
    assert [e.valid_loss for e in a.epochs] == [e.valid_loss for e in b.epochs]
    assert a.final_valid_loss < before
    assert all(e.seconds > 0 and math.isfinite(e.train_loss) for e in a.epochs)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_fit_fastai_learns_and_is_seeded(small, name):
    dls, data = small
    before = evaluate(make(name, data), data)
    model = make(name, data)
    a = fit_fastai(model, dls, epochs=2, seed=3)
    b = fit_fastai(make(name, data), dls, epochs=2, seed=3)
    assert len(a.epochs) == 2
    assert [e.valid_loss for e in a.epochs] == [e.valid_loss for e in b.epochs]
    assert a.final_valid_loss < before
    # fastai's valid loss is the mean over the valid set, the same as the lean loop's evaluate
    assert a.final_valid_loss == pytest.approx(evaluate(model, data), rel=1e-5)


def test_lean_follows_fit_one_cycles_schedule_step_for_step(small):
    """The lean loop's claim, made precise: the lr and beta1 of every one of its steps equal those
    fastai's ParamScheduler set during `fit_one_cycle` (read back from the recorder). A schedule
    built with torch's OneCycleLR (final lr lr/(25*1e5) instead of lr/1e5, peak one step late) or
    with the wrong pct_start fails here."""
    dls, data = small
    fa = fit_fastai(make("cp", data), dls, epochs=2, seed=0)
    lean = fit_lean(make("cp", data), data, epochs=2, bs=32, seed=0)
    assert len(fa.hypers) == len(lean.hypers) == 2 * (len(data.y_train) // 32)
    torch.testing.assert_close(torch.tensor(lean.hypers, dtype=torch.float64),
                               torch.tensor(fa.hypers, dtype=torch.float64), rtol=0, atol=0)
    lrs = [h[0] for h in lean.hypers]
    assert lrs.index(max(lrs)) == round(0.25 * len(lrs)) and max(lrs) == pytest.approx(5e-3, rel=1e-3)
    assert lrs[0] == pytest.approx(5e-3 / 25) and lrs[-1] < 5e-3 / 1e3


def test_lean_optimizer_is_fastais_adam(small):
    """Same arithmetic: fit_lean's optimizer (`lean_optimizer`) and fastai's Adam as fit_one_cycle
    builds it (wd 0.1), fed the same gradients with the same changing lr and beta1, stay equal to
    float32 rounding. Coupled (L2) weight decay, torch's default eps 1e-8 or beta2 0.999 fail this."""
    from fastai.optimizer import Adam

    gen = torch.Generator().manual_seed(0)
    p_fa = torch.randn(50, 8, generator=gen, requires_grad=True)
    p_torch = p_fa.detach().clone().requires_grad_(True)
    fa = Adam([p_fa], lr=1e-3, wd=0.1)          # fastai's defaults: eps 1e-5, sqr_mom 0.99, true wd
    opt = lean_optimizer([p_torch], 1e-3, 0.1)
    for lr, mom in one_cycle(5e-2, 20):
        grad = torch.randn(50, 8, generator=gen)
        fa.set_hyper("lr", lr)
        fa.set_hyper("mom", mom)
        opt.param_groups[0]["lr"], opt.param_groups[0]["betas"] = lr, (mom, 0.99)
        p_fa.grad, p_torch.grad = grad.clone(), grad.clone()
        fa.step()
        opt.step()
    torch.testing.assert_close(p_torch.detach(), p_fa.detach(), rtol=1e-5, atol=1e-7)


def test_fit_lean_rejects_a_batch_larger_than_the_data(small):
    _, data = small
    with pytest.raises(ValueError, match="bs=100000 is larger than the"):
        fit_lean(make("cp", data), data, epochs=1, bs=100_000)
