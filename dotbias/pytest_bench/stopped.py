"""The verdict's line per timed group: what stopped its timing (`timing.adaptive`), its widest
interval, its processes and those set aside on a busy machine (`timing.spread.busy`)."""
from __future__ import annotations

import math

from dotbias.timing.adaptive import STRETCH, STRETCH_WIDTH, GroupTiming
from dotbias.timing.spread import BUSY

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
