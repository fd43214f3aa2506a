"""Worker processes forked from servers (`timing.worker_server.Workers`): what `pytest bench` and
`dotbias compare` time in. The tests share a pool of servers (their imports, ~3 s) and fork from them."""
from __future__ import annotations

import sys
import time

import pytest

from dotbias.models.registry import Registry
from dotbias.timing.groups import KERNELS, Group, Size
from dotbias.timing.worker_server import Server, Workers, servers_of
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
                                                                                baseline, worker_pool):
    """Caught: the server's own sys.path (fixed when it started) used instead of the caller's (the
    plug-in added later is not found); a stray print read as the reply; an error or a hang that
    kills the server or leaves the next call waiting."""
    base, workers = baseline.name, worker_pool     # one server (conftest._worker_pool)
    run = workers.run
    first = run(WorkSpec((GROUP,), (base,), base, budget_s=0.02), 0, 120)
    assert len(first[GROUP.label].seconds[base]) >= 4
    (tmp_path / "wkmod.py").write_text(PLUGIN.format(base=base))
    monkeypatch.syspath_prepend(str(tmp_path))            # after the server started
    spec = WorkSpec((GROUP,), (base, "wk_copy"), base, aa=True, budget_s=0.02,
                    plugins=("wkmod:COPY",))
    seconds = run(spec, 1, 120)[GROUP.label].seconds
    assert set(seconds) == {base, "wk_copy", aa_name(base)}
    assert len({len(s) for s in seconds.values()}) == 1
    assert all(t > 0 for s in seconds.values() for t in s)
    with pytest.raises(RuntimeError, match=r"^timing worker 3 exited 2: ValueError: unknown variant"):
        run(WorkSpec((GROUP,), ("nope",), base), 2, 120)
    hung = workers.servers[0]                       # the hung worker's server
    with pytest.raises(RuntimeError, match=r"^timing worker 4 did not finish within 1 s$"):
        run(WorkSpec((GROUP,), (base,), base, budget_s=30), 3, 1)
    again = run(WorkSpec((GROUP,), (base,), base, budget_s=0.02), 4, 120)
    assert len(again[GROUP.label].seconds[base]) >= 4 and workers.servers[0] is hung    # it goes on
    assert len(workers.servers) == workers.count and all(s.alive() for s in workers.servers)


# A stand-in server: the protocol of `worker_server.serve` without its imports (SLEEP seconds of
# them); each worker's "rounds" are the pid of the server that forked it.
STAND_IN = """import json, os, sys, time
time.sleep(SLEEP)
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    print(json.dumps({"pid": os.getpid()}), flush=True)
    out = json.dumps({"g": {"seconds": {"server": [os.getpid()]}, "iterations": {"server": 1}}})
    print(json.dumps({"rc": 0, "out": out, "err": "", "imported": []}), flush=True)
"""


def test_each_server_forks_its_uses_then_is_retired_while_the_next_one_is_ready():
    """Five workers of servers that fork two each: the servers of the processes are
    `servers_of(5, 2)`, each retired server stopped, and its successor started before the next
    worker is asked (its imports overlap that worker's timing). Caught: a server that forks more
    than its `uses` workers (its processes share a layout the interval then counts as theirs
    alone); a retired one left running; a successor started only when its worker is due (the
    imports in the worker's time, as fresh interpreters)."""
    workers = Workers(servers=2, uses=2, argv=[sys.executable, "-c", STAND_IN.replace("SLEEP", "0")]).start()
    try:
        forking, running = [], []
        for index in range(5):
            forking.append(workers.servers[0])
            pid = forking[-1].proc.pid
            assert workers.run(WorkSpec((GROUP,), ("x",), "x"), index, 20)["g"].seconds["server"] == [pid]
            running.append(len([s for s in workers.servers if s.alive()]))
        order = {id(s): i for i, s in enumerate(dict.fromkeys(forking))}
        assert tuple(order[id(s)] for s in forking) == servers_of(5, 2) == (0, 0, 1, 1, 2)
        assert all(s.proc is None for s in forking[:4]) and running == [2] * 5
    finally:
        workers.close()


@pytest.mark.timing        # real (tiny) timing: .ci/run runs these serially (docs/ci.md)
def test_a_forked_worker_imports_nothing_its_server_could_have(baseline, worker_pool):
    """Every kernel operation of every built-in variant (the optimizer and the A/A copy too) in one
    forked worker. Caught: a library a variant or the optimizer imports lazily (fastai's collab
    stack, dynamo: 1,515 modules) imported after the fork, in every process, about 1.4 s of a
    7.5 s benchmark process spent outside its rounds (PRELOAD)."""
    base = baseline.name
    groups = tuple(Group(op, "cpu", TINY, "float32") for op in KERNELS)
    spec = WorkSpec(groups, tuple(dict.fromkeys((*Registry().variants, base))), base, aa=True,
                    budget_s=0.01, setups=(f"{base}+fused",))
    assert set(worker_pool.run(spec, 0, 120)) == {g.label for g in groups}
    imported = worker_pool.imported
    assert len(imported) <= 3, f"the worker imported {len(imported)} modules: {', '.join(imported[:10])}"


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


def test_two_lines_that_arrive_together_are_both_read_at_once():
    """A quick worker's pid line and result line can reach the pipe in one write. Caught: select on
    a file object whose buffer already holds the second line waits out the timeout and calls the
    worker hung."""
    server = Server(1, [sys.executable, "-c", "print('one\\ntwo', flush=True); "
                        "import time; time.sleep(30)"])
    proc = server.proc
    try:
        assert server.line(20, 0) == "one"
        start = time.monotonic()
        assert server.line(5, 0) == "two" and time.monotonic() - start < 1
        with pytest.raises(RuntimeError, match="^timing worker 1 did not finish within 0 s$"):
            server.line(0.2, 0)
    finally:
        proc.kill()
        proc.wait()


def test_a_server_that_served_no_worker_is_stopped_at_once_and_one_that_did_at_its_end():
    """A session that fails before timing anything closes its servers at once. Caught: closing by
    end of input only, which waits out the servers' imports (about 2 s of every failing
    `pytest bench`); killing a server that served, which could cut a worker's reply."""
    workers = Workers(servers=2).start()
    idle = [s.proc for s in workers.servers]
    workers.close()
    assert [p.returncode for p in idle] == [-9, -9] and workers.servers == []
    busy = Server(1, [sys.executable, "-c", "import sys; sys.stdin.read()"])
    proc, busy.served = busy.proc, True
    busy.close()
    assert proc.returncode == 0 and busy.proc is None


def test_a_server_that_died_is_closed_before_it_is_replaced():
    """Caught: a dead server dropped from the pool with its pipes open (two file descriptors
    leaked per crash in a long session)."""
    workers = Workers(servers=1).start()
    dead = workers.servers[0]
    proc = dead.proc
    proc.kill()
    proc.wait()
    workers.start()
    assert dead.proc is None and proc.stdin.closed and proc.stdout.closed
    assert workers.servers[0] is not dead and workers.servers[0].alive()
    workers.close()


def test_an_epoch_worker_waits_for_every_server_and_a_kernel_worker_for_its_own():
    """A kernel worker runs while the next server imports (its blocks interleave the variants);
    an epoch worker waits for every server's imports (single calls of up to a second, which an
    import would meet in some processes only). Caught: an epoch worker timed beside an import; a
    kernel worker waiting for every server (an import's time added to every process: about 7
    processes in a default run's budget instead of 13)."""
    stand_in = [sys.executable, "-c", STAND_IN.replace("SLEEP", "0.05")]
    epoch = Group("epoch_lean", "cpu", TINY, "float32")
    for group, waited in ((GROUP, False), (epoch, True)):
        workers = Workers(servers=2, uses=1, argv=stand_in).start()
        try:
            second = workers.servers[1]
            workers.run(WorkSpec((group,), ("x",), "x"), 0, 20)
            assert workers.servers[0] is second and second.ready is waited, group.operation
        finally:
            workers.close()
