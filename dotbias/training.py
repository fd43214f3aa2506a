"""Training, defined once: the optimizer step every loop uses (`train_step`), k steps from canonical
parameters (`train_steps`, for trajectories), the lean plain-torch epoch loop (`fit_lean`) and the
seed's fastai run (`fit_fastai`)."""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from .canonical import Canonical, squeeze
from .data import CollabTensors

# The optimizers the trajectory properties use; each takes the model's parameters.
OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": lambda ps: torch.optim.SGD(ps, lr=0.5, momentum=0.9),
    "adam": lambda ps: torch.optim.Adam(ps, lr=1e-2),
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
    # fastai's Adam defaults for the seed's fit: decoupled weight decay 0.1, eps 1e-5, beta2 0.99
    "fastai": lambda ps: torch.optim.AdamW(ps, lr=5e-3, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.1),
}


def mse_flat(out: Tensor, y: Tensor) -> Tensor:
    """fastai's MSELossFlat for our shapes: mean squared error of the squeezed output."""
    return nn.functional.mse_loss(squeeze(out), y.to(out.dtype))


def train_step(model: nn.Module, opt: torch.optim.Optimizer | None, x: Tensor, y: Tensor,
               loss_fn: Callable[[Tensor, Tensor], Tensor] = mse_flat) -> Tensor:
    """zero_grad, forward, loss, backward and (when `opt` is given) one optimizer step; the loss."""
    if opt is None:
        model.zero_grad(set_to_none=True)
    else:
        opt.zero_grad(set_to_none=True)
    loss = loss_fn(model(x), y)
    loss.backward()
    if opt is not None:
        opt.step()
    return loss.detach()


def train_steps(variant, params: Canonical, batches: Sequence[tuple[Tensor, Tensor]],
                optimizer: str = "adamw", y_range=(0, 5.5)) -> list[Canonical]:
    """One optimizer step per batch from canonical `params`; the canonical parameters after each."""
    n_users, n_items, n_factors = params.sizes
    model = variant.make(n_users, n_items, n_factors, y_range=y_range,
                         dtype=params.user_factors.dtype, device=params.user_factors.device,
                         params=params)
    opt = OPTIMIZERS[optimizer](model.parameters())
    after = []
    for x, y in batches:
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
    """Per-epoch losses and times of one training run."""
    epochs: list[EpochStat] = field(default_factory=list)

    @property
    def final_valid_loss(self) -> float:
        return self.epochs[-1].valid_loss

    @property
    def seconds(self) -> float:
        return sum(e.seconds for e in self.epochs)

    def as_dict(self) -> dict:
        return {"epochs": [asdict(e) for e in self.epochs], "final_valid_loss": self.final_valid_loss,
                "seconds": self.seconds}


def fit_fastai(model: nn.Module, dls, epochs: int = 5, lr: float = 5e-3, wd: float = 0.1, *,
               seed: int | None = 0, progress: bool = False) -> TrainResult:
    """The seed's run: `Learner(dls, model, loss_func=MSELossFlat()).fit_one_cycle(epochs, lr, wd=wd)`.

    fastai's collab train loader samples rows with replacement from numpy's global RNG, so `seed`
    (when not None) seeds it right before the fit: the same seed gives the same batches."""
    from fastai.callback.core import Callback
    from fastai.learner import Learner
    from fastai.losses import MSELossFlat

    class EpochTimer(Callback):
        order = -10

        def before_epoch(self):
            self.t0 = time.perf_counter()

        def after_epoch(self):
            self.times.append(time.perf_counter() - self.t0)

    timer = EpochTimer()
    timer.times = []
    learn = Learner(dls, model, loss_func=MSELossFlat(), cbs=[timer])
    if seed is not None:
        np.random.seed(seed)
    if progress:
        learn.fit_one_cycle(epochs, lr, wd=wd)
    else:
        with learn.no_bar(), learn.no_logging():
            learn.fit_one_cycle(epochs, lr, wd=wd)
    values = learn.recorder.values  # one [train_loss, valid_loss] per epoch
    return TrainResult([EpochStat(i, float(v[0]), float(v[1]), t)
                        for i, (v, t) in enumerate(zip(values, timer.times))])


def fit_lean(model: nn.Module, data: CollabTensors, epochs: int = 5, lr: float = 5e-3,
             wd: float = 0.1, *, bs: int = 64, seed: int = 0, device: str | torch.device = "cpu",
             progress=None) -> TrainResult:
    """A plain-torch loop doing what `fit_one_cycle(epochs, lr, wd=wd)` does, over index tensors.

    Same: MSE on the squeezed output, decoupled weight decay Adam (torch AdamW with fastai's
    eps=1e-5, beta2=0.99), one-cycle schedule (pct_start 0.25, div 25, div_final 1e5, cosine, beta1
    cycled 0.95-0.85-0.95), train batches of `bs` with the last partial batch dropped, valid loss as
    the mean over all valid rows. Differs: batches are a `torch.randperm` permutation per epoch
    (fastai samples rows with replacement from numpy's global RNG), no callbacks, no recorder,
    no transforms; the loss printed for an epoch is its plain mean, not fastai's smoothed loss.
    `progress`, if given, is called as progress(epoch, batch, n_batches)."""
    device = torch.device(device)
    data = data.to(device)
    model = model.to(device)
    gen = torch.Generator().manual_seed(seed)
    n = data.x_train.shape[0]
    n_batches = n // bs
    if n_batches == 0:
        raise ValueError(f"bs={bs} is larger than the {n} training rows")
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.95, 0.99), eps=1e-5, weight_decay=wd)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=epochs * n_batches, pct_start=0.25, div_factor=25.0,
        final_div_factor=1e5, anneal_strategy="cos", cycle_momentum=True,
        base_momentum=0.85, max_momentum=0.95)
    result = TrainResult()
    for epoch in range(epochs):
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(n, generator=gen).to(device)
        total = torch.zeros((), device=device)
        for b in range(n_batches):
            idx = order[b * bs:(b + 1) * bs]
            total += train_step(model, opt, data.x_train[idx], data.y_train[idx])
            sched.step()
            if progress is not None:
                progress(epoch, b, n_batches)
        valid = evaluate(model, data, bs=max(bs, 1024))
        train_loss = (total / n_batches).item()
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
