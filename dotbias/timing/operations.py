"""One closure per (operation, variant) of a group, built from the group's shared seeded inputs.
Where the operation trains (`TRAINED`), the name may be a training setup ("cp+fused",
`models.optimizers.Training`): the variant stepped by that optimizer implementation. Names are
looked up in the run's registry (`models.registry.Registry`), handed in."""
from __future__ import annotations

from collections.abc import Callable

import torch

from dotbias.data.fitting import fit_fastai, fit_lean
from dotbias.data.ratings import collab_dls, synthetic_ratings, tensors_from_dls
from dotbias.models.inputs import make_inputs as _make_inputs
from dotbias.models.inputs import random_canonical
from dotbias.models.optimizers import BOOK_LOADER, Training
from dotbias.models.registry import Registry
from dotbias.models.sparse import sparse_notes
from dotbias.models.training import train_step
from dotbias.timing.groups import EPOCH_RATINGS, KERNELS, OPERATIONS, Group, Size

TRAINED = ("step", "epoch_lean", "epoch_fastai")      # operations that run an optimizer
STEP_LR, STEP_WD = 5e-3, 0.1                          # fit_one_cycle's peak lr and the seed's wd

def make_inputs(size: Size, device: str = "cpu", dtype: torch.dtype = torch.float32, seed: int = 0):
    """The benchmark's inputs for one size: `inputs.make_inputs` with fastai's init scale."""
    return _make_inputs(size.n_users, size.n_items, size.n_factors, size.bs, seed=seed,
                        dtype=dtype, device=device)


def make_op(group: Group, variant: str, registry: Registry, seed: int = 0) -> Callable[[], None]:
    """A no-argument closure running `group.operation` of `variant` on the group's seeded inputs.

    forward: the model's forward under `torch.no_grad()` (inference);
    forward_backward: forward with autograd, MSE loss on the squeezed output, backward;
    step: zero_grad, forward, loss, backward and one AdamW step (the training inner loop), by the
    setup's optimizer implementation (a bare variant name: the book's, torch AdamW);
    epoch_lean / epoch_fastai: one epoch (see EPOCH_NOTE) through `fit_lean` / `fit_fastai`."""
    if group.operation not in OPERATIONS:
        raise ValueError(f"unknown operation {group.operation!r}; expected one of {', '.join(OPERATIONS)}")
    setup = setup_in(group, variant, registry)
    if group.operation not in KERNELS:
        return _epoch_op(group, setup, seed, registry)
    size, dtype = group.size, getattr(torch, group.dtype)
    inputs = make_inputs(size, group.device, dtype, seed)
    model = registry.get_variant(setup.variant).make(size.n_users, size.n_items, size.n_factors,
                                                     dtype=dtype, device=group.device,
                                                     params=inputs.params)
    x, y = inputs.x, inputs.y
    if group.operation == "forward":
        model.eval()

        def forward():
            with torch.no_grad():
                model(x)
        return forward
    model.train()
    opt = (registry.get_impl(setup.impl).make(list(model.parameters()), STEP_LR, STEP_WD)
           if group.operation == "step" else None)
    return lambda: train_step(model, opt, x, y)


def setup_in(group: Group, name: str, registry: Registry) -> Training:
    """The training setup `name` (a variant, or VARIANT+IMPL[+LOADER]) as `group` runs it;
    ValueError naming why when the group cannot run it (`refusal`)."""
    setup = registry.setup(name)
    if (why := refusal(group, setup, registry)) is not None:
        raise ValueError(f"training setup {name!r}: {why}")
    return setup


def refusal(group: Group, setup: Training, registry: Registry) -> str | None:
    """Why `group` cannot run `setup`, or None: an implementation outside a training operation,
    outside fastai's Learner in epoch_fastai, a loader outside epoch_fastai, or an implementation
    that cannot train the variant's parameters there (`AdamImpl.cannot_train`: row_step) (the
    one place these rules are written: `setup_in` raises them, `setups_for` leaves such setups
    out)."""
    if setup.name != setup.variant and group.operation not in TRAINED:
        return f"{group.operation} runs no optimizer; setups are timed in {', '.join(TRAINED)}"
    impl = registry.get_impl(setup.impl)
    if group.operation == "epoch_fastai" and not impl.in_fastai:
        return f"{setup.impl!r} does not run in fastai's Learner"
    if setup.loader != BOOK_LOADER and group.operation != "epoch_fastai":
        return "a loader feeds fastai's Learner only; it is timed in epoch_fastai"
    if impl.refuse is not None and group.operation in TRAINED:    # the layout, dtype and device
        device = group.device if group.device == "cpu" else "meta"   # no GPU needed to ask
        dtype = getattr(torch, group.dtype if group.operation in KERNELS else "float32")
        model = registry.get_variant(setup.variant).make(3, 4, 2, dtype=dtype, device=device)
        return impl.cannot_train(model)
    return None


def setups_for(group: Group, setups, registry: Registry) -> tuple[str, ...]:
    """The names of `setups` (parsed `Training`s) that `group` times: none outside TRAINED, and
    of those only the ones it can run (`refusal`)."""
    return tuple(s.name for s in setups
                 if group.operation in TRAINED and refusal(group, s, registry) is None)


def op_notes(group: Group, variant: str, registry: Registry) -> list[str]:
    """What the report must say about how `group.operation` runs `variant`, beyond its time: an
    operation with an optimizer step on a model with sparse-gradient layers densifies them."""
    if group.operation in ("forward", "forward_backward"):
        return []
    model = registry.get_variant(registry.setup(variant).variant).make(3, 4, 2)
    return [f"{variant}: {note}" for note in sparse_notes(model)]


def _epoch_op(group: Group, setup: Training, seed: int, registry: Registry) -> Callable[[], None]:

    if group.dtype != "float32":
        raise ValueError("epochs run in float32 only (fastai's loaders yield float32 targets)")
    dls = collab_dls(synthetic_ratings(n_ratings=EPOCH_RATINGS, seed=seed).ratings, bs=64, seed=42,
                     device=group.device)
    data = tensors_from_dls(dls)
    n_factors = group.size.n_factors
    params = random_canonical(data.n_users, data.n_items, n_factors,
                              generator=torch.Generator().manual_seed(seed))
    v, impl = registry.get_variant(setup.variant), registry.get_impl(setup.impl)
    make = lambda: v.from_canonical(params, device=group.device)
    if group.operation == "epoch_fastai":
        return lambda: fit_fastai(make(), dls, epochs=1, seed=seed, impl=impl, loader=setup.loader)
    return lambda: fit_lean(make(), data, epochs=1, seed=seed, device=group.device, impl=impl)


