"""Training, defined once: the optimizer step every loop uses (`train_step`), k steps from canonical
parameters (`train_steps`, for trajectories; `scheduled_steps`, the one-cycle schedule with one
optimizer implementation of `models.optimizers`), the seed's fastai run (`fit_fastai`) and a lean
plain-torch epoch loop with the same schedule and optimizer arithmetic (`fit_lean`)."""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from dotbias.io.progress import Bar, track
from dotbias.models.canonical import Canonical, squeeze
from dotbias.models.inputs import CollabTensors
from dotbias.models.optimizers import BOOK_IMPL, get_impl, lean_optimizer  # noqa: F401 (re-exported)
from dotbias.models.sparse import densify_sparse_grads, sparse_notes

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
                    impl: str = BOOK_IMPL, lr: float = 5e-3, wd: float = 0.1, y_range=(0, 5.5),
                    prepare: Callable[[nn.Module], object] | None = None) -> list[Canonical]:
    """`train_steps` with the optimizer implementation `impl` over the whole one-cycle schedule
    of `fit_one_cycle(lr_max=lr, wd=wd)` squeezed into `len(batches)` steps (lr and beta1 set
    before every step, `one_cycle`); the canonical parameters after each step."""
    model = variant.from_canonical(params, y_range=y_range)
    if prepare is not None:
        prepare(model)
    opt = get_impl(impl).make(list(model.parameters()), lr, wd)
    after = []
    for (x, y), (step_lr, beta1) in zip(batches, one_cycle(lr, len(batches))):
        opt.set_hypers(step_lr, beta1)
        train_step(model, opt, x, y)
        after.append(variant.to_canonical(model))
    return after


@dataclass
class EpochStat:
    epoch: int
    train_loss: float
    valid_loss: float
    seconds: float


@dataclass
class TrainResult:
    """Per-epoch losses and times of one training run, and the (lr, beta1) used at every step."""
    epochs: list[EpochStat] = field(default_factory=list)
    hypers: list[tuple[float, float]] = field(default_factory=list, repr=False)
    notes: list[str] = field(default_factory=list)     # how it trained, beyond the schedule

    @property
    def final_valid_loss(self) -> float:
        return self.epochs[-1].valid_loss

    @property
    def seconds(self) -> float:
        return sum(e.seconds for e in self.epochs)

    def as_dict(self) -> dict:
        return {"epochs": [asdict(e) for e in self.epochs], "final_valid_loss": self.final_valid_loss,
                "seconds": self.seconds, "notes": self.notes}


def _fastai_callbacks(total_steps: int, progress: bool):
    """An epoch timer and, when `progress`, a io.progress line on stderr (fastai's own bar
    prints to stdout, so it stays off)."""
    from fastai.callback.core import Callback


    class EpochTimer(Callback):
        order = -10

        def before_fit(self):
            self.times, self.bar = [], Bar("fit_one_cycle steps", total_steps) if progress else None

        def before_epoch(self):
            self.t0 = time.perf_counter()

        def after_batch(self):
            if self.bar is not None and self.training:
                self.bar.update(self.train_iter, f", epoch {self.epoch + 1}/{self.n_epoch}")

        def after_epoch(self):
            self.times.append(time.perf_counter() - self.t0)

        def before_step(self):          # fastai's Adam takes dense gradients only
            densify_sparse_grads(self.learn.model.parameters())

        def after_fit(self):
            if self.bar is not None:
                self.bar.close()
    return EpochTimer()


def fit_fastai(model: nn.Module, dls, epochs: int = 5, lr: float = 5e-3, wd: float = 0.1, *,
               seed: int | None = 0, progress: bool = False, impl: str = BOOK_IMPL) -> TrainResult:
    """The seed's run: `Learner(dls, model, loss_func=MSELossFlat()).fit_one_cycle(epochs, lr, wd=wd)`,
    with `opt_func` the implementation `impl`'s (default: fastai's own Adam).

    fastai's collab train loader samples rows with replacement from numpy's global RNG, so `seed`
    (when not None) seeds it right before the fit: the same seed gives the same batches."""
    from fastai.learner import Learner
    from fastai.losses import MSELossFlat

    timer = _fastai_callbacks(epochs * len(dls.train), progress)
    adam = get_impl(impl)
    if not adam.in_fastai:
        raise ValueError(f"optimizer implementation {impl!r} does not run in fastai's Learner")
    learn = Learner(dls, model, loss_func=MSELossFlat(), cbs=[timer],
                    **({} if adam.opt_func is None else {"opt_func": adam.opt_func}))
    if seed is not None:
        np.random.seed(seed)
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(epochs, lr, wd=wd)
    values = learn.recorder.values  # one [train_loss, valid_loss] per epoch
    hps = learn.recorder.hps
    return TrainResult([EpochStat(i, float(v[0]), float(v[1]), t)
                        for i, (v, t) in enumerate(zip(values, timer.times))],
                       [(float(a), float(b)) for a, b in zip(hps["lr"], hps["mom"])],
                       sparse_notes(model))


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


def _lean_epoch(model: nn.Module, opt, data: CollabTensors, order: Tensor, bs: int,
                hypers: Sequence[tuple[float, float]]) -> float:
    """One epoch of `train_step`s over `order` in batches of `bs` (last partial batch dropped),
    setting lr and beta1 from `hypers` before each step; the mean train loss."""
    model.train()
    total = torch.zeros((), device=order.device)
    for b, (lr, mom) in enumerate(hypers):
        opt.set_hypers(lr, mom)
        idx = order[b * bs:(b + 1) * bs]
        total += train_step(model, opt, data.x_train[idx], data.y_train[idx])
    return (total / len(hypers)).item()


def fit_lean(model: nn.Module, data: CollabTensors, epochs: int = 5, lr: float = 5e-3,
             wd: float = 0.1, *, bs: int = 64, seed: int = 0, device: str | torch.device = "cpu",
             progress: bool = False, impl: str = BOOK_IMPL) -> TrainResult:
    """A plain-torch loop with `fit_one_cycle(epochs, lr, wd=wd)`'s arithmetic, over index tensors.
    Sparse gradients are densified before each step (`train_step`), noted in the result.

    Same as fastai, step for step: the lr and beta1 of every step (`one_cycle`), the optimizer
    (torch AdamW = fastai Adam with decoupled wd, eps 1e-5, beta2 0.99), MSE on the squeezed
    output, train batches of `bs` with the last partial batch dropped, valid loss as the mean over
    the valid rows. Differs: the batches (a `torch.randperm` per epoch; fastai samples with
    replacement from numpy's global RNG), so losses agree in distribution, not in value; no
    callbacks; an epoch's train loss is its plain mean, not fastai's smoothed loss. `impl`: the
    optimizer implementation (`models.optimizers.ADAM_IMPLS`; default torch AdamW)."""
    device = torch.device(device)
    data, model = data.to(device), model.to(device)
    gen = torch.Generator().manual_seed(seed)
    n = data.x_train.shape[0]
    n_batches = n // bs
    if n_batches == 0:
        raise ValueError(f"bs={bs} is larger than the {n} training rows")
    opt = get_impl(impl).make(list(model.parameters()), lr, wd)
    hypers = one_cycle(lr, epochs * n_batches)
    result = TrainResult(hypers=hypers, notes=sparse_notes(model))
    for epoch in track(range(epochs), "lean epochs") if progress else range(epochs):
        t0 = time.perf_counter()
        order = torch.randperm(n, generator=gen).to(device)
        train_loss = _lean_epoch(model, opt, data, order, bs,
                                 hypers[epoch * n_batches:(epoch + 1) * n_batches])
        valid = evaluate(model, data, bs=max(bs, 1024))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        result.epochs.append(EpochStat(epoch, train_loss, valid, time.perf_counter() - t0))
    return result


@torch.no_grad()
def evaluate(model: nn.Module, data: CollabTensors, bs: int = 1024) -> float:
    """Mean squared error over all valid rows."""
    model.eval()
    total, n = 0.0, data.x_valid.shape[0]
    for s in range(0, n, bs):
        out = model(data.x_valid[s:s + bs]).reshape(-1)
        total += nn.functional.mse_loss(out, data.y_valid[s:s + bs], reduction="sum").item()
    return total / n if n else math.nan
