"""The candidate held to the equivalence contract, through the same code as `pytest tests`: the
fixed grid (`equivalence.check`), then a hypothesis sample of the properties drawn from the suite's
own strategies: outputs and gradients on random cases (`check_variant`), short training
trajectories (`check_trajectory`) and a fresh init (`check_init`). Each row says how much of the
error budget the candidate used: its largest error / allowed, and the tensor and dtype where."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from dotbias.equivalence.check import run_checks
from dotbias.equivalence.contract import TensorCheck, check_variant
from dotbias.equivalence.inits import check_init
from dotbias.equivalence.strategies import (
    all_dtypes,
    cases,
    init_sizes,
    optimizers,
    seeds,
    small_cases,
    step_counts,
)
from dotbias.equivalence.trajectories import check_trajectory
from dotbias.models.canonical import Canonical
from dotbias.models.registry import Registry
from dotbias.models.variant import Variant


@dataclass(frozen=True)
class EquivalenceRow:
    """One check of the candidate: a grid row or one property over its sample of cases."""
    check: str
    cases: int
    passed: bool
    exact: bool              # bitwise equal to the baseline on every case
    worst: float             # largest error / allowed over the within-error tensors (0: none)
    where: str               # the tensor and dtype of `worst`, or of the failure
    failure: str = ""        # the first failure's message, first line

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Examples:
    """Hypothesis examples per property (outputs and gradients, trajectories, inits)."""
    outputs: int
    trajectories: int
    inits: int


def grid_rows(candidate: Variant, baseline: Variant) -> list[EquivalenceRow]:
    """The fixed grid (`dotbias check`) for the candidate only."""
    return [EquivalenceRow(f"grid: {r.case}, {r.dtype}" + (", deterministic" if r.deterministic
                                                            else ""), 1, r.close, r.exact,
                           r.worst_ratio or 0.0, _where(r.worst_tensor, r.dtype), r.failure)
            for r in run_checks(variants=[candidate], baseline=baseline)]


def _where(tensor: str, dtype: str) -> str:
    if not tensor:
        return ""
    return f"{tensor + ' grad' if tensor in Canonical._fields else tensor}, {dtype}"


def _tally(name: str, outcomes: list[tuple[list[TensorCheck], str, bool]]) -> EquivalenceRow:
    """One row from each case's tensor checks, its dtype and whether it was bitwise equal."""
    worst, where, failure, exact = 0.0, "", "", True
    for checks, dtype, bitwise in outcomes:
        exact &= bitwise
        for c in checks:
            share = c.max_err / c.allowed if c.rule == "within error" and c.allowed else 0.0
            if share > worst:
                worst, where = share, _where(c.tensor, dtype)
            if not c.passed and not failure:
                failure, where = c.message.split("\n")[0], _where(c.tensor, dtype)
    return EquivalenceRow(name, len(outcomes), not failure, exact, worst, where, failure)


def _draw(strategy: st.SearchStrategy, n: int, run: Callable[[object], object]) -> str:
    """Call `run` on `n` examples of `strategy` (seeded: the same examples every time); the first
    exception's message ('' when none): a crash of the candidate is a failure, not a traceback."""
    errors: list[str] = []

    @settings(max_examples=n, database=None, deadline=None, derandomize=True,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(strategy)
    def prop(example):
        if errors:
            return
        try:
            run(example)
        except Exception as e:      # noqa: BLE001  (the candidate's own error is the result)
            errors.append(" ".join(str(e).split("\n")[0].split()) or type(e).__name__)
    prop()
    return errors[0] if errors else ""


def _dtype(case) -> str:
    return str(case.dtype).removeprefix("torch.")


def output_row(candidate: Variant, baseline: Variant, n: int) -> EquivalenceRow:
    outcomes = []

    def run(case):
        x, y = case.batch()
        r = check_variant(candidate, case.params(), x, y, case.y_range, baseline=baseline)
        outcomes.append((list(r.checks), _dtype(case), r.exact))
    error = _draw(cases(all_dtypes), n, run)
    return _with_error(_tally(f"outputs and gradients, {n} random cases", outcomes), error)


def trajectory_row(candidate: Variant, baseline: Variant, n: int) -> EquivalenceRow:
    outcomes = []

    def run(example):
        case, optimizer, k = example
        batches = [case.batch(step) for step in range(k)]
        steps = check_trajectory(candidate, case.params(), batches, optimizer, case.y_range,
                                 baseline=baseline)
        for i, checks in enumerate(steps, 1):
            renamed = [TensorCheck(f"{c.tensor} after step {i}", c.rule, c.max_err, c.allowed,
                                   c.passed, c.message) for c in checks]
            outcomes.append((renamed, _dtype(case), all(c.rule == "bitwise" and c.passed
                                                        for c in checks)))
    error = _draw(st.tuples(small_cases, optimizers, step_counts), n, run)
    return _with_error(_tally(f"training trajectories, {n} random cases", outcomes), error)


def init_row(candidate: Variant, n: int, registry: Registry) -> EquivalenceRow:
    failures: list[str] = []

    def run(example):
        (n_users, n_items, n_factors), seed = example
        failures.extend(check_init(candidate, n_users, n_items, n_factors, seed,
                                   registry=registry).failures)
    error = _draw(st.tuples(init_sizes, seeds), n, run)
    first = failures[0] if failures else ""
    row = EquivalenceRow(f"init, {n} random sizes", n, not failures, True, 0.0,
                         first.split(":")[0], f"{candidate.name}: init: {first}" if first else "")
    return _with_error(row, error)


def _with_error(row: EquivalenceRow, error: str) -> EquivalenceRow:
    if not error:
        return row
    return EquivalenceRow(row.check, row.cases, False, False, row.worst, row.where or "raised",
                          row.failure or error)


def equivalence_rows(candidate: Variant, baseline: Variant, examples: Examples, registry: Registry,
                     progress: Callable[[str], None] = lambda s: None) -> list[EquivalenceRow]:
    """The grid, then the three properties on their samples (`registry`: the run's, where the
    candidate's declared init is found)."""
    progress("equivalence: the fixed grid")
    rows = grid_rows(candidate, baseline)
    progress("equivalence: hypothesis sample of the properties")
    rows.append(output_row(candidate, baseline, examples.outputs))
    rows.append(trajectory_row(candidate, baseline, examples.trajectories))
    rows.append(init_row(candidate, examples.inits, registry))
    return rows
