"""Comparing variants at identical canonical parameters: outputs, gradients, training steps.

Functions return plain results (`Diff`, `PairResult`); `assert_pair_close` turns a mismatch into a
message naming the variant pair, the tensor and the largest difference.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor

from .canonical import Canonical
from .variants import Variant

# One place for tolerances: (rtol, atol) per dtype, as torch.testing.assert_close's defaults, which
# is what "matches" means here. Bitwise equality is reported separately (Diff.exact).
TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float64: (1e-7, 1e-7),
    torch.float32: (1.3e-6, 1e-5),
    torch.float16: (1e-3, 1e-5),
    torch.bfloat16: (1.6e-2, 1e-5),
}


def tolerance(dtype: torch.dtype) -> tuple[float, float]:
    """(rtol, atol) for comparing tensors of `dtype`."""
    try:
        return TOLERANCES[dtype]
    except KeyError:
        raise ValueError(f"no tolerance stated for dtype {dtype}") from None


@dataclass
class Diff:
    """How far apart two tensors are."""
    name: str
    max_abs: float
    max_rel: float
    exact: bool
    close: bool

    def __str__(self) -> str:
        verdict = "bitwise equal" if self.exact else ("close" if self.close else "DIFFERENT")
        return f"{self.name}: {verdict} (max abs {self.max_abs:.3g}, max rel {self.max_rel:.3g})"


def diff(name: str, a: Tensor, b: Tensor) -> Diff:
    """Compare two tensors of the same shape with the tolerance of their dtype."""
    if a.shape != b.shape:
        raise ValueError(f"{name}: shapes differ, {list(a.shape)} vs {list(b.shape)}")
    a64, b64 = a.detach().double().cpu(), b.detach().double().cpu()
    d = (a64 - b64).abs()
    max_abs = d.max().item() if d.numel() else 0.0
    rel = d / b64.abs().clamp_min(torch.finfo(torch.float64).tiny)
    max_rel = rel[d > 0].max().item() if (d > 0).any() else 0.0
    rtol, atol = tolerance(a.dtype)
    close = bool(torch.isclose(a64, b64, rtol=rtol, atol=atol, equal_nan=True).all())
    return Diff(name, max_abs, max_rel, bool(torch.equal(a.detach().cpu(), b.detach().cpu())), close)


@dataclass
class PairResult:
    """Outputs and gradients of two variants on one batch at identical canonical parameters."""
    a: str
    b: str
    output_shapes: tuple[list[int], list[int]]
    output: Diff
    grads: list[Diff] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return self.output.exact and all(g.exact for g in self.grads)

    @property
    def close(self) -> bool:
        return self.output.close and all(g.close for g in self.grads)

    @property
    def max_grad_abs(self) -> float:
        return max((g.max_abs for g in self.grads), default=0.0)

    def as_dict(self) -> dict:
        d = asdict(self)
        d.update(exact=self.exact, close=self.close, max_grad_abs=self.max_grad_abs)
        return d

    def __str__(self) -> str:
        lines = [f"{self.a} vs {self.b}: output {self.output}"]
        lines += [f"  grad {g}" for g in self.grads]
        return "\n".join(lines)


def run_batch(variant: Variant, params: Canonical, x: Tensor, y: Tensor | None = None,
              y_range=(0, 5.5)) -> tuple[Tensor, Canonical]:
    """Forward and backward on one batch from canonical `params`: (raw output, canonical grads).

    The loss is the mean squared error of the squeezed output against `y` (or the sum of the
    outputs when `y` is None), so gradients flow through every parameter the batch touches.
    """
    n_users, n_items, n_factors = params.sizes
    model = variant.make(n_users, n_items, n_factors, y_range=y_range,
                         dtype=params.user_factors.dtype, device=params.user_factors.device,
                         params=params)
    out = model(x)
    flat = out.reshape(out.shape[0]) if out.dim() == 2 and out.shape[-1] == 1 else out
    loss = flat.sum() if y is None else ((flat - y.to(flat.dtype)) ** 2).mean()
    loss.backward()
    return out.detach(), variant.canonical_grads(model)


def compare_pair(a: Variant, b: Variant, params: Canonical, x: Tensor, y: Tensor | None = None,
                 y_range=(0, 5.5)) -> PairResult:
    """Run `a` and `b` on the same batch from the same parameters and compare squeezed outputs
    and the four canonical gradients."""
    out_a, grads_a = run_batch(a, params, x, y, y_range)
    out_b, grads_b = run_batch(b, params, x, y, y_range)
    shapes = (list(out_a.shape), list(out_b.shape))
    sq_a = out_a.reshape(-1) if out_a.numel() == x.shape[0] else out_a
    sq_b = out_b.reshape(-1) if out_b.numel() == x.shape[0] else out_b
    result = PairResult(a.name, b.name, shapes, diff("output", sq_a, sq_b))
    result.grads = [diff(f"d{name}", ga, gb)
                    for name, ga, gb in zip(Canonical._fields, grads_a, grads_b)]
    return result


def assert_pair_close(result: PairResult, *, exact: bool = False) -> None:
    """Raise AssertionError naming the pair, the tensor and the largest difference."""
    for d in [result.output, *result.grads]:
        ok = d.exact if exact else d.close
        if not ok:
            want = "bitwise equal" if exact else "close"
            raise AssertionError(f"{result.a} vs {result.b}: {d.name} not {want}: "
                                 f"max abs diff {d.max_abs:.3g}, max rel diff {d.max_rel:.3g}")
