"""The verdict's opening lines: how a ratio and its interval are made, how to read
pytest-benchmark's table, then one line per timed group: what stopped its timing
(`timing.adaptive`), its widest interval, its processes and those set aside on a busy machine
(`timing.spread.busy`)."""
from __future__ import annotations

import math

from dotbias.timing.adaptive import STRETCH, STRETCH_WIDTH, GroupTiming
from dotbias.timing.spread import BUSY

METHOD = ("ratio = geometric mean over processes of each one's median paired round ratio; 95% interval: "
          "where the next run's ratio lands, Student t over fresh processes of interleaved rounds "
          "(docs/timing.md)")
# pytest-benchmark's table (printed above the verdict) pools every worker process's blocks, unpaired:
# where the machine's speed changed between processes, a ratio of two of its medians carries the
# change, which the paired ratios cancel (a slow spell: fastai/cp 1.362 from the table's medians,
# 1.250 [1.183, 1.321] paired; docs/timing.md, "One timing, shown everywhere").
TABLE_NOTE = ("pytest-benchmark's table: Rounds = timed blocks over all processes, pooled unpaired; "
              "compare variants by the paired ratios below, not by its medians")

STOPPED = {"target": "stopped at its target",
           "stretched": f"stopped past the budget within {STRETCH_WIDTH:g}x its target (a busy machine: "
                        "the run took longer rather than stop wide)",
           "budget": "stopped at the budget (--max-time) short of its target (more --max-time narrows it)",
           "limit": f"stopped at {STRETCH:g}x the budget still short of its target (a busy machine: the run "
                    "took longer and the machine stayed noisy; rerun it when the machine is quiet)",
           "fixed": "ran its fixed --processes"}


def stopped_lines(rounds: dict[str, GroupTiming]) -> list[str]:
    """One line per timed group (label -> its timing)."""
    out = []
    for label, t in rounds.items():
        width = f"+-{t.half_width:.2%}" if math.isfinite(t.half_width) else "none (1 process)"
        why = (f" ({aside} set aside: a variant ran >= {BUSY:g}x its median process's time there, "
               "a busy machine)") if (aside := t.set_aside()) else ""
        out.append(f"{label}: {STOPPED[t.stopped]}: widest interval {width} "
                   f"(target +-{t.target:.0%}), {len(t.rounds)} processes{why}")
    return out
