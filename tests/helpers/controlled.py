"""A set of variants a test controls, for the tests about a command's mechanics (threads, files,
exit codes): with a wrong variant plugged in (DOTBIAS_VARIANTS, --variant), such a test must not
fail, or fail first without naming it; the tests about correctness run over the whole registry."""
from __future__ import annotations

import dataclasses

from dotbias.models.registry import Registry
from dotbias.models.variant import Variant


def baseline_and_copy(base: Variant) -> list[Variant]:
    """The baseline and a copy of it under another name: a set that is equivalent by construction."""
    return [base, dataclasses.replace(base, name=f"{base.name}_copy")]


def only(*variants: Variant, baseline: Variant, registry: Registry) -> Registry:
    """A registry holding exactly `variants` (`baseline` among them, or it is added), with the
    implementations of `registry` (the run's) and its specs marked loaded, so that a command
    started from it (`cli.main(..., registry=)`) adds no plugged-in variant."""
    chosen = {v.name: v for v in ([] if any(v.name == baseline.name for v in variants) else [baseline])}
    chosen.update({v.name: v for v in variants})
    return Registry(chosen, registry.impls, registry.loaded)
