"""`dotbias compare CANDIDATE`: one answer to "is my variant the same model, and is it faster?":
the equivalence contract (the fixed grid and a hypothesis sample of the properties), interleaved
timing against the baseline in fresh processes until the intervals are narrow enough, and peak
memory, in one verdict line, one table and one result set. Read `command.py` first (`CompareRun`:
the steps, on `commands.run_command`), then `settings.py`, `checks.py`, `speed.py`, `verdict.py`.

May import: report, equivalence, timing, data, models, io.
"""
