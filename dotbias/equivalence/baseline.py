"""Which variant every other one is judged against: `cp` (the book's create_params model) unless
chosen otherwise: `--baseline NAME` on `pytest tests`, `pytest bench` and the `dotbias` commands
that judge variants, else $DOTBIAS_BASELINE. One choice per process; NAME is what CANDIDATE and
`--variant` take (`resolve_name`, the one resolver): a variant's name or a pkg.module:attr spec.
The chosen baseline joins the registry if it was only found by name (an opt-in zoo variant, a
compiled twin), so that it is timed and checked with the others; it is itself first held to the
a-priori bound (`contract.assert_baseline`)."""
from __future__ import annotations

import os

from dotbias.models import plugins
from dotbias.models.registry import VARIANTS, get_variant, register
from dotbias.models.variant import Variant

DEFAULT_BASELINE = "cp"
ENV = "DOTBIAS_BASELINE"
# One choice per process, as the registry it names an entry of is one per process (worker processes
# are handed it in their spec); every run sets it first (cli, pytest_configure) and
# `set_baseline` returns the previous choice to restore. None: $DOTBIAS_BASELINE or cp when asked.
_chosen: str | None = None


def resolve_name(text: str, option: str) -> str:
    """The name of the variant `text` gives: a name `registry.get_variant` finds (registered,
    opt-in, `<name>_compiled`), or a pkg.module:attr spec naming exactly one variant (registered
    like --variant). The one resolver of CANDIDATE and every --baseline; ValueError in one line
    naming `option` (the option or variable) and `text`."""
    if ":" in text:
        try:
            names = plugins.load_variants([text], env=False, entry_points=False)
        except ValueError as e:
            raise ValueError(f"{option}: {e}") from None
        if len(names) != 1:
            raise ValueError(f"{option} {text!r}: names {len(names)} variants ({', '.join(names)}); "
                             f"load it with --variant {text} and give one name as {option}")
        return names[0]
    try:
        get_variant(text)
    except ValueError:
        raise ValueError(f"{option} {text!r}: no variant of that name; registered: "
                         f"{', '.join(VARIANTS)}") from None
    return text


def set_baseline(name: str | None, *, source: str = "baseline") -> str | None:
    """Make the variant `name` (a name or a spec, `resolve_name`) the baseline (None: not chosen
    yet) and return the previous choice, to restore it; ValueError in one line, naming `source`
    (the option or variable), for a name or spec that gives no variant."""
    global _chosen
    if name is not None:
        name = resolve_name(name, source)
        if name not in VARIANTS:
            register(get_variant(name))
    previous, _chosen = _chosen, name
    return previous


def choose_baseline(option: str | None = None) -> str:
    """The baseline from `option` (--baseline), else $DOTBIAS_BASELINE, else `cp`: set, returned."""
    if option:
        set_baseline(option, source="--baseline")
    elif os.environ.get(ENV):
        set_baseline(os.environ[ENV], source=f"${ENV}")
    else:
        set_baseline(DEFAULT_BASELINE)
    return _chosen


def baseline_name() -> str:
    """The chosen baseline's name; the first time, $DOTBIAS_BASELINE's or `cp` (checked then)."""
    return _chosen if _chosen is not None else choose_baseline(None)


def get_baseline() -> Variant:
    """The chosen baseline's Variant (ValueError if it has been unregistered since)."""
    return get_variant(baseline_name())


HELP = (f"the variant every other is judged against: a name or a pkg.module:attr spec, as "
        f"--variant and CANDIDATE take (default ${ENV}, else cp)")


def add_pytest_option(parser) -> None:
    """`--baseline` on pytest's parser; once, if both tests/ and bench/ conftests ask."""
    try:
        parser.addoption("--baseline", default=None, metavar="NAME|MODULE:ATTR", help=HELP)
    except ValueError:          # already added by the other conftest in the same session
        pass
