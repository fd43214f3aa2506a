"""dotbias: benchmarking and equivalence harness for fastbook's DotProductBias variants."""
import warnings

with warnings.catch_warnings():
    # fastai decorates functions with torch.jit.script when imported, deprecated from torch 2.14:
    # a FutureWarning on every `dotbias` command that says nothing about the user's input.
    warnings.filterwarnings("ignore", message=".*torch.jit.script. is deprecated")
    from .canonical import Canonical, canonical_grads, load_canonical, squeeze, to_canonical
    from .inputs import Inputs, index_batch, make_inputs, random_canonical
    from .ablations import ablations_report, run_ablations, run_all, write_ablations
    from .equivalence import (TOLERANCES, Diff, PairResult, TrajectoryResult, check_pair, compare_pair,
                              compare_trajectories, diff, expect_exact, tolerance)
    from .disagreement import disagreement_map
    from .variants import (VARIANTS, DotProductBiasCP, DotProductBiasEmb, Variant, create_params,
                           get_variant, register, unregister)

__all__ = ["Canonical", "canonical_grads", "load_canonical", "squeeze", "to_canonical",
           "Inputs", "index_batch", "make_inputs", "random_canonical",
           "TOLERANCES", "Diff", "PairResult", "compare_pair", "diff",
           "tolerance", "VARIANTS", "DotProductBiasCP", "DotProductBiasEmb", "Variant",
           "create_params", "get_variant", "register", "unregister",
           "ablations_report", "run_ablations", "run_all", "write_ablations", "check_pair", "expect_exact",
           "disagreement_map", "TrajectoryResult", "compare_trajectories"]
