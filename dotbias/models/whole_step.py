"""The whole training step in one compiled graph: forward, loss and backward (`torch.func`, over
the model called with its own parameters) and the AdamW update with torch's for-loop arithmetic
(decoupled weight decay, lerp'd first moment, bias corrections), lr and beta1 as tensors.

Why: at the book's sizes a step is bound by dispatching ~60 small ops, not by bytes; one graph
turns them into a handful of inductor kernels. Not a reformulation: every parameter is updated as
torch AdamW updates it (untouched rows decay, their moments too), so the trajectory contract
(`equivalence.trajectories.check_training`) holds it to the book's setup like any implementation.
Every stepper's compiled function shares one cache of graphs (dynamo's, on `_whole`'s code
object): graphs per model class, dtype and (after the first change) symbolic sizes, as for
compiled variants (`models.compiled`)."""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad_and_value

from dotbias.models.adam import BETA2, BETAS, EPS
from dotbias.models.compiled import compile_fn


def _whole(model: nn.Module, params: dict[str, Tensor], moments: tuple[list, list], x: Tensor,
           y: Tensor, hypers: tuple[Tensor, Tensor, Tensor], wd: float, loss_fn: Callable) -> Tensor:
    """One step, in place on `params` and `moments`; the loss. hypers: (lr, beta1, the count of
    this step), read only: compiled (torch 2.13), an increment of the 0-dim count inside the
    graph was neither seen by the bias corrections nor written back (a step size of inf)."""
    lr, beta1, t = hypers
    grads, loss = grad_and_value(lambda ps: loss_fn(functional_call(model, ps, (x,)), y))(params)
    step_size, bc2_sqrt = lr / (1 - beta1 ** t), (1 - BETA2 ** t).sqrt()
    for (name, p), m, v in zip(params.items(), *moments):
        g = grads[name]
        p.mul_(1 - lr * wd)
        m.lerp_(g, 1 - beta1)
        v.mul_(BETA2).addcmul_(g, g, value=1 - BETA2)
        p.sub_(m / (v.sqrt() / bc2_sqrt + EPS) * step_size)
    return loss


class WholeStep:
    """A stepper that runs the whole step itself (`train_step` hands it the model and batch):
    `models.training.train_step` calls `train(model, x, y, loss_fn)` instead of zero_grad,
    backward and step. Moments are made for `params` in the model's parameter order. The stepper
    holds its `torch.compile(_whole)`: dynamo caches the graphs on `_whole`'s code object, so the
    second stepper of a run compiles nothing new."""
    whole_step = True

    def __init__(self, params, lr: float, wd: float):
        self.params, self.wd = list(params), wd
        self.moments = tuple([torch.zeros_like(p) for p in self.params] for _ in range(2))
        self.hypers = tuple(torch.tensor(h, dtype=torch.float64) for h in (lr, BETAS[0], 0.0))
        self.model: nn.Module | None = None
        self.inputs: dict[str, Tensor] = {}
        self.whole = compile_fn(_whole)

    def set_hypers(self, lr: float, beta1: float) -> None:
        self.hypers[0].fill_(lr)
        self.hypers[1].fill_(beta1)

    def train(self, model: nn.Module, x: Tensor, y: Tensor, loss_fn: Callable) -> Tensor:
        if self.model is not model:
            self._bind(model)
        self.hypers[2].add_(1)
        with torch.no_grad():
            return self.whole(model, self.inputs, self.moments, x, y, self.hypers, self.wd, loss_fn)

    def _bind(self, model: nn.Module) -> None:
        """The graph's parameter inputs, made once per model (checked to be the parameters this
        stepper was made for): detached, the same storage updated in place, so the graph's
        inputs carry no autograd state."""
        params = dict(model.named_parameters())
        if len(params) != len(self.params) or any(a is not b for a, b in
                                                  zip(params.values(), self.params)):
            raise ValueError("WholeStep: the model's parameters are not the ones it was made for")
        self.model, self.inputs = model, {name: p.detach() for name, p in params.items()}
