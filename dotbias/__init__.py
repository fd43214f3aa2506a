"""dotbias: benchmarking and equivalence harness for fastbook's DotProductBias variants."""
import warnings

with warnings.catch_warnings():
    # fastai decorates functions with torch.jit.script when imported, deprecated from torch 2.14:
    # a FutureWarning on every `dotbias` command that says nothing about the user's input.
    warnings.filterwarnings("ignore", message=".*torch.jit.script. is deprecated")
    from .canonical import Canonical, canonical_grads, load_canonical, squeeze, to_canonical
    from .inputs import Inputs, index_batch, make_inputs, random_canonical
    from .ablations import ablations_report, run_ablations, run_all, write_ablations
    from .equivalence import (CONTRACT, PairResult, VariantCheck, assert_equivalent, check_variant,
                              compare_pair, expect_exact)
    from .trajectories import assert_trajectories, check_trajectory
    from .disagreement import disagreement_map
    from .variants import (VARIANTS, DotProductBiasCP, DotProductBiasEmb, Init, Variant, create_params,
                           get_variant, register, unregister)
    from .plugins import load_variants

__all__ = ["Canonical", "canonical_grads", "load_canonical", "squeeze", "to_canonical",
           "Inputs", "index_batch", "make_inputs", "random_canonical",
           "CONTRACT", "PairResult", "VariantCheck", "compare_pair", "assert_equivalent",
           "check_variant", "assert_trajectories", "check_trajectory", "Init", "load_variants",
           "VARIANTS", "DotProductBiasCP", "DotProductBiasEmb", "Variant",
           "create_params", "get_variant", "register", "unregister",
           "ablations_report", "run_ablations", "run_all", "write_ablations", "expect_exact",
           "disagreement_map"]
