"""Training trajectories: k optimizer steps of two variants from the same canonical start on the
same batches, compared parameter by parameter after every step.

Equivalent variants stay bitwise equal step after step where `compare.expect_exact` promises exact
gradients (optimizer updates are elementwise, so `[n, 1]` and `[n]` biases update identically)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from .canonical import Canonical
from .compare import Diff, diff, squeezed
from .variants import Variant

# The optimizers the trajectory properties use; each takes the model's parameters.
OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": lambda ps: torch.optim.SGD(ps, lr=0.5, momentum=0.9),
    "adam": lambda ps: torch.optim.Adam(ps, lr=1e-2),
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
}


def train_steps(variant: Variant, params: Canonical, batches: Sequence[tuple[Tensor, Tensor]],
                optimizer: str = "adamw", y_range=(0, 5.5)) -> list[Canonical]:
    """One optimizer step per batch (MSE on the squeezed output) from canonical `params`;
    the canonical parameters after each step."""
    n_users, n_items, n_factors = params.sizes
    model = variant.make(n_users, n_items, n_factors, y_range=y_range,
                         dtype=params.user_factors.dtype, device=params.user_factors.device,
                         params=params)
    opt = OPTIMIZERS[optimizer](model.parameters())
    after = []
    for x, y in batches:
        loss = nn.functional.mse_loss(squeezed(model(x)), y.to(params.user_factors.dtype))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        after.append(variant.to_canonical(model))
    return after


@dataclass
class TrajectoryResult:
    """Per step, the four canonical parameters of `a` and `b` compared."""
    a: str
    b: str
    optimizer: str
    steps: list[list[Diff]] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return all(d.exact for step in self.steps for d in step)

    @property
    def close(self) -> bool:
        return all(d.close for step in self.steps for d in step)

    def first_mismatch(self, *, exact: bool) -> tuple[int, Diff] | None:
        """(step, diff) of the first parameter that is not bitwise equal (or not close)."""
        for k, step in enumerate(self.steps, 1):
            for d in step:
                if not (d.exact if exact else d.close):
                    return k, d
        return None

    def __str__(self) -> str:
        bad = self.first_mismatch(exact=True)
        tail = "bitwise equal throughout" if bad is None else f"first differs at step {bad[0]}: {bad[1]}"
        return f"{self.a} vs {self.b}, {self.optimizer}, {len(self.steps)} steps: {tail}"


def compare_trajectories(a: Variant, b: Variant, params: Canonical,
                         batches: Sequence[tuple[Tensor, Tensor]], optimizer: str = "adamw",
                         y_range=(0, 5.5)) -> TrajectoryResult:
    """Train `a` and `b` from the same canonical start on the same batches; compare after each step."""
    run_a = train_steps(a, params, batches, optimizer, y_range)
    run_b = train_steps(b, params, batches, optimizer, y_range)
    result = TrajectoryResult(a.name, b.name, optimizer)
    for pa, pb in zip(run_a, run_b):
        result.steps.append([diff(name, ta, tb) for name, ta, tb in zip(Canonical._fields, pa, pb)])
    return result


def assert_trajectories_match(result: TrajectoryResult, *, exact: bool, where: str = "") -> None:
    """Raise AssertionError naming the pair, the optimizer, the step, the tensor and the largest
    difference."""
    bad = result.first_mismatch(exact=exact)
    if bad is not None:
        k, d = bad
        want = "bitwise equal" if exact else "close"
        raise AssertionError(f"{result.a} vs {result.b} {where}: after {result.optimizer} step {k} "
                             f"of {len(result.steps)}, {d.name} not {want}: max abs diff "
                             f"{d.max_abs:.3g}, max rel diff {d.max_rel:.3g}")
