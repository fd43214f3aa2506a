"""Hypothesis profiles: `ci` (the default, fast), `dev` (same), `thorough` (10x the examples).

Choose with HYPOTHESIS_PROFILE=thorough. Every property sets its own example count for the `ci`
profile through `tests.strategies.examples(n)`, which multiplies it for `thorough`."""
from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = dict(deadline=None, print_blob=True, derandomize=False,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                      HealthCheck.function_scoped_fixture])
settings.register_profile("ci", max_examples=100, **_COMMON)
settings.register_profile("dev", max_examples=100, **_COMMON)
settings.register_profile("thorough", max_examples=1000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
