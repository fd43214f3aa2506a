"""Which variant every other one is judged against: `cp` (the book's create_params model) unless
chosen otherwise: `--baseline NAME` on `pytest tests`, `pytest bench` and the `dotbias` commands
that judge variants, else $DOTBIAS_BASELINE. One choice per run, kept by the run (its argparse
namespace, pytest's `config.stash`) and passed to what judges; NAME is what CANDIDATE and
`--variant` take (`resolve_name`, the one resolver): a variant's name or a pkg.module:attr spec.
The chosen baseline joins the registry if it was only found by name (an opt-in zoo variant, a
compiled twin), so that it is timed and checked with the others; it is itself first held to the
a-priori bound (`contract.assert_baseline`)."""
from __future__ import annotations

import os

from dotbias.models import plugins
from dotbias.models.registry import VARIANTS, get_variant, register

DEFAULT_BASELINE = "cp"
ENV = "DOTBIAS_BASELINE"


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


def choose_baseline(option: str | None = None) -> str:
    """The baseline a run asked for: `option` (its --baseline), else $DOTBIAS_BASELINE, else `cp`,
    resolved (`resolve_name`; ValueError in one line naming the option or variable) and registered
    if it was only found by name. The run keeps the name it gets (the argparse namespace, pytest's
    `config.stash`) and hands it down: nothing here remembers it."""
    env = os.environ.get(ENV)
    text, source = ((option, "--baseline") if option else (env, f"${ENV}") if env
                    else (DEFAULT_BASELINE, "baseline"))
    name = resolve_name(text, source)
    if name not in VARIANTS:
        register(get_variant(name))
    return name


HELP = (f"the variant every other is judged against: a name or a pkg.module:attr spec, as "
        f"--variant and CANDIDATE take (default ${ENV}, else cp)")


def add_pytest_option(parser) -> None:
    """`--baseline` on pytest's parser; once, if both tests/ and bench/ conftests ask."""
    try:
        parser.addoption("--baseline", default=None, metavar="NAME|MODULE:ATTR", help=HELP)
    except ValueError:          # already added by the other conftest in the same session
        pass
