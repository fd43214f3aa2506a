"""`pytest bench`'s option values read into what the session needs: the timing plan, the
training setups, the time gate and the instruction-count threshold; a bad value is one usage
error naming the flag."""
from __future__ import annotations

import pytest

from dotbias.io.tables import parse_percent
from dotbias.models.optimizers import parse_setups
from dotbias.models.registry import Registry
from dotbias.timing.adaptive import Plan

# The baseline this pytest run chose (`equivalence.baseline.choose_baseline`), on `config.stash`:
# set by `pytest_configure` here and in tests/conftest.py, read by what judges or times.
BASELINE = pytest.StashKey[str]()
# This pytest run's registry (`models.registry.Registry`: the built-ins, the variants and specs
# plugged in, the baseline if only found by name), on `config.stash` beside BASELINE: built by
# `pytest_configure` here and in tests/conftest.py, read by collection, fixtures and the session.
REGISTRY = pytest.StashKey[Registry]()


def refuse_dashes(args) -> None:
    """A usage error for an option given the value '--' (`--max-time=--`): Python 3.11's
    argparse drops it and gives the option [], which ran with the default (`--max-time`,
    `--baseline`) or failed deep inside (`--threads`: an internal error)."""
    for arg in args:
        flag, eq, value = str(arg).partition("=")
        if eq and value == "--" and flag.startswith("--"):
            raise pytest.UsageError(f"{flag}: expected a value, got '--'")


def refuse_xdist(opt) -> None:
    """A usage error for `pytest bench` under pytest-xdist (`-n N`, `--dist`): pytest-benchmark
    switches itself off there, so the run timed nothing and passed; and the timing's worker
    processes run one after the other, alone on the machine (docs/timing.md)."""
    n, dist = getattr(opt, "numprocesses", None), getattr(opt, "dist", "no")
    if n or dist != "no":
        given = f"-n {n}" if n else f"--dist {dist}"
        raise pytest.UsageError(f"{given}: pytest bench times in worker processes of its own, one after "
                                "the other, alone on the machine (pytest-benchmark times nothing "
                                "under pytest-xdist); run it without -n and --dist")


def plan(opt) -> Plan:
    """When the timing stops: --processes N fixes the count, else targets and a budget."""
    targets = {"kernel_target": _fraction("--kernel-target", opt.kernel_target),
               "epoch_target": _fraction("--epoch-target", opt.epoch_target)}
    for flag, n in (("--processes", opt.processes), ("--max-processes", opt.max_processes)):
        if n is not None and n < 1:
            raise pytest.UsageError(f"{flag} must be at least 1, got {n}")
    if opt.processes is not None:
        return Plan(**targets, max_processes=opt.processes, fixed=True)
    return Plan(**targets, max_s=opt.max_time, max_processes=opt.max_processes)


def _setups(config, registry: Registry) -> list:
    """--training's setups, parsed against the run's `registry`, each variant looked up
    (ValueError naming a bad one)."""
    setups = parse_setups(config.getoption("training"), registry.impls)
    for s in setups:
        registry.get_variant(s.variant)
    return setups


def fail_slower(opt) -> float | None:
    """--fail-slower as a fraction (None: no time gate); it needs a saved run to compare with."""
    allowed = _fraction("--fail-slower", opt.fail_slower)
    if allowed is not None and not opt.benchmark_compare:
        raise pytest.UsageError("--fail-slower needs --benchmark-compare (the saved run to compare with)")
    return allowed


def instructions_threshold(opt) -> float:
    """--instructions-threshold as a fraction."""
    return _fraction("--instructions-threshold", opt.instructions_threshold)


def _fraction(flag: str, text: str | None) -> float | None:
    """`io.tables.parse_percent`, the one reading of a percentage; a usage error naming the flag."""
    if text is None:
        return None
    try:
        return parse_percent(text)
    except ValueError as e:
        raise pytest.UsageError(f"{flag}: {e}") from None
