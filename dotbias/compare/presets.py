"""How much `dotbias compare` checks and times by default and with --thorough (torch-free: the
option parser shows these in --help)."""
from __future__ import annotations

# time_budget: seconds of worker processes per operation (`compare.speed`). total_s: no new timing
# process starts when it would end past this many seconds of the command (the first
# `timing.adaptive.MIN_PROCESSES` always run: an interval needs them), so a busy machine answers
# in time too.
DEFAULT = {"examples": 10, "time_budget": 8.0, "kernel_s": 1.0, "processes": 6, "total_s": 170.0}
THOROUGH = {"examples": 100, "time_budget": 60.0, "kernel_s": 2.0, "processes": 30,
            "total_s": 1800.0}
