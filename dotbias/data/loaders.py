"""What feeds fastai's Learner: the book's loaders (`CollabDataLoaders`: every batch indexes a
pandas frame and runs fastai's tabular transforms on it) or `tensor_batches` of them, the same
loaders cutting each batch from tensors made once. The indices are drawn exactly as the book's
loaders draw them (their own `get_idxs`, the same random streams), so the batches are the same,
bitwise; `same_batches` proves it for a run instead of trusting it. In the book's fastai epoch at
the MovieLens shape the frame indexing is about 40% of the time (cProfile, 2026-12-06)."""
from __future__ import annotations

import random
from collections.abc import Iterator

import numpy as np
import torch
from fastcore.basics import chunked

from dotbias.models.optimizers import BOOK_LOADER


class _FromTensors:
    """Mixin over a fastai DataLoader class: its own sampling and chunking of indices, each batch
    cut from `full` (the loader's transforms applied once to every row) instead of transformed."""
    full: tuple[torch.Tensor, ...] = ()

    def create_batches(self, samps) -> Iterator[tuple[torch.Tensor, ...]]:
        for b in chunked(samps, self.bs, self.drop_last):       # DataLoader.chunkify's chunks
            idx = torch.as_tensor(np.asarray(b, dtype=np.int64), device=self.full[0].device)
            yield tuple(t[idx] for t in self.full)


def _from_tensors(dl):
    """`dl` as a loader cutting batches from tensors: same class (so the same `get_idxs`), same
    options, its random state copied (a shuffle draws what `dl`'s would have)."""
    cls = type(f"{type(dl).__name__}FromTensors", (_FromTensors, type(dl)), {})
    full = dl.after_batch(dl.create_batch(list(range(dl.n))))
    state = np.random.get_state()       # fastai's weighted loader draws an order when made:
    fast = dl.new(cls=cls)              # an unseeded fit must then draw what the book's draws
    np.random.set_state(state)
    fast.after_batch = lambda b: b
    fast.full = tuple(t.to(dl.device) if dl.device is not None else t for t in full)
    fast.rng = random.Random()
    fast.rng.setstate(dl.rng.getstate())
    return fast


def tensor_batches(dls):
    """`dls` (fastai DataLoaders of a collab/tabular frame), as loaders whose batches are cut from
    tensors: the same batches, in the same order, from the same random streams."""
    from fastai.data.core import DataLoaders
    return DataLoaders(*(_from_tensors(dl) for dl in dls.loaders), path=dls.path, device=dls.device)


def feed(dls, loader: str):
    """The loaders a fit with `loader` ("fastai": the book's; "tensors": `tensor_batches`) runs on."""
    return dls if loader == BOOK_LOADER else tensor_batches(dls)


def _differ(a: tuple, b: tuple) -> str | None:
    if len(a) != len(b):
        return f"{len(a)} tensors vs {len(b)}"
    for i, (s, t) in enumerate(zip(a, b)):
        if (s.dtype, tuple(s.shape), s.device) != (t.dtype, tuple(t.shape), t.device):
            return (f"tensor {i}: {s.dtype} {list(s.shape)} on {s.device} vs {t.dtype} "
                    f"{list(t.shape)} on {t.device}")
        if not torch.equal(s, t):
            return f"tensor {i}: values differ at {int((s != t).flatten().nonzero()[0])} (flat index)"
    return None


def same_batches(book, other, epochs: int = 2, seed: int = 0) -> str | None:
    """None when `other` (DataLoaders) yields `book`'s batches, bitwise, for `epochs` epochs of the
    train loader and one pass of the valid loader, from the same seed (numpy's global RNG, which
    fastai's weighted collab loader samples from, is seeded before each epoch and restored after);
    else the first difference, in one line."""
    state = np.random.get_state()
    try:
        passes = (("train", book.train, other.train, epochs), ("valid", book.valid, other.valid, 1))
        for name, a, b, n in passes:
            for epoch in range(n):
                np.random.seed(seed + epoch)
                left = list(a)
                np.random.seed(seed + epoch)
                right = list(b)
                if len(left) != len(right):
                    return f"{name} epoch {epoch + 1}: {len(left)} batches vs {len(right)}"
                for k, (s, t) in enumerate(zip(left, right)):
                    if (why := _differ(s, t)) is not None:
                        return f"{name} epoch {epoch + 1}, batch {k + 1}: {why}"
    finally:
        np.random.set_state(state)
    return None
