"""Training loops: return shape, reproducibility, and that both actually learn."""
from __future__ import annotations

import math

import pytest
import torch

from dotbias import VARIANTS
from dotbias.data import collab_dls, synthetic_ratings, tensors_from_dls
from dotbias.training import evaluate, fit_fastai, fit_lean


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
    a = fit_fastai(make(name, data), dls, epochs=2, seed=3)
    b = fit_fastai(make(name, data), dls, epochs=2, seed=3)
    assert len(a.epochs) == 2
    assert [e.valid_loss for e in a.epochs] == [e.valid_loss for e in b.epochs]
    assert a.final_valid_loss < before
    # fastai's valid loss is the mean over the valid set, the same as the lean loop's evaluate
    model = make(name, data)
    r = fit_fastai(model, dls, epochs=1, seed=3)
    assert r.final_valid_loss == pytest.approx(evaluate(model, data), rel=1e-5)


def test_lean_and_fastai_reach_similar_losses(small):
    dls, data = small
    lean = fit_lean(make("cp", data), data, epochs=3, bs=32, seed=0).final_valid_loss
    fa = fit_fastai(make("cp", data), dls, epochs=3, seed=0).final_valid_loss
    assert abs(lean - fa) < 0.15 * fa


def test_fit_lean_rejects_a_batch_larger_than_the_data(small):
    _, data = small
    with pytest.raises(ValueError, match="bs=100000 is larger than the"):
        fit_lean(make("cp", data), data, epochs=1, bs=100_000)
