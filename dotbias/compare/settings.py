"""What one `dotbias compare` checks and times, as a record: the preset (--thorough or not) with
the options that override it, read from the parsed arguments once; JSON only in compare.json."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from dotbias.compare.checks import Examples
from dotbias.compare.presets import DEFAULT, THOROUGH
from dotbias.timing.groups import OPERATIONS


@dataclass(frozen=True)
class Settings:
    """What one comparison checks and times: the preset (--thorough or not) with the options that
    override it; written into compare.json by `as_json`."""
    thorough: bool
    threads: int
    examples: Examples
    time_budget_s: float
    kernel_s: float
    max_processes: int
    total_s: float                 # no new timing process past this many seconds of the command
    operations: tuple[str, ...]
    torch: str

    @classmethod
    def from_args(cls, args) -> Settings:
        preset = THOROUGH if args.thorough else DEFAULT
        n = args.examples or preset["examples"]
        return cls(args.thorough, args.threads, Examples(n, max(1, n // 5), max(1, n // 10)),
                   preset["time_budget"] if args.time_budget is None else args.time_budget,
                   preset["kernel_s"], preset["processes"], preset["total_s"],
                   tuple(args.operations or OPERATIONS), torch.__version__)

    def as_json(self) -> dict:
        ex = self.examples
        return {"thorough": self.thorough, "threads": self.threads,
                "examples": {"outputs": ex.outputs, "trajectories": ex.trajectories,
                             "inits": ex.inits},
                "time_budget_s": self.time_budget_s, "kernel_s": self.kernel_s,
                "max_processes": self.max_processes, "total_s": self.total_s,
                "operations": list(self.operations), "torch": self.torch}
