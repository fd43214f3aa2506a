"""One closure per (operation, variant) of a group, built from the group's shared seeded inputs."""
from __future__ import annotations

from collections.abc import Callable

import torch

from dotbias.models.inputs import make_inputs as _make_inputs
from dotbias.models.sparse import sparse_notes
from dotbias.models.training import OPTIMIZERS, train_step
from dotbias.models.registry import get_variant
from dotbias.timing.groups import EPOCH_RATINGS
from dotbias.timing.groups import Group
from dotbias.timing.groups import KERNELS
from dotbias.timing.groups import OPERATIONS
from dotbias.timing.groups import Size
from dotbias.data.ratings import collab_dls, synthetic_ratings, tensors_from_dls
from dotbias.models.inputs import random_canonical
from dotbias.models.training import fit_fastai, fit_lean

def make_inputs(size: Size, device: str = "cpu", dtype: torch.dtype = torch.float32, seed: int = 0):
    """The benchmark's inputs for one size: `inputs.make_inputs` with fastai's init scale."""
    return _make_inputs(size.n_users, size.n_items, size.n_factors, size.bs, seed=seed,
                        dtype=dtype, device=device)


def make_op(group: Group, variant: str, seed: int = 0) -> Callable[[], None]:
    """A no-argument closure running `group.operation` of `variant` on the group's seeded inputs.

    forward: the model's forward under `torch.no_grad()` (inference);
    forward_backward: forward with autograd, MSE loss on the squeezed output, backward;
    step: zero_grad, forward, loss, backward and one AdamW step (the training inner loop);
    epoch_lean / epoch_fastai: one epoch (see EPOCH_NOTE) through `fit_lean` / `fit_fastai`."""
    if group.operation not in OPERATIONS:
        raise ValueError(f"unknown operation {group.operation!r}; expected one of {', '.join(OPERATIONS)}")
    if group.operation not in KERNELS:
        return _epoch_op(group, variant, seed)
    size, dtype = group.size, getattr(torch, group.dtype)
    inputs = make_inputs(size, group.device, dtype, seed)
    model = get_variant(variant).make(size.n_users, size.n_items, size.n_factors, dtype=dtype,
                                      device=group.device, params=inputs.params)
    x, y = inputs.x, inputs.y
    if group.operation == "forward":
        model.eval()

        def forward():
            with torch.no_grad():
                model(x)
        return forward
    model.train()
    opt = OPTIMIZERS["fastai"](model.parameters()) if group.operation == "step" else None
    return lambda: train_step(model, opt, x, y)


def op_notes(group: Group, variant: str) -> list[str]:
    """What the report must say about how `group.operation` runs `variant`, beyond its time: an
    operation with an optimizer step on a model with sparse-gradient layers densifies them."""
    if group.operation in ("forward", "forward_backward"):
        return []
    return [f"{variant}: {note}" for note in sparse_notes(get_variant(variant).make(3, 4, 2))]


def _epoch_op(group: Group, variant: str, seed: int) -> Callable[[], None]:

    if group.dtype != "float32":
        raise ValueError("epochs run in float32 only (fastai's loaders yield float32 targets)")
    dls = collab_dls(synthetic_ratings(n_ratings=EPOCH_RATINGS, seed=seed).ratings, bs=64, seed=42,
                     device=group.device)
    data = tensors_from_dls(dls)
    n_factors = group.size.n_factors
    params = random_canonical(data.n_users, data.n_items, n_factors,
                              generator=torch.Generator().manual_seed(seed))
    v = get_variant(variant)
    make = lambda: v.from_canonical(params, device=group.device)
    if group.operation == "epoch_fastai":
        return lambda: fit_fastai(make(), dls, epochs=1, seed=seed)
    return lambda: fit_lean(make(), data, epochs=1, seed=seed, device=group.device)


