"""compare.png: the candidate/baseline time ratio per operation with its 95% next-run interval, and
the peak-memory ratio beside it (both on the same scale: 1 is "as the baseline")."""
from __future__ import annotations

import math

from dotbias.compare.verdict import LABELS, Comparison
from dotbias.report.plots import plt, png_bytes


def compare_plot(c: Comparison) -> bytes:
    ops = c.operations
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 0.6 * max(len(ops), 2) + 1.8), sharey=True)
    fig.suptitle(f"dotbias compare: {c.candidate} vs {c.baseline}")
    labels, ys = [LABELS[op] for op in ops], list(range(len(ops)))
    timed = {t.operation: t for t in c.timed}
    for y, op in zip(ys, ops):
        t = timed.get(op)
        if t is None or t.ratio is None:
            continue
        r = t.ratio
        ax_t.errorbar([r.value], [y], xerr=[[r.value - r.low], [r.high - r.value]], fmt="o",
                      color="C3" if r.low > 1 else "C2" if r.high < 1 else "C0", capsize=4)
    ax_t.axvline(1, color="grey", lw=1, ls="--")
    if c.max_slowdown is not None:
        ax_t.axvline(1 + c.max_slowdown, color="C3", lw=1, ls=":", label="allowed slowdown")
        ax_t.legend(loc="lower right", fontsize=8)
    ax_t.set_yticks(ys, labels)
    ax_t.invert_yaxis()
    ax_t.set_xlabel(f"time {c.candidate}/{c.baseline} (95% next-run interval)")
    mem = {m.operation: m.ratio for m in c.memory}
    values = [mem.get(op, math.nan) for op in ops]
    ax_m.barh(ys, [0 if math.isnan(v) else v for v in values], color="C1", alpha=0.7)
    for y, v in zip(ys, values):
        ax_m.text(0 if math.isnan(v) else v, y, " ?" if math.isnan(v) else f" {v:.2f}x",
                  va="center", fontsize=8)
    ax_m.axvline(1, color="grey", lw=1, ls="--")
    ax_m.set_xlabel(f"peak memory {c.candidate}/{c.baseline} (one call)")
    return png_bytes(fig)
