"""Benchmark set-up: options, the device/size/dtype/variant grid, and pytest-benchmark defaults that
make `pytest bench` save its runs under results/benchmarks so `--benchmark-compare` works at once.

Only `pytest bench` loads this file; `pytest tests` is unaffected."""
from __future__ import annotations

import gc
import os
import shlex
from pathlib import Path

import pytest
import torch

from dotbias import plugins
from dotbias.timing import Size, interleave, make_inputs, make_op
from dotbias.variants import VARIANTS

ROOT = Path(__file__).resolve().parent.parent
STORAGE = ROOT / "results" / "benchmarks"

# MovieLens 100k as fastbook loads it (944 user ids, 1665 titles), n_factors=50, bs=64.
DEFAULT_SIZES = [Size("ml100k", 944, 1665, 50, 64)]


def _sweep_sizes() -> list[tuple[Size, list[str]]]:
    """One axis at a time around a base (n=1e4 users and items, 64 factors, batch 1024)."""
    base = dict(n=10_000, f=64, bs=1024)
    axes = {"n": [1_000, 10_000, 100_000, 1_000_000], "f": [8, 32, 64, 128, 256],
            "bs": [64, 256, 1024, 4096, 16384]}
    sizes: dict[tuple, list[str]] = {}
    for axis, values in axes.items():
        for value in values:
            key = tuple((value if k == axis else base[k]) for k in ("n", "f", "bs"))
            sizes.setdefault(key, []).append(axis)
    return [(Size(f"n{n:.0e}-f{f}-bs{bs}".replace("+0", ""), n, n, f, bs), axes_)
            for (n, f, bs), axes_ in sizes.items()]


def pytest_addoption(parser):
    plugins.add_pytest_option(parser)           # --variant pkg.module:attr (repeatable)
    g = parser.getgroup("dotbias", "dotbias benchmarks")
    g.addoption("--sweep", action="store_true", help="also time a size sweep (users/items 1e3..1e6, "
                "factors 8..256, batch 64..16384), one axis at a time")
    g.addoption("--devices", default="cpu,cuda", help="comma-separated devices (cuda skips without a GPU)")
    g.addoption("--dtypes", default="float32", help="comma-separated dtypes, e.g. float32,float64")
    g.addoption("--threads", type=int, default=1, help="torch.set_num_threads for the whole run (default 1)")
    g.addoption("--epoch-rounds", type=int, default=3, help="timed epochs per variant (after 1 warm-up)")
    g.addoption("--interleave-s", type=float, default=2.0,
                help="seconds per group spent in rounds interleaved between variants (for the ratios)")


def _given(config, flag: str) -> bool:
    """Whether the user set `flag` on the command line, in PYTEST_ADDOPTS or in ini addopts."""
    args = list(config.invocation_params.args) + shlex.split(os.environ.get("PYTEST_ADDOPTS", ""))
    args += list(config.getini("addopts"))
    return any(a == flag or a.startswith(flag + "=") for a in args)


def pytest_configure(config):
    """Runs before pytest-benchmark's own (trylast) configure reads these options."""
    plugins.load_variants(config.getoption("variant"))     # and DOTBIAS_VARIANTS, entry points
    opt = config.option
    if not hasattr(opt, "benchmark_storage"):
        return
    if not _given(config, "--benchmark-storage"):
        opt.benchmark_storage = f"file://{STORAGE}"
    opt.benchmark_save_data = True            # raw rounds, for the report's bootstrap
    if not _given(config, "--benchmark-disable-gc"):
        opt.benchmark_disable_gc = True
    if not _given(config, "--benchmark-warmup"):
        opt.benchmark_warmup = True
    if not _given(config, "--benchmark-warmup-iterations"):
        opt.benchmark_warmup_iterations = 1000
    if not _given(config, "--benchmark-min-time"):
        opt.benchmark_min_time = "0.001"      # rounds of >= 1 ms: fewer, steadier, smaller JSON
    if not _given(config, "--benchmark-timer"):
        opt.benchmark_timer = "dotbias.timing.synced_perf_counter"
    disabled = opt.benchmark_disable and not opt.benchmark_enable
    quiet_run = disabled or opt.benchmark_skip or opt.collectonly or os.environ.get("PYTEST_XDIST_WORKER")
    if not quiet_run and not opt.benchmark_save and not opt.benchmark_autosave:
        from pytest_benchmark.utils import get_tag
        opt.benchmark_autosave = get_tag()
    torch.set_num_threads(opt.threads)


def pytest_benchmark_update_machine_info(config, machine_info):
    import fastai
    import numpy
    cuda = torch.cuda.is_available()
    machine_info["dotbias"] = {
        "torch": torch.__version__, "fastai": fastai.__version__, "numpy": numpy.__version__,
        "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "cuda": torch.version.cuda if cuda else None,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
    }


def pytest_generate_tests(metafunc):
    cfg = metafunc.config
    if "device" in metafunc.fixturenames:
        metafunc.parametrize("device", [d.strip() for d in cfg.getoption("devices").split(",")])
    if "size" in metafunc.fixturenames:
        sizes = [(s, []) for s in DEFAULT_SIZES]
        if cfg.getoption("sweep") and "epoch" not in metafunc.function.__name__:
            sizes += _sweep_sizes()
        metafunc.parametrize("size", [s.name for s, _ in sizes])
    if "dtype" in metafunc.fixturenames:
        metafunc.parametrize("dtype", [d.strip() for d in cfg.getoption("dtypes").split(",")])
    if "variant" in metafunc.fixturenames:
        metafunc.parametrize("variant", list(VARIANTS))


@pytest.fixture(autouse=True)
def _skip_missing_device(request):
    device = request.node.callspec.params.get("device") if hasattr(request.node, "callspec") else None
    if device and device.startswith("cuda") and not torch.cuda.is_available():
        pytest.skip("CUDA is not available on this machine")


def get_size(name: str) -> Size:
    for s in DEFAULT_SIZES + [s for s, _ in _sweep_sizes()]:
        if s.name == name:
            return s
    raise ValueError(f"unknown size {name!r}")


def sweep_axes(size: Size) -> list[str]:
    for s, axes in _sweep_sizes():
        if s == size:
            return axes
    return []


def group_name(operation: str, device: str, size: Size, dtype: str) -> str:
    return f"{operation} | {device} | {size.name} | {dtype}"


def base_info(operation: str, variant: str, device: str, size: Size, dtype: str) -> dict:
    return {"operation": operation, "variant": variant, "device": device, "dtype": dtype,
            "size": size.as_dict(), "sweep_axes": sweep_axes(size), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else None}


@pytest.fixture(scope="session")
def interleaved_cache() -> dict:
    return {}


@pytest.fixture
def time_op(benchmark, device, size, dtype, variant, interleaved_cache, request):
    """Time one operation of one variant with pytest-benchmark; the first variant of a group also
    runs all variants in interleaved rounds once, and each stores its rounds in extra_info."""
    def run(operation: str):
        size_ = get_size(size)
        torch_dtype = getattr(torch, dtype)
        benchmark.group = group_name(operation, device, size_, dtype)
        benchmark.extra_info.update(base_info(operation, variant, device, size_, dtype))
        inputs = make_inputs(size_, device, torch_dtype)
        if benchmark.enabled:
            key = benchmark.group
            if key not in interleaved_cache:
                fns = {v: make_op(operation, v, size_, inputs, device, torch_dtype) for v in VARIANTS}
                interleaved_cache[key] = interleave(
                    fns, device=device, budget_s=request.config.getoption("interleave_s"))
                del fns
                gc.collect()
            benchmark.extra_info["interleaved"] = interleaved_cache[key].info(variant)
        benchmark(make_op(operation, variant, size_, inputs, device, torch_dtype))
    return run
