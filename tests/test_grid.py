"""`dotbias check`: the fixed equivalence grid, the same contract as the properties, one verdict
per torch build whatever the thread count, and a verdict a wrong gradient cannot pass."""
from __future__ import annotations

import json

import pytest
import torch
from mutants import BUGS

from dotbias import cli, register, unregister
from dotbias.equivalence import check as grid
from dotbias.equivalence.contract import BASELINE
from dotbias.models.registry import VARIANTS

SMALL = [("small", 20, 30, 4, 64, "uniform"), ("same", 5, 5, 2, 32, "same")]


@pytest.fixture
def small(monkeypatch):
    monkeypatch.setattr(grid, "CASES", SMALL)


def test_grid_covers_every_case_variant_dtype_and_mode(small):
    threads = torch.get_num_threads()
    rows = grid.run_checks(devices=["cpu"])
    others = [v for v in VARIANTS if v != BASELINE]
    assert len(rows) == 2 * len(SMALL) * len(grid.DTYPES) * len(others)
    assert {r.pair for r in rows} == {f"{v} vs {BASELINE}" for v in others}
    assert all(r.close for r in rows), [r.failure for r in rows if not r.close]
    assert grid.summarise(rows)["verdict"] in ("bitwise equal", "equivalent within error")
    assert not torch.are_deterministic_algorithms_enabled() and torch.get_num_threads() == threads


def test_checks_run_on_one_thread_whatever_the_caller_set(small, monkeypatch):
    """Several threads make float32 gradients of 32,768+ values nondeterministic (atomics), so the
    grid pins one thread for the run and restores the caller's after."""
    seen, rows_for = [], grid._rows_for
    monkeypatch.setattr(grid, "_rows_for", lambda *a: seen.append(torch.get_num_threads()) or rows_for(*a))
    was = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        first, second = grid.run_checks(devices=["cpu"]), grid.run_checks(devices=["cpu"])
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(was)
    assert set(seen) == {grid.THREADS} == {1} and first == second


@pytest.mark.parametrize("name", ["bug_detached_bias", "bug_fused_sigmoid_backward",
                                  "bug_duplicates_assign"])
def test_a_gradient_only_bug_gives_different(name, small, tmp_path, capsys):
    """Gradient-only bugs (outputs right, a gradient wrong) fail the grid, naming pair and row."""
    bug = next(b for b in BUGS if b.name == name)
    register(bug)
    try:
        code = cli.main(["check", "--out", str(tmp_path)])
    finally:
        unregister(bug.name)
    out = capsys.readouterr().out
    data = json.loads((tmp_path / "check" / "equivalence.json").read_text())
    assert code == 1 and data["verdict"] == "DIFFERENT"
    bad = [r for r in data["rows"] if not r["close"]]
    assert bad and all(r["pair"] == f"{name} vs {BASELINE}" for r in bad)
    assert all(" row " in r["failure"] and r["failure"].startswith(f"{name} vs {BASELINE} (")
               for r in bad)
    assert f"| {name} vs {BASELINE} | float32 | cpu | no |" in out


def test_a_wrong_output_shape_is_a_row_not_a_crash(small):
    from dotbias.equivalence.reverted import EmbNoKeepdimAdd
    from dotbias.models.variant import Variant
    register(Variant("no_keepdim_add", EmbNoKeepdimAdd, "keepdim dropped", "[bs, 1]"))
    try:
        rows = grid.run_checks(devices=["cpu"])
    finally:
        unregister("no_keepdim_add")
    bad = [r for r in rows if not r.close]
    assert bad and {r.rule for r in bad} == {"shape"} and "declared [bs, 1]" in bad[0].failure
    assert grid.summarise(rows)["max_abs_output_diff"] is not None        # strict JSON: no NaN
    json.dumps(grid.summarise(rows), allow_nan=False)


def test_an_init_bug_gives_different_and_names_the_variant(small, capsys):
    bug = next(b for b in BUGS if b.name == "bug_init_std")
    register(bug)
    try:
        assert cli.main(["check", "--out", ""]) == 1
    finally:
        unregister(bug.name)
    out = capsys.readouterr().out
    assert out.startswith("torch ") and ": DIFFERENT;" in out.splitlines()[0]
    assert "| bug_init_std | create_params: normal_(0, 0.01) | inherited from cp" in out
    assert "DIFFERENT: user_factors: std 0.0" in out and "expected 0.01" in out


def test_inexact_but_close_is_reported():
    rows = [grid.CheckRow("c", "a vs b", "float32", "cpu", False, "within error", False, True,
                          0.0, 1e-11, 0.1)]
    s = grid.summarise(rows, inits=[])
    assert s["verdict"] == "equivalent within error"
    assert s["inexact_cases"] == ["c a vs b float32 cpu"] and s["max_abs_grad_diff"] == 1e-11


def test_check_shows_progress_on_stderr(small, monkeypatch, capsys):
    from dotbias.io import progress
    monkeypatch.setattr(progress, "_enabled", True)
    grid.run_checks(devices=["cpu"])
    assert "dotbias check" in capsys.readouterr().err


