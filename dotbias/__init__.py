"""dotbias: benchmarking and equivalence harness for fastbook's DotProductBias variants."""
from .canonical import Canonical, canonical_grads, load_canonical, random_canonical, to_canonical
from .compare import TOLERANCES, Diff, PairResult, assert_pair_close, compare_pair, diff, tolerance
from .variants import (
                       VARIANTS,
                       DotProductBiasCP,
                       DotProductBiasEmb,
                       Variant,
                       create_params,
                       get_variant,
                       register,
                       unregister,
)

__all__ = [
                       "TOLERANCES",
                       "VARIANTS",
                       "Canonical",
                       "Diff",
                       "DotProductBiasCP",
                       "DotProductBiasEmb",
                       "PairResult",
                       "Variant",
                       "assert_pair_close",
                       "canonical_grads",
                       "compare_pair",
                       "create_params",
                       "diff",
                       "get_variant",
                       "load_canonical",
                       "random_canonical",
                       "register",
                       "to_canonical",
                       "tolerance",
                       "unregister",
]
