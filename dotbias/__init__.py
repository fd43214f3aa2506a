"""dotbias: benchmarking and equivalence harness for fastbook's DotProductBias variants."""
from .canonical import Canonical, canonical_grads, load_canonical, random_canonical, to_canonical
from .compare import TOLERANCES, Diff, PairResult, assert_pair_close, compare_pair, diff, tolerance
from .variants import (VARIANTS, DotProductBiasCP, DotProductBiasEmb, Variant, create_params,
                       get_variant, register, unregister)

__all__ = ["Canonical", "canonical_grads", "load_canonical", "random_canonical", "to_canonical",
           "TOLERANCES", "Diff", "PairResult", "assert_pair_close", "compare_pair", "diff",
           "tolerance", "VARIANTS", "DotProductBiasCP", "DotProductBiasEmb", "Variant",
           "create_params", "get_variant", "register", "unregister"]
