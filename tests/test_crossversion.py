"""`dotbias report --versions`: per-torch-version runs (as tox leaves them) into one table."""
from __future__ import annotations

import json
import re

import pytest

from dotbias.cli import main
from dotbias.report.versions import collect, version_key
from helpers.reports import pair as _pair
from helpers.reports import write_run as _run


def _equivalence(folder, torch, verdict="bitwise equal", grad=0.0):
    """A `dotbias check` file: one exact row, and an inexact one (its share of the budget 0.3)
    when `grad` is given."""
    folder.mkdir(parents=True, exist_ok=True)
    row = dict(case="movielens bs64", pair="emb vs cp", dtype="float32", device="cpu", deterministic=False,
               rule="bitwise", exact=True, close=True, max_abs_output_diff=0.0, max_abs_grad_diff=0.0,
               worst_ratio=0.0, failure="")
    rows = [row] + ([dict(row, case="movielens bs4096", pair="einsum vs cp", rule="within error",
                          exact=False, max_abs_grad_diff=grad, worst_ratio=0.3)] if grad else [])
    (folder / "equivalence.json").write_text(json.dumps({
        "torch": torch, "threads": 1, "verdict": verdict, "max_abs_output_diff": 0.0,
        "max_abs_grad_diff": grad, "inexact_cases": [], "rows": rows}))


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


def test_versions_sort_in_torch_order():
    assert sorted(["2.13.0+cpu", "2.9.1+cu128", "2.14.1", "2.6.0rc1", "2.6.0"], key=version_key) == \
        ["2.6.0rc1", "2.6.0", "2.9.1+cu128", "2.13.0+cpu", "2.14.1"]
    with pytest.raises(ValueError, match="not a torch version: 'nightly'"):
        version_key("nightly")


def test_cross_version_table(tox_dir, tmp_path, capsys):
    assert main(["report", "--versions", str(tox_dir), "--out", str(tmp_path / "results")]) == 0
    out = tmp_path / "results" / "versions"           # the command's result set
    md = (out / "CROSS_VERSION.md").read_text()
    # the first line names every change beyond noise: the ratio moved 0.8 -> 1.2 -> 1.0
    first = md.splitlines()[0]
    assert first.startswith("Changed beyond noise across torch 2.9.1+cu128, 2.13.0+cpu, 2.14.1+cu130: ")
    assert re.search(r"torch 2\.13\.0\+cpu: forward emb/cp 0\.[78]\d+ -> 1\.[12]\d+; "
                     r"torch 2\.14\.1\+cu130: forward emb/cp 1\.[12]\d+ -> (0\.9|1\.0)\d+\.$", first)
    assert "torch 2.13.0+cpu: einsum vs cp" not in first          # a pair new in a version is no change
    assert "| 2.13.0+cpu | equivalent within error | 0.3 | einsum vs cp, movielens bs4096, float32 | " \
           "einsum vs cp |" in md
    header = next(ln for ln in md.splitlines() if ln.startswith("| variant |"))
    assert header == "| variant | torch 2.9.1+cu128 | torch 2.13.0+cpu | torch 2.14.1+cu130 |"
    assert "## forward (cpu, ml100k, float32): time / cp's [95% next run]" in md
    assert [ln.split(" | ")[0] for ln in md.splitlines() if ln.startswith("| emb ")] == ["| emb"]
    data = json.loads((out / "cross_version.json").read_text())
    ratios = {r["torch"]: r["ratios"]["forward cpu ml100k float32"]["emb"] for r in data["versions"]}
    for torch, true in (("2.13.0+cpu", 1.2), ("2.9.1+cu128", 0.8), ("2.14.1+cu130", 1.0)):
        x = ratios[torch]       # noisy synthetic pairs: the known ratio inside the interval, not equal
        assert x["low"] <= true <= x["high"] and x["value"] != true and x["processes"] == 6
    assert ratios["2.13.0+cpu"]["faster"] == "cp" and ratios["2.9.1+cu128"]["faster"] == "emb"
    assert (out / "cross_version.png").read_bytes()[:4] == b"\x89PNG"
    assert "CROSS_VERSION.md" in capsys.readouterr().out


def test_unchanged_versions_say_so_on_the_first_line(tmp_path):
    for env, torch in (("torch213", "2.13.0+cpu"), ("torch2141", "2.14.1")):
        _equivalence(tmp_path / "tox" / env, torch)
        _bench_run(tmp_path / "tox" / env, torch, 1.2, seed=7 + len(env))
    assert main(["report", "--versions", str(tmp_path / "tox"), "--out", str(tmp_path / "out")]) == 0
    md = (tmp_path / "out" / "versions" / "CROSS_VERSION.md").read_text()
    assert md.splitlines()[0] == ("No verdict and no time ratio changed beyond noise across torch "
                                  "2.13.0+cpu, 2.14.1.")


def test_a_changed_verdict_is_named(tmp_path):
    _equivalence(tmp_path / "tox" / "torch213", "2.13.0+cpu", "equivalent within error", grad=1e-9)
    _equivalence(tmp_path / "tox" / "torch2141", "2.14.1", "DIFFERENT", grad=1e-9)
    data = json.loads((tmp_path / "tox" / "torch2141" / "equivalence.json").read_text())
    data["rows"][1]["close"] = False
    (tmp_path / "tox" / "torch2141" / "equivalence.json").write_text(json.dumps(data))
    assert main(["report", "--versions", str(tmp_path / "tox"), "--out", str(tmp_path / "out")]) == 0
    first = (tmp_path / "out" / "versions" / "CROSS_VERSION.md").read_text().splitlines()[0]
    assert first.endswith(": torch 2.14.1: einsum vs cp within error -> DIFFERENT.")


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
    assert entry.torch == "2.9.1" and entry.bench is None and entry.equivalence.verdict == "bitwise equal"


def test_the_variants_are_named_from_the_runs_not_assumed(tmp_path):
    """A run of other variants: the table and plot name the variants and baseline they show."""
    from helpers.reports import bench_entry as _bench
    from helpers.synthetic_timing import paired

    num, den = paired(1.1, seed=3, processes=6, rounds=40)
    _equivalence(tmp_path / "tox" / "torch213", "2.13.0+cpu")
    benches = [_bench("forward", "mine", num), _bench("forward", "base", den)]
    for b in benches:
        b["extra_info"]["baseline"] = "base"          # the run records what it was judged against
    _run(tmp_path / "tox" / "torch213" / "bench.json", benches, torch="2.13.0+cpu")
    assert main(["report", "--versions", str(tmp_path / "tox"), "--out", str(tmp_path / "out")]) == 0
    md = (tmp_path / "out" / "versions" / "CROSS_VERSION.md").read_text()
    assert "## forward (cpu, ml100k, float32): time / base's [95% next run]" in md
    assert any(ln.startswith("| mine | 1.") for ln in md.splitlines())
    assert "| emb" not in md
