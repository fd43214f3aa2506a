"""How much `dotbias compare` checks and times by default and with --thorough (torch-free: the
option parser shows these in --help)."""
from __future__ import annotations

DEFAULT = {"examples": 10, "time_budget": 8.0, "kernel_s": 1.0, "processes": 6}
THOROUGH = {"examples": 100, "time_budget": 60.0, "kernel_s": 2.0, "processes": 30}
