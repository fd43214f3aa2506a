"""`Variant`: how to build a model, where its canonical parameters live and what it promises
(output shape, `Init`, exact family). The registry of variants is `registry`."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial

import torch
from torch import nn

from dotbias.models.canonical import BOOK_PATHS, Canonical, canonical_grads, load_canonical, to_canonical
from dotbias.models.compiled import MODES, CompiledBuild


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
    contract holds them to bitwise equality where `equivalence.expect_exact` allows.
    `dtypes`: the dtypes it supports (None: all); `dtype_note` says why the others are not."""
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
    dtypes: tuple[torch.dtype, ...] | None = None
    dtype_note: str = ""

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
        if (reason := self.unsupported(dtype)) is not None:
            raise ValueError(reason)
        model = self.build(n_users, n_items, n_factors, y_range=y_range).to(device=device, dtype=dtype)
        if params is not None:
            self.load_canonical(model, params)
        return model

    def from_canonical(self, params: Canonical, *, y_range=(0, 5.5),
                       device: str | torch.device | None = None) -> nn.Module:
        """This variant holding canonical `params`: their sizes, their dtype and (unless `device`
        is given) their device."""
        n_users, n_items, n_factors = params.sizes
        return self.make(n_users, n_items, n_factors, y_range=y_range, dtype=params.user_factors.dtype,
                         device=params.user_factors.device if device is None else device, params=params)

    def same_family(self, other: Variant) -> bool:
        """Whether the two run the same ops in the same order: they share an `exact_with` tag."""
        return self.exact_with is not None and self.exact_with == other.exact_with

    def unsupported(self, dtype: torch.dtype) -> str | None:
        """None if the variant runs in `dtype`, else one line naming it and saying why not."""
        if self.dtypes is None or dtype in self.dtypes:
            return None
        return f"variant {self.name!r} does not support {dtype}" + (
            f": {self.dtype_note}" if self.dtype_note else "")

    def compiled(self, mode: str | None = None, dynamic: bool | None = None) -> Variant:
        """The compiled twin `<name>_compiled` (`_compiled_<mode>` for another mode, `_dynamic`
        when symbolic from the start): the same model and parameter paths, compiled in place
        (`models.compiled`). Not in any bitwise family: inductor fuses and reorders arithmetic."""
        if mode not in MODES:
            raise ValueError(f"compile mode {mode!r}: expected one of {', '.join(map(str, MODES))}")
        suffix = "_compiled" + ("" if mode in (None, "default") else "_" + mode.replace("-", "_"))
        suffix += "_dynamic" if dynamic else ""
        return replace(self, name=self.name + suffix, build=CompiledBuild(self.build, mode, dynamic),
                       description=f"torch.compile({self.name}, mode={mode!r}, dynamic={dynamic})",
                       exact_with=None)


def _with_paths(fn, paths, model, *args):
    return fn(model, *args, paths=paths)


def check_sizes(**sizes: int) -> None:
    """Raise a ValueError naming the first size that is not a positive integer."""
    for key, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{key} must be a positive integer, got {value!r}")
