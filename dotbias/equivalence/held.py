"""Hold one timed name to the contract at the benchmark's own shape (`ContractNote`): a variant on
one seeded batch (its output and gradients against the baseline and the float64 reference,
`contract.check_variant`), a VARIANT+IMPL training setup over `STEPS` steps of the one-cycle
schedule against the book's setup trained in float64 (`trajectories.check_training`), and a setup
with its own loader to the book's loaders' batches, bitwise (`data.loaders.same_batches`)."""
from __future__ import annotations

import torch

from dotbias.data.loaders import feed, same_batches
from dotbias.data.ratings import collab_dls, synthetic_ratings
from dotbias.equivalence.contract import check_variant
from dotbias.equivalence.contract_note import ContractNote
from dotbias.equivalence.strategies import Case
from dotbias.equivalence.trajectories import check_training
from dotbias.models.optimizers import BOOK_IMPL, BOOK_LOADER
from dotbias.models.registry import Registry

STEPS = 8
LOADER_RATINGS, LOADER_EPOCHS = 2_000, 2    # the synthetic ratings a loader's batches are held on


def hold(name: str, n_users: int, n_items: int, n_factors: int, bs: int, baseline: str, *,
         registry: Registry, dtype: str = "float32", device: str = "cpu", seed: int = 0
         ) -> ContractNote:
    """`name` held to the contract against `baseline` (a registered variant's name), both looked
    up in `registry` (the run's), on a seeded case of this shape (std 0.5, so outputs spread
    over the sigmoid)."""
    base = registry.get_variant(baseline)
    case = Case(n_users, n_items, n_factors, bs, "uniform", getattr(torch, dtype), device, seed)
    setup = registry.setup(name)
    if setup.impl == BOOK_IMPL and setup.loader == BOOK_LOADER:
        x, y = case.batch(0)
        result = check_variant(registry.get_variant(setup.variant), case.params(), x, y, case.y_range,
                               baseline=base)
        bad = result.first_failure()
        return ContractNote(bad is None, "output and gradients, one batch", result.usage,
                            bad.message if bad else "")
    if setup.loader != BOOK_LOADER and (note := hold_loader(setup.loader, seed)) is not None:
        return note
    steps = check_training(setup, case.params(), [case.batch(k) for k in range(STEPS)], case.y_range,
                           baseline=base, registry=registry)
    checks = [c for step in steps for c in step]
    bad = next((c for c in checks if not c.passed), None)
    usage = max((c.max_err / c.allowed for c in checks if c.allowed > 0), default=0.0)
    loader = "" if setup.loader == BOOK_LOADER else f"; the book's batches, bitwise ({LOADER_EPOCHS} epochs)"
    return ContractNote(bad is None, f"{STEPS} one-cycle steps{loader}", usage, bad.message if bad else "")


def hold_loader(loader: str, seed: int = 0, device: str = "cpu") -> ContractNote | None:
    """None when `loader`'s loaders yield the book's loaders' batches, bitwise, over
    LOADER_EPOCHS epochs of seeded synthetic ratings; else the failed note naming the difference."""
    book = collab_dls(synthetic_ratings(n_ratings=LOADER_RATINGS, seed=seed).ratings, bs=64, seed=42,
                      device=device)
    why = same_batches(book, feed(book, loader), epochs=LOADER_EPOCHS, seed=seed)
    return None if why is None else ContractNote(
        False, "the book's batches", 0.0, f"loader {loader!r}: not the book's batches: {why}")
