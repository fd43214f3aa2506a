"""How a model trains, beside what it is: the implementations of the book's optimizer one training
step can use (`BUILT_IN_IMPLS`, read-only; a run's are on its `registry.Registry`) and the
`Training` spec naming a variant with one of them ("cp+fused").

Every implementation has the arithmetic of fastai's Adam as `fit_one_cycle` uses it: decoupled
weight decay, eps 1e-5, beta2 0.99, lr and beta1 set before every step from the one-cycle
schedule. They differ in how the update is computed (a loop over parameters, one batched call, one
fused kernel, fastai's own code, a compiled optimizer step, the whole step compiled as one
graph or written in C), so each is held to the trajectory contract
(`equivalence.trajectories.check_training`) before its time means anything. A user's own joins
a run's registry through `Registry.with_impls`."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType

import torch
from torch.optim.adamw import adamw

from dotbias.models.adam import BETAS, EPS
from dotbias.models.compiled import compile_fn
from dotbias.models.row_step import RowStep
from dotbias.models.row_step import refusal as row_step_refusal
from dotbias.models.whole_step import WholeStep

SEP = "+"                           # "cp+fused": a variant, then an implementation


class TorchStepper:
    """A torch optimizer behind the one interface training loops use (`set_hypers`, `zero_grad`,
    `step`). `tensor_hypers`: lr and beta1 are 0-dim tensors, filled in place (a compiled step
    then keeps one graph across the schedule)."""
    def __init__(self, opt: torch.optim.Optimizer, step: Callable[[], object] | None = None,
                 tensor_hypers: bool = False):
        self.opt, self._step, self.tensor_hypers = opt, step or opt.step, tensor_hypers

    def set_hypers(self, lr: float, beta1: float) -> None:
        for group in self.opt.param_groups:
            if self.tensor_hypers:
                group["lr"].fill_(lr)
                group["betas"][0].fill_(beta1)
            else:
                group["lr"], group["betas"] = lr, (beta1, group["betas"][1])

    def zero_grad(self) -> None:
        self.opt.zero_grad(set_to_none=True)

    def step(self) -> None:
        self._step()


class FastaiStepper:
    """A fastai optimizer (`Adam`, or `OptimWrapper` around a torch one) behind the same interface,
    its hyper-parameters set by name as fastai's ParamScheduler sets them."""
    def __init__(self, opt):
        self.opt = opt

    def set_hypers(self, lr: float, beta1: float) -> None:
        self.opt.set_hyper("lr", lr)
        self.opt.set_hyper("mom", beta1)

    def zero_grad(self) -> None:
        self.opt.zero_grad()

    def step(self) -> None:
        self.opt.step()


def lean_optimizer(params, lr: float, wd: float, **impl) -> torch.optim.Optimizer:
    """fastai's Adam as `fit_one_cycle` uses it (decoupled weight decay, eps 1e-5, beta2 0.99), as
    torch AdamW (`impl`: foreach=, fused=); beta1 and lr are set per step from `one_cycle`."""
    return torch.optim.AdamW(params, lr=lr, betas=BETAS, eps=EPS, weight_decay=wd, **impl)


def _torch(params, lr: float, wd: float, **impl) -> TorchStepper:
    return TorchStepper(lean_optimizer(params, lr, wd, **impl))


def _fastai_adam(params, lr: float, wd: float) -> FastaiStepper:
    from fastai.optimizer import Adam
    return FastaiStepper(Adam(list(params), lr=lr, mom=BETAS[0], sqr_mom=BETAS[1], eps=EPS, wd=wd))


def _wrapped(params, lr: float, wd: float, **impl) -> FastaiStepper:
    from fastai.optimizer import OptimWrapper
    return FastaiStepper(OptimWrapper(list(params), torch_adamw(**impl), lr=lr, weight_decay=wd))


class CompiledStepper:
    """torch's own AdamW arithmetic (`torch.optim.adamw.adamw`, the for-loop path), compiled, fed
    this stepper's state: a compiled function of tensors, not of one optimizer object, so a new
    model is not a new graph. The stepper holds its `torch.compile(adamw)`; dynamo caches the
    graphs on `adamw`'s code object, so the second stepper of a run compiles nothing. lr and beta1
    are float64 0-dim tensors filled in place (one graph for the whole schedule; float32 ones
    would round a float64 model's lr)."""
    def __init__(self, params, lr: float, wd: float):
        self.params, self.wd = list(params), wd
        self.moments = [[torch.zeros_like(p) for p in self.params] for _ in range(2)]
        # float64 step counts: compiled, the bias corrections are tensor math in the steps' dtype
        # (torch's float32 default rounds them for a float64 model: 2e-9 off after 3 steps)
        self.steps = [torch.zeros((), dtype=torch.float64) for _ in self.params]
        self.lr, self.beta1 = (torch.tensor(h, dtype=torch.float64) for h in (lr, BETAS[0]))
        self.adamw = compile_fn(adamw)

    def set_hypers(self, lr: float, beta1: float) -> None:
        self.lr.fill_(lr)
        self.beta1.fill_(beta1)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        pick = lambda ts: [ts[i] for i in live]       # noqa: E731
        self.adamw(pick(self.params), [self.params[i].grad for i in live],
                          pick(self.moments[0]), pick(self.moments[1]), [], pick(self.steps),
                          foreach=False, amsgrad=False, beta1=self.beta1, beta2=BETAS[1],
                          lr=self.lr, weight_decay=self.wd, eps=EPS, maximize=False)


def torch_adamw(**impl) -> Callable[..., torch.optim.Optimizer]:
    """torch AdamW with fastai Adam's eps and betas, as a constructor `OptimWrapper` calls."""
    return partial(torch.optim.AdamW, betas=BETAS, eps=EPS, **impl)


def wrapped_opt_func(**impl) -> Callable:
    """A `Learner` opt_func: fastai's OptimWrapper around torch AdamW (`impl`: foreach=, fused=)."""
    def opt_func(params, **kwargs):
        from fastai.optimizer import OptimWrapper  # fastai loads only when a Learner runs
        return OptimWrapper(params, torch_adamw(**impl), **kwargs)
    return opt_func


@dataclass(frozen=True)
class AdamImpl:
    """One implementation of the book's optimizer: `make(params, lr, wd)` returns a stepper;
    `opt_func` is what fastai's `Learner` takes for it (None: fastai's own `Adam`, its default);
    `in_fastai` False: fastai's Learner cannot run it (`fit_fastai` refuses it); `compiles`: it
    runs torch.compile (seconds per new graph: the test suite keeps it to its slow set);
    `refuse(params)`: why it cannot train a model with these parameters (None: any model)."""
    name: str
    make: Callable[..., TorchStepper | FastaiStepper | WholeStep | RowStep]
    description: str
    opt_func: Callable | None = None
    in_fastai: bool = True
    compiles: bool = False
    refuse: Callable[[list], str | None] | None = None

    def cannot_train(self, model) -> str | None:
        """Why this implementation cannot train `model` (its parameters' layout), or None."""
        return self.refuse(list(model.parameters())) if self.refuse else None


BOOK_IMPL = "torch"     # what the book's loop and `step` use: torch AdamW, torch's default path
# What feeds fastai's Learner (epoch_fastai only): the book's CollabDataLoaders, or the same
# batches cut from tensors made once (`data.loaders.tensor_batches`, proven the same batches)
BOOK_LOADER, LOADERS = "fastai", ("fastai", "tensors")
# The built-in implementations, read-only; a run's registry (`registry.Registry.impls`) starts
# from them, and a user's own joins it there (`Registry.with_impls`).
BUILT_IN_IMPLS: Mapping[str, AdamImpl] = MappingProxyType({impl.name: impl for impl in [
    AdamImpl("torch", _torch, "torch AdamW, torch's default implementation (a for-loop on CPU)"),
    AdamImpl("forloop", partial(_torch, foreach=False), "torch AdamW, foreach=False",
             wrapped_opt_func(foreach=False)),
    AdamImpl("foreach", partial(_torch, foreach=True), "torch AdamW, foreach=True",
             wrapped_opt_func(foreach=True)),
    AdamImpl("fused", partial(_torch, fused=True), "torch AdamW, fused=True", wrapped_opt_func(fused=True)),
    AdamImpl("fastai", _fastai_adam, "fastai's Adam (fit_one_cycle's default), decoupled wd"),
    AdamImpl("wrapped_fused", partial(_wrapped, fused=True),
             "fastai OptimWrapper around torch AdamW fused=True", wrapped_opt_func(fused=True)),
    # fastai's scheduler would set lr as a float, replacing the tensor: a graph per step
    AdamImpl("compiled", CompiledStepper, "torch AdamW for-loop, its step torch.compile'd", in_fastai=False,
             compiles=True),
    AdamImpl("compiled_step", WholeStep, "the whole step (forward, backward, AdamW) in one "
             "torch.compile graph", in_fastai=False, compiles=True),
    AdamImpl("row_step", RowStep, "the whole step of the book's model in one C function: no dense "
             "gradient, one pass over parameters and moments", in_fastai=False,
             refuse=row_step_refusal),
]})
BOOK = BUILT_IN_IMPLS[BOOK_IMPL]


def get_impl(name: str, impls: Mapping[str, AdamImpl]) -> AdamImpl:
    """The implementation `name` of `impls` (a run's: `Registry.impls`); ValueError naming it."""
    if name not in impls:
        raise ValueError(f"unknown optimizer implementation {name!r}; expected one of "
                         f"{', '.join(impls)}")
    return impls[name]


@dataclass(frozen=True)
class Training:
    """A training setup: a variant (by name: any `Registry.get_variant` finds, compiled twins)
    trained with one optimizer implementation and, in fastai's Learner, fed by one loader
    (`LOADERS`: the book's `CollabDataLoaders`, or the same batches cut from tensors,
    `data.loaders.tensor_batches`). Named "<variant>+<impl>[+<loader>]"; a bare variant name is
    the book's setup (`BOOK_IMPL`, `BOOK_LOADER`)."""
    variant: str
    impl: str = BOOK_IMPL
    loader: str = BOOK_LOADER

    @property
    def name(self) -> str:
        parts = [self.variant] + ([self.impl] if self.impl != BOOK_IMPL or self.loader != BOOK_LOADER
                                  else []) + ([self.loader] if self.loader != BOOK_LOADER else [])
        return SEP.join(parts)

    @classmethod
    def parse(cls, spec: str, impls: Mapping[str, AdamImpl]) -> Training:
        """"cp+fused" -> Training("cp", "fused"); "cp+fused+tensors" adds the loader; "cp" -> the
        book's setup. ValueError naming a bad spec, an implementation not in `impls` (a run's:
        `Registry.impls`) or an unknown loader; the variant itself is looked up where it runs."""
        variant, *rest = spec.strip().split(SEP)
        impl = rest[0] if rest else BOOK_IMPL
        loader = rest[1] if len(rest) > 1 else BOOK_LOADER
        if not variant or len(rest) > 2 or not impl or not loader:
            raise ValueError(f"training setup {spec!r}: expected VARIANT, VARIANT{SEP}IMPL or "
                             f"VARIANT{SEP}IMPL{SEP}LOADER, IMPL one of {', '.join(impls)}, "
                             f"LOADER one of {', '.join(LOADERS)}")
        get_impl(impl, impls)
        if loader not in LOADERS:
            raise ValueError(f"training setup {spec!r}: unknown loader {loader!r}; expected one of "
                             f"{', '.join(LOADERS)}")
        return cls(variant, impl, loader)


def parse_setups(text: str | Sequence[str], impls: Mapping[str, AdamImpl]) -> list[Training]:
    """Comma-separated (or listed) setup specs, parsed against `impls`; an empty text gives []."""
    items = text.split(",") if isinstance(text, str) else list(text)
    return [Training.parse(s, impls) for s in items if s.strip()]
