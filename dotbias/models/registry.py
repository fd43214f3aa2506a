"""The variant registry: every variant a test, check or benchmark iterates over.

The built-in variants (the book's two, then the zoo) are registered here, in one place; users'
variants join through `register` (or from outside the package: `plugins`). The registry is one per
process on purpose (as pytest's plugin manager is): every check, benchmark and worker process
iterates over the same variants; a test that registers restores it."""
from __future__ import annotations

from functools import cache

from dotbias.models import book, zoo
from dotbias.models.variant import Init, Variant

VARIANTS: dict[str, Variant] = {}
OPT_IN: dict[str, Variant] = {v.name: v for v in zoo.OPT_IN}     # found by name, not registered


def register(variant: Variant, *, replace: bool = False) -> Variant:
    if variant.name in VARIANTS and not replace:
        raise ValueError(f"variant {variant.name!r} is already registered")
    VARIANTS[variant.name] = variant
    return variant


def unregister(name: str) -> None:
    VARIANTS.pop(name, None)


def get_variant(name: str) -> Variant:
    """The registered variant `name`, else an opt-in one of the zoo, else "<known>_compiled" (that
    one's compiled twin, made once): found by name (so worker processes find them) without
    joining VARIANTS, which only `register` grows."""
    if name in VARIANTS:
        return VARIANTS[name]
    if name in OPT_IN:
        return OPT_IN[name]
    base = name.removesuffix("_compiled")
    if base != name and (base in VARIANTS or base in OPT_IN):
        return compiled_twin(get_variant(base))
    raise ValueError(f"unknown variant {name!r}; registered: {', '.join(VARIANTS)}")


@cache
def compiled_twin(variant: Variant) -> Variant:
    """`variant.compiled()`, made once per variant (Variants hash by identity): a pure builder,
    cached so that every lookup of "<name>_compiled" gets the same twin and its compiled graphs."""
    return variant.compiled()


def declared_init(variant: Variant) -> tuple[Init | None, str]:
    """The init `variant` is held to and where it comes from: its own declaration, else that of
    the nearest registered model class its class subclasses, else (None, "not declared")."""
    if variant.init is not None:
        return variant.init, "declared"
    build = getattr(variant.build, "__wrapped__", variant.build)       # a compiled twin's model
    if isinstance(build, type):
        for base in build.__mro__[1 if build is variant.build else 0:]:
            for other in VARIANTS.values():
                if other.build is base and other.init is not None:
                    return other.init, f"inherited from {other.name} ({base.__name__})"
    return None, "not declared: reported, not checked"


for _variant in [*book.BUILT_IN, *zoo.BUILT_IN]:
    register(_variant)
