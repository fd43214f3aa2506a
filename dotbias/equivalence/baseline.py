"""Which variant every other one is judged against: `cp` (the book's create_params model) unless
chosen otherwise: `--baseline NAME` on `pytest tests`, `pytest bench` and the `dotbias` commands
that judge variants, else $DOTBIAS_BASELINE. One choice per run, kept by the run (its argparse
namespace, pytest's `config.stash`) and passed to what judges; NAME is what CANDIDATE and
`--variant` take (`resolve_name`, the one resolver): a variant's name or a pkg.module:attr spec.
The chosen baseline joins the run's registry if it was only found by name (an opt-in zoo variant,
a compiled twin), so that it is timed and checked with the others: the choice returns the
registry the run keeps from then on. The baseline is itself first held to the a-priori bound
(`contract.assert_baseline`)."""
from __future__ import annotations

import os

from dotbias.models import plugins
from dotbias.models.registry import Registry

DEFAULT_BASELINE = "cp"
ENV = "DOTBIAS_BASELINE"


def resolve_name(text: str, option: str, registry: Registry) -> tuple[str, Registry]:
    """The name of the variant `text` gives, and the run's registry with it: a name
    `registry.get_variant` finds (registered, opt-in, `<name>_compiled`), or a pkg.module:attr
    spec naming exactly one variant (registered like --variant). The one resolver of CANDIDATE
    and every --baseline; ValueError in one line naming `option` (the option or variable) and
    `text`."""
    if ":" in text:
        try:
            registry = plugins.load_variants([text], env=False, entry_points=False, registry=registry)
        except ValueError as e:
            raise ValueError(f"{option}: {e}") from None
        names = registry.loaded[text]
        if len(names) != 1:
            raise ValueError(f"{option} {text!r}: names {len(names)} variants ({', '.join(names)}); "
                             f"load it with --variant {text} and give one name as {option}")
        return names[0], registry
    try:
        registry.get_variant(text)
    except ValueError:
        raise ValueError(f"{option} {text!r}: no variant of that name; registered: "
                         f"{', '.join(registry.variants)}") from None
    return text, registry


def choose_baseline(option: str | None, registry: Registry) -> tuple[str, Registry]:
    """The baseline a run asked for: `option` (its --baseline), else $DOTBIAS_BASELINE, else `cp`,
    resolved in the run's `registry` (`resolve_name`; ValueError in one line naming the option or
    variable), and the registry with it registered if it was only found by name. The run keeps
    both (the argparse namespace, pytest's `config.stash`) and hands them down: nothing here
    remembers them."""
    env = os.environ.get(ENV)
    text, source = ((option, "--baseline") if option else (env, f"${ENV}") if env
                    else (DEFAULT_BASELINE, "baseline"))
    name, registry = resolve_name(text, source, registry)
    if name not in registry.variants:
        registry = registry.with_variants(registry.get_variant(name))
    return name, registry


HELP = (f"the variant every other is judged against: a name or a pkg.module:attr spec, as "
        f"--variant and CANDIDATE take (default ${ENV}, else cp)")


def add_pytest_option(parser) -> None:
    """`--baseline` on pytest's parser; once, if both tests/ and bench/ conftests ask."""
    try:
        parser.addoption("--baseline", default=None, metavar="NAME|MODULE:ATTR", help=HELP)
    except ValueError:          # already added by the other conftest in the same session
        pass
