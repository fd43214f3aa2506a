"""Hypothesis profiles, the `--variant` and `--baseline` options, and the mutation score in the
terminal summary.

Profiles: `ci` (the default, fast: 20 examples a property) and `thorough` (400); choose with
`--hypothesis-profile thorough` or HYPOTHESIS_PROFILE=thorough. No test sets its own example
count, so the profile is what decides (test_equivalence.py checks that). `ci` was 40 until
2026-12-06: at 20 the mutation score (test_mutants.py, run at `ci`'s count) stayed 17/17 caught and
9/9 accepted, and over 20 random seeds each of ten hard bug/property pairs (large-batch chunks,
last row, float64- and half-only, duplicates, the fused sigmoid backward) was caught by exactly
as many seeds at 20 as at 40. `ci` draws its 20 examples without hypothesis's target phase:
steering by `hypothesis.target` (error / allowed, `hunt.aim`) mutated around the best example
so far, and when that was a large table every later example was one too: the property files took
12-20 s instead of 10-12 s (seeds 1-4, 2026-12-07), the mutation score unchanged (seeds 1-5).
The attack on the bound is `thorough`'s (400 examples, target phase on) and `.ci/hunt`'s.

`--baseline NAME` (or $DOTBIAS_BASELINE; default `cp`) chooses the variant every test judges the
others against: kept on `config.stash`, handed to tests by the `baseline` fixture; a bad
--variant spec or baseline name is one `ERROR:` line (pytest.UsageError). The run's registry
(built-ins, plug-ins, the baseline) is on `config.stash` too: the `registry` fixture, and
`@pytest.mark.each_variant(ARG)` parametrizes ARG with the name of each of its variants.

The summary lines (mutation score, torch.compile count) work under pytest-xdist (`-n 2`): the
score comes from the test reports' `mutation` property, which reach the controller from every
worker, the compile count from each worker's `workeroutput`; the controller prints each once.
Shared helpers live in tests/helpers/; `nested_pytest` (pytest's `pytester`) runs a nested
`pytest tests` or `pytest bench` session in the test's own process (docs/ci.md)."""
from __future__ import annotations

import gc
import os
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

# dotbias imports dynamo lazily (the first optimizer or torch.compile imports it), but pytester
# drops every module imported while its fixture is up, and dynamo cannot be imported twice in one
# process (it registers a torch library): imported here, it outlives every nested session.
import torch._dynamo  # noqa: F401
from hypothesis import HealthCheck, Phase, settings

from dotbias.equivalence.baseline import add_pytest_option as add_baseline_option
from dotbias.equivalence.baseline import choose_baseline
from dotbias.models import plugins
from dotbias.models.compiled import compile_count
from dotbias.pytest_bench.options import BASELINE, REGISTRY
from helpers import children

_COMMON = dict(deadline=None, print_blob=True, derandomize=False,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                      HealthCheck.function_scoped_fixture])
settings.register_profile("ci", max_examples=20, phases=[p for p in Phase if p is not Phase.target],
                          **_COMMON)
settings.register_profile("thorough", max_examples=400, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

pytest_plugins = ["pytester"]


def pytest_addoption(parser):
    plugins.add_pytest_option(parser)
    add_baseline_option(parser)


def pytest_configure(config):
    """The run's registry from entry points, DOTBIAS_VARIANTS and --variant, then the baseline,
    both on `config.stash` before collection; bad input is a usage error (one line), not a
    traceback."""
    config.addinivalue_line("markers", "each_variant(arg, sort=False): parametrize ARG with the "
                            "name of every variant of this run's registry (built-ins and plug-ins)")
    try:
        registry = plugins.load_variants(config.getoption("variant"), compile=config.getoption("compile"))
        config.stash[BASELINE], config.stash[REGISTRY] = choose_baseline(config.getoption("baseline"),
                                                                         registry)
    except ValueError as e:
        raise pytest.UsageError(str(e)) from None
    config.pluginmanager.register(Summary(), f"dotbias-summary-{id(config)}")


def pytest_generate_tests(metafunc):
    """`@pytest.mark.each_variant(ARG)`: ARG takes the name of every variant of the run's registry
    (`config.stash[REGISTRY]`), in registration order (`sort=True`: sorted), so a plugged-in
    variant is tested like a built-in one."""
    for mark in metafunc.definition.iter_markers("each_variant"):
        names = list(metafunc.config.stash[REGISTRY].variants)
        metafunc.parametrize(mark.args[0], sorted(names) if mark.kwargs.get("sort") else names)


class Summary:
    """The end-of-session lines; one instance per pytest session (config), on the process that
    prints: the controller under xdist, which hears every worker's reports and node-down."""

    def __init__(self):
        self.mutants: dict[str, list[bool]] = {"caught": [], "accepted": []}
        self.compiled = [0, 0]                   # graphs, frames: the workers' under xdist

    def pytest_runtest_logreport(self, report):
        if report.when == "call":
            for key, value in report.user_properties:
                if key == "mutation":
                    kind, ok = value
                    self.mutants[kind].append(ok)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error):
        graphs, frames = getattr(node, "workeroutput", {}).get("compiled", (0, 0))
        self.compiled[0] += graphs
        self.compiled[1] += frames

    def pytest_sessionfinish(self, session):
        own = compile_count()
        if hasattr(session.config, "workeroutput"):         # an xdist worker: hand it over
            session.config.workeroutput["compiled"] = (own.graphs, own.frames)
        else:
            self.compiled[0] += own.graphs
            self.compiled[1] += own.frames

    def pytest_terminal_summary(self, terminalreporter):
        graphs, frames = self.compiled
        if frames:
            terminalreporter.write_line(f"torch.compile: {graphs} graphs compiled, "
                                        f"{frames} frames converted in this session")
        caught, accepted = self.mutants["caught"], self.mutants["accepted"]
        if caught or accepted:
            terminalreporter.write_line(f"mutation score: {sum(caught)}/{len(caught)} caught, "
                                        f"{sum(accepted)}/{len(accepted)} correct accepted")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failure raised while a variant ran names it, whatever the test: the variants in the
    failing traceback's frames (the baseline left out when others are there) are added to the
    report, so a wrong variant plugged in through DOTBIAS_VARIANTS is named even where it crashed
    inside a loop over the registry (tests/helpers/controlled.py, .ci/culprits)."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.excinfo is not None and hasattr(report.longrepr, "addsection"):
        names = variants_in_traceback(call.excinfo.tb, item.config.stash[BASELINE])
        if names:
            report.longrepr.addsection("variant", "variant under test when it failed: " + ", ".join(names))


def variants_in_traceback(tb, base: str) -> list[str]:
    from dotbias.models.variant import Variant
    found: dict[str, None] = {}
    while tb is not None:
        for value in list(tb.tb_frame.f_locals.values()):
            if isinstance(value, Variant):
                found[value.name] = None
        tb = tb.tb_next
    names = list(found)
    return [n for n in names if n != base] or names


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


def pytest_collection_finish(session):
    """What the session imported and collected (torch, fastai, pandas, hypothesis: about a million
    objects) lives to its end: `gc.freeze` moves it out of the cyclic collector's sight, so a full
    collection (an automatic one, or the one before each memory or timing measurement) walks only
    what the tests made since. Before, each took about 0.4 s: 34 s of a one-core `pytest tests`.
    Once per process (a nested session's objects are left to the collector). Then the EARLY
    fixtures' child processes start."""
    if not gc.get_freeze_count():
        gc.freeze()
    start_early(session)


ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def registry(request):
    """This run's registry (`models.registry.Registry`): the built-ins, what --variant,
    DOTBIAS_VARIANTS and entry points plugged in, the baseline. A test that needs another
    variant makes a new one from it (`Registry.with_variants`) and passes that."""
    return request.config.stash[REGISTRY]


@pytest.fixture(scope="session")
def baseline(request, registry):
    """The Variant this run judges every other against (--baseline, $DOTBIAS_BASELINE or cp)."""
    return registry.get_variant(request.config.stash[BASELINE])


def _tiny_workers():
    """One tiny real run of the timing worker process and one that fails, started together (each
    pays torch's and fastai's import): the good one times forward and step at a tiny size, emb and
    cp with the A/A copy and the training setup cp+fused. (spec, its result, the failing one's
    RuntimeError)."""
    from dotbias.timing.groups import Group, Size
    from dotbias.timing.workers import WorkSpec, run_process
    tiny = Size("tiny", 20, 30, 4, 8)
    groups = (Group("forward", "cpu", tiny, "float32"), Group("step", "cpu", tiny, "float32"))
    spec = WorkSpec(groups, ("emb", "cp"), "cp", aa=True, budget_s=0.02, setups=("cp+fused",))
    bad = WorkSpec(groups[:1], ("no_such_variant",), "cp")
    with ThreadPoolExecutor(2) as pool:
        good, failed = pool.submit(run_process, spec, 0, 120), pool.submit(run_process, bad, 1, 120)
        return spec, good.result(), failed.exception()


def _worker_pool():
    """One timing server (`timing.worker_server.Workers`), started and waited for: its imports are
    done in it before the next child starts; nothing is timed until the test asks. The tests'
    workers all fork from it (`uses`), so no successor waits beside it: its imports would run
    beside them, 3 s of a core for nothing (tests/test_workers.py checks the retiring on
    stand-ins)."""
    from dotbias.timing.worker_server import Workers
    pool = Workers(servers=1, uses=100).start()
    for index, server in enumerate(pool.servers):
        server.wait_ready(index)
    return pool


# Session fixtures whose value is only child processes' work, started as soon as collection ends
# when a selected test uses them, so the children run on the other core while this process runs
# the tests before their first user (a plain session fixture, then, only waits). One after the
# other, in the order of their first use, on one background thread: started all at once (18 s of
# the children's CPU here) they outnumbered the cores and held this process to a fraction of one
# for the session's first seconds. Not in an xdist worker (it runs only some of the tests it
# collected) nor under --collect-only, and not for tests marked timing: those run alone (.ci/run's
# `-m timing`), children beside them would share their cores. IMPORT_ONLY's children only import,
# and their test times nothing before that is done: started early for a timing test too, when
# the session has other tests to run meanwhile (not in `-m timing`, where their imports would run
# beside another timing test).
EARLY = {"tiny_workers": _tiny_workers, "interrupted_runs": children.interrupted_runs,
         "report_child": children.report_child, "console_children": children.console_children,
         "worker_pool": _worker_pool}
IMPORT_ONLY = {"worker_pool"}
_started: dict[str, Future] = {}


def start_early(session) -> None:
    if hasattr(session.config, "workerinput") or session.config.option.collectonly:
        return
    timed = [item.get_closest_marker("timing") is not None for item in session.items]
    untimed_too = not all(timed)        # tests to run while IMPORT_ONLY's children import
    order = {}          # fixture name -> None, in the order of their first use
    for item, is_timed in zip(session.items, timed):
        for name in getattr(item, "fixturenames", ()):
            if name in EARLY and name not in _started and (
                    not is_timed or (name in IMPORT_ONLY and untimed_too)):
                order.setdefault(name)
    if order:
        queue = ThreadPoolExecutor(1, thread_name_prefix="dotbias-early")
        for name in order:
            _started[name] = queue.submit(EARLY[name])
        queue.shutdown(wait=False)


def early(name: str):
    started = _started.pop(name, None)
    return started.result() if started is not None else EARLY[name]()


@pytest.fixture(scope="session")
def tiny_workers():
    """`_tiny_workers`' run, once per session (tests/test_timing.py, tests/test_training.py)."""
    return early("tiny_workers")


@pytest.fixture(scope="session")
def worker_pool():
    """`_worker_pool`'s server, closed at the session's end (tests/test_workers.py)."""
    pool = early("worker_pool")
    yield pool
    pool.close()


@contextmanager
def early_in_folder(name: str):
    """`early(name)` of a child that made a temporary folder: (folder, what the test reads), the
    folder removed when the session's fixture ends."""
    folder, value = early(name)
    try:
        yield folder, value
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def interrupted_runs():
    """helpers/children.py's three interrupted `dotbias run --quick` (tests/test_cli.py)."""
    with early_in_folder("interrupted_runs") as (_, runs):
        yield runs


@pytest.fixture(scope="session")
def report_child():
    """helpers/children.py's `dotbias report` child: (its folder, its CompletedProcess)
    (tests/test_house.py)."""
    with early_in_folder("report_child") as child:
        yield child


@pytest.fixture(scope="session")
def console_children():
    """helpers/children.py's bad `python -m dotbias.cli` children: (folder, argv -> process)
    (tests/test_badinput.py)."""
    with early_in_folder("console_children") as children_:
        yield children_


@pytest.fixture
def nested_pytest(pytester, monkeypatch):
    """`pytest ARGS` (paths relative to the repository) run in this process by pytester, not in a
    fresh interpreter that pays torch's and fastai's import again: returns pytester's RunResult.
    `env` sets variables for the run. Afterwards torch's thread count is as before (the nested
    session changes it); its registry was its own, on its own config."""
    threads = torch.get_num_threads()
    for key in [k for k in os.environ if k.startswith("PYTEST_XDIST_")]:   # a session of its own,
        monkeypatch.delenv(key)                                             # not an xdist worker's

    def run(*args: str, env: dict[str, str] | None = None):
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        paths = [str(ROOT / a) if a.split("/")[0] in ("tests", "bench") else a for a in args]
        return pytester.runpytest_inprocess("-p", "no:cacheprovider", *paths)
    yield run
    torch.set_num_threads(threads)
