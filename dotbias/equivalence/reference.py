"""One batch through a variant (`run_batch`) and through the float64 reference of the same
canonical parameters (`reference_batch`): the two measurements the equivalence contract compares,
and each tensor's error bound, derived from the arithmetic, which no variant's error enters
(`error_bounds`; the derivation is in docs/contract.md)."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from dotbias.models.canonical import Canonical, squeeze
from dotbias.models.variant import Variant


def max_abs(t: Tensor) -> float:
    return t.abs().max().item() if t.numel() else 0.0


_max = max_abs

# Every rounding of the model's arithmetic, in any order, may cost up to APRIORI_ULPS ulps of the
# value it rounds (the a-priori bound, which holds the baseline itself) or FLOOR_ULPS ulps (the
# floor of the contract's relative rule): one derivation, `error_bounds`, evaluated twice.
APRIORI_ULPS = 16
FLOOR_ULPS = 2


def run_batch(variant: Variant, params: Canonical, x: Tensor, y: Tensor | None = None,
              y_range=(0, 5.5)) -> tuple[Tensor, Canonical]:
    """Forward and backward on one batch from canonical `params`: (raw output, canonical grads).
    The loss is the MSE of the squeezed output against `y` (the sum of outputs when `y` is None)."""
    model = variant.from_canonical(params, y_range=y_range)
    out = model(x)
    flat = squeeze(out)
    loss = flat.sum() if y is None else ((flat - y.to(flat.dtype)) ** 2).mean()
    loss.backward()
    return out.detach(), variant.canonical_grads(model)


class Rows(NamedTuple):
    """Per batch row, in float64: logit, its sum of |terms| and term count, targets (or None)."""
    logit: Tensor
    terms: Tensor
    n_terms: int
    y: Tensor | None


class Reference(NamedTuple):
    """The float64 computation (squeezed output, gradients) and, per tensor, the largest error
    any correct low-precision computation of it may show: `bounds` (APRIORI_ULPS per rounding)
    and `floors` (FLOOR_ULPS per rounding), both from `error_bounds`."""
    out: Tensor
    grads: Canonical
    bounds: dict[str, float]
    floors: dict[str, float]


def reference_batch(params: Canonical, x: Tensor, y: Tensor | None = None, y_range=(0, 5.5)
                    ) -> Reference:
    """The model computed in float64 from the canonical parameters upcast: the yardstick every
    variant's rounding error is measured against, with its error bounds for the parameters'
    dtype."""
    p = Canonical(*(t.detach().double().requires_grad_() for t in params))
    u, i = x[:, 0], x[:, 1]
    logit = (p.user_factors[u] * p.item_factors[i]).sum(1) + p.user_bias[u] + p.item_bias[i]
    lo, hi = y_range
    out = torch.sigmoid(logit) * (hi - lo) + lo
    loss = out.sum() if y is None else ((out - y.double()) ** 2).mean()
    grads = torch.autograd.grad(loss, list(p), allow_unused=True)
    with torch.no_grad():
        a = Canonical(*(t.abs() for t in p))
        terms = (a.user_factors[u] * a.item_factors[i]).sum(1) + a.user_bias[u] + a.item_bias[i]
        rows = Rows(logit.detach(), terms, params.sizes[2] + 2, None if y is None else y.double())
        dtype = params.user_factors.dtype
        bounds = error_bounds(rows, a, x, y_range, dtype, APRIORI_ULPS)
        floors = error_bounds(rows, a, x, y_range, dtype, FLOOR_ULPS)
    return Reference(out.detach(), Canonical(*(torch.zeros_like(t) if g is None else g
                                               for t, g in zip(p, grads))), bounds, floors)


def error_bounds(rows: Rows, a: Canonical, x: Tensor, y_range, dtype: torch.dtype, ulps: float
                 ) -> dict[str, float]:
    """Per tensor, the largest |computed - exact| when every rounding costs up to `ulps` ulps of
    what it rounds, and any result below the smallest normal number may be flushed to zero (an
    absolute error of up to that number per operation), carried through every operation
    that can amplify it (`row_errors`), then through the gradients' sums of up to `count` values
    per row. Their rounding grows as the square root of `count` where the values differ, as `m`
    where one (user, item) pair repeats `m` times: its terms are equal, and adding an equal term
    again and again rounds the same way again and again (a sum over a batch of one pair, 2,260
    times, in another order: 2.7x the square-root floor in float64, 2026-12-07). So a row's
    growth is sqrt(sum of its pairs' m^2), which is sqrt(count) when no pair repeats."""
    fi = torch.finfo(dtype)
    d, tn = ulps * fi.eps, fi.smallest_normal
    b_out, g, b_g = row_errors(rows, y_range, d, tn)
    bounds = {"output": _max(b_out)}
    g_hi = g.abs() + b_g
    repeats = torch.unique(x, dim=0, return_inverse=True, return_counts=True)
    m = repeats[2][repeats[1]].to(g.dtype)        # per batch row: how often its pair occurs
    for side, col in (("user", 0), ("item", 1)):
        idx, other = x[:, col], (a.item_factors if col == 0 else a.user_factors)[x[:, 1 - col]]
        n = len(a.user_bias if col == 0 else a.item_bias)
        count = g.new_zeros(n).index_add_(0, idx, torch.ones_like(g))
        root = (g.new_zeros(n).index_add_(0, idx, m) + 1).sqrt()
        bias = g.new_zeros(n).index_add_(0, idx, b_g)
        bias += d * root * g.new_zeros(n).index_add_(0, idx, g_hi) + count * tn
        factors = g.new_zeros(n, other.shape[1]).index_add_(0, idx, b_g[:, None] * other)
        summed = g.new_zeros(n, other.shape[1]).index_add_(0, idx, g_hi[:, None] * other)
        factors += d * root[:, None] * summed + (count[:, None] + 1) * tn
        bounds[f"{side}_factors"], bounds[f"{side}_bias"] = _max(factors), _max(bias)
    return bounds


def row_errors(rows: Rows, y_range, d: float, tn: float) -> tuple[Tensor, Tensor, Tensor]:
    """Per batch row: the output's error bound, the exact gradient of the loss at the logit and
    that gradient's error bound, with relative rounding `d` per operation and `tn` the smallest
    normal number (what a flush to zero may lose). The logit's error passes through the sigmoid's
    slope taken at its largest on the logit's error interval (near saturation the slope's relative
    error is the logit's absolute error); `1 - s` from a rounded `s` is exact where `s` rounds to
    1; the residual `out - y` cancels near the target."""
    lo, hi = y_range
    width, z = hi - lo, rows.logit
    b_z = d * rows.n_terms ** 0.5 * rows.terms + tn
    near = (z.abs() - b_z).clamp(min=0)
    k_max = torch.sigmoid(near) * torch.sigmoid(-near)
    s = torch.sigmoid(z)
    k = s * (1 - s)
    b_s = (k_max * b_z + d * s + tn).clamp(max=1.0)
    b_k = (b_s * (1 - 2 * s).abs() + b_s ** 2 + d * (k + b_s) + tn).clamp(max=0.25 + d)
    b_slope = width * b_k + d * width * k + tn
    out = s * width + lo
    b_out = width * b_s + d * (width * s + abs(lo) + out.abs()) + tn
    if rows.y is None:
        return b_out, width * k, b_slope
    c = 2 / max(len(rows.y), 1)
    r = out - rows.y
    b_r = b_out + d * (out.abs() + rows.y.abs()) + tn
    g = c * r * width * k
    b_g = c * (b_r * (width * k + b_slope) + r.abs() * b_slope) + 3 * (d * g.abs() + tn)
    return b_out, g, b_g
