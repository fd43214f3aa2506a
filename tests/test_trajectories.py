"""k optimizer steps from the same canonical start on the same batches keep every pair of variants
matching: SGD (momentum), Adam, AdamW with weight decay, and fastai's `fit_one_cycle`."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given
from strategies import Case, examples, optimizers, pairs, small_cases, step_counts
from test_equivalence import NoItemBias

from dotbias.inputs import random_canonical
from dotbias.equivalence import expect_exact
from dotbias.equivalence import assert_trajectories_match, compare_trajectories
from dotbias.training import fit_fastai
from dotbias.variants import VARIANTS, Variant


@examples(150)
@given(small_cases, optimizers, step_counts)
def test_k_optimizer_steps_keep_parameters_matching(case, optimizer, k):
    params = case.params()
    batches = [case.batch(step) for step in range(k)]
    exact = expect_exact(case.dtype, case.device, numel=case.bs * case.n_factors)
    for a, b in pairs():
        r = compare_trajectories(VARIANTS[a], VARIANTS[b], params, batches, optimizer, case.y_range)
        assert_trajectories_match(r, exact=exact, where=f"({case})")


def test_a_trajectory_mismatch_names_the_step_and_the_tensor():
    case = Case(5, 6, 3, 8, "uniform", torch.float32, "cpu", 0)
    params = case.params()
    same = compare_trajectories(VARIANTS["cp"], VARIANTS["emb"], params,
                                [case.batch(0), case.batch(1)], "sgd")
    assert same.exact and "bitwise equal throughout" in str(same)
    # a variant that drops the item bias drifts from step 1 on
    broken = Variant("no_item_bias", NoItemBias, "item bias dropped", "[bs]")
    r = compare_trajectories(VARIANTS["cp"], broken, params, [case.batch(0), case.batch(1)], "sgd")
    with pytest.raises(AssertionError, match=r"cp vs no_item_bias .*sgd step 1 of 2, "
                                             r"\w+ not bitwise equal: max abs diff"):
        assert_trajectories_match(r, exact=True)


def tiny_dls(seed: int, bs: int = 16):
    from fastai.collab import CollabDataLoaders
    rng = np.random.default_rng(seed)
    n = 200
    df = pd.DataFrame({"user": rng.integers(1, 9, n), "title": [f"m{i}" for i in rng.integers(0, 10, n)],
                       "rating": rng.integers(1, 6, n)})
    return CollabDataLoaders.from_df(df, item_name="title", bs=bs, seed=seed)


def fit_one_cycle(variant: str, dls, params, seed: int):
    """The seed's fit (`dotbias.training.fit_fastai`) from canonical `params`."""
    n_users, n_items, n_factors = params.sizes
    model = VARIANTS[variant].make(n_users, n_items, n_factors, params=params)
    result = fit_fastai(model, dls, epochs=1, lr=5e-3, wd=0.1, seed=seed)
    last = result.epochs[-1]
    return VARIANTS[variant].to_canonical(model), (last.train_loss, last.valid_loss)


@pytest.mark.parametrize("seed", [0, 1])
def test_fastai_fit_one_cycle_keeps_parameters_bitwise_equal(seed):
    dls = tiny_dls(seed)
    n_users, n_items = len(dls.classes["user"]), len(dls.classes["title"])
    params = random_canonical(n_users, n_items, 5, std=0.1, generator=torch.Generator().manual_seed(seed))
    for a, b in pairs():
        pa, la = fit_one_cycle(a, dls, params, seed)
        pb, lb = fit_one_cycle(b, dls, params, seed)
        assert not torch.equal(pa.user_factors, params.user_factors)    # it trained
        for name, ta, tb in zip(pa._fields, pa, pb):
            assert torch.equal(ta, tb), f"{a} vs {b}: {name} differs after fit_one_cycle"
        assert la == lb
