"""The seed's two DotProductBias models, as fastbook chapter 8 writes them, and the variant registry.

`DotProductBiasEmb` is the book's first version (fastai `Embedding` layers, `[n, 1]` biases,
`keepdim=True`); `DotProductBiasCP` is the "from scratch" version (`create_params` tensors,
1-D biases, indexing). A new variant plugs in with `register(...)` (or from outside the package:
`plugins.py`); every property test and benchmark iterates over `VARIANTS`.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial

import torch
from fastai.layers import Embedding, sigmoid_range
from fastai.torch_core import Module
from torch import nn

from .canonical import BOOK_PATHS, Canonical, canonical_grads, load_canonical, to_canonical


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
class Init:
    """A declared init: every canonical tensor of a fresh model is drawn from N(0, `std`), with its
    tails folded back inside +-`bound` when `bound` is given (fastai's `normal().fmod_(2) * std`)."""
    text: str
    std: float
    bound: float | None = None

    @property
    def sample_std(self) -> float:
        """The std of the drawn values: `std`, or 0.8659 * std for the fold at 2 std."""
        return self.std * (FOLDED_STD if self.bound is not None else 1.0)


FOLDED_STD = 0.8659     # std of torch.randn(N).fmod_(2), measured with N = 1e7
CREATE_PARAMS_INIT = Init("create_params: normal_(0, 0.01)", 0.01)
FASTAI_EMBEDDING_INIT = Init("fastai Embedding: normal_().fmod_(2) * 0.01", 0.01, bound=0.02)


@dataclass(frozen=True, eq=False)     # eq=False: compared and hashed by identity
class Variant:
    """A registered model variant: how to build it, where its canonical parameters live, what it
    promises (output shape, init) and which variants run its exact ops in the same order.

    `paths` maps canonical names to attribute paths (default: the book's); `to_canonical`,
    `load_canonical`, `canonical_grads` are the escape hatch for a layout paths cannot express.
    `init` None: held to the init of the registered class `build` subclasses (see `declared_init`).
    `exact_with`: a family tag; variants sharing one run the same ops in the same order, so the
    contract holds them to bitwise equality where `equivalence.expect_exact` allows."""
    name: str
    build: Callable[..., nn.Module]       # build(n_users, n_items, n_factors, y_range=(0, 5.5))
    description: str
    output_shape: str                     # "[bs, 1]" or "[bs]": what forward returns for a batch
    paths: Mapping[str, str] = field(default_factory=lambda: dict(BOOK_PATHS))
    to_canonical: Callable[[nn.Module], Canonical] | None = None
    load_canonical: Callable[[nn.Module, Canonical], nn.Module] | None = None
    canonical_grads: Callable[[nn.Module], Canonical] | None = None
    init: Init | None = None
    exact_with: str | None = None

    def __post_init__(self):
        for attr, fn in (("to_canonical", to_canonical), ("load_canonical", load_canonical),
                         ("canonical_grads", canonical_grads)):
            if getattr(self, attr) is None:
                object.__setattr__(self, attr, partial(_with_paths, fn, self.paths))

    def make(self, n_users: int, n_items: int, n_factors: int, *, y_range=(0, 5.5),
             dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
             params: Canonical | None = None) -> nn.Module:
        """Build the model on `device`/`dtype`, optionally loading canonical `params`."""
        check_sizes(n_users=n_users, n_items=n_items, n_factors=n_factors)
        model = self.build(n_users, n_items, n_factors, y_range=y_range).to(device=device, dtype=dtype)
        if params is not None:
            self.load_canonical(model, params)
        return model


def _with_paths(fn, paths, model, *args):
    return fn(model, *args, paths=paths)


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


def declared_init(variant: Variant) -> tuple[Init | None, str]:
    """The init `variant` is held to and where it comes from: its own declaration, else that of
    the nearest registered model class its class subclasses, else (None, "not declared")."""
    if variant.init is not None:
        return variant.init, "declared"
    if isinstance(variant.build, type):
        for base in variant.build.__mro__[1:]:
            for other in VARIANTS.values():
                if other.build is base and other.init is not None:
                    return other.init, f"inherited from {other.name} ({base.__name__})"
    return None, "not declared: reported, not checked"


def check_sizes(**sizes: int) -> None:
    """Raise a ValueError naming the first size that is not a positive integer."""
    for key, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{key} must be a positive integer, got {value!r}")


register(Variant("emb", DotProductBiasEmb, "fastai Embedding layers, [n, 1] biases, keepdim=True",
                 "[bs, 1]", init=FASTAI_EMBEDDING_INIT, exact_with="book"))
register(Variant("cp", DotProductBiasCP, "create_params tensors, 1-D biases, indexing", "[bs]",
                 init=CREATE_PARAMS_INIT, exact_with="book"))


from . import zoo  # noqa: E402,F401  (registers the built-in variants beyond the book's two)
