"""The canonical parameter form every variant reads into and loads from.

    user_factors [n_users, n_factors]   user_bias [n_users]
    item_factors [n_items, n_factors]   item_bias [n_items]

With it the harness compares any two variants without special-casing the pair: load the same
canonical parameters, run the same batch, compare outputs and canonical gradients.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

# The book names the item side "movie"; canonical names say "item".
MODEL_ATTRS = {"user_factors": "user_factors", "user_bias": "user_bias",
               "item_factors": "movie_factors", "item_bias": "movie_bias"}


class Canonical(NamedTuple):
    """Four tensors in canonical shape; biases are 1-D."""
    user_factors: Tensor
    user_bias: Tensor
    item_factors: Tensor
    item_bias: Tensor

    @property
    def sizes(self) -> tuple[int, int, int]:
        """(n_users, n_items, n_factors)."""
        return self.user_factors.shape[0], self.item_factors.shape[0], self.user_factors.shape[1]

    def to(self, *args, **kwargs) -> Canonical:
        return Canonical(*(t.to(*args, **kwargs) for t in self))


def raw_parameter(model: nn.Module, name: str) -> nn.Parameter:
    """The parameter behind canonical `name`: a layer's weight, or the parameter itself."""
    attr = getattr(model, MODEL_ATTRS[name])
    return attr.weight if isinstance(attr, nn.Module) else attr


def to_canonical(model: nn.Module) -> Canonical:
    """Read a model's parameters as a detached copy in canonical form (`[n, 1]` biases squeezed)."""
    out = []
    for name in Canonical._fields:
        p = raw_parameter(model, name).detach()
        out.append(p.reshape(p.shape[0]).clone() if name.endswith("bias") else p.clone())
    return Canonical(*out)


def load_canonical(model: nn.Module, params: Canonical) -> nn.Module:
    """Copy canonical parameters into a model in place, keeping the model's own device and dtype."""
    for name, value in zip(Canonical._fields, params):
        p = raw_parameter(model, name)
        if value.numel() != p.numel() or value.shape[0] != p.shape[0]:
            raise ValueError(f"canonical {name} has shape {list(value.shape)}, "
                             f"the model's {MODEL_ATTRS[name]} has {list(p.shape)}")
        with torch.no_grad():
            p.copy_(value.reshape(p.shape))
    return model


def canonical_grads(model: nn.Module) -> Canonical:
    """The gradients of the four parameters in canonical form (zeros where no gradient flowed)."""
    out = []
    for name in Canonical._fields:
        p = raw_parameter(model, name)
        g = torch.zeros_like(p) if p.grad is None else p.grad.detach()
        out.append(g.reshape(p.shape[0]).clone() if name.endswith("bias") else g.clone())
    return Canonical(*out)


def squeeze(out: Tensor) -> Tensor:
    """The one squeezing rule: a `[bs, 1]` output becomes `[bs]`; any other shape is unchanged
    (so a wrong `[bs, bs]` output stays visibly wrong)."""
    return out.reshape(out.shape[0]) if out.dim() == 2 and out.shape[1] == 1 else out
