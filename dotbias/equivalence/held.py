"""Hold one timed name to the contract at the benchmark's own shape (`ContractNote`): a variant on
one seeded batch (its output and gradients against the baseline and the float64 reference,
`contract.check_variant`), a VARIANT+IMPL training setup over `STEPS` steps of the one-cycle
schedule against the book's setup trained in float64 (`trajectories.check_training`)."""
from __future__ import annotations

import torch

from dotbias.equivalence.contract import check_variant
from dotbias.equivalence.contract_note import ContractNote
from dotbias.equivalence.strategies import Case
from dotbias.equivalence.trajectories import check_training
from dotbias.models.optimizers import BOOK_IMPL
from dotbias.models.registry import Registry

STEPS = 8


def hold(name: str, n_users: int, n_items: int, n_factors: int, bs: int, baseline: str, *,
         registry: Registry, dtype: str = "float32", device: str = "cpu", seed: int = 0
         ) -> ContractNote:
    """`name` held to the contract against `baseline` (a registered variant's name), both looked
    up in `registry` (the run's), on a seeded case of this shape (std 0.5, so outputs spread
    over the sigmoid)."""
    base = registry.get_variant(baseline)
    case = Case(n_users, n_items, n_factors, bs, "uniform", getattr(torch, dtype), device, seed)
    setup = registry.setup(name)
    if setup.impl == BOOK_IMPL:
        x, y = case.batch(0)
        result = check_variant(registry.get_variant(setup.variant), case.params(), x, y, case.y_range,
                               baseline=base)
        bad = result.first_failure()
        return ContractNote(bad is None, "output and gradients, one batch", result.usage,
                            bad.message if bad else "")
    steps = check_training(setup, case.params(), [case.batch(k) for k in range(STEPS)], case.y_range,
                           baseline=base, registry=registry)
    checks = [c for step in steps for c in step]
    bad = next((c for c in checks if not c.passed), None)
    usage = max((c.max_err / c.allowed for c in checks if c.allowed > 0), default=0.0)
    return ContractNote(bad is None, f"{STEPS} one-cycle steps", usage, bad.message if bad else "")
