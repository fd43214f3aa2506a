"""The `dotbias` command's options: argparse types that name the option and the value they reject,
the option groups the subcommands share, and the one-line rendering of an error. Standard library
only, so that `dotbias --help` stays fast."""
from __future__ import annotations

import argparse
import re

from dotbias.io.files import LOCAL

MAX_FACTORS = 4096          # the property tests go to 256; beyond this a typo is likelier than intent
MAX_EPOCHS = 1000
MAX_THREADS = 256
DEVICES = "cpu, cuda or cuda:N"


class UsageError(ValueError):
    """A bad command line; printed as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse with our error style: "--seed: expected ..., got -1", raised rather than exiting so
    `cli.main` returns 2 in-process too."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        raise UsageError(message.removeprefix("argument "))

    def _get_values(self, action, arg_strings):
        """An option's value '--' (`--epochs=--`) goes to its type, which names it if it is bad:
        Python 3.11's argparse drops it and gives the option [] (`dotbias run --epochs=--` ran
        with the default epochs; found by tests/test_fuzz.py)."""
        if action.option_strings and action.nargs in (None, "?") and arg_strings == ["--"]:
            value = self._get_value(action, "--")
            self._check_value(action, value)
            return value
        return super()._get_values(action, arg_strings)


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: X)" on every option that has a default; None means "see the help text"."""

    def _get_help_string(self, action):
        if action.default is None or isinstance(action.default, bool):
            return action.help
        return super()._get_help_string(action)


def _int_type(low: int, high: int | None, what: str):
    def parse(text: str) -> int:
        # plain ASCII digits: int() also reads '1_000' and other scripts' digits ('\uff15' is 5)
        if not re.fullmatch(r"[+-]?[0-9]{1,30}", text.strip()):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text[:40]!r}")
        value = int(text)
        if value < low or (high is not None and value > high):
            limit = f" (at most {high:,})" if high is not None and value > high else ""
            raise argparse.ArgumentTypeError(f"expected {what}{limit}, got {value}")
        return value
    parse.__name__ = what
    return parse


positive = _int_type(1, None, "a positive integer")
non_negative = _int_type(0, 2**32 - 1, "a non-negative integer")


def variant_list(text: str) -> tuple[str, ...]:
    """Comma-separated variant names: at least two, none empty, none twice."""
    names = tuple(n.strip() for n in text.split(","))
    if any(not n for n in names):
        raise argparse.ArgumentTypeError(f"empty variant name in {text!r}")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise argparse.ArgumentTypeError(f"{', '.join(map(repr, twice))} given twice in {text!r}")
    if len(names) < 2:
        raise argparse.ArgumentTypeError(f"give at least two variants to compare, got {text!r}")
    return names


def device(text: str) -> str:
    if text == "cpu" or re.fullmatch(r"cuda(:[0-9]+)?", text):
        return text
    raise argparse.ArgumentTypeError(f"expected {DEVICES}, got {text!r}")


def subcommand(sub, name: str, func, help_text: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text)
    p.set_defaults(func=func)
    return p


def add_run_options(r: argparse.ArgumentParser) -> None:
    r.add_argument("--data", metavar="PATH", help="a MovieLens 100k folder (u.data, u.item); "
                   "default: synthetic data drawn from a known model")
    r.add_argument("--epochs", type=_int_type(1, MAX_EPOCHS, "a positive integer"),
                   help="epochs of fit_one_cycle (default: 5, or 1 with --quick)")
    r.add_argument("--factors", type=_int_type(1, MAX_FACTORS, "a positive integer"), default=50,
                   help="latent factors per user and item")
    r.add_argument("--bs", type=positive, default=64, help="batch size")
    r.add_argument("--seed", type=non_negative, default=42,
                   help="seeds the data, the split, each model's init and the batches")
    r.add_argument("--device", type=device, default="cpu", help=DEVICES)
    r.add_argument("--variants", type=variant_list, default="emb,cp", metavar="A,B[,...]",
                   help="registered variants to train and compare")
    r.add_argument("--quick", action="store_true", help="1 epoch, for a first look")
    r.add_argument("--allow-out-of-range", action="store_true", help="train on ratings outside the "
                   "models' y_range (0, 5.5) instead of refusing them")


def add_common(p: argparse.ArgumentParser, local: str, *, trains: bool, skip_out: bool = False) -> None:
    """--out, --no-progress and, for commands that train or time, --threads."""
    skip = " ('' to print only)" if skip_out else ""
    p.set_defaults(print_only_ok=skip_out)          # read by commands.run_command
    p.add_argument("--out", metavar="DIR", default=local,
                   help=f"folder for the results; they go to DIR/{p.prog.split()[-1]}/{skip}")
    if trains:
        p.add_argument("--threads", type=_int_type(1, MAX_THREADS, "a positive integer"), default=1,
                       help="torch threads (recorded; 1 by default: more threads contend with other "
                       "load on a busy machine)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress lines on stderr (they are off anyway when stderr is not a terminal)")


def add_report_options(rep: argparse.ArgumentParser) -> None:
    rep.add_argument("runs", nargs="*", metavar="RUN.json",
                     help="pytest-benchmark JSON files (default: the newest saved run)")
    rep.add_argument("--storage", metavar="DIR", default=str(LOCAL / "benchmarks"),
                     help="where `pytest bench` saves runs")
    rep.add_argument("--versions", metavar="DIR", help="instead: merge the per-torch-version runs "
                     "that tox writes under DIR (results/local/tox) into CROSS_VERSION.md/.json/.png")


def one_line(e: BaseException) -> str:
    """An exception as the one line the user sees."""
    if isinstance(e, MemoryError):
        return f"out of memory{': ' + str(e) if str(e) else ''} (try a smaller --factors or --bs)"
    if isinstance(e, OSError) and e.strerror:
        if e.filename is None:
            return e.strerror
        where = f"{e.filename} -> {e.filename2}" if e.filename2 else f"{e.filename}"
        return f"{where}: {e.strerror}"
    return " ".join(str(e).split()) or type(e).__name__


def add_baseline_option(*parsers) -> None:
    """`--baseline` on the subcommands that judge variants against one."""
    for p in parsers:
        p.add_argument("--baseline", metavar="NAME|MODULE:ATTR", default=None, help="the variant "
                       "every other is judged against: a name or a pkg.module:attr spec, as "
                       "--variant takes (default $DOTBIAS_BASELINE, else cp)")
