"""`timing.interleave` (order, pairing, round count under a fake clock), the Group record and the
worker processes (a real tiny run, and a failing one reported in one line)."""
from __future__ import annotations

import io

import pytest

from dotbias.timing import blocks, rounds
from dotbias.timing.groups import KERNELS, Group, Size
from dotbias.timing.operations import make_op
from dotbias.timing.rounds import interleave
from dotbias.timing.stats import typical_time
from dotbias.timing.workers import WorkSpec, aa_name

TINY = Size("tiny", 20, 30, 4, 8)


class FakeClock:
    """perf_counter that only moves when a fake function 'runs' for its cost."""
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = FakeClock()
    monkeypatch.setattr(rounds.time, "perf_counter", c)
    return c


def _fns(clock, costs: dict[str, float], log: list[str]):
    def make(name, cost):
        def fn():
            clock.now += cost
            log.append(name)
        return fn
    return {n: make(n, c) for n, c in costs.items()}


def test_rounds_pair_a_random_order_with_its_reverse_and_every_variant_gets_blocks_of_one_length(clock):
    """Caught: one count of calls for every variant, sized for the fastest (a variant 18x slower
    than `cp+row_step` got blocks of 92 ms and 4 rounds a process); a fixed order; no reversal;
    a block timed without its untimed lead-in calls first."""
    log: list[str] = []
    res = interleave(_fns(clock, {"a": 2e-3, "b": 1e-3, "c": 1e-3}, log), budget_s=0.161,
                     block_s=4e-3)
    assert res.iterations == {"a": 2, "b": 4, "c": 4}       # each fills block_s
    calls = {n: blocks.lead_in_calls(i) + i for n, i in res.iterations.items()}
    assert calls == {"a": 4, "b": 6, "c": 6}                # two lead-in calls before each block
    assert {len(s) for s in res.seconds.values()} == {8}    # 20 ms rounds (8 lead-in) to 0.161 s
    timed, starts = log[-sum(calls.values()) * 8:], []
    while timed:
        starts.append(timed[0])
        assert timed[:calls[timed[0]]] == [timed[0]] * calls[timed[0]]
        timed = timed[calls[timed[0]]:]
    rounds_ = [starts[i:i + 3] for i in range(0, 24, 3)]
    assert all(sorted(r) == ["a", "b", "c"] for r in rounds_)
    assert all(rounds_[i + 1] == rounds_[i][::-1] for i in range(0, 8, 2))    # ABBA, generalised
    assert len({tuple(r) for r in rounds_[::2]}) > 1                          # not one fixed order
    assert all(s == pytest.approx(2e-3) for s in res.seconds["a"])
    assert all(s == pytest.approx(1e-3) for s in res.seconds["b"])


@pytest.mark.parametrize("iterations", [{"a": 4, "b": 16}, {"a": 16, "b": 4}, {"a": 40, "b": 9},
                                        {"a": 8, "b": 9}])
def test_a_ratio_does_not_follow_the_block_lengths(clock, iterations):
    """Two variants of one steady cost whose first call after the other's block is 3x slow and
    the second 1.2x (a refill of caches and predictors; 1.5x and 1.1x measured here, then a few
    percent for a few calls): their ratio is 1 whatever each one's block length. Caught: the
    refill timed inside the block, so a variant's time fell with its block's length and each run's
    calibrated lengths moved its ratio (4 against 16 calls: 1.33); one lead-in call for a block of
    8 and two for one of 9 (an eighth, rounded up), which moved step emb/cp, blocks of 8 and 9
    calls, by about 1% from run to run."""
    last, streak = [""], [0]

    def make(name):
        def fn():
            streak[0] = streak[0] + 1 if last[0] == name else 0
            clock.now += 1e-3 * {0: 3.0, 1: 1.2}.get(streak[0], 1.0)
            last[0] = name
        return fn
    res = interleave({n: make(n) for n in ("a", "b")}, budget_s=0.5, iterations=iterations)
    assert res.iterations == iterations
    ratios = [x / y for x, y in zip(res.seconds["a"], res.seconds["b"])]
    assert len(ratios) >= 4 and all(r == pytest.approx(1.0) for r in ratios)


@pytest.mark.parametrize("load, block", [(1.0, blocks.SHORT_BLOCK_S), (2.0, blocks.SHORT_BLOCK_S),
                                         (8.0, blocks.LONG_BLOCK_S)])
def test_blocks_are_short_unless_other_processes_wait_for_the_cores(clock, monkeypatch, load, block):
    """On 2 cores, at most 2 threads runnable now give short blocks, 8 long ones, and the
    calibration fills the chosen length. Caught: long blocks on a machine with a core to spare (a
    quarter of the rounds, wider intervals) or short ones where processes queue for the cores (a
    block either escapes or loses a whole scheduler slice)."""
    monkeypatch.setattr(blocks, "runnable_now", lambda: load)
    monkeypatch.setattr(blocks.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert blocks.block_seconds() == block
    assert blocks.block_seconds(load=load, cores=2) == block
    res = interleave(_fns(clock, {"a": 1e-3, "b": 2.5e-3}, []), budget_s=0.5)
    assert res.iterations == {"a": round(block / 1e-3), "b": round(block / 2.5e-3)}


def _proc_stat(counts):
    """A stand-in for `open` that reads /proc/stat with procs_running from `counts`, in turn."""
    left = iter(counts)

    def fake(path, *args, **kwargs):
        assert path == "/proc/stat"
        return io.StringIO(f"cpu  1 2 3\nprocs_running {next(left)}\nprocs_blocked 0\n")
    return fake


def test_blocks_follow_the_threads_runnable_now_not_the_last_minute(monkeypatch):
    """A run's own server imports, or the run before it, leave the 1-minute load average above
    the cores for a minute after the machine went quiet (2.1-2.6 on 2 cores). Caught: the block
    length read from the load average (long blocks, a quarter of the rounds, on a quiet machine);
    one busy sample of procs_running taken for the machine's state (the median of them is)."""
    monkeypatch.setattr(blocks.os, "getloadavg", lambda: (2.6, 2.0, 1.5))
    monkeypatch.setattr(blocks.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(blocks.time, "sleep", lambda s: None)
    monkeypatch.setattr(blocks, "open", _proc_stat([1, 2, 5, 1, 2]), raising=False)
    assert blocks.runnable_now(samples=5) == 2.0
    monkeypatch.setattr(blocks, "open", _proc_stat([2] * 21), raising=False)
    assert blocks.block_seconds() == blocks.SHORT_BLOCK_S
    monkeypatch.setattr(blocks, "open", _proc_stat([3] * 21), raising=False)
    assert blocks.block_seconds() == blocks.LONG_BLOCK_S


def test_blocks_are_long_where_the_system_does_not_say_its_load(monkeypatch):
    """Caught: a machine without /proc/stat (macOS) read as quiet; the load average's fallback lost."""
    def unknown(*args, **kwargs):
        raise OSError("no such file here")
    monkeypatch.setattr(blocks, "open", unknown, raising=False)
    monkeypatch.setattr(blocks.os, "getloadavg", lambda: (8.0, 8.0, 8.0))
    assert blocks.runnable_now() is None
    assert blocks.block_seconds(cores=2) == blocks.LONG_BLOCK_S
    monkeypatch.setattr(blocks.os, "getloadavg", unknown)
    assert blocks.block_seconds() == blocks.LONG_BLOCK_S


def test_epoch_rounds_cost_one_warm_up_call_each_and_no_calibration(clock):
    """Epochs (one call a round, `block_s=0`): each variant runs once to warm up, then once a round;
    a calibration call would cost a whole extra epoch per variant and process."""
    log: list[str] = []
    res = interleave(_fns(clock, {"a": 0.5, "b": 0.4}, log), budget_s=0, block_s=0, min_rounds=3,
                     max_rounds=3)
    assert res.iterations == {"a": 1, "b": 1} and {len(s) for s in res.seconds.values()} == {3}
    assert log.count("a") == log.count("b") == 1 + 3


def test_a_variant_run_twice_in_a_row_gains_no_systematic_edge(clock):
    """A call right after a call of the same function is 40% cheaper (its data still in cache).
    With a fixed order the variant at an end ran twice in a row at every other round boundary;
    in random orders every variant meets that as often on average: A/A ratios stay near 1."""
    last = [None]

    def make(name):
        def fn():
            clock.now += 1e-3 * (0.6 if last[0] == name else 1.0)
            last[0] = name
        return fn
    fns = {n: make(n) for n in ("emb", "cp", "fastai", "cp_copy")}
    res = interleave(fns, budget_s=0, block_s=0, min_rounds=4000, max_rounds=4000)
    times = {n: typical_time([s]) for n, s in res.seconds.items()}
    assert max(times.values()) / min(times.values()) < 1.01, times


def test_round_count_is_clamped(clock):
    fns = _fns(clock, {"a": 1.0, "b": 1.0}, [])
    assert len(interleave(fns, budget_s=0, block_s=0, min_rounds=3, max_rounds=3).seconds["a"]) == 3
    fns = _fns(clock, {"a": 1e-6, "b": 1e-6}, [])
    assert len(interleave(fns, budget_s=10.0, max_rounds=50).seconds["b"]) == 50


def test_a_slow_calibration_does_not_cut_the_rounds_short(clock):
    """The first calls (warm-up, the calibration's single calls) 100x slow, as when another
    process preempts them: the calibration's blocks still find the steady count, and the rounds
    fill their budget by their own clock. Caught: a round count fixed in advance from the
    calibration (a tenth of the rounds), and blocks sized from single calls alone (1 call, not
    4; in real runs the baseline's blocks came out 2.3-4.5 ms and moved its ratios)."""
    calls = {"a": 0, "b": 0}

    def make(name):
        def fn():
            calls[name] += 1
            clock.now += 1e-3 * (100 if calls[name] <= 4 else 1)
        return fn
    res = interleave({n: make(n) for n in calls}, budget_s=0.4, block_s=4e-3)
    assert res.iterations == {"a": 4, "b": 4}       # blocks of 4 ms, as if nothing was slow
    assert len(res.seconds["a"]) == 32              # 0.4 s of 12 ms rounds (2 lead-in calls each)
    assert res.spent_s == pytest.approx(0.256)      # timed; the lead-in calls took 0.128 s more


def test_a_slow_moment_in_one_variants_calibration_does_not_halve_its_blocks(clock):
    """The machine runs 2x slow for the first 25 ms, while the first variant calibrates when the
    variants calibrate one after the other: both still get blocks of 4 calls, from the fastest of
    their interleaved calibration blocks. Caught: calibration one variant after the other (blocks
    of 2 calls for `a` and 4 for `b` here, for the whole run: step cp 4 calls where 7-9 is usual
    moved bag/cp to 1.192, against 1.210-1.226 in 19 other runs, round 29)."""
    def make(name):
        def fn():
            clock.now += 1e-3 * (2 if clock.now < 0.025 else 1)
        return fn
    res = interleave({n: make(n) for n in ("a", "b")}, budget_s=0.2, block_s=4e-3)
    assert res.iterations == {"a": 4, "b": 4}
    assert blocks.calls_per_block({"a": make("a")}, 0, "cpu") == {"a": 1}     # an epoch: none


def test_every_variant_holds_every_position_equally_often_and_repeats_once_per_cycle(clock):
    log: list[str] = []
    names = ["a", "b", "c", "d"]
    interleave(_fns(clock, dict.fromkeys(names, 1.0), log), budget_s=0, block_s=0, min_rounds=8,
               max_rounds=8)
    rounds = [log[-32:][i:i + 4] for i in range(0, 32, 4)]      # 4 pairs: one full cycle
    for pos in range(4):
        assert sorted(r[pos] for r in rounds) == sorted(names * 2)
    twice = [rounds[i][-1] for i in range(0, 8, 2)]            # end of a round, start of its reverse
    assert sorted(twice) == names
    assert all(rounds[i][-1] != rounds[i + 1][0] for i in range(1, 7, 2))    # never across pairs


def test_rounds_are_read_back_once_and_a_malformed_result_is_one_line():
    r = rounds.Rounds({"a": [1e-3, 2e-3], "b": [1e-3, 1e-3]}, {"a": 10, "b": 20}, {"a": 0.5, "b": 0.1},
                      {"a": 0, "b": 1})
    assert rounds.Rounds.from_dict(r.as_dict()) == r and r.spent_s == pytest.approx(0.07)
    with pytest.raises(ValueError, match="not a worker's rounds"):
        rounds.Rounds.from_dict({"seconds": {"a": [1.0]}})


def test_group_round_trips_and_bad_groups_are_one_line(registry):
    g = Group("step", "cpu", TINY, "float64")
    assert Group.from_dict(g.as_dict()) == g and g.label == "step cpu tiny float64"
    with pytest.raises(ValueError, match="not a benchmark group"):
        Group.from_dict({"operation": "step", "device": "cpu"})
    with pytest.raises(ValueError, match="unknown operation 'nope'"):
        make_op(Group("nope", "cpu", TINY, "float32"), "cp", registry)


@pytest.mark.parametrize("operation", KERNELS)
def test_every_kernel_runs_for_every_variant(operation, registry):
    for v in registry.variants:
        make_op(Group(operation, "cpu", TINY, "float32"), v, registry)()


@pytest.mark.timing        # real timing: .ci/run runs these serially (docs/ci.md)
def test_a_worker_process_times_every_variant_and_the_aa_copy(tiny_workers):
    """conftest.py's tiny real worker run: every variant and the A/A copy in every group, the same
    number of rounds each (the training setup only where it trains: tests/test_training.py)."""
    spec, result, _ = tiny_workers
    assert WorkSpec.from_json(spec.to_json()) == spec
    for g in spec.groups:
        seconds = result[g.label].seconds
        assert set(seconds) - set(spec.setups) == {"emb", "cp", aa_name("cp")}, g.label
        assert len({len(s) for s in seconds.values()}) == 1 and len(seconds["cp"]) >= 4, g.label
        assert all(t > 0 for s in seconds.values() for t in s), g.label


@pytest.mark.timing        # real timing: .ci/run runs these serially (docs/ci.md)
def test_a_failing_worker_is_one_line(tiny_workers):
    error = tiny_workers[2]
    assert isinstance(error, RuntimeError), error
    msg = str(error)
    assert msg.startswith("timing worker 2 exited 2:") and "no_such_variant" in msg and "\n" not in msg


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the no-GPU message")
def test_cuda_benchmarks_are_deselected_with_one_line(nested_pytest):
    done = nested_pytest("bench", "--benchmark-disable", "-k", "forward and not backward")
    out = "\n".join(done.outlines)
    assert done.ret == 0, out[-2000:]
    assert "CUDA benchmarks: no GPU on this machine" in out and "skipped" not in out


@pytest.mark.filterwarnings("ignore::pytest_benchmark.logger.PytestBenchmarkWarning")   # the nested run's
def test_compare_without_a_usable_saved_run_fails_in_one_line(tmp_path, nested_pytest):
    store = tmp_path / "store"          # pytest-benchmark also reads runs at the storage's top level
    store.mkdir()
    (store / "0001_bad.json").write_text("{not json")
    done = nested_pytest("bench", "--benchmark-compare", f"--benchmark-storage=file://{store}",
                         "-k", "forward and not backward and cp")
    assert done.ret == 4
    [line] = [ln for ln in done.errlines + done.outlines if ln.startswith("ERROR:")]
    assert "--benchmark-compare: " in line and "0001_bad.json: not valid JSON" in line
