"""A set of variants a test controls, for the tests about a command's mechanics (threads, files,
exit codes): with a wrong variant plugged in (DOTBIAS_VARIANTS, --variant), such a test must not
fail, or fail first without naming it; the tests about correctness run over the whole registry."""
from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

from dotbias.models.registry import VARIANTS
from dotbias.models.variant import Variant


def baseline_and_copy(base: Variant) -> list[Variant]:
    """The baseline and a copy of it under another name: a set that is equivalent by construction."""
    return [base, dataclasses.replace(base, name=f"{base.name}_copy")]


@contextlib.contextmanager
def only(*variants: Variant, baseline: Variant) -> Iterator[list[str]]:
    """The registry holds exactly `variants` inside the block (`baseline` among them, or it is
    added), the whole registry again after: their names."""
    base = baseline
    chosen = {v.name: v for v in ([] if any(v.name == base.name for v in variants) else [base])}
    chosen.update({v.name: v for v in variants})
    saved = dict(VARIANTS)
    VARIANTS.clear()
    VARIANTS.update(chosen)
    try:
        yield list(chosen)
    finally:
        VARIANTS.clear()
        VARIANTS.update(saved)
