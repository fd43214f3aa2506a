"""The suite's hypothesis strategies: defined once in `dotbias.equivalence.strategies` (the
`dotbias compare` command draws from them too), re-exported here for the tests."""
from dotbias.equivalence.strategies import (  # noqa: F401
    ALL_DTYPES, DEVICES, FULL_DTYPES, HALF_DTYPES, Case, all_dtypes, cases, devices,
    duplicate_cases, full_dtypes, half_dtypes, index_kinds, init_sizes, large, large_rows, medium,
    optimizers, seeds, sizes, small, small_cases, step_counts, tiered, y_ranges)
