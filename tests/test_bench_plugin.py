"""`pytest bench` end to end on a tiny budget: pytest-benchmark's stats (its table, `pytest-benchmark
compare`, histograms, the saved JSON) are the worker rounds the report's intervals come from, so
they agree with `dotbias report`; and `--fail-slower` fails the run naming the group and variant."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from pytest_benchmark.stats import Stats

from dotbias.pytest_bench.options import fail_slower
from dotbias.report.summary import load_run, summarise
from dotbias.timing import stats
from dotbias.timing.groups import DEFAULT_SIZES, Group
from dotbias.timing.operations import refusal
from helpers.inprocess import time_in_process
from helpers.synthetic_timing import paired

ROOT = Path(__file__).resolve().parent.parent
SIZE = DEFAULT_SIZES[0]
TINY = ["-k", "test_forward and not backward and cpu", "--processes=2", "--interleave-s=0.1"]
SAVED_SPEEDUP = 1e-6      # the saved run: every variant far faster than the baseline (2 processes: wide)


def _bench(variant: str, processes: list[list[float]], base: str) -> dict:
    """One benchmark of a saved run as pytest-benchmark writes it (full stats: its compare reads them)."""
    s = Stats()
    for t in sum(processes, []):
        s.update(t)
    name = f"test_forward[cpu-{SIZE.name}-float32-{variant}]"
    group = {"operation": "forward", "device": "cpu", "size": vars(SIZE), "dtype": "float32"}
    return {"group": f"forward cpu {SIZE.name} float32", "name": name,
            "fullname": f"bench/test_forward.py::{name}", "params": None, "param": None, "options": {},
            "extra_info": {"group": group, "variant": variant, "baseline": base, "threads": 1,
                           "sweep_axes": [],
                           "timing": {"seconds": processes, "iterations": [1] * len(processes)}},
            "stats": {**s.as_dict(), "data": s.data, "iterations": 1}}


def _saved_run(path: Path, base: str, names) -> Path:
    """A saved forward run in which every registered variant (`names`) was far faster than the
    baseline."""
    benches = []
    for i, v in enumerate(names):
        num, den = paired(1.0 if v == base else SAVED_SPEEDUP, seed=i, processes=3, rounds=20)
        benches.append(_bench(v, den if v == base else num, base))
    path.write_text(json.dumps({"machine_info": {"node": "test"}, "commit_info": {}, "version": "5.3.1",
                                "datetime": "2026-01-01T00:00:00", "benchmarks": benches}))
    return path


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, baseline, registry):
    """One tiny `pytest bench` of the forward group, compared with a saved run under `--fail-slower`."""
    tmp = tmp_path_factory.mktemp("bench")
    saved = _saved_run(tmp / "saved.json", baseline.name, list(registry.variants))
    store = tmp / "store"
    # run from `tmp`: pytest-benchmark names a storage outside the working folder by a path relative
    # to it when the saved run's machine differs (and fails when it cannot)
    cmd = [sys.executable, "-m", "pytest", str(ROOT / "bench"), "-q", "-p", "no:cacheprovider", *TINY,
           f"--benchmark-storage=file://{store}", "--benchmark-autosave", "--benchmark-save-data",
           f"--benchmark-compare={saved}", "--fail-slower=5%", "--baseline", baseline.name]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}  # not a worker
    done = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=600,
                          env={**env, "OMP_NUM_THREADS": "1"})
    [path] = store.rglob("*.json")
    return done, path


@pytest.mark.slow
@pytest.mark.timing        # real timing: .ci/run runs these serially (docs/ci.md)
def test_pytest_benchmark_stats_are_the_worker_rounds_and_agree_with_the_report(tiny_run, registry):
    done, path = tiny_run
    data = json.loads(path.read_text())
    [row] = summarise([load_run(path)]).rows
    by_variant = {b["extra_info"]["variant"]: b for b in data["benchmarks"]}
    assert set(by_variant) == set(registry.variants), done.stdout[-3000:]
    medians: dict[str, list[float]] = {}
    for v, b in by_variant.items():
        rounds = b["extra_info"]["timing"]["seconds"]
        every = [t for p in rounds for t in p]      # nothing timed again: every worker round
        assert b["stats"]["data"] == pytest.approx(every, rel=1e-12), v
        assert b["stats"]["rounds"] == len(every) == row.time(v).rounds > len(rounds), v
        assert b["stats"]["iterations"] == b["extra_info"]["timing"]["iterations"][0], v
        assert len(rounds) == row.time(v).processes == 2, v
        assert b["extra_info"]["timing"]["servers"] == [0, 1], v    # each process a server of its own
        assert b["name"].endswith(f"-{v}]"), (v, b["name"])     # each row its own variant's rounds
        own = stats.ratio(rounds, [[1.0] * len(p) for p in rounds], (v, "1 s"))
        assert own.value == pytest.approx(stats.typical_time(rounds), rel=1e-9), v
        if v == row.baseline:       # the others' times shown are the baseline's times their ratio
            assert row.time(v).seconds == pytest.approx(own.value, rel=1e-9), v
        # The median shown is that of every round, so it lies between the processes' own medians
        # (a median of a union always does); the mean is the rounds' own mean.
        medians[v] = [statistics.median(p) for p in rounds]
        assert min(medians[v]) <= b["stats"]["median"] <= max(medians[v]), (v, b["stats"], medians[v])
        assert b["stats"]["mean"] == pytest.approx(statistics.fmean(every), rel=1e-9), v
    # pytest-benchmark's ratio of two medians: within what those bounds allow, and no tighter. Its
    # medians pool processes that met different speeds of the machine, unpaired, which the report's
    # paired interval cancels: a slow spell inside this run (cp's medians 33.9 and 56.9 us) showed
    # fastai/cp 1.362 where the report said 1.250 [1.183, 1.321], and failed a 3% slack here.
    base = row.ratios[0].denominator
    for x in row.ratios:
        num, den = medians[x.numerator], medians[base]
        shown = by_variant[x.numerator]["stats"]["median"] / by_variant[base]["stats"]["median"]
        low, high = min(num) / max(den), max(num) / min(den)
        assert low <= shown <= high, (x, shown, low, high)
        assert x.low <= x.value <= x.high, x


@pytest.mark.slow
@pytest.mark.timing        # real timing: .ci/run runs these serially (docs/ci.md)
def test_fail_slower_fails_the_run_naming_group_and_variant(tiny_run, baseline, registry):
    done, _ = tiny_run
    out = done.stdout
    assert done.returncode == 1, out[-3000:] + done.stderr[-2000:]
    fails = [ln for ln in out.splitlines() if ln.startswith("--fail-slower 5%: FAILED: ")]
    base = baseline.name
    named = {ln.split(f"forward cpu {SIZE.name} float32: ", 1)[1].split(" (its ratio to ")[0] for ln in fails}
    assert named == set(registry.variants) - {base}, out[-3000:]
    assert all(f"(its ratio to {base} " in ln and "x slower [" in ln for ln in fails)   # 1e6x


@pytest.mark.parametrize("text, value", [("5%", 0.05), ("5", 0.05), (" 12.5% ", 0.125), ("0", 0.0),
                                         ("150%", 1.5), (None, None)])
def test_fail_slower_reads_a_percentage(text, value):
    allowed = fail_slower(SimpleNamespace(fail_slower=text, benchmark_compare=True))
    assert allowed is None if value is None else allowed == pytest.approx(value)


@pytest.mark.parametrize("text, compare, why", [
    ("fast", True, "--fail-slower: expected a percentage from 0% to 1000% such as 5%, got 'fast'"),
    ("0.05", True, "--fail-slower: '0.05' could be a fraction or a percentage: write 5% or 0.05%"),
    ("-1%", True, "got '-1%'"),
    ("nan", "0001", "got 'nan'"),
    ("5%", False, "--fail-slower needs --benchmark-compare"),
])
def test_a_bad_fail_slower_is_a_usage_error(text, compare, why):
    with pytest.raises(pytest.UsageError) as e:
        fail_slower(SimpleNamespace(fail_slower=text, benchmark_compare=compare))
    assert why in str(e.value) and "\n" not in str(e.value)


def test_a_bad_fail_slower_stops_pytest_bench_in_one_line(tmp_path, nested_pytest):
    done = nested_pytest("bench", "--collect-only", f"--benchmark-storage=file://{tmp_path}",
                         "--benchmark-compare", "--fail-slower=fast")
    lines = [ln for ln in done.errlines + done.outlines if ln.strip()]
    assert done.ret == 4 and lines == ["ERROR: --fail-slower: expected a percentage from 0% to "
                                       "1000% such as 5%, got 'fast'"], lines


@pytest.mark.parametrize("arg", ["--threads=--", "--max-time=--", "--baseline=--"])
def test_an_option_given_dashes_stops_pytest_bench_in_one_line(arg, nested_pytest):
    """Python 3.11's argparse drops the value '--' and gives the option []: `--threads=--` was an
    internal error, `--max-time=--` and `--baseline=--` ran with their defaults."""
    done = nested_pytest("bench", "--collect-only", arg)
    lines = [ln for ln in done.errlines + done.outlines if ln.strip()]
    assert done.ret == 4 and lines == [f"ERROR: {arg.split('=')[0]}: expected a value, got '--'"], lines


@pytest.mark.parametrize("args, given", [(["-n", "2"], "-n 2"),
                                         (["--dist", "worksteal"], "--dist worksteal")])
def test_pytest_bench_under_xdist_stops_in_one_line(args, given, nested_pytest):
    """pytest-benchmark switches itself off under any --dist: `pytest bench -n 2` timed nothing
    and passed (found when .ci/run's --dist worksteal went into pyproject's addopts, round 31).
    --collect-only, which times nothing, is let through."""
    done = nested_pytest("bench", "-k", "forward", *args)
    lines = [ln for ln in done.errlines + done.outlines if ln.strip()]
    assert done.ret == 4 and len(lines) == 1 and lines[0].startswith(f"ERROR: {given}: pytest bench "), lines
    assert "run it without -n and --dist" in lines[0], lines
    assert nested_pytest("bench", "--collect-only", "-q", *args).ret == 0


@pytest.mark.timing        # a tiny real timing: .ci/run runs these serially (docs/ci.md)
def test_a_training_setup_is_timed_beside_the_baseline_with_its_floor(tmp_path, nested_pytest,
                                                                        baseline, monkeypatch):
    """`--training BASE+fused` in the step group: a row of its own in the saved run (measured, not
    compiled, with its floor and its contract note), beside the baseline's; its worker's rounds
    timed in this process (helpers/inprocess.py). Caught: a setup name handed to the variant
    registry (every setup's benchmark failed with 'unknown variant')."""
    time_in_process(monkeypatch)
    base = baseline.name
    setup = f"{base}+fused"
    # `float32-BASE` selects the baseline's and the setup's rows only (`cpu` alone contains `cp`)
    done = nested_pytest("bench", "-q", "-k", f"test_step and cpu and float32-{base}", "--training", setup,
                         "--baseline", base,
                         "--processes=1", "--interleave-s=0.05", f"--benchmark-storage=file://{tmp_path}",
                         f"--benchmark-json={tmp_path / 'run.json'}")
    assert done.ret == 0, "\n".join(done.outlines[-30:])
    rows = {b["extra_info"]["variant"]: b["extra_info"]
            for b in json.loads((tmp_path / "run.json").read_text())["benchmarks"]}
    assert {base, setup} <= set(rows), sorted(rows)
    assert rows[setup]["compiled"] is False and rows[setup]["floor"]["bytes"] > 0
    assert rows[setup]["contract"]["passed"] is True and "one-cycle steps" in rows[setup]["contract"]["what"]
    assert "contract" not in rows[base]          # the baseline is what the others are held to
    assert all(s > 0 for s in sum(rows[setup]["timing"]["seconds"], []))


def test_a_setup_is_collected_where_it_trains_and_deselected_in_one_line_elsewhere(tmp_path, nested_pytest,
                                                                                  baseline, registry):
    """`--training BASE+row_step --dtypes float32,float16` (row_step trains float32 and float64 CPU
    tensors of the four canonical tensors only). Caught: collection asked `refusal` about a group
    with no device or dtype (`getattr(torch, '')`: every `pytest bench --training X+row_step` failed
    to collect); a refused (group, setup) collected, to fail in the workers."""
    base = baseline.name
    setup = f"{base}+row_step"
    done = nested_pytest("bench", "--collect-only", "-q", "-k", "test_step and cpu", "--training", setup,
                         "--baseline", base, "--dtypes", "float32,float16",
                         f"--benchmark-storage=file://{tmp_path}")
    assert done.ret == 0, "\n".join(done.outlines[-30:])
    out = "\n".join(done.outlines)
    whys = {dtype: refusal(Group("step", "cpu", DEFAULT_SIZES[0], dtype), registry.setup(setup), registry)
            for dtype in ("float32", "float16")}
    trains_somewhere = None in whys.values()
    for dtype, why in whys.items():
        assert (f"test_step[cpu-ml100k-{dtype}-{setup}]" in out) == (why is None), out
        assert (f"benchmark(s) of {setup}: {why}" in out) == (why is not None and trains_somewhere), out


def test_a_setup_compiles_where_its_variant_or_its_optimizer_does(baseline, registry):
    base, compiled = baseline.name, registry.compiles
    assert not compiled(base) and not compiled(f"{base}+fused")
    assert compiled(f"{base}_compiled") and compiled(f"{base}+compiled_step")
    assert compiled(f"{base}_compiled+fused")
