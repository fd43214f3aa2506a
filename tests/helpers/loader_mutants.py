"""Loaders that are not the book's, each one plausible slip of a faster loader (`LOADER_BUGS`), and
one that is the book's by another route (`CORRECT_LOADERS`): each a function of the book's
DataLoaders returning loaders built on `data.loaders.tensor_batches`, as a user's faster loader
would be. The mutation self-test (test_loaders.py) runs them through the check the reference uses."""
from __future__ import annotations

import numpy as np
import torch

from dotbias.data.loaders import tensor_batches


def stale_order(dls):
    """draws the train order once and reuses it every epoch (a cached index list)"""
    fast = tensor_batches(dls)
    first = []
    draw = fast.train.get_idxs
    fast.train.get_idxs = lambda: first or first.extend(draw()) or first
    return fast


def own_shuffle(dls):
    """shuffles the train rows with its own permutation, not fastai's sampling with replacement"""
    fast = tensor_batches(dls)
    fast.train.get_idxs = lambda: np.random.permutation(fast.train.n).tolist()
    return fast


def drops_last_valid(dls):
    """drops the valid loader's last partial batch (the valid loss over fewer rows)"""
    fast = tensor_batches(dls)
    fast.valid.drop_last = True
    return fast


def shifted_rows(dls):
    """cuts each batch one row off: index i reads row i+1 (the tensors rolled by one)"""
    fast = tensor_batches(dls)
    fast.train.full = tuple(t.roll(-1, 0) for t in fast.train.full)
    return fast


def index_select(dls):
    """its own batching: the sampled indices cut into runs of `bs` by slicing, the rows gathered
    with `torch.index_select` (the same batches as the book's, by another route)"""
    fast = tensor_batches(dls)
    for dl in fast.loaders:
        def create_batches(samps, dl=dl):
            samps = [int(i) for i in samps]
            end = len(samps) - len(samps) % dl.bs if dl.drop_last else len(samps)
            for start in range(0, end, dl.bs):
                idx = torch.tensor(samps[start:start + dl.bs], dtype=torch.long)
                yield tuple(torch.index_select(t, 0, idx) for t in dl.full)
        dl.create_batches = create_batches
    return fast


LOADER_BUGS = [stale_order, own_shuffle, drops_last_valid, shifted_rows]
CORRECT_LOADERS = [index_select]
