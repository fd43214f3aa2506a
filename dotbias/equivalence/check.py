"""A fixed grid of equivalence checks, summarised as one verdict per torch build.

The property suite (tests/) explores at random; this grid is the same few cases on every torch
version, so runs from several versions can be set side by side (`dotbias check`, tox, report).
It enforces the same contract (`equivalence.CONTRACT`) with parameters at the properties' scale
(std 0.5, not the init's 0.01, so a wrong gradient is not lost under a floor), and runs on one
torch thread (restored after) so the same build gives the same verdict every run."""
from __future__ import annotations

import itertools

import torch

from dotbias.equivalence.check_summary import CheckRow, CheckSummary, InitRow
from dotbias.equivalence.contract import (
    CONTRACT,
    BaselineError,
    check_baseline,
    check_variant,
    run_baseline,
    verdict_word,
)
from dotbias.equivalence.inits import check_init
from dotbias.equivalence.reference import reference_batch, run_batch
from dotbias.io.progress import AS_TERMINAL, Progress
from dotbias.io.tables import fmt_float, markdown_table
from dotbias.models.inputs import make_inputs
from dotbias.models.registry import Registry
from dotbias.models.variant import Variant

# (label, n_users, n_items, n_factors, batch, index pattern)
CASES = [
    ("movielens bs64", 944, 1665, 50, 64, "uniform"),
    ("movielens bs4096", 944, 1665, 50, 4096, "uniform"),     # grads past 32,768 elements
    ("tiny, heavy duplicates", 7, 5, 3, 512, "duplicates"),
    ("one index repeated", 50, 50, 16, 256, "same"),
    ("100k rows, bs 8192", 100_000, 2000, 8, 8192, "uniform"),
]
DTYPES = [torch.float32, torch.float64]
STD = 0.5
THREADS = 1


def _baseline_row(label: str, baseline, inp, dtype, device: str, det: bool, reference):
    """The baseline against the a-priori bound, the row every other one on this case waits for,
    and the baseline's run (None when it crashed or gave a wrong shape or dtype)."""
    pair, dt = f"{baseline.name} (baseline) vs float64", str(dtype).removeprefix("torch.")
    try:
        base_run = run_baseline(baseline, inp.params, inp.x, inp.y, (1, 5))
    except BaselineError as e:
        return CheckRow(label, pair, dt, device, det, "a-priori", False, False, None, None, None,
                        str(e).split("\n")[0]), None
    r = check_baseline(baseline, inp.params, inp.x, inp.y, (1, 5), reference=reference,
                       base_run=base_run)
    bad = r.first_failure()
    return CheckRow(label, pair, dt, device, det, "a-priori", True, r.passed, None, None,
                    max((c.max_err / c.allowed for c in r.checks if c.allowed), default=0.0),
                    bad.message.split("\n")[0] if bad else ""), base_run


def _rows_for(label: str, inp, dtype, device: str, det: bool, variants, baseline) -> list[CheckRow]:
    """The baseline's row, then (only if it holds) every other variant's against it."""
    reference = reference_batch(inp.params, inp.x, inp.y, (1, 5))
    first, base_run = _baseline_row(label, baseline, inp, dtype, device, det, reference)
    rows = [first]
    if not first.close:
        return rows
    for v in (v for v in variants if v is not baseline):
        pair = f"{v.name} vs {baseline.name}"
        try:
            r = check_variant(v, inp.params, inp.x, inp.y, (1, 5), baseline=baseline,
                              reference=reference, base_run=base_run)
            out, grads = run_batch(v, inp.params, inp.x, inp.y, (1, 5))
        except Exception as e:      # a wrong shape or dtype, or a crash: a failing row, not ours
            rows.append(CheckRow(label, pair, str(dtype).removeprefix("torch."), device, det,
                                 "shape", False, False, None, None, None,
                                 str(e).split("\n")[0]))
            continue
        diffs = [(a.double().reshape(-1) - b.double().reshape(-1)).abs().max().item() if a.numel()
                 else 0.0 for a, b in zip((out, *grads), (base_run[0], *base_run[1]))]
        ratios = [(c.max_err / c.allowed, c.tensor) for c in r.checks
                  if c.rule == "within error" and c.allowed]
        worst, tensor = max(ratios, default=(0.0, ""))
        bad = r.first_failure()
        rows.append(CheckRow(label, pair, str(dtype).removeprefix("torch."),
                             device, det, " + ".join(sorted({c.rule for c in r.checks})), r.exact,
                             r.passed, diffs[0], max(diffs[1:]), worst,
                             bad.message.split("\n")[0] if bad else "", tensor))
    return rows


def run_checks(devices: list[str] | None = None, seed: int = 0, variants=None, *,
               baseline: Variant, registry: Registry | None = None,
               progress: Progress = AS_TERMINAL) -> list[CheckRow]:
    """Every variant of the run's `registry` (or those of `variants`, a list of Variants: give
    one of the two) against `baseline` on every case, dtype and device, with and without
    deterministic algorithms, on THREADS torch threads."""
    if variants is None:
        variants = list(registry.variants.values())
    devices = devices or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    was_det, was_threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    grid = list(itertools.product((False, True), CASES, DTYPES, devices))
    rows: list[CheckRow] = []
    try:
        torch.set_num_threads(THREADS)
        for det, (label, nu, ni, nf, bs, pattern), dtype, device in progress.track(grid, "dotbias check"):
            torch.use_deterministic_algorithms(det)
            inp = make_inputs(nu, ni, nf, bs, seed=seed, kind=pattern, std=STD, y_range=(1, 5),
                              dtype=dtype, device=device)
            rows += _rows_for(label, inp, dtype, device, det, variants, baseline)
    finally:
        torch.use_deterministic_algorithms(was_det)
        torch.set_num_threads(was_threads)
    return rows


def check_inits(registry: Registry, seed: int = 0) -> list[InitRow]:
    """Every registered variant's fresh init at MovieLens sizes against its declaration."""
    return [InitRow(v.name, r.init.text if r.init else None, r.source, r.passed, tuple(r.failures))
            for v in registry.variants.values()
            for r in [check_init(v, 944, 1665, 50, seed=seed, registry=registry)]]


def summarise(rows: list[CheckRow], inits: list[InitRow], *, baseline: str) -> CheckSummary:
    """The verdict: 'bitwise equal' if every row is, 'equivalent within error' if every row holds
    to the contract, else 'DIFFERENT' (also when an init contradicts its declaration), with the
    largest differences seen; `inits`: `check_inits` of the run's registry; `baseline`: the
    variant the rows were judged against."""
    held = all(r.close for r in rows) and all(i.passed for i in inits)
    verdict = verdict_word(all(r.exact for r in rows), True) if held else "DIFFERENT"
    return CheckSummary(torch.__version__, THREADS, CONTRACT, verdict, baseline,
                        tuple(rows), tuple(inits))


def render(summary: CheckSummary) -> str:
    lines = [f"torch {summary.torch} ({summary.threads} thread): {summary.verdict}; "
             f"largest abs diff from the baseline: outputs {fmt_float(summary.max_abs_output_diff)}, "
             f"gradients {fmt_float(summary.max_abs_grad_diff)}; baseline {summary.baseline}",
             *[f"first failure: {line[2:]}" for line in failure_lines(summary)[:1]], "",
             f"Contract: {summary.contract}", ""]
    lines.append(markdown_table(
        ["case", "pair", "dtype", "device", "deterministic", "rule", "result", "max abs out",
         "max abs grad", "error / allowed"],
        ([r.case, r.pair, r.dtype, r.device, "yes" if r.deterministic else "no",
          r.rule, _result(r), fmt_float(r.max_abs_output_diff),
          fmt_float(r.max_abs_grad_diff), fmt_float(r.worst_ratio)] for r in summary.rows)))
    lines += ["", markdown_table(["variant", "init", "held to", "result"], (
        [i.variant, i.init or "not declared", i.source,
         "as declared" if i.passed else "DIFFERENT: " + "; ".join(i.failures)]
        for i in summary.inits))]
    failures = failure_lines(summary)
    return "\n".join(lines + ([""] + failures if failures else []))


def _result(row: CheckRow) -> str:
    if row.rule == "a-priori":
        return "within the bound" if row.close else "OUTSIDE THE BOUND"
    return verdict_word(row.exact, row.close)


def failure_lines(summary: CheckSummary) -> list[str]:
    """One line per failing row: the case and mode, then the failure (variant, sizes, dtype,
    device, tensor and its worst row); one per init that contradicts its declaration."""
    rows = [f"- {r.case}, {'deterministic' if r.deterministic else 'default'} algorithms: "
            f"{r.failure or r.pair + ': not held to the contract'}"
            for r in summary.rows if not r.close]
    return rows + [f"- init of {i.variant}: {'; '.join(i.failures)}"
                   for i in summary.inits if not i.passed]
