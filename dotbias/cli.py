"""The `dotbias` command: parses and validates arguments, runs each subcommand through
`commands.run_command` (the one skeleton of a command that writes a result set), prints. Every
failure is one line on stderr and exit status 2 (130 when interrupted), never a traceback.

Only light modules (the standard library, options, commands, io) load at module level, so
`dotbias --help` answers at once; torch, fastai and the library load inside the subcommand that
needs them."""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from dotbias import commands
from dotbias import options as opt
from dotbias.compare import cli as compare_cli
from dotbias.io import files, interrupts
from dotbias.models import plugins

if TYPE_CHECKING:
    from dotbias.models.registry import Registry

LOCAL = str(files.LOCAL)     # files imports only the standard library: --help stays light


def _run(args) -> int:
    from dotbias.run.config import Config
    from dotbias.run.experiment import prepare, run_prepared, write_results

    cfg = Config(data=args.data, epochs=args.epochs or (1 if args.quick else 5), factors=args.factors,
                 bs=args.bs, seed=args.seed, device=args.device, variants=args.variants,
                 allow_out_of_range=args.allow_out_of_range, threads=args.threads)

    progress = commands.progress_of(args)

    def work(rs, prepared):
        return write_results(run_prepared(prepared, args.registry, log=progress.log, progress=progress),
                             rs), 0
    return commands.run_command(args, "run", work, lambda: prepare(cfg, args.registry, log=progress.log))


def _ablations(args) -> int:
    from dotbias.equivalence.ablations import ablations_report, run_all, write_ablations
    from dotbias.equivalence.baseline import choose_baseline

    progress = commands.progress_of(args)

    def work(rs, _):
        progress.log("ablations: running every reverted change and the disagreement map")
        name, registry = choose_baseline(None, args.registry)
        results = run_all(args.quick, baseline=registry.get_variant(name), registry=registry,
                          progress=progress)
        if rs is not None:
            write_ablations(results, rs.staging)
        return ablations_report(results), 0
    return commands.run_command(args, "ablations", work)


def _check(args) -> int:
    from dotbias.equivalence.check import THREADS, check_inits, render, run_checks, summarise

    progress = commands.progress_of(args)

    def work(rs, _):
        progress.log("check: running the equivalence grid")
        rows = run_checks(baseline=args.registry.get_variant(args.baseline), registry=args.registry,
                          progress=progress)
        summary = summarise(rows, check_inits(args.registry), baseline=args.baseline)
        text = render(summary)
        if rs is not None:
            rs.write_json("equivalence.json", summary.as_json())
            rs.write_text("equivalence.md", "# Equivalence grid\n\n" + text + "\n")
        return text, 0 if summary.verdict != "DIFFERENT" else 1
    return commands.run_command(args, "check", work, threads=THREADS)     # the grid pins its own


def _report(args) -> int:
    from dotbias.report.summary import default_runs
    from dotbias.report.write import write_report, write_versions_report

    def runs() -> list[Path]:
        paths = [Path(p) for p in args.runs] or default_runs(Path(args.storage))
        if not paths:
            raise FileNotFoundError(f"{args.storage}: no saved benchmark runs; run `pytest bench` "
                                    "first or name RUN.json files")
        _readable(paths)
        return paths

    def work(rs, paths):
        if args.versions:
            return write_versions_report(Path(args.versions), rs.staging), 0
        return write_report(paths, rs.staging), 0
    return commands.run_command(args, "versions" if args.versions else "report", work,
                                (lambda: None) if args.versions else runs)


def _readable(paths: list[Path]) -> None:
    """Every run read, summarised and rendered as text before anything is locked: JSON of the wrong
    shape (a list or null where a number belongs: found by tests/test_fuzz.py) is one line naming
    the files, exit 2, not an internal error deep in the summary or the markdown."""
    from dotbias.report import markdown
    from dotbias.report.summary import load_run, summarise
    try:
        summary = summarise([load_run(p) for p in paths])
        markdown.render_markdown(summary), markdown.render_text(summary), markdown.summary_json(summary)
    except (TypeError, KeyError, AttributeError, IndexError) as e:
        raise ValueError(f"{', '.join(map(str, paths))}: not a dotbias pytest-benchmark run "
                         f"({type(e).__name__}: {e}); rerun `pytest bench`") from None


def build_parser() -> argparse.ArgumentParser:
    p = opt.Parser(prog="dotbias", description="Equivalence and benchmark harness for fastbook's "
                   "DotProductBias variants. Results go to OUT/<command>/, written as one set.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=opt.Parser)
    r = opt.subcommand(sub, "run", _run, "train both models the seed's way and compare them (the "
                       "main job)")
    opt.add_run_options(r)
    opt.add_common(r, LOCAL, trains=True)
    a = opt.subcommand(sub, "ablations", _ablations, "the seed's changes reverted one at a time, and "
                       "the map of inputs where the variants disagree")
    a.add_argument("--quick", action="store_true", help="shorter training for the silent-broadcast row")
    opt.add_common(a, LOCAL, trains=True, skip_out=True)
    c = opt.subcommand(sub, "check", _check, "a fixed grid of equivalence checks on this torch build, "
                       "one verdict (exit 1 if the variants disagree)")
    opt.add_common(c, LOCAL, trains=True, skip_out=True)
    rep = opt.subcommand(sub, "report", _report, "turn pytest-benchmark JSON runs into REPORT.md, "
                         "report.json and plots")
    opt.add_report_options(rep)
    opt.add_common(rep, LOCAL, trains=False)
    plugins.add_variant_option(r, a, c)       # the subcommands that run variants
    opt.add_baseline_option(c)                # the subcommands that judge them against one
    compare_cli.add_parser(sub)
    return p


def _quiet_library_warnings() -> None:
    """fastai/pandas/torch version chatter that says nothing about the user's input."""
    for msg in ("The given NumPy array is not writable", ".*mode.chained_assignment",
                ".*torch.jit.script. is deprecated"):
        warnings.filterwarnings("ignore", message=msg)


def _interrupted() -> int:
    print(interrupts.MESSAGE, file=sys.stderr)
    return interrupts.EXIT


def main(argv: list[str] | None = None, registry: Registry | None = None) -> int:
    """Run `dotbias ARGV`; the exit status. Ctrl-C is deferred during the call (the command stops at
    its next checkpoint: one line, 130) and the caller's handlers are back afterwards (see
    `commands.handling_interrupts`). `registry`: where the command's registry starts (a
    `models.registry.Registry`; default the built-ins), for a caller with variants of its own."""
    with commands.handling_interrupts():
        return _main(argv, registry)


def _main(argv: list[str] | None, registry: Registry | None) -> int:
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        args = build_parser().parse_args(argv)
        args.argv = argv
        if getattr(args, "variant", None) is not None:      # the subcommands that run variants
            args.registry = plugins.load_variants(args.variant, compile=args.compile, registry=registry)
        if hasattr(args, "baseline"):       # the subcommands that judge variants: the run's choice
            from dotbias.equivalence.baseline import choose_baseline
            args.baseline, args.registry = choose_baseline(args.baseline, args.registry)
        _quiet_library_warnings()
        commands.stop_if_interrupted()          # before the subcommand imports torch and fastai
        code = args.func(args)
        commands.stop_if_interrupted()
        return code
    except SystemExit as e:            # --help, --version
        return e.code if isinstance(e.code, int) else 0
    except KeyboardInterrupt:
        return _interrupted()
    except BrokenPipeError:            # `dotbias ... | head`: the reader left; no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as e:
        if interrupts.seen():          # Ctrl-C turned into another error on its way (a TypeError
            return _interrupted()      # from CPython's warnings machinery during an import)
        if isinstance(e, (ValueError, OSError, MemoryError)):
            print(f"dotbias: error: {opt.one_line(e)}", file=sys.stderr)
            return 2
        if os.environ.get("DOTBIAS_TRACEBACK"):   # a bug, not bad input: one line, exit 1
            raise
        print(f"dotbias: internal error: {type(e).__name__}: {opt.one_line(e)} (please report it; "
              "DOTBIAS_TRACEBACK=1 shows where)", file=sys.stderr)
        return 1


def console() -> None:
    """The `dotbias` console script. Signals are deferred from the first line of `dotbias/__init__`
    (`interrupts.install_early`) to the exit, so a Ctrl-C at any moment, even before `main` or
    after its last checkpoint, ends in one line and 130. That exit is `os._exit`: nothing is left
    to clean up, and torch's teardown has nothing to add."""
    interrupts.install_early()
    code = main()
    if code != interrupts.EXIT and interrupts.seen():   # after main's last checkpoint
        code = _interrupted()
    if code == interrupts.EXIT:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(interrupts.EXIT)
    sys.exit(code)


if __name__ == "__main__":
    console()
