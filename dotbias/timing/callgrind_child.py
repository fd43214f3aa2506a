"""The program valgrind's callgrind runs for `instructions.collect_all`, by path: torch's
`collect_callgrind` script calls `fn()` once per measurement and `gc.collect()` after each dump.
`fn` is a `Jobs`: it runs the current job's calls, and a gc callback moves it to the next job
there, outside the measured region. One process measures every (group, variant) job, since
valgrind's start-up (importing torch under callgrind) dwarfs a measurement. Each job's repeats run
one after the other: round-robin over the jobs made every job's count drift between repeats."""
from __future__ import annotations

import gc
import json
import os
from pathlib import Path

import torch

from dotbias.models.plugins import load_variants
from dotbias.timing.groups import Group
from dotbias.timing.operations import make_op


class Jobs:
    """`fn()` of the timer script. The job list comes from the JSON file `collect_all` writes:
    threads, plugin specs, [group, variant, calls] per job, repeats, the file counting the moves,
    and the parent's pid (Timer also runs the setup once in the parent: no hook there)."""

    def __init__(self, config: dict):
        torch.set_num_threads(config["threads"])
        registry = load_variants(config["plugins"], env=False, entry_points=False)
        self.moves_file, self.moves = config["moves_file"], 0
        jobs = config["jobs"]
        ops = [make_op(Group.from_dict(g), v, registry) for g, v, _ in jobs]
        for op in ops:
            op()
            op()
        self.calls = [(op, k) for op, (_, _, k) in zip(ops, jobs)]
        self.order = [j for j in range(len(jobs)) for _ in range(config["repeats"])]
        self.current = self.calls[0]

    def __call__(self) -> None:
        op, k = self.current
        for _ in range(k):
            op()

    def next_job(self, phase: str, info: dict) -> None:
        if phase != "stop":
            return
        self.moves += 1
        if self.moves <= len(self.order):
            self.current = self.calls[self.order[self.moves - 1]]
        Path(self.moves_file).write_text(str(self.moves))


def start(config_file: str) -> Jobs:
    """The `fn` the timer script calls, hooked to gc in the measured child only."""
    config = json.loads(Path(config_file).read_text())
    jobs = Jobs(config)
    if os.getpid() != config["parent"]:
        gc.disable()
        gc.callbacks.append(jobs.next_job)
    return jobs
