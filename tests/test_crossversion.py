"""`dotbias report --versions`: per-torch-version runs (as tox leaves them) into one table."""
from __future__ import annotations

import json

import pytest

from dotbias.cli import main
from dotbias.report.versions import collect, version_key
from test_report import _pair, _run


def _equivalence(folder, torch, verdict="bitwise equal", grad=0.0):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "equivalence.json").write_text(json.dumps({
        "torch": torch, "threads": 2, "verdict": verdict, "max_abs_output_diff": 0.0,
        "max_abs_grad_diff": grad, "inexact_cases": ["movielens bs4096 float32 cpu"] if grad else [],
        "rows": []}))


def _bench_run(folder, torch, factor, seed):
    _run(folder / "bench.json", _pair("forward", factor, seed), torch=torch)


@pytest.fixture
def tox_dir(tmp_path):
    root = tmp_path / "tox"
    for env, torch, factor, grad in (("torch213", "2.13.0+cpu", 1.2, 1.5e-11),
                                     ("torch291", "2.9.1+cu128", 0.8, 0.0),
                                     ("torch2141", "2.14.1+cu130", 1.0, 0.0)):
        _equivalence(root / env, torch, "equivalent within error" if grad else "bitwise equal", grad)
        _bench_run(root / env, torch, factor, seed=len(env))
    (root / "empty-env").mkdir()            # a folder with no runs is skipped
    return root


def test_versions_sort_numerically():
    assert sorted(["2.13.0+cpu", "2.9.1+cu128", "2.14.1"], key=version_key) == \
        ["2.9.1+cu128", "2.13.0+cpu", "2.14.1"]


def test_cross_version_table(tox_dir, tmp_path, capsys):
    assert main(["report", "--versions", str(tox_dir), "--out", str(tmp_path / "results")]) == 0
    out = tmp_path / "results" / "versions"           # the command's result set
    md = (out / "CROSS_VERSION.md").read_text()
    lines = [ln for ln in md.splitlines() if ln.startswith("| 2.")]
    # equivalence rows then ratio rows, each in version order
    assert [ln.split(" | ")[0] for ln in lines] == ["| 2.9.1+cu128", "| 2.13.0+cpu", "| 2.14.1+cu130"] * 2
    assert "| 2.13.0+cpu | equivalent within error | 0 | 1.5e-11 | movielens bs4096 float32 cpu |" in md
    header = next(ln for ln in md.splitlines() if ln.startswith("| torch | forward"))
    assert header == "| torch | forward (cpu, ml100k, float32) |"
    assert all(ln.count(" | ") == header.count(" | ") for ln in lines[3:])
    data = json.loads((out / "cross_version.json").read_text())
    ratios = {r["torch"]: r["ratios"]["forward cpu ml100k float32"] for r in data["versions"]}
    for torch, true in (("2.13.0+cpu", 1.2), ("2.9.1+cu128", 0.8), ("2.14.1+cu130", 1.0)):
        x = ratios[torch]       # noisy synthetic pairs: the known ratio inside the interval, not equal
        assert x["low"] <= true <= x["high"] and x["value"] != true and x["processes"] == 6
    assert ratios["2.13.0+cpu"]["faster"] == "cp" and ratios["2.9.1+cu128"]["faster"] == "emb"
    assert (out / "cross_version.png").read_bytes()[:4] == b"\x89PNG"
    assert "CROSS_VERSION.md" in capsys.readouterr().out


def test_missing_folder_and_bad_files_one_line(tmp_path, capsys):
    out = tmp_path / "results"
    assert main(["report", "--versions", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert "nope: folder not found" in capsys.readouterr().err
    (tmp_path / "tox" / "torch213").mkdir(parents=True)
    (tmp_path / "tox" / "torch213" / "equivalence.json").write_text("{not json")
    assert main(["report", "--versions", str(tmp_path / "tox"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "equivalence.json: not valid JSON" in err
    (tmp_path / "tox" / "torch213" / "equivalence.json").unlink()
    assert main(["report", "--versions", str(tmp_path / "tox"), "--out", str(out)]) == 2
    assert "no torch-version runs inside" in capsys.readouterr().err
    assert not out.exists()


def test_collect_reads_equivalence_only_envs(tmp_path):
    _equivalence(tmp_path / "torch291", "2.9.1")
    [entry] = collect(tmp_path)
    assert entry["torch"] == "2.9.1" and entry["bench"] is None


def test_the_ratio_is_named_from_the_runs_not_assumed(tmp_path):
    """A run of other variants: the table and plot name the pair they show, not the book's."""
    from synthetic_timing import paired
    from test_report import _bench

    num, den = paired(1.1, seed=3, processes=6, rounds=40)
    _equivalence(tmp_path / "tox" / "torch213", "2.13.0+cpu")
    _run(tmp_path / "tox" / "torch213" / "bench.json",
         [_bench("forward", "mine", num), _bench("forward", "base", den)], torch="2.13.0+cpu")
    assert main(["report", "--versions", str(tmp_path / "tox"), "--out", str(tmp_path / "out")]) == 0
    md = (tmp_path / "out" / "versions" / "CROSS_VERSION.md").read_text()
    assert "## Time ratio mine/base [95% next run]" in md and "Ratios are mine/base time" in md
    assert "emb" not in md
