"""Worker processes forked from servers (`timing.worker_server.Workers`): what `pytest bench` and
`dotbias compare` time in. A server costs its imports (~3 s)."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from dotbias.timing.groups import Group, Size
from dotbias.timing.worker_server import Workers, _Server
from dotbias.timing.workers import WorkSpec, aa_name

TINY = Size("tiny", 30, 40, 4, 8)
GROUP = Group("forward", "cpu", TINY, "float32")
PLUGIN = '''import dataclasses
from dotbias.models.registry import Registry
COPY = dataclasses.replace(Registry().get_variant({base!r}), name="wk_copy")
print("a stray print from a plug-in")
'''


@pytest.mark.timing        # real (tiny) timing: .ci/run runs these serially (docs/ci.md)
def test_forked_workers_time_a_plugin_from_the_callers_path_and_survive_failures(tmp_path, monkeypatch,
                                                                                baseline):
    """Caught: the server's own sys.path (fixed when it started) used instead of the caller's (the
    plug-in added later is not found); a stray print read as the reply; an error or a hang that
    kills the server or leaves the next call waiting."""
    base = baseline.name
    with Workers(per_server=5) as workers:         # one server for all five: its imports once
        first = workers.run(WorkSpec((GROUP,), (base,), base, budget_s=0.02), 0, 120)
        assert len(first[GROUP.label].seconds[base]) >= 4
        (tmp_path / "wkmod.py").write_text(PLUGIN.format(base=base))
        monkeypatch.syspath_prepend(str(tmp_path))            # after the server started
        spec = WorkSpec((GROUP,), (base, "wk_copy"), base, aa=True, budget_s=0.02,
                        plugins=("wkmod:COPY",))
        seconds = workers.run(spec, 1, 120)[GROUP.label].seconds
        assert set(seconds) == {base, "wk_copy", aa_name(base)}
        assert len({len(s) for s in seconds.values()}) == 1
        assert all(t > 0 for s in seconds.values() for t in s)
        with pytest.raises(RuntimeError, match=r"^timing worker 3 exited 2: ValueError: unknown variant"):
            workers.run(WorkSpec((GROUP,), ("nope",), base), 2, 120)
        with pytest.raises(RuntimeError, match=r"^timing worker 4 did not finish within 1 s$"):
            workers.run(WorkSpec((GROUP,), (base,), base, budget_s=30), 3, 1)
        again = workers.run(WorkSpec((GROUP,), (base,), base, budget_s=0.02), 4, 120)
        assert len(again[GROUP.label].seconds[base]) >= 4


def test_a_group_times_only_what_its_benchmarks_selected_and_the_baseline(baseline, registry):
    """pytest -k deselects a variant in one group: the worker must not time it there (a compiled
    twin deselected outside forward cost minutes of compilation in every process). Caught: every
    registered variant timed in every group whatever the selection; the baseline dropped."""
    base = baseline.name
    other = Group("step", "cpu", TINY, "float32")
    spec = WorkSpec((GROUP, other), (base, "emb", "bag"), base, setups=(f"{base}+fused",),
                    selected=((GROUP.label, ("emb",)),))
    assert spec.names(GROUP, registry) == (base, "emb")
    assert spec.names(other, registry) == (base, "emb", "bag", f"{base}+fused")
    assert WorkSpec.from_json(spec.to_json()) == spec


FAKE_SERVER = """import json, os, sys, time
for line in sys.stdin:
    print(json.dumps({"pid": os.getpid()}), flush=True)
    time.sleep(0.3)
    print(json.dumps({"rc": 0, "out": "{}", "err": ""}), flush=True)
"""


def test_each_worker_has_a_server_of_its_own_started_while_the_one_before_ran(monkeypatch):
    """Workers forked from one server share its code layout, so a run's processes agree with each
    other better than with the next run's (the interval then misses the next run). With a stand-in
    server (no imports): caught, every worker forked from the first server; the next server
    started only when needed (its imports not overlapped with the worker's rounds); a used server
    left running; `per_server` ignored."""
    monkeypatch.setattr(_Server, "COMMAND", (sys.executable, "-c", FAKE_SERVER))
    spec = WorkSpec((GROUP,), ("cp",), "cp")
    with Workers() as workers:
        served = []
        for i in range(3):
            serving = workers.start().server
            assert workers.run(spec, i, 20) == {}
            done = time.monotonic()
            assert workers.server is not serving and workers.server.started < done - 0.25
            assert serving.proc.returncode == 0
            served.append(serving)
        assert len(set(served)) == 3
    assert workers.server is None and served[-1].proc.returncode == 0
    with Workers(per_server=2) as workers:
        first = workers.start().server
        workers.run(spec, 0, 20)
        assert workers.server is first
        workers.run(spec, 1, 20)
        assert workers.server is not first and first.proc.returncode == 0


def test_two_lines_that_arrive_together_are_both_read_at_once():
    """A quick worker's pid line and result line can reach the pipe in one write. Caught: select on
    a file object whose buffer already holds the second line waits out the timeout and calls the
    worker hung."""
    server = _Server.__new__(_Server)
    server.buffer, server.proc = b"", subprocess.Popen(
        [sys.executable, "-c", "print('one\\ntwo', flush=True); import time; time.sleep(30)"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert server.line(20, 0) == "one"
        start = time.monotonic()
        assert server.line(5, 0) == "two" and time.monotonic() - start < 1
        with pytest.raises(RuntimeError, match="^timing worker 1 did not finish within 0 s$"):
            server.line(0.2, 0)
    finally:
        server.proc.kill()
        server.proc.wait()
