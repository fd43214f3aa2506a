"""Benchmark set-up: options, the device/size/dtype/variant grid, the timing of every selected group
in fresh worker processes, and the verdict printed at the end of every `pytest bench`.

Runs are saved under results/local/benchmarks (pytest-benchmark's storage) so `--benchmark-compare`
works at once; only `pytest bench` loads this file, `pytest tests` is unaffected."""
from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest
import torch

from dotbias.equivalence import baseline
from dotbias.io.files import LOCAL
from dotbias.io.tables import PERCENT_RULE
from dotbias.models import plugins
from dotbias.pytest_bench import adapter
from dotbias.pytest_bench.options import (  # noqa: F401
    BASELINE,
    REGISTRY,
    _setups,
    fail_slower,
    instructions_threshold,
    plan,
    refuse_dashes,
    refuse_xdist,
)
from dotbias.pytest_bench.session import Session, group_of
from dotbias.report.summary import FORMAT
from dotbias.timing.adaptive import BUDGET_S, MAX_PROCESSES, STRETCH
from dotbias.timing.groups import DEFAULT_SIZES, INTERLEAVE_S, SWEEP_AXES, Group, sweep_sizes
from dotbias.timing.operations import make_op, refusal, setups_for

SESSION = pytest.StashKey[Session]()      # this `pytest bench` run's dotbias state, on config.stash


def pytest_addoption(parser):
    plugins.add_pytest_option(parser)           # --variant pkg.module:attr (repeatable)
    baseline.add_pytest_option(parser)          # --baseline NAME
    g = parser.getgroup("dotbias", "dotbias benchmarks")
    add = g.addoption
    add("--sweep", action="store_true", help="also time a size sweep (users/items 1e3..1e6, factors "
        "8..256, batch 64..16384), one axis at a time")
    add("--devices", default="cpu,cuda", help="comma-separated devices; cuda is deselected without a GPU")
    add("--dtypes", default="float32", help="comma-separated dtypes, e.g. float32,float64")
    add("--threads", type=int, default=1, help="torch threads, here and in every worker (default 1)")
    add("--processes", type=int, default=None, help="exactly this many fresh worker processes, no "
        "stopping rule (default: adaptive, see --max-time)")
    add("--max-processes", type=int, default=None, help=f"adaptive: at most this many processes "
        f"(default {MAX_PROCESSES}; a busy machine may go on to {STRETCH:g}x it, as for --max-time)")
    add("--max-time", type=float, default=None, metavar="S", help=f"adaptive: the run's budget in seconds "
        f"of worker processes (default {BUDGET_S['kernel']:g} per kernel group, {BUDGET_S['epoch']:g} per "
        f"epoch group, {STRETCH:g}x that on a busy machine, said); each group stops at its target or here")
    add("--kernel-target", default="1%", metavar="P", help="adaptive: the 95%% interval half-width a "
        f"kernel group stops at (default 1%%); {PERCENT_RULE}")
    add("--epoch-target", default="3%", metavar="P", help="adaptive: the same for an epoch group "
        f"(default 3%%); {PERCENT_RULE}")
    add("--interleave-s", type=float, default=INTERLEAVE_S, help="seconds of interleaved rounds per "
        f"kernel group in each process (default {INTERLEAVE_S:g}; an adaptive run moves them to the "
        "widest intervals)")
    add("--epoch-rounds", type=int, default=None, help="paired rounds per epoch group per process "
        "(default by operation: epoch_lean 8, epoch_fastai 3; see timing.groups.EPOCH_ROUNDS)")
    add("--training", default="", metavar="SETUPS", help="comma-separated training setups "
        "VARIANT+IMPL (e.g. cp+fused; IMPL one of dotbias.models.optimizers.BUILT_IN_IMPLS), timed "
        "beside the variants in step, epoch_lean and epoch_fastai")
    add("--aa", action="store_true", help="also time a copy of the baseline against itself (A/A check)")
    add("--instructions", action="store_true", help="also count instructions per call under "
        "valgrind's callgrind for every CPU kernel group (minutes)")
    add("--instructions-calls", type=int, default=None, help="calls per callgrind measurement "
        "(default by operation: forward 100, forward_backward 50, step 10)")
    add("--instructions-threshold", default="1%", metavar="P", help="instruction-count change "
        f"against the compared run that fails the run (default 1%%); {PERCENT_RULE}")
    add("--fail-slower", default=None, metavar="P", help="with --benchmark-compare: fail the run when "
        "a variant's time ratio to the baseline rose by more than P against the saved run beyond "
        "its noise, i.e. the change's whole interval lies above +P; a slower baseline shows as "
        f"every other variant getting faster; {PERCENT_RULE}")


def _local(config) -> Path:
    """results/local/ under the directory pytest runs from (its rootdir)."""
    return Path(config.rootpath) / LOCAL


def _given(config, flag: str) -> bool:
    """Whether the user set `flag` on the command line, in PYTEST_ADDOPTS or in ini addopts."""
    args = list(config.invocation_params.args) + shlex.split(os.environ.get("PYTEST_ADDOPTS", ""))
    args += list(config.getini("addopts"))
    return any(a == flag or a.startswith(flag + "=") for a in args)


def _defaults(config) -> None:
    """pytest-benchmark defaults that suit these benchmarks, unless the user set them."""
    opt = config.option
    defaults = {"--benchmark-storage": ("benchmark_storage", f"file://{_local(config)}/benchmarks"),
                "--benchmark-disable-gc": ("benchmark_disable_gc", True),
                "--benchmark-max-time": ("benchmark_max_time", "0.2"),
                "--benchmark-min-time": ("benchmark_min_time", "0.001"),
                "--benchmark-timer": ("benchmark_timer", "dotbias.timing.rounds.synced_perf_counter")}
    for flag, (attr, value) in defaults.items():
        if not _given(config, flag):
            setattr(opt, attr, value)
    opt.benchmark_histogram = [h if "/" in h else str(_local(config) / "histograms" / h)
                               for h in opt.benchmark_histogram]


def pytest_configure(config):
    """Runs before pytest-benchmark's own (trylast) configure reads these options."""
    refuse_dashes(config.invocation_params.args)
    try:                                       # and DOTBIAS_VARIANTS, entry points; one line
        registry = plugins.load_variants(config.getoption("variant"), compile=config.getoption("compile"))
        chosen, registry = baseline.choose_baseline(config.getoption("baseline"), registry)
        config.stash[BASELINE], config.stash[REGISTRY] = chosen, registry
        setups = _setups(config, registry)
    except ValueError as e:
        raise pytest.UsageError(str(e)) from None
    opt = config.option
    if not hasattr(opt, "benchmark_storage"):
        return
    _defaults(config)
    disabled = opt.benchmark_disable and not opt.benchmark_enable
    times_nothing = disabled or opt.benchmark_skip or opt.collectonly
    if not times_nothing:
        refuse_xdist(opt)
    quiet_run = times_nothing or os.environ.get("PYTEST_XDIST_WORKER")
    if not quiet_run and not opt.benchmark_save and not opt.benchmark_autosave:
        from pytest_benchmark.utils import get_tag
        opt.benchmark_autosave = get_tag()
    if opt.threads < 1:
        raise pytest.UsageError(f"--threads must be at least 1, got {opt.threads}")
    torch.set_num_threads(opt.threads)
    dotbias = config.stash[SESSION] = Session(config, chosen, registry, fail_slower(opt),
                                              instructions_threshold(opt), plan(opt))
    dotbias.setups = setups
    if not quiet_run:
        dotbias.workers.start()             # its imports overlap collection


def pytest_benchmark_update_machine_info(config, machine_info):
    import fastai
    import numpy
    cuda = torch.cuda.is_available()
    machine_info["dotbias"] = {
        "torch": torch.__version__, "fastai": fastai.__version__, "numpy": numpy.__version__,
        "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "cuda": torch.version.cuda if cuda else None,
        "gpu": torch.cuda.get_device_name(0) if cuda else None}


def pytest_generate_tests(metafunc):
    """The grid, for benchmarks only (tests that ask for `time_op`): `pytest tests bench` in one
    session leaves the other tests' own `device` or `dtype` parameters alone."""
    if "time_op" not in metafunc.fixturenames:
        return
    cfg = metafunc.config
    epoch = "epoch" in metafunc.function.__name__
    devices = [d.strip() for d in cfg.getoption("devices").split(",")]
    dtypes = ["float32"] if epoch else [d.strip() for d in cfg.getoption("dtypes").split(",")]
    if "device" in metafunc.fixturenames:
        metafunc.parametrize("device", devices)
    if "size" in metafunc.fixturenames:
        sizes = [s.name for s in DEFAULT_SIZES]
        if cfg.getoption("sweep") and not epoch:
            sizes += [s.name for s, _ in sweep_sizes()]
        metafunc.parametrize("size", sizes)
    if "dtype" in metafunc.fixturenames:
        metafunc.parametrize("dtype", dtypes)
    if "variant" in metafunc.fixturenames:      # the setups that some selected device and dtype run
        operation = metafunc.function.__name__.removeprefix("test_")
        registry = cfg.stash[REGISTRY]
        setups = _setups(cfg, registry)
        trained = dict.fromkeys(name for device in devices for dtype in dtypes for name in setups_for(
            Group(operation, device, DEFAULT_SIZES[0], dtype), setups, registry))
        metafunc.parametrize("variant", list(registry.variants) + list(trained))


def pytest_collection_modifyitems(config, items):
    """Without a GPU, CUDA benchmarks are deselected (one line says so) rather than skipped; so is
    a training setup where its implementation cannot train the variant (`operations.refusal`:
    row_step in float16, say), one line per setup and reason."""
    cuda = [it for it in items if (g := group_of(it)) and g.device.startswith("cuda")]
    if cuda and not torch.cuda.is_available():
        _deselect(config, items, cuda, f"deselected {len(cuda)} CUDA benchmarks: no GPU on this machine")
    registry, refused = config.stash[REGISTRY], {}
    for it in items:
        if (g := group_of(it)) and "+" in (name := it.callspec.params.get("variant", "")):
            if (why := refusal(g, registry.setup(name), registry)) is not None:
                refused.setdefault(f"{name}: {why}", []).append(it)
    for why, those in refused.items():
        _deselect(config, items, those, f"deselected {len(those)} benchmark(s) of {why}")


def _deselect(config, items: list, those: list, line: str) -> None:
    gone = set(map(id, those))
    items[:] = [it for it in items if id(it) not in gone]
    config.hook.pytest_deselected(items=those)
    config.stash[SESSION].notes.append(line)


def pytest_report_collectionfinish(config, start_path, items):
    dotbias = config.stash.get(SESSION, None)
    return dotbias and dotbias.notes


def pytest_collection_finish(session):
    """Pick the saved run to compare with now that the selection is known; refuse in one line."""
    if (dotbias := session.config.stash.get(SESSION, None)) is not None:
        dotbias.resolve_compare([it for it in session.items if group_of(it)])


@pytest.fixture
def time_op(benchmark, request):
    """Time this item's (group, variant): the session's worker rounds, floors and instruction
    counts go into extra_info, and the same worker rounds are the benchmark's stats (pytest-benchmark's
    table, compare, histogram); nothing is timed in this process. With --benchmark-disable the
    operation runs once, untimed, as a smoke test."""
    def run():
        group = group_of(request.node)
        variant = request.node.callspec.params["variant"]
        dotbias = request.config.stash[SESSION]      # this run's dotbias state (request.session: pytest's)
        benchmark.group = group.label
        benchmark.extra_info.update(format=FORMAT, group=group.as_dict(), variant=variant,
                                    baseline=dotbias.base, compiled=dotbias.registry.compiles(variant),
                                    threads=torch.get_num_threads(), torch=torch.__version__,
                                    sweep_axes=SWEEP_AXES.get(group.size.name, []))
        if not benchmark.enabled:
            benchmark(make_op(group, variant, dotbias.registry))
            return
        benchmark.extra_info.update(dotbias.measure(request.session, group, variant))
        timing = benchmark.extra_info["timing"]
        adapter.record_rounds(benchmark, timing["seconds"], timing["iterations"])
    return run


def pytest_sessionfinish(session, exitstatus):
    dotbias = session.config.stash.get(SESSION, None)
    if dotbias is not None and dotbias.finish() and session.exitstatus == 0:
        session.exitstatus = 1


@pytest.hookimpl(trylast=True)       # after pytest-benchmark's tables: the answer comes last
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    dotbias = config.stash.get(SESSION, None)
    if dotbias is not None and dotbias.lines:
        terminalreporter.section("dotbias verdict")
        for line in dotbias.lines:
            terminalreporter.write_line(line)
