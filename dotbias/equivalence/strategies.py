"""All hypothesis strategies, in one place: the property suite (tests/) and `dotbias compare`'s
sample of the properties draw from these.

A drawn `Case` is plain data (sizes, index pattern, dtype, device, y_range, seed); its tensors are
made from the seed with a `torch.Generator`, so a failing example prints everything needed to
rebuild it and hypothesis shrinks sizes and seeds, not thousands of list elements.

Sizes come in three tiers: small (most examples, cheap), medium (up to 3,000 rows, 256 factors,
batch 3,000) and large (a table of 100,000+ rows and a batch past 4,096, few factors), one
example in five each for medium and large."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from hypothesis import strategies as st

from dotbias.models.canonical import Canonical
from dotbias.models.inputs import INDEX_KINDS, TARGET_KINDS, make_inputs

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
FULL_DTYPES = [torch.float32, torch.float64]
# float16/bfloat16 on CPU: embedding, indexing, sum, sigmoid and both backwards are supported in
# torch 2.13 (measured); the models use nothing else.
HALF_DTYPES = [torch.float16, torch.bfloat16]
ALL_DTYPES = FULL_DTYPES + HALF_DTYPES

devices = st.sampled_from(DEVICES)
full_dtypes = st.sampled_from(FULL_DTYPES)
half_dtypes = st.sampled_from(HALF_DTYPES)
all_dtypes = st.sampled_from(ALL_DTYPES)
index_kinds = st.sampled_from(INDEX_KINDS)
target_kinds = st.sampled_from(TARGET_KINDS)
# Parameter spreads (std of the factors, that of the biases): mostly 0.5, which spreads outputs
# over the sigmoid; else anything from 0.01 to 8, which puts |logit| anywhere from 0 to several
# hundred, where float32's sigmoid rounds to exactly 0 or 1 (the corners rounding is worst in).
wide_spreads = st.floats(0.01, 8.0).flatmap(
    lambda sd: st.tuples(st.just(sd), st.sampled_from([0.0, sd, 3 * sd])))
spreads = st.one_of(st.just((0.5, 0.5)), wide_spreads)
seeds = st.integers(0, 2**32 - 1)
y_ranges = st.sampled_from([(0, 5.5), (0.5, 5.5), (-1.0, 1.0), (0.0, 1.0), (1.0, 5.0)])

small = st.tuples(st.integers(1, 40), st.integers(1, 40), st.integers(1, 16), st.integers(0, 64))
medium = st.tuples(st.integers(1, 3000), st.integers(1, 3000), st.integers(1, 256),
                   st.integers(0, 3000))
large_rows = st.integers(100_000, 200_000)
large = st.one_of(
    st.tuples(large_rows, st.integers(1, 3000), st.integers(1, 8), st.integers(4097, 8192)),
    st.tuples(st.integers(1, 3000), large_rows, st.integers(1, 8), st.integers(4097, 8192)))


def tiered(small_: st.SearchStrategy, medium_: st.SearchStrategy, large_: st.SearchStrategy
           ) -> st.SearchStrategy:
    """small 3 times in 5, medium and large once each (shrinks towards small)."""
    return st.integers(1, 5).flatmap(lambda k: small_ if k <= 3 else medium_ if k == 4 else large_)


sizes = tiered(small, medium, large)


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
    std: float = 0.5            # 0.5 rather than fastai's 0.01: outputs spread over the sigmoid
    bias_std: float | None = None   # None: `std`
    targets: str = "uniform"    # or "low", "high": every target at that end of y_range

    def inputs(self, step: int = 0):
        return make_inputs(self.n_users, self.n_items, self.n_factors, self.bs, seed=self.seed,
                           kind=self.kind, std=self.std, y_range=self.y_range, dtype=self.dtype,
                           device=self.device, step=step + 1, bias_std=self.bias_std,
                           targets=self.targets)

    def params(self) -> Canonical:
        return self.inputs().params

    def batch(self, step: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Indices [bs, 2] (long) and targets [bs] inside y_range; `step` gives further batches."""
        inp = self.inputs(step)
        return inp.x, inp.y


@st.composite
def cases(draw, dtypes=full_dtypes, *, sizes=sizes, kinds=index_kinds, y_range=y_ranges,
          device=devices, spread=spreads, targets=target_kinds) -> Case:
    n_users, n_items, n_factors, bs = draw(sizes)
    std, bias_std = draw(spread)
    return Case(n_users, n_items, n_factors, bs, draw(kinds), draw(dtypes), draw(device),
                draw(seeds), draw(y_range), std, bias_std, draw(targets))


# The hunt for the bound's edge (`hypothesis.target` on error / allowed): every spread, up to 256
# factors, batches from 1 to 64, targets at both ends, and repeated rows; one dtype at a time.
corner_sizes = st.tuples(st.integers(1, 800), st.integers(1, 300), st.integers(1, 256),
                         st.integers(1, 64))


def corner_cases(dtype: torch.dtype) -> st.SearchStrategy:
    """The hunt's cases: the corners above, and batches where rows repeat (up to one pair 6,000
    times: a gradient sum of equal terms, whose rounding grows as their count)."""
    repeated = cases(st.just(dtype), kinds=st.sampled_from(["duplicates", "same"]),
                     sizes=st.tuples(st.integers(1, 3000), st.integers(1, 300), st.integers(1, 64),
                                     st.integers(64, 6000)), spread=wide_spreads)
    return st.one_of(cases(st.just(dtype), sizes=corner_sizes, spread=wide_spreads), repeated)


# Duplicate-heavy batches, up to past 4,096 rows.
duplicate_cases = cases(all_dtypes, kinds=st.sampled_from(["duplicates", "same"]),
                        sizes=st.tuples(st.integers(1, 3000), st.integers(1, 3000),
                                        st.integers(1, 64), st.integers(1, 6000)))
# Cases for k-step training trajectories (cost grows with k): small, sometimes a large table.
small_cases = cases(full_dtypes, spread=st.just((0.5, 0.5)), targets=st.just("uniform"),
                    sizes=tiered(
        st.tuples(st.integers(1, 200), st.integers(1, 200), st.integers(1, 32), st.integers(1, 128)),
        st.tuples(st.integers(1, 3000), st.integers(1, 3000), st.integers(1, 64), st.integers(1, 512)),
        st.tuples(st.integers(100_000, 120_000), st.integers(1, 100), st.integers(1, 2),
                  st.integers(1, 1024))))
optimizers = st.sampled_from(["sgd", "adam", "adamw"])
step_counts = st.integers(1, 5)
init_sizes = st.tuples(st.integers(50, 3000), st.integers(50, 3000), st.integers(1, 64))
# Tensor pairs for the contract's comparison (`mismatches.close_message`): equal, a few ulps
# apart, far apart, with NaN, infinities and signed zeros; with a tolerance of 0, tiny, large or
# infinite.
_values = st.sampled_from([0.0, -0.0, 1.0, 1.0 + 2**-52, 1.0 + 2**-20, -3.5, 1e-300, float("nan"),
                           float("inf"), float("-inf"), 2.0**60])
tensor_pairs = st.tuples(st.lists(st.tuples(_values, _values), min_size=0, max_size=6),
                         st.sampled_from([torch.float64, torch.float32, torch.float16]),
                         st.sampled_from([0.0, 2**-30, 1e-6, 1.0, float("inf")]),
                         st.booleans())
