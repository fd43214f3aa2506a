"""A full training epoch over MovieLens-100k-shaped synthetic ratings (80k train rows, bs 64):
once through fastai's Learner (`fit_one_cycle(1)`, the seed's way) and once through the lean
plain-torch loop. Every round starts from the same canonical parameters."""
from __future__ import annotations

import pytest
import torch

from conftest import base_info, group_name
from dotbias.inputs import random_canonical
from dotbias.timing import Size
from dotbias.variants import VARIANTS

N_FACTORS = 50


@pytest.fixture(scope="session")
def ratings():
    from dotbias.data import synthetic_ratings
    return synthetic_ratings(seed=0).ratings


@pytest.fixture(scope="session")
def data_cache():
    return {}


def _data(ratings, device, cache):
    if device not in cache:
        from dotbias.data import collab_dls, tensors_from_dls
        dls = collab_dls(ratings, bs=64, seed=42, device=device)
        cache[device] = (dls, tensors_from_dls(dls))
    return cache[device]


def _epoch(benchmark, request, operation, device, size, dtype, variant, ratings, data_cache, fit):
    if dtype != "float32":
        pytest.skip("epochs run in float32 only (fastai's loaders yield float32 targets)")
    dls, tensors = _data(ratings, device, data_cache)
    size = Size(size, tensors.n_users, tensors.n_items, N_FACTORS, 64)
    params = random_canonical(size.n_users, size.n_items, N_FACTORS,
                              generator=torch.Generator().manual_seed(0))
    benchmark.group = group_name(operation, device, size, dtype)
    benchmark.extra_info.update(base_info(operation, variant, device, size, dtype))
    benchmark.extra_info["train_rows"] = int(tensors.x_train.shape[0])
    v = VARIANTS[variant]

    def setup():
        return (v.make(size.n_users, size.n_items, N_FACTORS, device=device, params=params),), {}

    result = benchmark.pedantic(lambda model: fit(model, dls, tensors, device), setup=setup,
                                rounds=request.config.getoption("epoch_rounds"), warmup_rounds=1)
    benchmark.extra_info["final_valid_loss"] = result.final_valid_loss


def test_epoch_fastai(benchmark, request, device, size, dtype, variant, ratings, data_cache):
    from dotbias.training import fit_fastai
    _epoch(benchmark, request, "epoch_fastai", device, size, dtype, variant, ratings, data_cache,
           lambda model, dls, tensors, device: fit_fastai(model, dls, epochs=1, seed=0))


def test_epoch_lean(benchmark, request, device, size, dtype, variant, ratings, data_cache):
    from dotbias.training import fit_lean
    _epoch(benchmark, request, "epoch_lean", device, size, dtype, variant, ratings, data_cache,
           lambda model, dls, tensors, device: fit_lean(model, tensors, epochs=1, seed=0, device=device))
