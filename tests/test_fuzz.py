"""Bad input, fuzzed: hypothesis draws bad and odd values for every option of every `dotbias`
subcommand, for the files they read (u.data, u.item, saved benchmark JSON, result-set and tox
folders, DOTBIAS_VARIANTS specs) and for the option parsing of `pytest tests` / `pytest bench`.
Every case exits with a documented code (0, or 2 for bad input; never 1, an internal error), a
refusal is ONE line on stderr and no traceback, and nothing under the folder the case runs in
(its --out, results/, the data) changes when the command fails.

In-process (`cli.main`) and fast: the work after validation (training, the check grid, timing) is
replaced by a stand-in that fails with SENTINEL, so a case that passes validation ends there, with
exit 2 and nothing written; `report` runs for real (its input is what is fuzzed), plots stubbed.
Slow-marked (DOTBIAS_SLOW=1): 1,200+ cases in CI; `.ci/fuzz` multiplies every budget by
$DOTBIAS_FUZZ_SCALE (10 there: 12,000+ cases)."""
from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import tempfile
import types
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

import helpers.fuzzing as fz
from dotbias import cli, commands
from dotbias.equivalence import baseline
from dotbias.models import plugins
from dotbias.models.registry import Registry
from helpers.mlfiles import tree_digest, write_bench_run, write_movielens

pytestmark = pytest.mark.slow
SCALE = float(os.environ.get("DOTBIAS_FUZZ_SCALE", "1"))
COUNTS: collections.Counter = collections.Counter()       # (kind, outcome) -> cases run
SENTINEL = "fuzz: validation passed, the work would start here"


def budget(n: int):
    return settings(max_examples=max(1, int(n * SCALE)), deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    yield
    total = sum(COUNTS.values())
    kinds = collections.Counter()
    for (kind, _), n in COUNTS.items():
        kinds[kind] += n
    line = f"fuzz: {total} cases; " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
    print("\n" + line + "\n" + json.dumps({f"{k}/{o}": n for (k, o), n in sorted(COUNTS.items())}))
    if os.environ.get("DOTBIAS_FUZZ_COUNTS"):
        Path(os.environ["DOTBIAS_FUZZ_COUNTS"]).write_text(json.dumps(
            {"total": total, "kinds": kinds, "outcomes": {f"{k}/{o}": n for (k, o), n in COUNTS.items()}}))


@pytest.fixture
def stubbed(monkeypatch):
    """Work after validation stands in for SENTINEL; torch's thread count is left alone; plots
    are stubbed and the synthetic data drawn once; the baseline and --compile are put back after
    each case (each command builds a registry of its own)."""
    import torch

    import dotbias.compare.command as compare_command
    import dotbias.report.write as report_write
    import dotbias.run.experiment as run_experiment
    run_command = commands.run_command

    def stand_in(args, name, work, prepare=lambda: None, **kw):
        if name not in ("report", "versions"):
            work = lambda rs, prepared: (_ for _ in ()).throw(ValueError(SENTINEL))  # noqa: E731
        return run_command(args, name, work, prepare, **kw)
    monkeypatch.setattr(commands, "run_command", stand_in)
    synthetic = run_experiment.synthetic_ratings(seed=0)        # 0.3 s each: drawn once, any seed
    monkeypatch.setattr(run_experiment, "synthetic_ratings", lambda seed=0, **kw: synthetic)
    monkeypatch.setattr(compare_command.CompareRun, "compare",
                        lambda self, *a: (_ for _ in ()).throw(ValueError(SENTINEL)))
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    monkeypatch.setattr(report_write, "render_plots", lambda summary: {})
    monkeypatch.setattr(report_write, "cross_version_plot", lambda summary: b"\x89PNG stub")
    monkeypatch.delenv(plugins.ENV, raising=False)
    monkeypatch.delenv(baseline.ENV, raising=False)


class Sandbox:
    """One case's folder: a MovieLens folder, a saved benchmark run, a previous result set of every
    command in `out/` and in `results/local/`, a file; the current directory while the case runs.
    Copied from a template made once (writing result sets runs git: too slow per case)."""
    _template: Path | None = None

    def __init__(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="dotbias-fuzz-")
        self.root = Path(self._tmp.name) / "box"
        shutil.copytree(self.template(), self.root, symlinks=True)
        self.ml, self.bench = self.root / "ml", self.root / "bench.json"

    @classmethod
    def template(cls) -> Path:
        if cls._template is None:
            from dotbias.io.resultset import ResultSet
            root = Path(tempfile.mkdtemp(prefix="dotbias-fuzz-template-"))
            write_movielens(root / "ml", n_users=20, n_items=20, n_ratings=200, duplicate_title=False)
            write_bench_run(root / "bench.json")
            (root / "afile").write_text("not a folder")
            for out, name in [(root / "out", n) for n in ("run", "ablations", "check", "report",
                                                          "compare")] + [(root / "results/local", "run")]:
                with ResultSet(out, name) as rs:
                    rs.write_text(f"{name}.md", f"previous {name}")
            cls._template = root
        return cls._template

    def fill(self, argv: list[str]) -> list[str]:
        return [a.format(ml=self.ml, out=self.root / "out", tmp=self.root, file=self.root / "afile",
                         bench=self.bench) for a in argv]

    def close(self):
        for p in self.root.rglob("*"):      # a case may leave a folder unreadable: let cleanup in
            if p.is_dir() and not p.is_symlink():
                p.chmod(0o755)
        self._tmp.cleanup()


def run_case(kind: str, argv: list[str], capsys, *, sandbox: Sandbox | None = None, bad: bool = False,
             env: dict[str, str] | None = None, prepare=None) -> tuple[int, str]:
    """Run `dotbias ARGV` in a fresh sandbox and hold it to the rules; (exit code, stderr)."""
    box = sandbox or Sandbox()
    state = (os.getcwd(), signal.getsignal(signal.SIGINT), {k: os.environ.get(k) for k in env or {}})
    try:
        if prepare is not None:
            prepare(box)
        argv = box.fill(argv)
        os.chdir(box.root)
        os.environ.update(env or {})
        before = tree_digest(box.root)
        code = cli.main(argv)
        out, err = capsys.readouterr()
        after = tree_digest(box.root)
    finally:
        _restore(state)
        box.close()
    lines = err.strip().splitlines()
    reached = code == 2 and SENTINEL in err
    COUNTS[kind, "passed validation" if reached or code == 0 else f"exit {code}"] += 1
    assert "Traceback" not in out + err, (argv, err)
    assert code in (0, 2), f"dotbias {argv}: exit {code} (0 or 2 expected)\n{err}"
    if code == 2:
        assert len(lines) == 1 and lines[0].startswith("dotbias: error: "), (argv, err)
        assert after == before, f"dotbias {argv} failed and changed {_changed(before, after)}"
    if bad:
        assert code == 2 and not reached, f"dotbias {argv}: a bad value was not refused ({code}: {err})"
    return code, err


def _restore(state) -> None:
    cwd, sigint, env = state
    os.chdir(cwd)
    signal.signal(signal.SIGINT, sigint)
    for k, v in env.items():
        os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def _changed(before: dict, after: dict) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))[:5]


# -- the tests -------------------------------------------------------------------------------------
@budget(500)
@given(case=fz.command_lines())
def test_every_option_of_every_subcommand(stubbed, capsys, case):
    argv, bad = case
    run_case("options", argv, capsys, bad=bad)


def movielens_file_case(name: str, data, capsys) -> None:
    """`dotbias run` on a MovieLens folder whose file `name` holds the drawn text: a bad text is
    refused naming that file."""
    text, bad = data
    code, err = run_case(name, fz.RUN_ML, capsys, bad=bad,
                         prepare=lambda box: (box.ml / name).write_bytes(text))
    if bad:
        assert name in err, err


@budget(160)
@given(data=fz.u_data())
def test_u_data_text(stubbed, capsys, data):
    movielens_file_case("u.data", data, capsys)


@budget(120)
@given(data=fz.u_item())
def test_u_item_text(stubbed, capsys, data):
    movielens_file_case("u.item", data, capsys)


@budget(160)
@given(doc=fz.bench_json())
def test_saved_benchmark_json(stubbed, capsys, doc):
    def write(box):
        (box.root / "run.json").write_bytes(doc(json.loads(box.bench.read_text())))
    run_case("benchmark JSON", ["report", "{tmp}/run.json", "--out", "{out}"], capsys, prepare=write)


@budget(120)
@given(case=fz.folders())
def test_result_set_and_tox_folders(stubbed, capsys, case):
    argv, make = case
    run_case("folders", argv, capsys, prepare=make)


@budget(100)
@given(case=fz.variant_specs())
def test_variant_specs(stubbed, capsys, case):
    specs, via_env, argv = case
    if via_env:
        run_case("DOTBIAS_VARIANTS", argv, capsys, env={plugins.ENV: ",".join(specs).replace("\x00", "")})
    else:
        run_case("--variant", [*argv, *(a for s in specs for a in ("--variant", s))], capsys)


@budget(100)
@given(case=fz.pytest_options())
def test_pytest_tests_and_bench_options(case):
    """`pytest tests` and `pytest bench` read --variant/--baseline through the same two functions
    (their conftest and plugin turn ValueError into one usage line); `pytest bench --fail-slower`
    through `fail_slower`: each accepts or refuses with one line naming the value."""
    what, value, compare = case
    from dotbias.pytest_bench.plugin import fail_slower
    state = (os.getcwd(), signal.getsignal(signal.SIGINT), {})
    try:
        if what == "--fail-slower":
            result = fail_slower(types.SimpleNamespace(fail_slower=value, benchmark_compare=compare))
            assert result is None or 0 <= result < float("inf")
        elif what == "--variant":
            plugins.load_variants([value], env=False, entry_points=False, compile=False)
        else:
            baseline.choose_baseline(value, Registry())
        outcome = "accepted"
    except (ValueError, pytest.UsageError) as e:
        assert "\n" not in str(e).strip() and str(e).strip(), repr(e)
        outcome = "refused"
    finally:
        _restore(state)
    COUNTS[f"pytest {what}", outcome] += 1
