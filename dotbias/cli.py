"""The `dotbias` command: parses and validates arguments, calls the library, prints. Every failure is
one line on stderr and exit status 2 (130 when interrupted), never a traceback.

Only the standard library is imported at module level, so `dotbias --help` answers at once; torch,
fastai and the library load inside the subcommand that needs them."""
from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from dotbias.compare import cli as compare_cli
from dotbias.io import files
from . import options as opt
from dotbias.models import plugins

LOCAL = str(files.LOCAL)     # files imports only the standard library: --help stays light


def _set_threads(args) -> None:
    """One torch thread by default: on a loaded 2-core machine 2 threads trained 6-13x slower."""
    import torch
    torch.set_num_threads(args.threads)


def _meta(args) -> dict:
    """What the manifest of a command's result set records besides its files."""
    meta = {"command": " ".join(["dotbias", *args.argv])}
    if hasattr(args, "threads"):
        meta["threads"] = args.threads
    return meta


def _result_set(args, name: str):
    """The command's ResultSet in --out (checked now, entered by the caller once the input is
    validated), or a null context when --out is '' (print only)."""
    import contextlib

    from dotbias.io.files import check_writable
    from dotbias.io.resultset import ResultSet

    if not args.out and args.command in ("ablations", "check"):
        return contextlib.nullcontext()
    check_writable(args.out, name)
    return ResultSet(args.out, name, meta=_meta(args))


def _run(args) -> int:
    from dotbias.run.config import Config
    from dotbias.run.experiment import prepare, run_prepared, write_results

    cfg = Config(data=args.data, epochs=args.epochs or (1 if args.quick else 5), factors=args.factors,
                 bs=args.bs, seed=args.seed, device=args.device, variants=args.variants,
                 allow_out_of_range=args.allow_out_of_range, threads=args.threads)
    result_set = _result_set(args, "run")
    _set_threads(args)
    prepared = prepare(cfg, log=_log)          # reads and checks the data, sizes and memory
    with result_set as rs:                     # locked from here; visible once complete
        res = run_prepared(prepared, log=_log)
        _stop_if_interrupted()
        text = write_results(res, rs)
    print(text)
    _wrote(rs)
    return 0


def _ablations(args) -> int:
    result_set = _result_set(args, "ablations")
    _set_threads(args)
    from dotbias.equivalence.ablations import ablations_report, run_all, write_ablations

    with result_set as rs:
        _log("ablations: running every reverted change and the disagreement map")
        results = run_all(args.quick)
        _stop_if_interrupted()
        print(ablations_report(results))
        if rs is not None:
            write_ablations(results, rs.staging)
    _wrote(rs)
    return 0


def _check(args) -> int:
    result_set = _result_set(args, "check")
    _set_threads(args)
    from dotbias.equivalence.check import render, run_checks, summarise

    with result_set as rs:
        _log("check: running the equivalence grid")
        summary = summarise(run_checks())
        summary["threads"] = args.threads
        _stop_if_interrupted()
        text = render(summary)
        print(text)
        if rs is not None:
            rs.write_json("equivalence.json", summary)
            rs.write_text("equivalence.md", "# Equivalence grid\n\n" + text + "\n")
    _wrote(rs)
    return 0 if summary["verdict"] != "DIFFERENT" else 1


def _report(args) -> int:
    result_set = _result_set(args, "versions" if args.versions else "report")
    from dotbias.report.summary import default_runs
    from dotbias.report.write import write_report

    paths = [Path(p) for p in args.runs] or ([] if args.versions else default_runs(Path(args.storage)))
    if not paths and not args.versions:
        raise FileNotFoundError(f"{args.storage}: no saved benchmark runs; run `pytest bench` first "
                                "or name RUN.json files")
    with result_set as rs:
        if args.versions:
            from dotbias.report.write import write_versions_report
            text = write_versions_report(Path(args.versions), rs.staging)
        else:
            text = write_report(paths, rs.staging)
    print(text.replace(str(rs.staging), str(rs.path)))
    return 0


def _log(message: str) -> None:
    """Status lines go to stderr, so stdout holds only the results (`dotbias run > run.md`), and
    only when progress shows (a terminal, no --no-progress): an error then stays the one line."""
    from dotbias.io.progress import enabled
    if enabled():
        print(message, file=sys.stderr, flush=True)


def _wrote(rs) -> None:
    if rs is None:
        return
    print(f"wrote {rs.path}/ ({', '.join(sorted(rs.files) or _listing(rs.path))})", file=sys.stderr)


def _listing(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.name != "manifest.json")


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
    compare_cli.add_parser(sub)
    return p


def _quiet_library_warnings() -> None:
    """fastai/pandas/torch version chatter that says nothing about the user's input."""
    import warnings
    for msg in ("The given NumPy array is not writable", ".*mode.chained_assignment",
                ".*torch.jit.script. is deprecated"):
        warnings.filterwarnings("ignore", message=msg)


class _Interrupt:
    seen = False


def _on_signal(signum, frame):
    """Ctrl-C (and SIGTERM, cleaned up the same way): remember it, then raise KeyboardInterrupt."""
    _Interrupt.seen = True
    raise KeyboardInterrupt


def _unraisable(info) -> None:
    """sys.unraisablehook: a Ctrl-C raised inside a callback Python cannot raise from (seen: the
    weakref callback of importlib's module lock, mid-import) is printed by CPython as 'Exception
    ignored in ...' with a traceback. It is still an interrupt: remember it, print nothing."""
    if isinstance(info.exc_value, KeyboardInterrupt) or _Interrupt.seen:
        _Interrupt.seen = True
        return
    sys.__unraisablehook__(info)


def _stop_if_interrupted() -> None:
    """A library can swallow the KeyboardInterrupt (a bare except during an import); the Ctrl-C
    still stops the command before it writes anything."""
    if _Interrupt.seen:
        raise KeyboardInterrupt


def _interrupted() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # a signal still pending must not re-raise
    print("dotbias: interrupted", file=sys.stderr)
    return 130


def main(argv: list[str] | None = None) -> int:
    _Interrupt.seen = False
    sys.unraisablehook = _unraisable
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        args = build_parser().parse_args(argv)
        args.argv = argv
        if getattr(args, "variant", None) is not None:      # the subcommands that run variants
            from dotbias.models import plugins
            plugins.load_variants(args.variant)
        _quiet_library_warnings()
        from dotbias.io import progress
        progress.set_enabled(False if args.no_progress else None)
        code = args.func(args)
        _stop_if_interrupted()
        return code
    except SystemExit as e:            # --help, --version
        return e.code if isinstance(e.code, int) else 0
    except KeyboardInterrupt:
        return _interrupted()
    except BrokenPipeError:            # `dotbias ... | head`: the reader left; no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as e:
        if _Interrupt.seen:            # Ctrl-C turned into another error on its way (a TypeError
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
    """The `dotbias` console script. After Ctrl-C it leaves at once with 130: CPython would turn
    a normal exit into death by SIGINT when the KeyboardInterrupt crossed C++ (pybind11) code."""
    code = main()
    if code == 130:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(130)
    sys.exit(code)


if __name__ == "__main__":
    console()
