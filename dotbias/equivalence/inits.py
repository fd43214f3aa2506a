"""Init is part of the contract: a fresh model's canonical parameters are drawn as its variant
declares (`Variant.init`, or the init of the registered class it subclasses). `check_init` draws
one and tests mean, std and range against the declaration with bounds of 5 standard errors."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from dotbias.models.canonical import Canonical
from dotbias.models.registry import Registry
from dotbias.models.variant import Init, Variant

SE = 5.0        # bounds in standard errors: a correct init fails about once in 10^6 tensors


@dataclass(frozen=True)
class InitCheck:
    """One fresh model of one variant against its declared init."""
    variant: str
    source: str                  # "declared", "inherited from cp (...)", "not declared: ..."
    init: Init | None
    stats: dict[str, tuple[float, float, float]]     # tensor -> (mean, std, max |w|)
    failures: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.failures


def tensor_failures(name: str, w: torch.Tensor, init: Init) -> list[str]:
    """What about `w` contradicts `init` (empty when nothing does)."""
    w = w.double().reshape(-1)
    n, sd = w.numel(), init.sample_std
    mean, std, top = w.mean().item(), w.std().item() if n > 1 else 0.0, w.abs().max().item()
    out = []
    if abs(mean) > SE * sd / n ** 0.5:
        out.append(f"{name}: mean {mean:.3g}, expected 0 +- {SE * sd / n ** 0.5:.2g}")
    if n > 1 and abs(std - sd) > SE * sd / (2 * n) ** 0.5:
        out.append(f"{name}: std {std:.4g}, expected {sd:.4g} +- {SE * sd / (2 * n) ** 0.5:.2g}")
    if init.bound is not None and top >= init.bound:
        out.append(f"{name}: max |w| {top:.3g} reaches the fold at {init.bound:g}")
    if init.bound is None and top > 7 * init.std:
        out.append(f"{name}: max |w| {top:.3g} beyond 7 std of a normal({init.std:g})")
    if init.bound is None and n >= 2000 and top < 2.5 * init.std:
        out.append(f"{name}: max |w| {top:.3g} never reaches 2.5 std: tails cut, not a plain normal")
    return out


def check_init(variant: Variant, n_users: int, n_items: int, n_factors: int, seed: int = 0, *,
               registry: Registry) -> InitCheck:
    """Draw a fresh model of `variant` (seeded; the global RNG is restored after) and compare
    each canonical tensor with the declared init (`registry.declared_init`: its own, else that of
    the registered class it subclasses); nothing is checked when none is declared."""
    init, source = registry.declared_init(variant)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        params: Canonical = variant.to_canonical(variant.make(n_users, n_items, n_factors))
    stats = {name: (t.double().mean().item(), t.double().std().item() if t.numel() > 1 else 0.0,
                    t.abs().max().item()) for name, t in zip(Canonical._fields, params)}
    failures = [] if init is None else [f for name, t in zip(Canonical._fields, params)
                                        for f in tensor_failures(name, t, init)]
    return InitCheck(variant.name, source, init, stats, tuple(failures))
