"""Finding users' variants without editing dotbias: the environment variable DOTBIAS_VARIANTS
(`pkg.module:attr[,pkg.module:attr...]`), a repeatable `--variant pkg.module:attr` option (the
`dotbias` subcommands that run variants, `pytest tests`, `pytest bench`) and the entry-point group
`dotbias.variants` of installed packages. `attr` is a `Variant`, an iterable of them, or a
zero-argument callable returning either. A bad spec is one ValueError line naming it.
`--compile` (or DOTBIAS_COMPILE=1) also registers the compiled twin (`Variant.compiled`) of every
plugged-in variant and of the baseline's book model `cp`.
`load_variants` returns the run's registry (`registry.Registry`: the built-ins plus what it
found, and the specs it loaded); the run keeps it (its argparse namespace, pytest's
`config.stash`) and a worker process builds its own from the same specs. Nothing is kept here.
torch and the models are imported only when a spec is loaded, so `dotbias --help` stays quick."""
from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from functools import partial
from importlib import metadata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dotbias.models.registry import Registry

ENV = "DOTBIAS_VARIANTS"
COMPILE_ENV = "DOTBIAS_COMPILE"
COMPILE_ALWAYS = ("cp",)     # built-ins whose compiled twin --compile registers too
GROUP = "dotbias.variants"
PROBE = (3, 4, 2)           # n_users, n_items, n_factors of the model a spec is validated on


def resolve(spec: str) -> list:
    """The variants `spec` ("pkg.module:attr") names, validated; ValueError naming the problem."""
    module_name, sep, attr = spec.strip().partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"variant spec {spec!r}: expected pkg.module:attr")
    try:
        obj = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise ValueError(f"variant spec {spec!r}: module {module_name!r} not found ({e})") from None
    except Exception as e:      # the user's module failed to import: say how, in one line
        raise ValueError(f"variant spec {spec!r}: importing {module_name!r} raised "
                         f"{type(e).__name__}: {e}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"variant spec {spec!r}: {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    variants = _as_variants(spec, obj)
    for v in variants:
        validate(v, spec)
    return variants


def _as_variants(spec: str, obj: object, called: bool = False) -> list:
    from dotbias.models.variant import Variant
    wrong = (f"variant spec {spec!r}: got {type(obj).__name__}, expected a Variant, an iterable "
             "of Variants or a zero-argument callable returning either")
    if isinstance(obj, Variant):
        return [obj]
    if callable(obj) and not isinstance(obj, type) and not called:
        try:
            return _as_variants(spec, obj(), called=True)
        except TypeError as e:
            raise ValueError(f"{wrong} (calling it raised TypeError: {e})") from None
    if isinstance(obj, Iterable) and not isinstance(obj, (str, bytes, dict, type)):
        items = list(obj)
        if items and all(isinstance(v, Variant) for v in items):
            return items
    raise ValueError(wrong)


def validate(variant, spec: str) -> None:
    """Build `variant` at PROBE sizes and round-trip canonical parameters through it."""
    import torch

    from dotbias.models.canonical import check_paths
    from dotbias.models.inputs import random_canonical
    where = f"variant spec {spec!r}, variant {variant.name!r}"
    try:
        model = variant.make(*PROBE)
    except Exception as e:
        raise ValueError(f"{where}: building it at sizes {list(PROBE)} raised "
                         f"{type(e).__name__}: {e}") from None
    try:
        if isinstance(variant.to_canonical, partial):       # declared by attribute paths
            check_paths(model, variant.paths, PROBE)
        params = random_canonical(*PROBE, generator=torch.Generator().manual_seed(0))
        variant.load_canonical(model, params)
        back = variant.to_canonical(model)
    except Exception as e:
        raise ValueError(f"{where}: {e}") from None
    if not all(a.shape == b.shape and bool((a == b).all()) for a, b in zip(params, back)):
        raise ValueError(f"{where}: canonical parameters do not round-trip (shapes "
                         f"{[list(t.shape) for t in back]} for sizes {list(PROBE)})")


def _register(spec: str, registry: Registry) -> Registry:
    """`registry` with the variants of `spec` registered once (a spec loaded before adds nothing);
    a name taken by another variant is an error."""
    if spec in registry.loaded:
        return registry
    variants = resolve(spec)
    for v in variants:
        if v.name in registry.variants and registry.variants[v.name] is not v:
            raise ValueError(f"variant spec {spec!r}: a variant named {v.name!r} is already "
                             "registered")
    new = [v for v in variants if registry.variants.get(v.name) is not v]
    return registry.with_variants(*new).with_loaded(spec, [v.name for v in variants])


def specs_from_env() -> list[str]:
    return [s.strip() for s in os.environ.get(ENV, "").split(",") if s.strip()]


def compile_requested(flag: bool = False, env: bool = True) -> bool:
    """Whether this run asked for compiled twins: `flag` (its parsed --compile: the argparse
    namespace's or pytest's `config.getoption("compile")`) or DOTBIAS_COMPILE set to 1/true/yes."""
    return flag or (env and os.environ.get(COMPILE_ENV, "").strip().lower() in ("1", "true", "yes"))


def load_variants(specs: Iterable[str] = (), *, env: bool = True, entry_points: bool = True,
                  compile: bool = False, registry: Registry | None = None) -> Registry:
    """The run's registry: `registry` (default: the built-ins, `registry.Registry()`) with every
    variant found registered: installed entry points, then DOTBIAS_VARIANTS, then `specs` (from
    --variant); with `compile` (this run's --compile) or DOTBIAS_COMPILE also their compiled
    twins and cp's. A spec the registry loaded before registers nothing twice."""
    from dotbias.models.registry import Registry
    found = [ep.value for ep in metadata.entry_points(group=GROUP)] if entry_points else []
    found += specs_from_env() if env else []
    found += list(specs)
    out = Registry() if registry is None else registry
    for spec in found:
        out = _register(spec, out)
    if compile_requested(compile, env):
        names = [n for spec in found for n in out.loaded[spec]]
        twins = [out.get_variant(n + "_compiled") for n in (*COMPILE_ALWAYS, *names)
                 if not n.endswith("_compiled")]
        new = {v.name: v for v in twins if out.variants.get(v.name) is not v}
        out = out.with_variants(*new.values())
    return out


VARIANT_HELP = ("register a variant from outside dotbias: pkg.module:attr, where attr is a "
                "Variant, an iterable of them or a zero-argument callable returning either "
                f"(repeatable; also ${ENV} and the '{GROUP}' entry points)")


COMPILE_HELP = ("also register the compiled twin (torch.compile, default backend) of every "
                "plugged-in variant and of cp, named <name>_compiled (also $DOTBIAS_COMPILE=1)")


def add_variant_option(*parsers) -> None:
    """`--variant` and `--compile` on argparse parsers (the `dotbias` subcommands that run
    variants)."""
    for parser in parsers:
        parser.add_argument("--variant", action="append", default=[], metavar="MODULE:ATTR",
                            help=VARIANT_HELP)
        parser.add_argument("--compile", action="store_true", help=COMPILE_HELP)


def add_pytest_option(parser) -> None:
    """`--variant` and `--compile` on pytest's parser; once, if both tests/ and bench/ ask."""
    try:
        parser.addoption("--variant", action="append", default=[], metavar="MODULE:ATTR",
                         help=VARIANT_HELP)
        parser.addoption("--compile", action="store_true", help=COMPILE_HELP)
    except ValueError:          # already added by the other conftest in the same session
        pass
