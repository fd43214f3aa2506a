"""The hunt for the contract's edge: hypothesis draws corner cases (`strategies.corner_cases`) and
`hypothesis.target` drives error / allowed up, for the baseline (against its a-priori bound) and
for every variant given (against the relative rule). A correct variant never reaches 1; the
largest ratio seen says how much room the bound leaves. The slow test and `.ci/hunt` run it."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from hypothesis import HealthCheck, Phase, currently_in_test_context, given, settings, target
from hypothesis import seed as fixed_seed

from dotbias.equivalence.check_records import VariantCheck
from dotbias.equivalence.contract import assert_equivalent
from dotbias.equivalence.strategies import Case, corner_cases
from dotbias.models.variant import Variant


def aim(checks: Sequence[VariantCheck]) -> tuple[VariantCheck, float]:
    """`hypothesis.target` on the baseline's error / a-priori bound (`checks[0]`, as
    `assert_equivalent` returns it) and on the variants' largest error / allowed, inside a
    hypothesis test (a no-op elsewhere); returns the baseline's check and that largest."""
    base, *rest = checks
    usage = max([r.usage for r in rest] or [0.0])
    if currently_in_test_context():
        target(base.usage, label="baseline error / a-priori bound")
        target(usage, label="variant error / allowed")
    return base, usage


@dataclass(frozen=True)
class HuntResult:
    """What one hunt saw: cases run, the largest error / allowed of the baseline (a-priori bound)
    and of the variants (relative rule, capped by the bound), and the cases where they occurred."""
    dtype: torch.dtype
    cases: int
    baseline_usage: float
    variant_usage: float
    baseline_case: Case | None
    variant_case: Case | None


def hunt(variants: Sequence[Variant], dtype: torch.dtype, examples: int,
         seed: int | None = None, *, baseline: Variant) -> HuntResult:
    """`examples` targeted cases of `dtype`; a variant outside the contract raises AssertionError
    (a baseline outside its bound, BaselineError) with hypothesis's shrunk falsifying case."""
    seen = {"cases": 0, "baseline": (0.0, None), "variant": (0.0, None)}

    @settings(max_examples=examples, database=None, deadline=None, derandomize=False,
              phases=[Phase.explicit, Phase.generate, Phase.target, Phase.shrink],
              suppress_health_check=list(HealthCheck))
    @given(corner_cases(dtype))
    def one(case: Case) -> None:
        x, y = case.batch()
        base, usage = aim(assert_equivalent(list(variants), case.params(), x, y, case.y_range,
                                             baseline=baseline))
        seen["cases"] += 1
        for key, value in (("baseline", base.usage), ("variant", usage)):
            if value >= seen[key][0]:
                seen[key] = (value, case)

    (one if seed is None else fixed_seed(seed)(one))()
    return HuntResult(dtype, seen["cases"], *(seen[k][0] for k in ("baseline", "variant")),
                      *(seen[k][1] for k in ("baseline", "variant")))
