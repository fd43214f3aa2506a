"""The seed's two DotProductBias models, as fastbook chapter 8 writes them, and the variant registry.

`DotProductBiasEmb` is the book's first version (fastai `Embedding` layers, `[n, 1]` biases,
`keepdim=True`); `DotProductBiasCP` is the "from scratch" version (`create_params` tensors,
1-D biases, indexing). A new variant plugs in with `register(...)`; every property test and
benchmark iterates over `VARIANTS`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from fastai.layers import Embedding, sigmoid_range
from fastai.torch_core import Module
from torch import nn

from .canonical import Canonical, canonical_grads, load_canonical, to_canonical


class DotProductBiasEmb(Module):
    def __init__(self, n_users, n_movies, n_factors, y_range=(0, 5.5)):
        self.user_factors = Embedding(n_users, n_factors)
        self.user_bias = Embedding(n_users, 1)
        self.movie_factors = Embedding(n_movies, n_factors)
        self.movie_bias = Embedding(n_movies, 1)
        self.y_range = y_range

    def forward(self, x):
        users = self.user_factors(x[:, 0])
        movies = self.movie_factors(x[:, 1])
        res = (users * movies).sum(dim=1, keepdim=True)
        res += self.user_bias(x[:, 0]) + self.movie_bias(x[:, 1])
        return sigmoid_range(res, *self.y_range)


def create_params(size):
    return nn.Parameter(torch.zeros(*size).normal_(0, 0.01))


class DotProductBiasCP(Module):
    def __init__(self, n_users, n_movies, n_factors, y_range=(0, 5.5)):
        self.user_factors = create_params([n_users, n_factors])
        self.user_bias = create_params([n_users])
        self.movie_factors = create_params([n_movies, n_factors])
        self.movie_bias = create_params([n_movies])
        self.y_range = y_range

    def forward(self, x):
        users = self.user_factors[x[:, 0]]
        movies = self.movie_factors[x[:, 1]]
        res = (users * movies).sum(dim=1)
        res += self.user_bias[x[:, 0]] + self.movie_bias[x[:, 1]]
        return sigmoid_range(res, *self.y_range)


@dataclass(frozen=True)
class Variant:
    """A registered model variant: how to build it and how to read/write canonical parameters."""
    name: str
    build: Callable[..., nn.Module]       # build(n_users, n_items, n_factors, y_range=(0, 5.5))
    description: str
    output_shape: str                     # "[bs, 1]" or "[bs]": what forward returns for a batch
    to_canonical: Callable[[nn.Module], Canonical] = to_canonical
    load_canonical: Callable[[nn.Module, Canonical], nn.Module] = load_canonical
    canonical_grads: Callable[[nn.Module], Canonical] = canonical_grads

    def make(self, n_users: int, n_items: int, n_factors: int, *, y_range=(0, 5.5),
             dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
             params: Canonical | None = None) -> nn.Module:
        """Build the model on `device`/`dtype`, optionally loading canonical `params`."""
        check_sizes(n_users=n_users, n_items=n_items, n_factors=n_factors)
        model = self.build(n_users, n_items, n_factors, y_range=y_range).to(device=device, dtype=dtype)
        if params is not None:
            self.load_canonical(model, params)
        return model


VARIANTS: dict[str, Variant] = {}


def register(variant: Variant, *, replace: bool = False) -> Variant:
    if variant.name in VARIANTS and not replace:
        raise ValueError(f"variant {variant.name!r} is already registered")
    VARIANTS[variant.name] = variant
    return variant


def unregister(name: str) -> None:
    VARIANTS.pop(name, None)


def get_variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown variant {name!r}; registered: {', '.join(VARIANTS)}") from None


def check_sizes(**sizes: int) -> None:
    """Raise a ValueError naming the first size that is not a positive integer."""
    for key, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{key} must be a positive integer, got {value!r}")


register(Variant("emb", DotProductBiasEmb, "fastai Embedding layers, [n, 1] biases, keepdim=True",
                 "[bs, 1]"))
register(Variant("cp", DotProductBiasCP, "create_params tensors, 1-D biases, indexing", "[bs]"))
