"""The `dotbias` command: parses arguments, calls the library, prints. Errors become one line."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _run(args) -> int:
    from .experiment import Config, render_markdown, run_experiment, write_results

    epochs = args.epochs if args.epochs is not None else (1 if args.quick else 5)
    cfg = Config(data=args.data, epochs=epochs, factors=args.factors, bs=args.bs, seed=args.seed,
                 device=args.device, quick=args.quick, variants=tuple(args.variants.split(",")))
    res = run_experiment(cfg, progress=not args.no_progress)
    paths = write_results(res, args.out)
    print(render_markdown(res))
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _ablations(args) -> int:
    from .ablations import ablations_report, run_all, write_ablations

    results = run_all(args.quick)
    print(ablations_report(results))
    if args.out:
        print("wrote " + ", ".join(str(p) for p in write_ablations(results, args.out)))
    return 0


def _check(args) -> int:
    from .files import write_json, write_text
    from .grid import render, run_checks, summarise

    summary = summarise(run_checks())
    text = render(summary)
    if args.out:
        write_json(Path(args.out) / "equivalence.json", summary)
        write_text(Path(args.out) / "equivalence.md", "# Equivalence grid\n\n" + text + "\n")
    print(text)
    return 0 if summary["verdict"] != "DIFFERENT" else 1


def _report(args) -> int:
    from .report import default_runs, write_report

    if args.versions:
        from .crossversion import write_versions_report
        print(write_versions_report(Path(args.versions), Path(args.out)))
        return 0
    paths = [Path(p) for p in args.runs] or default_runs(Path(args.storage))
    if not paths:
        raise FileNotFoundError(f"{args.storage}: no saved benchmark runs; run `pytest bench` first "
                                "or name RUN.json files")
    print(write_report(paths, Path(args.out)))
    return 0


class _Parser(argparse.ArgumentParser):
    def error(self, message):   # argparse's own errors: one line, exit 2, like ours
        self.exit(2, f"dotbias: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="dotbias", description="Equivalence and benchmark harness for fastbook's "
                                            "DotProductBias variants.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("run", help="train both models the seed's way and compare them (main job)")
    r.add_argument("--data", metavar="PATH", help="a MovieLens 100k folder (u.data, u.item); "
                   "default: synthetic data with known truth")
    r.add_argument("--epochs", type=int, default=None, help="epochs (default 5; 1 with --quick)")
    r.add_argument("--factors", type=int, default=50)
    r.add_argument("--bs", type=int, default=64)
    r.add_argument("--seed", type=int, default=42)
    r.add_argument("--device", default="cpu", help="cpu or cuda")
    r.add_argument("--variants", default="emb,cp", help="comma-separated registered variants")
    r.add_argument("--quick", action="store_true", help="a short run (1 epoch) for a first look")
    r.add_argument("--out", default="results", help="folder for run.md, run.json, run.png")
    r.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    r.set_defaults(func=_run)

    a = sub.add_parser("ablations", help="the seed's changes reverted one at a time, and the map "
                                         "of inputs where the variants disagree")
    a.add_argument("--quick", action="store_true", help="shorter training for the silent-broadcast row")
    a.add_argument("--out", default="results", help="folder for ablations.md/json ('' to skip)")
    a.set_defaults(func=_ablations)

    c = sub.add_parser("check", help="a fixed grid of equivalence checks on this torch build, "
                                     "one verdict (exit 1 if the variants disagree)")
    c.add_argument("--out", default="", help="folder for equivalence.json/.md (default: print only)")
    c.set_defaults(func=_check)

    rep = sub.add_parser("report", help="turn pytest-benchmark JSON runs into REPORT.md, "
                                        "report.json and plots")
    rep.add_argument("runs", nargs="*", help="pytest-benchmark JSON files (default: newest saved run)")
    rep.add_argument("--storage", default="results/local/benchmarks",
                     help="where `pytest bench` saves runs (default: %(default)s)")
    rep.add_argument("--out", default="results/local", help="folder for REPORT.md, report.json and "
                     "plots (default: %(default)s)")
    rep.add_argument("--versions", metavar="DIR", help="instead: merge the per-torch-version runs that "
                     "tox writes under DIR (results/tox) into CROSS_VERSION.md/.json/.png")
    rep.set_defaults(func=_report)
    return p


def _quiet_library_warnings() -> None:
    """fastai/pandas/torch version chatter that says nothing about the user's input."""
    import warnings
    for msg in ("The given NumPy array is not writable", ".*mode.chained_assignment",
                ".*torch.jit.script. is deprecated"):
        warnings.filterwarnings("ignore", message=msg)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_library_warnings()
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError) as e:
        print(f"dotbias: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:     # `dotbias ... | head`: the reader left; no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print("dotbias: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
