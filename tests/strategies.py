"""All hypothesis strategies of the suite, in one place.

A drawn `Case` is plain data (sizes, index pattern, dtype, device, y_range, seed); its tensors are
made from the seed with a `torch.Generator`, so a failing example prints everything needed to
rebuild it and hypothesis shrinks sizes and seeds, not thousands of list elements."""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass

import torch
from hypothesis import settings
from hypothesis import strategies as st

from dotbias.canonical import Canonical
from dotbias.inputs import INDEX_KINDS, make_inputs
from dotbias.variants import VARIANTS

THOROUGH = os.environ.get("HYPOTHESIS_PROFILE", "ci") == "thorough"


def examples(n: int) -> settings:
    """`n` examples under the default profile, 10x under `thorough`."""
    return settings(max_examples=n * 10 if THOROUGH else n)


def pairs() -> list[tuple[str, str]]:
    """Every pair of registered variants, read when called so a new variant is picked up."""
    return list(itertools.combinations(VARIANTS, 2))


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
FULL_DTYPES = [torch.float32, torch.float64]
# float16/bfloat16 on CPU: embedding, indexing, sum, sigmoid and both backwards are supported in
# torch 2.13 (measured); the models use nothing else.
HALF_DTYPES = [torch.float16, torch.bfloat16]

devices = st.sampled_from(DEVICES)
full_dtypes = st.sampled_from(FULL_DTYPES)
half_dtypes = st.sampled_from(HALF_DTYPES)
index_kinds = st.sampled_from(INDEX_KINDS)
seeds = st.integers(0, 2**32 - 1)
y_ranges = st.sampled_from([(0, 5.5), (0.5, 5.5), (-1.0, 1.0), (0.0, 1.0), (1.0, 5.0)])


def mostly_small(small: st.SearchStrategy[int], large: st.SearchStrategy[int], one_in: int = 8
                 ) -> st.SearchStrategy[int]:
    """`large` one time in `one_in`, `small` otherwise: big sizes are covered but stay cheap."""
    return st.integers(1, one_in).flatmap(lambda k: large if k == 1 else small)


# Mostly small, sometimes up to a few thousand.
rows = mostly_small(st.integers(1, 40), st.integers(1, 3000))
factors = mostly_small(st.integers(1, 16), st.integers(1, 256))
batch_sizes = mostly_small(st.integers(0, 64), st.integers(0, 3000))


@dataclass(frozen=True)
class Case:
    """One equivalence example: everything to rebuild its parameters and batch."""
    n_users: int
    n_items: int
    n_factors: int
    bs: int
    kind: str
    dtype: torch.dtype
    device: str
    seed: int
    y_range: tuple[float, float] = (0, 5.5)

    def inputs(self, step: int = 0):
        # std 0.5 rather than fastai's 0.01: outputs then spread over the sigmoid, not all ~mid-range.
        return make_inputs(self.n_users, self.n_items, self.n_factors, self.bs, seed=self.seed,
                           kind=self.kind, std=0.5, y_range=self.y_range, dtype=self.dtype,
                           device=self.device, step=step + 1)

    def params(self) -> Canonical:
        return self.inputs().params

    def batch(self, step: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Indices [bs, 2] (long) and targets [bs] inside y_range; `step` gives further batches."""
        inp = self.inputs(step)
        return inp.x, inp.y


@st.composite
def cases(draw, dtypes=full_dtypes, *, rows=rows, factors=factors, batch_sizes=batch_sizes,
          kinds=index_kinds, y_range=y_ranges, device=devices) -> Case:
    return Case(draw(rows), draw(rows), draw(factors), draw(batch_sizes), draw(kinds),
                draw(dtypes), draw(device), draw(seeds), draw(y_range))


# Small cases for k-step training trajectories (cost grows with k).
small_cases = cases(rows=st.integers(1, 200), factors=st.integers(1, 32),
                    batch_sizes=st.integers(1, 128))
optimizers = st.sampled_from(["sgd", "adam", "adamw"])
step_counts = st.integers(1, 5)
