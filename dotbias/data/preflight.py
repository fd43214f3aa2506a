"""Checks made before any model is built or trained, so a run that cannot succeed fails in a second
with one line instead of after minutes (or with a result computed from no training at all): the
split leaves rows on both sides and at least one batch to train on, and the models fit in memory."""
from __future__ import annotations

import os

VALID_PCT = 0.2              # the seed's CollabDataLoaders split


def split_sizes(n_ratings: int, valid_pct: float = VALID_PCT) -> tuple[int, int]:
    """(train rows, valid rows) as fastai's RandomSplitter cuts them: int(valid_pct * n) to valid."""
    cut = int(valid_pct * n_ratings)
    return n_ratings - cut, cut


def check_trainable(n_ratings: int, bs: int, source: str) -> None:
    """Refuse data whose split has an empty side, or fewer training rows than one batch (fastai
    drops the last partial batch: no step would happen and the untrained model would be reported)."""
    train, valid = split_sizes(n_ratings)
    if valid == 0:
        need = int(1 / VALID_PCT - 1e-9) + 1
        raise ValueError(f"{source}: {n_ratings} rating(s) leave the validation split empty "
                         f"({VALID_PCT:.0%} of them, rounded down); give at least {need} ratings")
    if train < bs:
        raise ValueError(f"--bs {bs}: more than the {train} training rows of {source} "
                         f"({n_ratings} ratings, {1 - VALID_PCT:.0%} for training): not one batch "
                         "would train; lower --bs")


def available_memory() -> int | None:
    """Bytes of memory available for new allocations (MemAvailable on Linux), None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def training_copies(n_variants: int) -> int:
    """Parameter-sized tensors alive at the peak: every variant's parameters, the gradients and two
    Adam moments of the one training, and a copy plus gradients per variant for the final check."""
    return n_variants + 3 + 2 * n_variants


def check_memory(n_users: int, n_items: int, factors: int, n_variants: int, *,
                 bytes_per_value: int = 4, available: int | None = None) -> int:
    """Estimate the bytes training needs; refuse, with the numbers, above the available memory."""
    per_model = (n_users + n_items) * (factors + 1) * bytes_per_value
    need = per_model * training_copies(n_variants)
    available = available_memory() if available is None else available
    if available is not None and need > available:
        raise MemoryError(f"--factors {factors}: training needs about {need / 2**30:.2f} GiB "
                          f"(({n_users:,} users + {n_items:,} items) x {factors + 1} values x "
                          f"{bytes_per_value} bytes x {training_copies(n_variants)} copies: parameters, "
                          f"gradients, Adam state), more than the {available / 2**30:.2f} GiB available")
    return need
