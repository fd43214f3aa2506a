"""Which variant every other one is judged against: `cp` (the book's create_params model) unless
chosen otherwise: `--baseline NAME` on `pytest tests`, `pytest bench` and the `dotbias` commands
that judge variants, else $DOTBIAS_BASELINE. One choice per process,
validated against the registry; the baseline itself is first held to the a-priori bound
(`contract.assert_baseline`)."""
from __future__ import annotations

import os

from dotbias.models.registry import VARIANTS, get_variant
from dotbias.models.variant import Variant

DEFAULT_BASELINE = "cp"
ENV = "DOTBIAS_BASELINE"
_chosen: str | None = None      # None: not chosen yet, $DOTBIAS_BASELINE or cp when first asked


def set_baseline(name: str | None, *, source: str = "baseline") -> str | None:
    """Make the registered variant `name` the baseline (None: not chosen yet) and return the
    previous choice, to restore it; ValueError in one line, naming `source` (the option or
    variable), for a name not registered."""
    global _chosen
    if name is not None and name not in VARIANTS:
        raise ValueError(f"{source} {name!r}: no variant of that name; registered: "
                         f"{', '.join(VARIANTS)}")
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


HELP = f"the registered variant every other is judged against (default ${ENV}, else cp)"


def add_pytest_option(parser) -> None:
    """`--baseline` on pytest's parser; once, if both tests/ and bench/ conftests ask."""
    try:
        parser.addoption("--baseline", default=None, metavar="NAME", help=HELP)
    except ValueError:          # already added by the other conftest in the same session
        pass
