"""Every use of pytest-benchmark's private parts, in one place (nothing else in dotbias touches them).

pytest-benchmark has no public way to do two things this plugin needs, so it uses three private
names, all here:
- `config._benchmarksession`: the session object (its storage, the run `--benchmark-compare`
  loads, this session's benchmarks) is kept only there; `benchmark_session` reads it.
- `BenchmarkFixture._make_stats` and `BenchmarkFixture._mode`: the times pytest-benchmark shows
  (its table, `pytest-benchmark compare`, `--benchmark-compare-fail`, histograms, the saved JSON's
  `stats`) must be the interleaved worker timing the intervals come from, not a second in-process
  timing; `_make_stats` is how the fixture itself creates and registers the stats that `benchmark(fn)`
  then fills with `Metadata.update` (public), and `_mode` marks the fixture as used, as
  `benchmark(fn)` does (else it warns "not used at all" and would allow a second timing).
"""
from __future__ import annotations

MODE = "dotbias worker rounds"


def benchmark_session(config):
    """pytest-benchmark's BenchmarkSession for this pytest run, None when its plugin is not active."""
    return getattr(config, "_benchmarksession", None)


def record_rounds(fixture, seconds: list[list[float]], iterations: list[int]) -> None:
    """Give `fixture` the worker timing as its stats: every timed round of every process, each
    `iterations` back-to-back calls (this variant's count: the first process calibrates it, the
    others reuse it), so pytest-benchmark's Rounds, Iterations, Min, Max, StdDev and outliers mean
    what they mean in any pytest-benchmark table. Nothing is timed here."""
    if fixture._mode:
        raise RuntimeError(f"{fixture.name}: the benchmark fixture was already used ({fixture._mode})")
    fixture._mode = MODE
    its = {int(i) for i in iterations} or {1}
    if len(its) > 1:
        raise ValueError(f"{fixture.name}: processes timed blocks of different lengths {sorted(its)}")
    stats = fixture._make_stats(its.pop())
    for rounds in seconds:
        for s in rounds:
            stats.update(s * stats.iterations)      # Metadata.update divides by its iterations
