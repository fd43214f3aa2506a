"""A fixed grid of equivalence checks, summarised as one verdict per torch build.

The property suite (tests/) explores at random; this grid is the same few cases on every torch
version, so runs from several versions can be set side by side (`dotbias check`, tox, report)."""
from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import torch

from .equivalence import compare_pair
from .inputs import make_inputs
from .tables import fmt_float, markdown_table, verdict_word
from .variants import VARIANTS

# (label, n_users, n_items, n_factors, batch, index pattern)
CASES = [
    ("movielens bs64", 944, 1665, 50, 64, "uniform"),
    ("movielens bs4096", 944, 1665, 50, 4096, "uniform"),     # grads past 32,768 elements
    ("tiny, heavy duplicates", 7, 5, 3, 512, "duplicates"),
    ("one index repeated", 50, 50, 16, 256, "same"),
]
DTYPES = [torch.float32, torch.float64]


@dataclass
class CheckRow:
    case: str
    pair: str
    dtype: str
    device: str
    deterministic: bool
    exact: bool
    close: bool
    max_abs_output_diff: float
    max_abs_grad_diff: float


def run_checks(devices: list[str] | None = None, seed: int = 0) -> list[CheckRow]:
    """Every registered pair on every case, dtype and device, with and without deterministic
    algorithms."""
    devices = devices or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    names = list(VARIANTS)
    was = torch.are_deterministic_algorithms_enabled()
    try:
        for det in (False, True):
            torch.use_deterministic_algorithms(det)
            for (label, nu, ni, nf, bs, pattern), dtype, device in itertools.product(CASES, DTYPES, devices):
                inp = make_inputs(nu, ni, nf, bs, seed=seed, kind=pattern, y_range=(1, 5),
                                  dtype=dtype, device=device)
                for a, b in itertools.combinations(names, 2):
                    r = compare_pair(VARIANTS[a], VARIANTS[b], inp.params, inp.x, inp.y)
                    rows.append(CheckRow(label, f"{a} vs {b}", str(dtype).removeprefix("torch."),
                                         device, det, r.exact, r.close, r.output.max_abs,
                                         r.max_grad_abs))
    finally:
        torch.use_deterministic_algorithms(was)
    return rows


def summarise(rows: list[CheckRow]) -> dict:
    """The verdict: 'bitwise equal' if every row is, 'equivalent within error' if every row is
    close, else 'DIFFERENT', with the largest differences seen."""
    verdict = verdict_word(all(r.exact for r in rows), all(r.close for r in rows))
    return {"torch": torch.__version__, "threads": torch.get_num_threads(), "verdict": verdict,
            "max_abs_output_diff": max(r.max_abs_output_diff for r in rows),
            "max_abs_grad_diff": max(r.max_abs_grad_diff for r in rows),
            "inexact_cases": sorted({f"{r.case} {r.dtype} {r.device}" + (" det" if r.deterministic else "")
                                     for r in rows if not r.exact}),
            "rows": [asdict(r) for r in rows]}


def render(summary: dict) -> str:
    lines = [f"torch {summary['torch']} ({summary['threads']} threads): {summary['verdict']}; "
             f"largest abs diff: outputs {summary['max_abs_output_diff']:.3g}, "
             f"gradients {summary['max_abs_grad_diff']:.3g}", ""]
    lines.append(markdown_table(
        ["case", "pair", "dtype", "device", "deterministic", "result", "max abs out", "max abs grad"],
        ([r["case"], r["pair"], r["dtype"], r["device"], "yes" if r["deterministic"] else "no",
          verdict_word(r["exact"], r["close"]), fmt_float(r["max_abs_output_diff"]),
          fmt_float(r["max_abs_grad_diff"])] for r in summary["rows"])))
    return "\n".join(lines)
