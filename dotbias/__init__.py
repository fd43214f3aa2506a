"""dotbias: benchmarking and equivalence harness for fastbook's DotProductBias variants.

The public API, re-exported lazily (PEP 562 `__getattr__`): `import dotbias.cli` stays light, so
`dotbias --help` answers without importing torch or fastai."""
from __future__ import annotations

import importlib
import warnings

from dotbias.io import interrupts

interrupts.install_early()      # the `dotbias` command defers Ctrl-C from here (io/interrupts.py)

_EXPORTS = {
    "models.canonical": ("Canonical", "canonical_grads", "load_canonical", "squeeze", "to_canonical"),
    "models.inputs": ("Inputs", "index_batch", "make_inputs", "random_canonical"),
    "models.variant": ("Init", "Variant"),
    "models.book": ("DotProductBiasCP", "DotProductBiasEmb", "create_params"),
    "models.registry": ("BUILT_IN", "OPT_IN", "Registry"),
    "models.plugins": ("load_variants",),
    "equivalence.ablations": ("ablations_report", "run_ablations", "run_all", "write_ablations"),
    "equivalence.contract": ("CONTRACT", "PairResult", "VariantCheck", "assert_equivalent",
                             "check_variant", "compare_pair", "expect_exact"),
    "equivalence.trajectories": ("assert_trajectories", "check_trajectory"),
    "equivalence.disagreement": ("disagreement_map",),
    "io.resultset": ("ResultSet",),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'dotbias' has no attribute {name!r}")
    with warnings.catch_warnings():
        # fastai decorates functions with torch.jit.script when imported, deprecated from torch 2.14:
        # a FutureWarning on every `dotbias` command that says nothing about the user's input.
        warnings.filterwarnings("ignore", message=".*torch.jit.script. is deprecated")
        value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
