"""`dotbias compare`'s options, on the one skeleton (`options.subcommand`, `options.add_common`:
--out, --threads, --no-progress as every subcommand has them). Standard library and torch-free
modules only, so that `dotbias --help` stays quick; the command itself (`compare.command`, run
through `commands.run_command`) is imported when it runs."""
from __future__ import annotations

import argparse

from dotbias import options
from dotbias.compare.presets import DEFAULT, THOROUGH
from dotbias.io.files import LOCAL
from dotbias.io.tables import PERCENT_RULE, parse_percent
from dotbias.models import plugins
from dotbias.timing.groups import OPERATIONS

HELP = ("is CANDIDATE the same model as the baseline, and is it faster? The equivalence contract "
        "(the fixed grid and a hypothesis sample of the properties), interleaved timing in fresh "
        "processes and peak memory, in one verdict. Exit status: 0 equivalent, 1 different, "
        "3 slower than --max-slowdown beyond the interval, 2 bad options")


def percent(text: str) -> float:
    """--max-slowdown's type: `io.tables.parse_percent`, the one reading of a percentage."""
    try:
        return parse_percent(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _number(kind, what: str, low: float, high: float):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {what} from {low:g} to {high:g}, got {text!r}")
        return value
    parse.__name__ = what
    return parse


def operations(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(","))
    wrong = [n for n in names if n not in OPERATIONS]
    if wrong or not names:
        raise argparse.ArgumentTypeError(f"unknown operation {', '.join(map(repr, wrong))}; "
                                         f"expected some of {','.join(OPERATIONS)}")
    return tuple(dict.fromkeys(names))


def add_parser(sub) -> argparse.ArgumentParser:
    """The `compare` subcommand on the `dotbias` subparsers `sub`."""
    p = options.subcommand(sub, "compare", _run, HELP.split("? ")[0] + "?")
    p.description = HELP
    p.add_argument("candidate", metavar="CANDIDATE", help="a registered or plugged-in variant's "
                   "name, or a pkg.module:attr spec naming one (loaded like --variant)")
    p.add_argument("--baseline", metavar="NAME|MODULE:ATTR", default=None,
                   help="the variant to time, measure and check against: a name or a "
                   "pkg.module:attr spec, as CANDIDATE takes (default: $DOTBIAS_BASELINE, else cp)")
    p.add_argument("--max-slowdown", metavar="P", type=percent, default=None, help="exit 3 when an "
                   "operation is slower than 1 + P beyond its interval (its 95%% interval's low end "
                   f"above 1 + P); {PERCENT_RULE}")
    p.add_argument("--thorough", action="store_true", help=(
        f"{THOROUGH['examples']} hypothesis cases for outputs and gradients instead of "
        f"{DEFAULT['examples']} (a fifth as many trajectories, a tenth as many inits), "
        f"{THOROUGH['kernel_s']:g} s of kernel rounds per process instead of "
        f"{DEFAULT['kernel_s']:g}, a time budget of {THOROUGH['time_budget']:g} s per operation "
        f"instead of {DEFAULT['time_budget']:g}, up to {THOROUGH['processes']} processes "
        f"instead of {DEFAULT['processes']}, and no new timing process past "
        f"{THOROUGH['total_s']:g} s of the command instead of {DEFAULT['total_s']:g}"))
    p.add_argument("--operations", type=operations, default=None, metavar="OP[,OP...]",
                   help=f"what to time and measure (default: all of {','.join(OPERATIONS)})")
    p.add_argument("--time-budget", metavar="S", type=_number(float, "seconds", 0, 86400),
                   default=None, help="seconds of worker processes per operation before timing stops "
                   "short of its target (+-1%% kernels, +-3%% epochs) (default: "
                   f"{DEFAULT['time_budget']:g}, --thorough {THOROUGH['time_budget']:g})")
    p.add_argument("--examples", metavar="N", type=_number(int, "a whole number", 1, 100_000),
                   default=None, help="hypothesis cases for outputs and gradients (default: "
                   f"{DEFAULT['examples']}, --thorough {THOROUGH['examples']})")
    options.add_common(p, str(LOCAL), trains=True)
    plugins.add_variant_option(p)
    return p


def _run(args) -> int:
    """Runs the command; imported here so that building the parser needs no torch."""
    from dotbias.compare.command import run
    return run(args)
