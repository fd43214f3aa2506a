"""`dotbias check`: the fixed equivalence grid, the same contract as the properties, one verdict
per torch build whatever the thread count, and a verdict a wrong gradient cannot pass."""
from __future__ import annotations

import json

import pytest
import torch

from dotbias import cli
from dotbias.equivalence import check as grid
from dotbias.equivalence.contract import APRIORI_ULPS
from dotbias.models.registry import BUILT_IN
from helpers.controlled import baseline_and_copy, only
from helpers.mutants import BUGS
from helpers.properties import scaled_baseline

SMALL = [("small", 20, 30, 4, 64, "uniform"), ("same", 5, 5, 2, 32, "same")]


@pytest.fixture
def small(monkeypatch):
    monkeypatch.setattr(grid, "CASES", SMALL)


def test_grid_covers_every_case_variant_dtype_and_mode(small, baseline, registry):
    threads = torch.get_num_threads()
    rows = grid.run_checks(devices=["cpu"], baseline=baseline, registry=registry)
    base = baseline.name
    others = [v for v in registry.variants if v != base]
    assert len(rows) == 2 * len(SMALL) * len(grid.DTYPES) * (1 + len(others))
    assert {r.pair for r in rows} == {f"{v} vs {base}" for v in others} | {f"{base} (baseline) vs float64"}
    bad = grid.failure_lines(grid.summarise(rows, inits=[], baseline=base))
    assert all(r.close for r in rows) and not bad, "\n".join(bad)
    summary = grid.summarise(rows, grid.check_inits(registry), baseline=base)
    verdict = summary.verdict
    assert verdict in ("bitwise equal", "equivalent within error"), (verdict, grid.failure_lines(summary))
    ratios = [r.worst_ratio for r in rows if r.rule == "a-priori"]
    assert ratios and max(ratios) < 1, f"baseline {base}: error / a-priori bound up to {max(ratios)}"
    assert not torch.are_deterministic_algorithms_enabled() and torch.get_num_threads() == threads


def test_checks_run_on_one_thread_whatever_the_caller_set(small, monkeypatch, baseline, registry):
    """Several threads make float32 gradients of 32,768+ values nondeterministic (atomics), so the
    grid pins one thread for the run and restores the caller's after."""
    seen, rows_for = [], grid._rows_for
    monkeypatch.setattr(grid, "_rows_for", lambda *a: seen.append(torch.get_num_threads()) or rows_for(*a))
    was = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        first, second = (grid.run_checks(devices=["cpu"], baseline=baseline, registry=registry),
                         grid.run_checks(devices=["cpu"], baseline=baseline, registry=registry))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(was)
    assert set(seen) == {grid.THREADS} == {1} and first == second


@pytest.mark.parametrize("name", ["bug_detached_bias", "bug_fused_sigmoid_backward",
                                  "bug_duplicates_assign"])
def test_a_gradient_only_bug_gives_different(name, small, tmp_path, capsys, baseline, registry):
    """Gradient-only bugs (outputs right, a gradient wrong) fail the grid, naming pair and row."""
    bug = next(b for b in BUGS if b.name == name)
    chosen = only(bug, baseline=baseline, registry=registry)   # no plugged-in variant joins
    code = cli.main(["check", "--out", str(tmp_path), "--baseline", baseline.name], registry=chosen)
    out = capsys.readouterr().out
    data = json.loads((tmp_path / "check" / "equivalence.json").read_text())
    assert code == 1 and data["verdict"] == "DIFFERENT"
    base = baseline.name
    bad = [r for r in data["rows"] if not r["close"]]
    assert bad and all(r["pair"] == f"{name} vs {base}" for r in bad)
    assert all(" row " in r["failure"] and r["failure"].startswith(f"{name} vs {base} (")
               for r in bad)
    assert f"| {name} vs {base} | float32 | cpu | no |" in out
    first = out.splitlines()[1]          # under the verdict: the failure that decided it
    assert first.startswith(f"first failure: small, default algorithms: {name} vs {base} (n_users=20"), first
    assert " row " in first and f"\n- same, deterministic algorithms: {name} vs {base} (" in out


def test_a_wrong_output_shape_is_a_row_not_a_crash(small, baseline, registry):
    from dotbias.equivalence.ablated_models import EmbNoKeepdimAdd
    from dotbias.models.variant import Variant
    chosen = only(Variant("no_keepdim_add", EmbNoKeepdimAdd, "keepdim dropped", "[bs, 1]"),
                  baseline_and_copy(baseline)[1], baseline=baseline, registry=registry)
    rows = grid.run_checks(devices=["cpu"], baseline=baseline, registry=chosen)
    bad = [r for r in rows if not r.close]
    assert bad and {r.pair.split(" vs ")[0] for r in bad} == {"no_keepdim_add"}, [r.pair for r in bad]
    assert {r.rule for r in bad} == {"shape"} and "declared [bs, 1]" in bad[0].failure, bad[0]
    summary = grid.summarise(rows, grid.check_inits(chosen), baseline=baseline.name)
    assert summary.max_abs_output_diff is not None        # strict JSON: no NaN
    json.dumps(summary.as_json(), allow_nan=False)


def test_an_init_bug_gives_different_and_names_the_variant(small, capsys, baseline, registry):
    bug = next(b for b in BUGS if b.name == "bug_init_std")     # a cp subclass: held to cp's init,
    chosen = only(bug, BUILT_IN["cp"], baseline=baseline, registry=registry)    # whatever the baseline
    assert cli.main(["check", "--out", "", "--baseline", baseline.name], registry=chosen) == 1
    out = capsys.readouterr().out
    assert out.startswith("torch ") and ": DIFFERENT;" in out.splitlines()[0]
    assert "| bug_init_std | create_params: normal_(0, 0.01) | inherited from cp" in out
    assert "DIFFERENT: user_factors: std 0.0" in out and "expected 0.01" in out


def test_inexact_but_close_is_reported():
    rows = [grid.CheckRow("c", "a vs b", "float32", "cpu", False, "within error", False, True,
                          0.0, 1e-11, 0.1)]
    s = grid.summarise(rows, inits=[], baseline="b")
    assert s.verdict == "equivalent within error"
    assert s.inexact_cases == ["c a vs b float32 cpu"] and s.max_abs_grad_diff == 1e-11


def test_check_shows_progress_on_stderr(small, capsys, baseline, registry):
    from dotbias.io.progress import Progress
    grid.run_checks(devices=["cpu"], baseline=baseline, registry=registry, progress=Progress(True))
    assert "dotbias check" in capsys.readouterr().err


def test_a_baseline_outside_the_a_priori_bound_fails_every_case_naming_itself(small, tmp_path, capsys,
                                                                              monkeypatch, registry):
    """Its own row, before any other variant is built against it; the verdict line says so."""
    monkeypatch.setattr(grid, "check_inits", lambda registry, seed=0: [])   # inits: no baseline involved
    with scaled_baseline(registry) as (copy, built, scaled):
        code = cli.main(["check", "--out", str(tmp_path), "--baseline", copy.name], registry=scaled)
        rows = json.loads((tmp_path / "check" / "equivalence.json").read_text())["rows"]
    out = capsys.readouterr().out
    assert code == 1 and built == [], built
    assert len(rows) == 2 * len(SMALL) * len(grid.DTYPES)
    assert all(r["pair"] == f"{copy.name} (baseline) vs float64" and not r["close"] for r in rows)
    assert all(r["failure"].startswith(f"baseline {copy.name} (n_users=") and "user_factors grad row"
               in r["failure"] and f"> a-priori bound {APRIORI_ULPS} ulps" in r["failure"] for r in rows)
    assert out.splitlines()[1].startswith(f"first failure: small, default algorithms: baseline "
                                          f"{copy.name} (n_users=20, n_items=30, n_factors=4, bs=64, "
                                          "float32, cpu): user_factors grad row ")


def test_check_refuses_an_unknown_baseline_in_one_line(tmp_path, capsys):
    assert cli.main(["check", "--out", str(tmp_path), "--baseline", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dotbias: error: --baseline 'nope': no variant of that name; registered: ")
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "check").exists()


def test_the_check_summary_goes_through_one_writer_and_one_reader(tmp_path):
    from dotbias.equivalence.check_summary import FORMAT, InitRow, read_check_summary
    rows = [grid.CheckRow("c", "a vs b", "float32", "cpu", True, "within error", False, True,
                          0.0, 1e-11, 0.1, "", "item_bias")]
    s = grid.summarise(rows, inits=[InitRow("a", None, "declared", False, ("std 0.0",))], baseline="b")
    path = tmp_path / "equivalence.json"
    path.write_text(json.dumps(s.as_json()))
    assert read_check_summary(path) == s and s.as_json()["format"] == FORMAT
    assert s.verdict == "DIFFERENT" and s.as_json()["inexact_cases"] == ["c a vs b float32 cpu det"]
    unmarked = {k: v for k, v in s.as_json().items() if k != "format"}      # format 1
    path.write_text(json.dumps(unmarked))
    assert read_check_summary(path) == s
    path.write_text(json.dumps(s.as_json() | {"format": FORMAT + 1}))
    with pytest.raises(ValueError, match=f"format {FORMAT + 1}; this dotbias reads 1 to {FORMAT}"):
        read_check_summary(path)
