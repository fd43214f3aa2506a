"""The saved run `--benchmark-compare` uses: like with like, or one line naming the file and why;
the change of a ratio against it ("within noise", "slower by", "faster by") with an interval that
holds on synthetic unchanged reruns, and the time gate `--fail-slower` built on it."""
from __future__ import annotations

import math

import numpy as np
import pytest

from dotbias.report.saved_run import changes, other_speed, resolve, slower_than
from dotbias.report.summary import load_run, read_benchmark, summarise, summarise_group
from dotbias.timing import stats
from helpers.reports import bench_entry as _bench
from helpers.reports import pair as _pair
from helpers.reports import write_run as _run

FWD = {f"bench/test_forward.py::test_forward[cpu-ml100k-float32-{v}]" for v in ("emb", "cp")}
STEP = {f"bench/test_step.py::test_step[cpu-ml100k-float32-{v}]" for v in ("emb", "cp")}


def _saved(path, names):
    """A saved dotbias run holding the benchmarks `names` (pytest node ids of FWD and STEP)."""
    benches = []
    for n in sorted(names):
        op, variant = n.split("::test_")[1].split("[")[0], n.rsplit("-", 1)[1].rstrip("]")
        benches.append(_bench(op, variant, [[1e-4, 1.1e-4], [1.2e-4, 1e-4]]))
        assert benches[-1]["fullname"] == n
    return _run(path, benches)


def test_the_newest_run_holding_every_benchmark_is_picked(tmp_path):
    full = _saved(tmp_path / "0001_full.json", FWD | STEP)
    partial = _saved(tmp_path / "0002_partial.json", FWD)
    assert resolve([full, partial], FWD | STEP, explicit=False) == full
    assert resolve([full, partial], FWD, explicit=False) == partial


def test_no_run_with_every_benchmark_is_one_line_naming_the_missing_groups(tmp_path):
    partial = _saved(tmp_path / "0002_partial.json", FWD)
    with pytest.raises(ValueError) as e:
        resolve([partial], FWD | STEP, explicit=False)
    msg = str(e.value)
    assert "0002_partial.json, lacks test_step[cpu-ml100k-float32]" in msg and "\n" not in msg


@pytest.mark.parametrize("content, why", [
    ("{not json", "not valid JSON"),
    ("", "file is empty"),
    ('{"benchmarks": [{"name": "x"}]}', "has no extra_info.group"),
])
def test_a_corrupt_newest_run_fails_in_one_line(tmp_path, content, why):
    _saved(tmp_path / "0001_ok.json", FWD)
    bad = tmp_path / "0002_bad.json"
    bad.write_text(content)
    with pytest.raises(ValueError) as e:
        resolve([tmp_path / "0001_ok.json", bad], FWD, explicit=False)
    assert str(bad) in str(e.value) and why in str(e.value) and "\n" not in str(e.value)


def test_a_named_run_must_hold_the_benchmarks_and_nothing_saved_is_refused(tmp_path):
    partial = _saved(tmp_path / "0002_partial.json", FWD)
    with pytest.raises(ValueError, match="0002_partial.json lacks test_step"):
        resolve([partial], FWD | STEP, explicit=True)
    with pytest.raises(ValueError, match="no saved run to compare with"):
        resolve([], FWD, explicit=False)


def test_change_against_the_saved_run_is_worded_with_its_interval(tmp_path):
    def rows(name, ratio, seed):
        return list(summarise([load_run(_run(tmp_path / name, _pair("forward", ratio, seed)))]).rows)
    before = rows("a.json", 1.2, 0)
    [same] = changes(rows("b.json", 1.2, 1), before)
    assert same.line().startswith(f"forward cpu ml100k float32: {same.numerator}/{same.denominator} now 1.")
    assert same.line().endswith("-> within noise") and same.low < 1 < same.high
    [slower] = changes(rows("c.json", 1.4, 2), before)
    pct = f"{slower.value - 1:.1%}"
    assert slower.words() == f"slower by {pct} [{slower.low - 1:.1%}, {slower.high - 1:.1%}]"
    assert 0.1 < slower.value - 1 < 0.25 and slower.low > 1
    assert slower.words(aa_noise=0.5) == "within noise"
    [faster] = changes(rows("d.json", 0.9, 3), before)
    assert faster.words().startswith(f"faster by {1 - faster.value:.1%} [{1 - faster.high:.1%}, ")
    assert faster.high < 1


def _rerun(ratio: float, seed: int, drift: float = 0.0) -> list:
    """One synthetic run's rows; `drift`: sd of a shift of the ratio shared by the whole run."""
    shift = np.random.default_rng(seed + 50_000).normal(0, drift) if drift else 0.0
    return [summarise_group([read_benchmark(b, "pair")
                             for b in _pair("forward", ratio * math.exp(shift), seed)])]


def test_an_unchanged_rerun_passes_the_time_gate_and_is_within_noise():
    passed = within = 0
    for seed in range(200):
        found = changes(_rerun(1.2, seed + 10_000), _rerun(1.2, seed))
        fails, verdict = slower_than(found, 0.05)
        passed += not fails and "passed" in verdict
        within += all(c.within_noise() for c in found)
    assert passed >= 0.95 * 200 and within >= 0.95 * 200, (passed, within)


def test_a_20_percent_slowdown_fails_a_5_percent_gate_every_time_naming_group_and_variant():
    for seed in range(200):
        found = changes(_rerun(1.2 * 1.2, seed + 10_000), _rerun(1.2, seed))
        fails, verdict = slower_than(found, 0.05)
        [c] = found
        assert len(fails) == 1 and c.low > 1.05, (seed, c)
        assert fails[0].startswith(f"--fail-slower 5%: FAILED: {c.group}: {c.numerator} (its ratio to "
                                   f"{c.denominator} ") and "slower by" in fails[0], fails[0]
        assert verdict == "--fail-slower 5%: 1 of 1 ratios slower beyond it"


def test_a_slowdown_inside_the_allowance_or_inside_noise_passes():
    found = changes(_rerun(1.2 * 1.2, 1), _rerun(1.2, 0))
    assert slower_than(found, 0.5) == ([], "--fail-slower 50%: passed: 0 of 1 ratios within noise, "
                                            "none slower beyond +50%")
    found = changes(_rerun(1.2, 1), _rerun(1.2, 0))
    assert slower_than(found, 0.0)[1].startswith("--fail-slower 0%: passed: 1 of 1 ratios within noise")


def test_the_change_interval_allows_for_drift_between_runs():
    """Reruns whose ratio drifts as a whole (sd 0.6%, about 1.4 of a run's standard errors here)
    still land within noise about 95% of the time; what it must not be: the two runs' standard
    errors combined with a normal quantile (the old interval), which called a third of them changed."""
    new = old = 0
    for seed in range(200):
        [now], [before] = (_rerun(1.2, s, drift=0.006)[0].ratios for s in (seed + 10_000, seed))
        value, low, high = stats.change(now, before)
        new += low <= 1 <= high
        old += abs(math.log(value)) <= 1.96 * math.hypot(now.se, before.se)
    assert new >= 0.92 * 200 and old <= 0.85 * 200, (new, old)


def _at_speed(entries: list[dict], factor: float) -> list[dict]:
    """A run's benchmarks with every time `factor` times longer (the machine at another speed)."""
    for e in entries:
        timing = e["extra_info"]["timing"]
        timing["seconds"] = [[t * factor for t in p] for p in timing["seconds"]]
    return entries


def test_a_saved_run_made_at_another_machine_speed_is_said(tmp_path):
    """cp 1.6x slower than in the saved run: one line naming the group, the baseline and both
    times; 1.2x is one speed, said nothing. Caught: ratios compared across speeds in silence
    (forward emb/cp moved 3% between this host's fast and slow runs, docs/timing.md)."""
    def rows(name, seed, factor):
        return list(summarise([load_run(_run(tmp_path / name, _at_speed(_pair("forward", 1.3, seed),
                                                                         factor)))]).rows)
    before, slow, near = rows("a.json", 0, 1.0), rows("b.json", 1, 1.6), rows("c.json", 2, 1.2)
    [line] = other_speed(slow, before)
    assert line.startswith("forward cpu ml100k float32: cp ran 1.6") and "another speed" in line, line
    assert "100 µs -> 16" in line, line
    assert other_speed(near, before) == []
    [back] = other_speed(before, slow)
    assert "cp ran 0.6" in back, back


def test_pytest_bench_says_the_saved_run_was_made_at_another_speed(tmp_path):
    """`pytest bench --benchmark-compare` prints the line above its changes (caught: a line made
    and never shown)."""
    from types import SimpleNamespace

    from dotbias.models.registry import Registry
    from dotbias.pytest_bench.session import Session
    session = Session(SimpleNamespace(getoption=lambda name: None), "cp", Registry(), None)
    session.compared = _run(tmp_path / "saved.json", _pair("forward", 1.3, 0))
    now = list(summarise([load_run(_run(tmp_path / "now.json",
                                        _at_speed(_pair("forward", 1.3, 1), 1.6)))]).rows)
    assert session._compare(now) is False
    speed = [i for i, ln in enumerate(session.lines) if "the machine ran at another speed" in ln]
    change = [i for i, ln in enumerate(session.lines)
              if ln.startswith("forward cpu ml100k float32: ") and " now " in ln and ", saved " in ln]
    assert len(speed) == 1 and len(change) == 1 and speed[0] < change[0], session.lines
