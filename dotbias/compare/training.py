"""`dotbias compare VARIANT+IMPL`: a training setup (`models.optimizers.Training`) as CANDIDATE.
The same verdict screen as for a variant, from the checks that apply to it: the variant's own
equivalence rows when it is not the baseline, then the one-cycle training trajectories of the
setup against the book's setup in float64 (`equivalence.trajectories.check_training`); timed and
measured against the book's setup in the operations that run an optimizer (`timing.operations
.TRAINED`)."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from hypothesis import strategies as st

from dotbias.compare.checks import (
    EquivalenceRow,
    Examples,
    _draw,
    _dtype,
    _tally,
    _with_error,
    equivalence_rows,
)
from dotbias.compare.settings import Settings
from dotbias.compare.speed import Budget, memory_pair, time_pair
from dotbias.compare.verdict import Comparison
from dotbias.equivalence.contract import TensorCheck
from dotbias.equivalence.held import LOADER_EPOCHS, hold_loader
from dotbias.equivalence.strategies import small_cases, step_counts
from dotbias.equivalence.trajectories import check_training
from dotbias.models.optimizers import BOOK_LOADER, SEP, Training
from dotbias.models.registry import Registry
from dotbias.timing.groups import DEFAULT_SIZES, Group
from dotbias.timing.operations import TRAINED, refusal, setups_for


def is_setup(text: str) -> bool:
    """Whether CANDIDATE names a training setup (VARIANT+IMPL) rather than a variant."""
    return SEP in text and ":" not in text


def parse_candidate(text: str, registry: Registry) -> Training:
    """CANDIDATE as a training setup whose variant exists in the run's `registry`; ValueError
    naming what is wrong."""
    setup = registry.setup(text)
    try:
        registry.get_variant(setup.variant)
    except ValueError as e:
        raise ValueError(f"CANDIDATE {text!r}: {e}") from None
    return setup


def setup_operations(operations: list[str], setup: Training, registry: Registry) -> list[str]:
    """The operations of `operations` that time `setup`: those that run an optimizer, and
    epoch_fastai only for an implementation fastai's Learner runs (`timing.operations.setups_for`)."""
    group = lambda op: Group(op, "cpu", DEFAULT_SIZES[0], "float32")  # noqa: E731
    timed = lambda op: setups_for(group(op), [setup], registry)  # noqa: E731
    ops = [op for op in operations if timed(op)]
    if not ops:
        where = [op for op in TRAINED if timed(op)]
        if not where:       # no operation can run it: say why (`refusal`, e.g. row_step's layout)
            raise ValueError(f"training setup {setup.name!r}: {refusal(group('step'), setup, registry)}")
        raise ValueError(f"training setup {setup.name!r} is timed in {', '.join(where)}; "
                         f"--operations gave {', '.join(operations)}")
    return ops


def training_row(setup: Training, baseline: str, n: int, registry: Registry) -> EquivalenceRow:
    """The one-cycle training trajectories of `setup` on `n` hypothesis cases, one row."""
    outcomes = []

    def run(example):
        case, k = example
        batches = [case.batch(step) for step in range(k)]
        steps = check_training(setup, case.params(), batches, case.y_range,
                               baseline=registry.get_variant(baseline), registry=registry)
        for i, checks in enumerate(steps, 1):
            renamed = [TensorCheck(f"{c.tensor} after step {i}", c.rule, c.max_err, c.allowed,
                                   c.passed, c.message) for c in checks]
            outcomes.append((renamed, _dtype(case), all(c.rule == "bitwise" and c.passed
                                                        for c in checks)))
    error = _draw(st.tuples(small_cases, step_counts), n, run)
    return _with_error(_tally(f"one-cycle training ({setup.impl}), {n} random cases", outcomes),
                       error)


def setup_rows(setup: Training, baseline: str, examples: Examples, registry: Registry,
               progress: Callable[[str], None] = lambda s: None) -> list[EquivalenceRow]:
    """The variant's own rows (when it is not the baseline), then the training row."""
    rows = []
    if setup.variant != baseline:
        rows = equivalence_rows(registry.get_variant(setup.variant), registry.get_variant(baseline),
                                examples, registry, progress)
    progress("equivalence: one-cycle training trajectories")
    rows.append(training_row(setup, baseline, max(1, examples.trajectories), registry))
    if setup.loader != BOOK_LOADER:
        progress("equivalence: the loader's batches against the book's")
        rows.append(loader_row(setup.loader))
    return rows


def loader_row(loader: str) -> EquivalenceRow:
    """`loader`'s batches against the book's loaders', bitwise, on seeded synthetic ratings."""
    note = hold_loader(loader)
    return EquivalenceRow(f"the book's batches ({loader} loader), {LOADER_EPOCHS} epochs", 1,
                          note is None, note is None, 0.0, "batches" if note else "",
                          note.message if note else "")


def compare_setup(setup: Training, baseline: str, s: Settings, max_slowdown: float | None,
                  clock_start: float, say: Callable[[str], None], registry: Registry) -> Comparison:
    """`CompareRun.compare` for a training setup: equivalence, memory, then timing in the
    operations that train (only for an equivalent setup)."""
    t0 = time.perf_counter()
    ops = setup_operations(list(s.operations), setup, registry)
    eq = setup_rows(setup, baseline, s.examples, registry, say)
    memory = memory_pair(setup.name, baseline, ops, registry, say)
    budget = Budget(s.time_budget_s, s.kernel_s, None, s.max_processes, clock_start + s.total_s)
    same = all(r.passed for r in eq) and not any(m.failure for m in memory)
    timed = (time_pair(setup.name, baseline, ops, budget, s.threads, say, registry.specs)
             if same else [])
    return Comparison(setup.name, baseline, baseline, eq, timed, memory, max_slowdown,
                      replace(s, operations=tuple(ops)), round(time.perf_counter() - t0, 1))
