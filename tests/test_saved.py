"""The saved run `--benchmark-compare` uses: like with like, or one line naming the file and why;
and the change of a ratio against it ("within noise" or by how much)."""
from __future__ import annotations

import json

import pytest

from dotbias.report.summary import load_run, summarise
from dotbias.report.history import change_lines, resolve
from test_report import _pair, _run

FWD = {f"bench/test_forward.py::test_forward[cpu-ml100k-float32-{v}]" for v in ("emb", "cp")}
STEP = {f"bench/test_step.py::test_step[cpu-ml100k-float32-{v}]" for v in ("emb", "cp")}


def _saved(path, names):
    path.write_text(json.dumps({"benchmarks": [{"fullname": n} for n in sorted(names)]}))
    return path


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
    ("{not json", "cannot be read (JSONDecodeError"),
    ("", "cannot be read (JSONDecodeError"),
    ('{"benchmarks": [{"name": "x"}]}', "not a pytest-benchmark run"),
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


def test_change_against_the_saved_run(tmp_path):
    def rows(name, ratio, seed):
        return list(summarise([load_run(_run(tmp_path / name, _pair("forward", ratio, seed)))]).rows)
    before = rows("a.json", 1.2, 0)
    [same] = change_lines(rows("b.json", 1.2, 1), before, aa_noise=0.0)
    assert "within noise" in same and same.startswith("forward cpu ml100k float32: emb/cp now 1.")
    [slower] = change_lines(rows("c.json", 1.4, 2), before, aa_noise=0.0)
    assert "changed by +1" in slower
    [noisy] = change_lines(rows("c.json", 1.4, 2), before, aa_noise=0.5)
    assert "within noise" in noisy
