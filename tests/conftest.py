"""Hypothesis profiles, the `--variant` and `--baseline` options, and the mutation score in the
terminal summary.

Profiles: `ci` (the default, fast) and `thorough` (10x the examples); choose with
`--hypothesis-profile thorough` or HYPOTHESIS_PROFILE=thorough. No test sets its own example
count, so the profile is what decides (test_equivalence.py checks that).

`--baseline NAME` (or $DOTBIAS_BASELINE; default `cp`) chooses the variant every test judges the
others against; a bad --variant spec or baseline name is one `ERROR:` line (pytest.UsageError)."""
from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from dotbias.equivalence import baseline
from dotbias.models import plugins
from dotbias.models.compiled import compile_count
from mutants import MUTATION_SCORE

_COMMON = dict(deadline=None, print_blob=True, derandomize=False,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                      HealthCheck.function_scoped_fixture])
settings.register_profile("ci", max_examples=40, **_COMMON)
settings.register_profile("thorough", max_examples=400, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_addoption(parser):
    plugins.add_pytest_option(parser)
    baseline.add_pytest_option(parser)


def pytest_configure(config):
    """Register variants from entry points, DOTBIAS_VARIANTS and --variant, then choose the
    baseline, before collection; bad input is a usage error (one line), not a traceback."""
    try:
        plugins.load_variants(config.getoption("variant"))
        baseline.choose_baseline(config.getoption("baseline"))
    except ValueError as e:
        raise pytest.UsageError(str(e)) from None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failure raised while a variant ran names it, whatever the test: the variants in the
    failing traceback's frames (the baseline left out when others are there) are added to the
    report, so a wrong variant plugged in through DOTBIAS_VARIANTS is named even where it crashed
    inside a loop over the registry (tests/controlled.py, .ci/culprits)."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.excinfo is not None and hasattr(report.longrepr, "addsection"):
        names = variants_in_traceback(call.excinfo.tb)
        if names:
            report.longrepr.addsection("variant", "variant under test when it failed: " + ", ".join(names))


def variants_in_traceback(tb) -> list[str]:
    from dotbias.models.variant import Variant
    found: dict[str, None] = {}
    while tb is not None:
        for value in list(tb.tb_frame.f_locals.values()):
            if isinstance(value, Variant):
                found[value.name] = None
        tb = tb.tb_next
    names = list(found)
    base = baseline.baseline_name()
    return [n for n in names if n != base] or names


def pytest_terminal_summary(terminalreporter):
    compiled = compile_count()
    if compiled.frames:
        terminalreporter.write_line(f"torch.compile: {compiled.graphs} graphs compiled, "
                                    f"{compiled.frames} frames converted in this session")
    caught, accepted = MUTATION_SCORE["caught"], MUTATION_SCORE["accepted"]
    if caught or accepted:
        terminalreporter.write_line(f"mutation score: {sum(caught)}/{len(caught)} caught, "
                                    f"{sum(accepted)}/{len(accepted)} correct accepted")


# Tests that compile with torch.compile or time for real cost tens of seconds each: the default
# `pytest tests` skips them (one reason line each) to stay under two minutes; `.ci/run` runs them.
SLOW = os.environ.get("DOTBIAS_SLOW") == "1"


def pytest_collection_modifyitems(config, items):
    if SLOW:
        return
    skip = pytest.mark.skip(reason="slow (compiles or times for real): DOTBIAS_SLOW=1 runs it (.ci/run)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
