"""The canonical parameter form every variant reads into and loads from, and the declarative
mapping from a model's attributes to it.

    user_factors [n_users, n_factors]   user_bias [n_users]
    item_factors [n_items, n_factors]   item_bias [n_items]

A variant names where each canonical tensor lives as an attribute path ("u_weight.weight", or
"u_weight": a layer stands for its `.weight`); biases may be `[n]` or `[n, 1]`. With that the
harness compares any variants without special-casing a pair.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import torch
from torch import Tensor, nn

# The book names the item side "movie"; canonical names say "item".
BOOK_PATHS: Mapping[str, str] = {"user_factors": "user_factors", "user_bias": "user_bias",
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


def parameter_at(model: nn.Module, path: str) -> Tensor:
    """The tensor at attribute `path` ("a.b.weight"); a layer stands for its `.weight`.
    ValueError naming the path and the missing part."""
    obj: object = model
    for part in path.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"parameter path {path!r}: {type(obj).__name__} has no attribute {part!r}")
        obj = getattr(obj, part)
    if isinstance(obj, nn.Module):
        obj = getattr(obj, "weight", obj)
    if not isinstance(obj, Tensor):
        raise ValueError(f"parameter path {path!r} is a {type(obj).__name__}, not a tensor or layer")
    return obj


def check_paths(model: nn.Module, paths: Mapping[str, str], sizes: tuple[int, int, int]) -> None:
    """Every canonical name has a path, and the tensor there fits (factors [n, f], bias [n] or
    [n, 1]) for `sizes` = (n_users, n_items, n_factors). ValueError naming the first misfit."""
    n_users, n_items, n_factors = sizes
    want = {"user_factors": [[n_users, n_factors]], "user_bias": [[n_users], [n_users, 1]],
            "item_factors": [[n_items, n_factors]], "item_bias": [[n_items], [n_items, 1]]}
    for name, shapes in want.items():
        if name not in paths:
            raise ValueError(f"no parameter path for canonical {name}")
        got = list(parameter_at(model, paths[name]).shape)
        if got not in shapes:
            raise ValueError(f"parameter path {paths[name]!r} ({name}) has shape {got}, expected "
                             + " or ".join(map(str, shapes)) + f" for sizes {list(sizes)}")


def _flat(name: str, t: Tensor) -> Tensor:
    return t.reshape(t.shape[0]) if name.endswith("bias") else t


def to_canonical(model: nn.Module, paths: Mapping[str, str] = BOOK_PATHS) -> Canonical:
    """Read a model's parameters as a detached copy in canonical form (`[n, 1]` biases squeezed)."""
    return Canonical(*(_flat(n, parameter_at(model, paths[n]).detach()).clone()
                       for n in Canonical._fields))


def load_canonical(model: nn.Module, params: Canonical, paths: Mapping[str, str] = BOOK_PATHS
                   ) -> nn.Module:
    """Copy canonical parameters into a model in place, keeping the model's own device and dtype."""
    for name, value in zip(Canonical._fields, params):
        p = parameter_at(model, paths[name])
        if value.numel() != p.numel() or value.shape[0] != p.shape[0]:
            raise ValueError(f"canonical {name} has shape {list(value.shape)}, "
                             f"the model's {paths[name]} has {list(p.shape)}")
        with torch.no_grad():
            p.copy_(value.reshape(p.shape))
    return model


def canonical_grads(model: nn.Module, paths: Mapping[str, str] = BOOK_PATHS) -> Canonical:
    """The gradients of the four parameters in canonical form (zeros where no gradient flowed)."""
    out = []
    for name in Canonical._fields:
        p = parameter_at(model, paths[name])
        g = torch.zeros_like(p) if p.grad is None else p.grad.detach()
        g = g.to_dense() if g.is_sparse else g          # nn.Embedding(sparse=True)
        out.append(_flat(name, g).clone())
    return Canonical(*out)


def squeeze(out: Tensor) -> Tensor:
    """The one squeezing rule: a `[bs, 1]` output becomes `[bs]`; any other shape is unchanged
    (so a wrong `[bs, bs]` output stays visibly wrong)."""
    return out.reshape(out.shape[0]) if out.dim() == 2 and out.shape[1] == 1 else out
