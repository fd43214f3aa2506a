"""The registry of a run: every variant a test, check or benchmark iterates over, and the optimizer
implementations a training setup can name.

The built-ins are module constants, read-only (`BUILT_IN`: the book's two, then the zoo;
`OPT_IN`: found by name only; `optimizers.BUILT_IN_IMPLS`). A run's registry is a `Registry`
object, built by the plug-in loader (`plugins.load_variants`) from the specs it was asked for and
kept by the run, as pytest keeps its plugins' state on `config.stash`: on the argparse namespace
of a `dotbias` command, on `config.stash` in `pytest tests` and `pytest bench`, and rebuilt in
every worker process from the same specs. Nothing here remembers a run: a variant joins by
`Registry.with_variants`, which returns a new registry."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from dotbias.models import book, zoo
from dotbias.models.compiled import CompiledBuild
from dotbias.models.optimizers import BUILT_IN_IMPLS, AdamImpl, Training, get_impl
from dotbias.models.variant import Init, Variant

BUILT_IN: Mapping[str, Variant] = MappingProxyType({v.name: v for v in [*book.BUILT_IN, *zoo.BUILT_IN]})
OPT_IN: Mapping[str, Variant] = MappingProxyType({v.name: v for v in zoo.OPT_IN})   # by name only


def _joined(known: Mapping, items: Iterable, what: str, replace: bool) -> dict:
    """`known` (name -> item) with `items` added by their `.name`; ValueError on a name taken,
    unless `replace`."""
    out = dict(known)
    for item in items:
        if item.name in out and not replace:
            raise ValueError(f"{what} {item.name!r} is already registered")
        out[item.name] = item
    return out


class Registry:
    """One run's variants (`variants`, in registration order) and optimizer implementations
    (`impls`), and the specs they were loaded from (`loaded`: spec -> the names it registered,
    what a worker process loads again). Read-only: `with_variants`, `without`, `with_impls` and
    `with_loaded` return a new one. It holds the compiled twins it made (`get_variant` of
    "<name>_compiled"), shared with the registries made from it, so a run compiles each once."""

    def __init__(self, variants: Mapping[str, Variant] = BUILT_IN,
                 impls: Mapping[str, AdamImpl] = BUILT_IN_IMPLS,
                 loaded: Mapping[str, tuple[str, ...]] = MappingProxyType({}), *,
                 twins: dict[str, Variant] | None = None):
        self.variants = MappingProxyType(dict(variants))
        self.impls = MappingProxyType(dict(impls))
        self.loaded = MappingProxyType(dict(loaded))
        self._twins = {} if twins is None else twins

    def _new(self, variants=None, impls=None, loaded=None) -> Registry:
        return Registry(self.variants if variants is None else variants,
                        self.impls if impls is None else impls,
                        self.loaded if loaded is None else loaded, twins=self._twins)

    @property
    def specs(self) -> tuple[str, ...]:
        """Every spec loaded into this registry, in order: what a fresh worker process loads."""
        return tuple(self.loaded)

    def with_variants(self, *variants: Variant, replace: bool = False) -> Registry:
        """A new registry with `variants` added (ValueError on a name taken, unless `replace`)."""
        return self._new(variants=_joined(self.variants, variants, "variant", replace))

    def without(self, *names: str) -> Registry:
        return self._new(variants={k: v for k, v in self.variants.items() if k not in names})

    def with_impls(self, *impls: AdamImpl, replace: bool = False) -> Registry:
        """A new registry with optimizer implementations `impls` added (ValueError on a name taken,
        unless `replace`)."""
        return self._new(impls=_joined(self.impls, impls, "optimizer implementation", replace))

    def with_loaded(self, spec: str, names: Iterable[str]) -> Registry:
        return self._new(loaded={**self.loaded, spec: tuple(names)})

    def get_variant(self, name: str) -> Variant:
        """The registered variant `name`, else an opt-in one of the zoo, else "<known>_compiled"
        (that one's compiled twin, made once per run): found by name (so worker processes find
        them) without joining `variants`."""
        if name in self.variants:
            return self.variants[name]
        if name in OPT_IN:
            return OPT_IN[name]
        base = name.removesuffix("_compiled")
        if base != name and (base in self.variants or base in OPT_IN):
            if name not in self._twins:
                self._twins[name] = self.get_variant(base).compiled()
            return self._twins[name]
        raise ValueError(f"unknown variant {name!r}; registered: {', '.join(self.variants)}")

    def get_impl(self, name: str) -> AdamImpl:
        return get_impl(name, self.impls)

    def setup(self, spec: str) -> Training:
        """The training setup `spec` ("cp+fused"), its implementation checked here."""
        return Training.parse(spec, self.impls)

    def compiles(self, name: str) -> bool:
        """Whether the first call of `name` (a variant or a VARIANT+IMPL training setup)
        compiles: a compiled twin (`Variant.compiled`), or a setup whose implementation does."""
        setup = self.setup(name)
        return (isinstance(self.get_variant(setup.variant).build, CompiledBuild)
                or self.get_impl(setup.impl).compiles)

    def declared_init(self, variant: Variant) -> tuple[Init | None, str]:
        """The init `variant` is held to and where it comes from: its own declaration, else that
        of the nearest registered model class its class subclasses, else (None, "not declared")."""
        if variant.init is not None:
            return variant.init, "declared"
        build = getattr(variant.build, "__wrapped__", variant.build)       # a compiled twin's model
        if isinstance(build, type):
            for base in build.__mro__[1 if build is variant.build else 0:]:
                for other in self.variants.values():
                    if other.build is base and other.init is not None:
                        return other.init, f"inherited from {other.name} ({base.__name__})"
        return None, "not declared: reported, not checked"

