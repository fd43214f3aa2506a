"""One batch through a variant (`run_batch`) and through the float64 reference of the same
canonical parameters (`reference_batch`): the two measurements the equivalence contract compares,
and the a-priori bound on their distance, which no baseline enters (`apriori_bound`)."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from dotbias.models.canonical import Canonical, squeeze
from dotbias.models.variant import Variant


def max_abs(t: Tensor) -> float:
    return t.abs().max().item() if t.numel() else 0.0


_max = max_abs

# Every variant, the baseline included, is within APRIORI_ULPS ulps of each tensor's error scale of
# the float64 reference (CONTRACT states it): set from the largest distance the registered variants
# show over the property suite's cases in all four dtypes, with room for correct variants built
# from other ops (a few ulps more per op). Between variants the contract's relative rule is tighter;
# this bound is what holds the baseline itself.
APRIORI_ULPS = 16


def apriori_bound(dtype: torch.dtype, scale: float) -> float:
    """The largest distance from the float64 reference any variant may show on a tensor of `dtype`
    whose error scale is `scale` (see `Reference`)."""
    return APRIORI_ULPS * torch.finfo(dtype).eps * scale


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


class Reference(NamedTuple):
    """The float64 computation: squeezed output, gradients, and each tensor's error scale: the
    largest sum of |terms| behind one of its values times sqrt(number of terms), which is how
    rounding errors of a reordered sum grow."""
    out: Tensor
    grads: Canonical
    scales: dict[str, float]


def reference_batch(params: Canonical, x: Tensor, y: Tensor | None = None, y_range=(0, 5.5)
                    ) -> Reference:
    """The model computed in float64 from the canonical parameters upcast: the yardstick every
    variant's rounding error is measured against."""
    p = Canonical(*(t.detach().double().requires_grad_() for t in params))
    a = Canonical(*(t.detach().double().abs().requires_grad_() for t in params))
    u, i = x[:, 0], x[:, 1]
    logit = (p.user_factors[u] * p.item_factors[i]).sum(1) + p.user_bias[u] + p.item_bias[i]
    terms = (a.user_factors[u] * a.item_factors[i]).sum(1) + a.user_bias[u] + a.item_bias[i]
    lo, hi = y_range
    out = torch.sigmoid(logit) * (hi - lo) + lo
    loss = out.sum() if y is None else ((out - y.double()) ** 2).mean()
    grads = torch.autograd.grad(loss, list(p), allow_unused=True)
    slope = (torch.sigmoid(logit) * (1 - torch.sigmoid(logit)) * (hi - lo)).detach()
    out_mag = out.detach().abs() + slope * terms.detach()
    d_out = torch.ones_like(out) if y is None else 2 * (out_mag + y.double().abs()) / max(len(y), 1)
    mags = torch.autograd.grad(terms, list(a), grad_outputs=d_out * slope, allow_unused=True)
    n_dot = params.sizes[2] + 2
    most = {c: int(torch.bincount(x[:, c]).max()) if len(x) else 0 for c in (0, 1)}
    scales = {"output": _max(out_mag) * n_dot ** 0.5}
    for name, m in zip(Canonical._fields, mags):
        count = most[0 if name.startswith("user") else 1] + n_dot
        scales[name] = (_max(m) if m is not None else 0.0) * count ** 0.5
    return Reference(out.detach(), Canonical(*(torch.zeros_like(t) if g is None else g
                                               for t, g in zip(p, grads))), scales)
