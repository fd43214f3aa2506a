"""Training, defined once: the optimizer step every loop uses (`train_step`), k steps from canonical
parameters (`train_steps`, for trajectories; `scheduled_steps`, the one-cycle schedule with one
optimizer implementation of `models.optimizers`) and that schedule (`one_cycle`). The loops over a
dataset (the seed's fastai run, the lean loop) are `data.fitting`'s: they own the data."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from dotbias.models.canonical import Canonical, squeeze
from dotbias.models.optimizers import BOOK, AdamImpl, lean_optimizer  # noqa: F401 (re-exported)
from dotbias.models.sparse import densify_sparse_grads

# The optimizers the trajectory properties use; each takes the model's parameters.
OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": lambda ps: torch.optim.SGD(ps, lr=0.5, momentum=0.9),
    "adam": lambda ps: torch.optim.Adam(ps, lr=1e-2),
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
}


def mse_flat(out: Tensor, y: Tensor) -> Tensor:
    """fastai's MSELossFlat for our shapes: mean squared error of the squeezed output."""
    return nn.functional.mse_loss(squeeze(out), y.to(out.dtype))


def train_step(model: nn.Module, opt, x: Tensor, y: Tensor,
               loss_fn: Callable[[Tensor, Tensor], Tensor] = mse_flat) -> Tensor:
    """zero_grad, forward, loss, backward and (when `opt`, a torch optimizer or a stepper of
    `models.optimizers`, is given) one optimizer step, sparse gradients densified first
    (`densify_sparse_grads`); the loss."""
    if getattr(opt, "whole_step", False):      # it runs zero_grad to step itself, compiled
        return opt.train(model, x, y, loss_fn).detach()
    if opt is None:
        model.zero_grad(set_to_none=True)
    else:
        opt.zero_grad()         # torch's set_to_none=True; fastai's own zeroes in place
    loss = loss_fn(model(x), y)
    loss.backward()
    if opt is not None:
        densify_sparse_grads(model.parameters())
        opt.step()
    return loss.detach()


def train_steps(variant, params: Canonical, batches: Sequence[tuple[Tensor, Tensor]],
                optimizer: str = "adamw", y_range=(0, 5.5),
                prepare: Callable[[nn.Module], object] | None = None) -> list[Canonical]:
    """One optimizer step per batch from canonical `params`; the canonical parameters after each.
    `prepare(model)`, when given, runs once before the first step (to register hooks)."""
    model = variant.from_canonical(params, y_range=y_range)
    if prepare is not None:
        prepare(model)
    opt = OPTIMIZERS[optimizer](model.parameters())
    after = []
    for x, y in batches:
        train_step(model, opt, x, y)
        after.append(variant.to_canonical(model))
    return after


def scheduled_steps(variant, params: Canonical, batches: Sequence[tuple[Tensor, Tensor]],
                    impl: AdamImpl = BOOK, lr: float = 5e-3, wd: float = 0.1, y_range=(0, 5.5),
                    prepare: Callable[[nn.Module], object] | None = None) -> list[Canonical]:
    """`train_steps` with the optimizer implementation `impl` over the whole one-cycle schedule
    of `fit_one_cycle(lr_max=lr, wd=wd)` squeezed into `len(batches)` steps (lr and beta1 set
    before every step, `one_cycle`); the canonical parameters after each step."""
    model = variant.from_canonical(params, y_range=y_range)
    if prepare is not None:
        prepare(model)
    opt = impl.make(list(model.parameters()), lr, wd)
    after = []
    for (x, y), (step_lr, beta1) in zip(batches, one_cycle(lr, len(batches))):
        opt.set_hypers(step_lr, beta1)
        train_step(model, opt, x, y)
        after.append(variant.to_canonical(model))
    return after


def one_cycle(lr: float, total_steps: int, pct_start: float = 0.25, div: float = 25.0,
              div_final: float = 1e5, moms=(0.95, 0.85, 0.95)) -> list[tuple[float, float]]:
    """(lr, beta1) for each step of `fit_one_cycle(lr_max=lr)`, from fastai's own `combined_cos`;
    the position accumulates 1/total per step as fastai's `pct_train` does, so values are equal.
    (torch's OneCycleLR ends at lr/(div*div_final) and moves the peak by one step.)"""
    from fastai.callback.schedule import combined_cos

    lr_sched = combined_cos(pct_start, lr / div, lr, lr / div_final)
    mom_sched = combined_cos(pct_start, *moms)
    out, pct = [], 0.0
    for _ in range(total_steps):
        out.append((float(lr_sched(pct)), float(mom_sched(pct))))
        pct += 1.0 / total_steps
    return out
