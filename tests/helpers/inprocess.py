"""Timing workers run in the test's own process: `workers.work` on the spec as a worker process
reads it, its rounds back through the JSON a worker writes. For the nested `pytest bench` runs
whose point is what the session does with the rounds (the baseline, the A/A copy, a training
setup's row), and `dotbias compare`'s SLOWER verdict, not the process: each worker process pays
torch's and fastai's import again. The
real processes are tested in tests/test_timing.py (a tiny run, a failing one) and by the slow
`pytest bench` runs (tests/test_bench_plugin.py, tests/test_plugins.py)."""
from __future__ import annotations

import json

from dotbias.pytest_bench import session
from dotbias.timing import workers
from dotbias.timing.rounds import Rounds


def run_here(spec: workers.WorkSpec, index: int, timeout_s: float) -> dict[str, Rounds]:
    """A worker process's answer (`workers.run_process`, `Workers.run`), computed in this process."""
    read = workers.WorkSpec.from_json(spec.to_json())
    written = json.dumps({label: r.as_dict() for label, r in workers.work(read).items()})
    return {str(label): Rounds.from_dict(r) for label, r in json.loads(written).items()}


class StandInWorkers:
    """`timing.worker_server.Workers` without a server: each `run` is `run(spec, index,
    timeout_s)` in this process (`run_here`, or a test's synthetic rounds)."""
    uses = 0        # no servers: the interval counts each process as its own

    def __init__(self, run=run_here):
        self.run = run

    def start(self) -> StandInWorkers:
        return self

    def close(self) -> None:
        pass


def stand_in(run=run_here):
    """A `Workers` class to monkeypatch in: every pool it makes calls `run`."""
    return lambda threads=1, servers=1, uses=1: StandInWorkers(run)


def time_in_process(monkeypatch) -> None:
    """`pytest bench` sessions started after this (in this process) time their groups here."""
    monkeypatch.setattr(session, "Workers", stand_in())
