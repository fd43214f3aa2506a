"""`dotbias check`: the fixed equivalence grid and its verdict, which the cross-version report uses."""
from __future__ import annotations

import json

import torch

from dotbias import cli, grid, register, unregister
from dotbias.variants import DotProductBiasCP, Variant


class NoItemBias(DotProductBiasCP):
    def forward(self, x):   # the item bias dropped: a deliberately wrong variant
        res = (self.user_factors[x[:, 0]] * self.movie_factors[x[:, 1]]).sum(dim=1)
        res += self.user_bias[x[:, 0]]
        return torch.sigmoid(res) * 5.5


SMALL = [("small", 20, 30, 4, 64, "uniform"), ("same", 5, 5, 2, 32, "same")]


def test_grid_covers_every_case_pair_dtype_and_mode(monkeypatch):
    monkeypatch.setattr(grid, "CASES", SMALL)
    rows = grid.run_checks(devices=["cpu"])
    assert len(rows) == 2 * len(SMALL) * len(grid.DTYPES)   # deterministic off and on
    assert {r.pair for r in rows} == {"emb vs cp"}
    s = grid.summarise(rows)
    assert s["verdict"] == "bitwise equal" and s["max_abs_output_diff"] == 0.0
    assert not torch.are_deterministic_algorithms_enabled()    # restored


def test_broken_variant_gives_not_equivalent(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(grid, "CASES", SMALL)
    register(Variant("no_item_bias", NoItemBias, "item bias dropped", "[bs]"))
    try:
        code = cli.main(["check", "--out", str(tmp_path)])
    finally:
        unregister("no_item_bias")
    out = capsys.readouterr().out
    assert code == 1
    data = json.loads((tmp_path / "check" / "equivalence.json").read_text())
    assert data["verdict"] == "DIFFERENT"
    bad = [r for r in data["rows"] if not r["close"]]
    assert bad and all("no_item_bias" in r["pair"] for r in bad)
    assert data["max_abs_output_diff"] > 1e-4
    assert "| small | emb vs no_item_bias | float32 | cpu | no | DIFFERENT |" in out


def test_inexact_but_close_is_reported(monkeypatch):
    rows = [grid.CheckRow("c", "a vs b", "float32", "cpu", False, False, True, 0.0, 1e-11)]
    s = grid.summarise(rows)
    assert s["verdict"] == "equivalent within error"
    assert s["inexact_cases"] == ["c float32 cpu"] and s["max_abs_grad_diff"] == 1e-11
