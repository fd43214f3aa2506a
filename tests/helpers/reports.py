"""Synthetic pytest-benchmark runs as `pytest bench` saves them (one benchmark entry, an emb/cp
pair with a known ratio, a whole run file), for the report, saved-run, cross-version and
instruction-count tests."""
from __future__ import annotations

import json
import types

import numpy as np

from dotbias.pytest_bench import plugin
from helpers.synthetic_timing import paired

ML100K = {"name": "ml100k", "n_users": 944, "n_items": 1665, "n_factors": 50, "bs": 64}


def bench_entry(op, variant, processes, *, size=ML100K, axes=(), aa=None):
    flat = np.asarray(sum(processes, []), float)
    info = {"group": {"operation": op, "device": "cpu", "size": dict(size), "dtype": "float32"},
            "variant": variant, "threads": 1, "sweep_axes": list(axes),
            "timing": {"seconds": processes, "iterations": [10] * len(processes)}}
    if aa is not None:
        info["aa"] = {"seconds": aa}
    name = f"test_{op}[cpu-{size['name']}-float32-{variant}]"
    return {"group": f"{op} cpu {size['name']} float32", "name": name,
            "fullname": f"bench/test_{op}.py::{name}",
            "extra_info": info, "stats": {"median": float(np.median(flat)), "rounds": len(flat)}}


def pair(op, ratio, seed, **kw):
    num, den = paired(ratio, seed=seed, processes=kw.pop("processes", 6), rounds=kw.pop("rounds", 40))
    return [bench_entry(op, "emb", num, **kw), bench_entry(op, "cp", den, **kw)]


def write_run(path, benchmarks, torch="2.13.0"):
    data = {"machine_info": {"node": "test", "cpu": {"brand_raw": "TestCPU"}, "python_version": "3.11",
                             "dotbias": {"torch": torch, "torch_threads": 1, "cpu_count": 2}},
            "commit_info": {"id": "abc123", "dirty": False}, "datetime": "2026-01-01T00:00:00",
            "version": "5.3.1", "benchmarks": benchmarks}
    path.write_text(json.dumps(data))
    return path


class FakeBenchmark:
    """pytest-benchmark's fixture with benchmarking off: records what time_op hands it."""
    enabled = False

    def __init__(self):
        self.extra_info, self.group, self.calls = {}, None, []

    def __call__(self, fn):
        self.calls.append(fn)

    def pedantic(self, fn, **kwargs):
        self.calls.append(fn)


def time_op_info(variant: str, registry) -> dict:
    """The extra_info `pytest bench`'s time_op fixture writes for one forward benchmark of a run
    whose registry is `registry`."""
    params = {"device": "cpu", "size": "ml100k", "dtype": "float32", "variant": variant}
    node = types.SimpleNamespace(callspec=types.SimpleNamespace(params=params),
                                 originalname="test_forward", fixturenames=["time_op"])
    session = types.SimpleNamespace(base="cp", registry=registry)
    request = types.SimpleNamespace(node=node, config=types.SimpleNamespace(stash={plugin.SESSION: session}),
                                    session=None)
    bench = FakeBenchmark()
    getattr(plugin.time_op, "__wrapped__", plugin.time_op)(bench, request)()
    assert len(bench.calls) == 1, variant
    return bench.extra_info
