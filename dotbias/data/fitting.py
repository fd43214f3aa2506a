"""Fitting a model to ratings: the seed's fastai run (`fit_fastai`, on DataLoaders) and a lean
plain-torch epoch loop with the same schedule and optimizer arithmetic (`fit_lean`, on
`CollabTensors`), and the valid loss both report (`evaluate`). Every step is `models.training`'s
`train_step`, every schedule its `one_cycle`: the loops own the data, the step owns the arithmetic."""
from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from dotbias.data.loaders import feed
from dotbias.data.ratings import CollabTensors
from dotbias.io.progress import Progress
from dotbias.models.optimizers import BOOK, BOOK_LOADER, AdamImpl
from dotbias.models.sparse import densify_sparse_grads, sparse_notes
from dotbias.models.training import one_cycle, train_step


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


def _fastai_callbacks(total_steps: int, progress: Progress | None):
    """An epoch timer and, when `progress`, a io.progress line on stderr (fastai's own bar
    prints to stdout, so it stays off)."""
    from fastai.callback.core import Callback


    class EpochTimer(Callback):
        order = -10

        def before_fit(self):
            bar = progress.bar("fit_one_cycle steps", total_steps) if progress else None
            self.times, self.bar = [], bar

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
               seed: int | None = 0, progress: Progress | None = None, impl: AdamImpl = BOOK,
               loader: str = BOOK_LOADER) -> TrainResult:
    """The seed's run: `Learner(dls, model, loss_func=MSELossFlat()).fit_one_cycle(epochs, lr, wd=wd)`,
    with `opt_func` the implementation `impl`'s (default: fastai's own Adam), fed by `loader`'s
    loaders (`data.loaders.feed`: the book's, or the same batches cut from tensors).

    fastai's collab train loader samples rows with replacement from numpy's global RNG, so `seed`
    (when not None) seeds it right before the fit: the same seed gives the same batches."""
    from fastai.learner import Learner
    from fastai.losses import MSELossFlat

    timer = _fastai_callbacks(epochs * len(dls.train), progress)
    if not impl.in_fastai:
        raise ValueError(f"optimizer implementation {impl.name!r} does not run in fastai's Learner")
    learn = Learner(feed(dls, loader), model, loss_func=MSELossFlat(), cbs=[timer],
                    **({} if impl.opt_func is None else {"opt_func": impl.opt_func}))
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
             progress: Progress | None = None, impl: AdamImpl = BOOK) -> TrainResult:
    """A plain-torch loop with `fit_one_cycle(epochs, lr, wd=wd)`'s arithmetic, over index tensors.
    Sparse gradients are densified before each step (`train_step`), noted in the result.

    Same as fastai, step for step: the lr and beta1 of every step (`one_cycle`), the optimizer
    (torch AdamW = fastai Adam with decoupled wd, eps 1e-5, beta2 0.99), MSE on the squeezed
    output, train batches of `bs` with the last partial batch dropped, valid loss as the mean over
    the valid rows. Differs: the batches (a `torch.randperm` per epoch; fastai samples with
    replacement from numpy's global RNG), so losses agree in distribution, not in value; no
    callbacks; an epoch's train loss is its plain mean, not fastai's smoothed loss. `impl`: the
    optimizer implementation (a run's `Registry.get_impl`; default torch AdamW, `BOOK`)."""
    device = torch.device(device)
    data, model = data.to(device), model.to(device)
    gen = torch.Generator().manual_seed(seed)
    n = data.x_train.shape[0]
    n_batches = n // bs
    if n_batches == 0:
        raise ValueError(f"bs={bs} is larger than the {n} training rows")
    opt = impl.make(list(model.parameters()), lr, wd)
    hypers = one_cycle(lr, epochs * n_batches)
    result = TrainResult(hypers=hypers, notes=sparse_notes(model))
    for epoch in progress.track(range(epochs), "lean epochs") if progress else range(epochs):
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
