"""One comparison's answer: the verdict line, the exit status, the tables and the JSON.

Exit status: 0 equivalent (and, with a maximum slowdown P, no operation slower than 1 + P beyond
its interval: slower only when the interval's low end is above 1 + P), 1 different (a crash of the
candidate included), 3 slower."""
from __future__ import annotations

import math
from dataclasses import dataclass

from dotbias.compare.checks import EquivalenceRow
from dotbias.compare.settings import Settings
from dotbias.compare.speed import Memory, Timed
from dotbias.equivalence.contract import verdict_word
from dotbias.io.tables import faster_words, fmt_bytes, fmt_ratio, fmt_seconds, markdown_table
from dotbias.timing.adaptive import failure

FORMAT = 1
EQUIVALENT, DIFFERENT, SLOWER = 0, 1, 3
LABELS = {"forward": "forward", "forward_backward": "forward+backward", "step": "step",
          "epoch_lean": "lean epoch", "epoch_fastai": "fastai epoch"}


@dataclass(frozen=True)
class Comparison:
    candidate: str
    baseline: str                      # timing's and memory's reference
    contract_baseline: str             # the equivalence contract's baseline
    equivalence: list[EquivalenceRow]
    timed: list[Timed]
    memory: list[Memory]
    max_slowdown: float | None = None
    settings: Settings | None = None      # compare.command's record (None: built in a test)
    wall_s: float | None = None

    @property
    def equivalent(self) -> bool:
        """Every check held, and the candidate raised nowhere (memory, timing)."""
        return (bool(self.equivalence) and all(r.passed for r in self.equivalence)
                and not any(m.failure for m in self.memory)
                and failure(t.stopped for t in self.timed) is None)

    def slower(self) -> list[Timed]:
        """Operations slower than 1 + max_slowdown beyond their interval."""
        if self.max_slowdown is None:
            return []
        return [t for t in self.timed if t.ratio and t.ratio.low > 1 + self.max_slowdown]

    def exit_status(self) -> int:
        if not self.equivalent:
            return DIFFERENT
        return SLOWER if self.slower() else EQUIVALENT

    @property
    def operations(self) -> list[str]:
        return list(dict.fromkeys([t.operation for t in self.timed]
                                  + [m.operation for m in self.memory]))

    def worst(self) -> EquivalenceRow | None:
        return max(self.equivalence, key=lambda r: r.worst, default=None)


def _equivalence_phrase(c: Comparison) -> str:
    bad = next((r for r in c.equivalence if not r.passed), None)
    if bad is not None:
        return f"DIFFERENT ({bad.check}: {bad.where or 'see below'})"
    crash = next((m.failure for m in c.memory if m.failure), None) or failure(t.stopped for t in c.timed)
    if crash:
        return f"FAILED ({crash})"
    w = c.worst()
    word = verdict_word(all(r.exact for r in c.equivalence), True)
    return word + (f" (worst {w.worst:.2f} of the budget: {w.where})" if w and w.worst else "")


def _speed_phrase(t: Timed) -> str:
    if t.ratio is None:
        return f"{LABELS[t.operation]} not timed"
    r = t.ratio
    if r.low <= 1 <= r.high:
        how = "no clear difference"
    else:
        how = faster_words(r.numerator, r.denominator, r.value)
    return f"{LABELS[t.operation]} {r.value:.2f}x [{r.low:.2f}, {r.high:.2f}] ({how})"


def verdict_line(c: Comparison) -> str:
    """`mine vs cp: equivalent within error (worst ...); forward 0.81x [...] (...), ...; peak
    memory forward 1.00x, ...`."""
    parts = [f"{c.candidate} vs {c.baseline}: {_equivalence_phrase(c)}"]
    if c.timed:
        parts.append(", ".join(_speed_phrase(t) for t in c.timed))
    mem = [f"{LABELS[m.operation]} {m.ratio:.2f}x" for m in c.memory if not math.isnan(m.ratio)]
    if mem:
        parts.append("peak memory " + ", ".join(mem))
    slow = c.slower()
    if slow:
        parts.append(f"SLOWER than the allowed +{c.max_slowdown * 100:g}% beyond the interval: "
                     + ", ".join(f"{LABELS[t.operation]} (from {t.ratio.low:.2f}x)" for t in slow))
    return "; ".join(parts)


def _stopped(t: Timed) -> str:
    if t.stopped == "target":
        return f"target +-{t.target:.0%} reached"
    if t.stopped == "budget":
        half = f" (+-{t.ratio.half_width:.1%})" if t.ratio else ""
        return f"time budget ran out{half}, target +-{t.target:.0%}"
    if t.stopped == "deadline":
        half = f" (+-{t.ratio.half_width:.1%})" if t.ratio else ""
        return f"the command's time limit ran out{half}, target +-{t.target:.0%}"
    return t.stopped


def _processes(t: Timed | None) -> str:
    """Its processes, and those set aside on a busy machine (`spread.busy`) if any."""
    if t is None:
        return "0"
    aside = t.ratio.set_aside if t.ratio else 0
    return f"{t.processes} ({aside} set aside: busy)" if aside else str(t.processes)


def operations_table(c: Comparison) -> str:
    """One row per operation: both times, the ratio with its interval, what stopped timing, peak
    memory of both and its ratio."""
    mem, timed = {m.operation: m for m in c.memory}, {t.operation: t for t in c.timed}
    rows = []
    for op in c.operations:
        m, t = mem.get(op), timed.get(op)
        rows.append([LABELS[op], fmt_seconds(t.candidate_s) if t else None,
                     fmt_seconds(t.baseline_s) if t else None,
                     fmt_ratio(t.ratio.value, t.ratio.low, t.ratio.high) if t and t.ratio else None,
                     _stopped(t) if t else "not timed", _processes(t),
                     fmt_bytes(m and m.candidate_bytes),
                     fmt_bytes(m and m.baseline_bytes),
                     f"{m.ratio:.3f}" if m and not math.isnan(m.ratio) else (m and m.failure) or None])
    return markdown_table(["operation", f"{c.candidate} time", f"{c.baseline} time",
                           f"{c.candidate}/{c.baseline} [95% next run]", "stopped by",
                           "processes", f"{c.candidate} peak", f"{c.baseline} peak", "memory ratio"],
                          rows)


def equivalence_table(rows: list[EquivalenceRow]) -> str:
    return markdown_table(["check", "cases", "result", "worst error / allowed", "where", "failure"],
                          ([r.check, r.cases, _result(r), f"{r.worst:.3f}",
                            r.where, r.failure] for r in rows))


def _result(r: EquivalenceRow) -> str:
    if r.check.startswith("init"):
        return "as declared" if r.passed else "DIFFERENT"
    return verdict_word(r.exact, r.passed)


def screen_rows(rows: list[EquivalenceRow]) -> list[EquivalenceRow]:
    """The grid's rows folded into one (its worst, or its first failure) for the terminal."""
    grid = [r for r in rows if r.check.startswith("grid: ")]
    if not grid:
        return rows
    bad = next((r for r in grid if not r.passed), None)
    w = bad or max(grid, key=lambda r: r.worst)
    folded = EquivalenceRow(f"fixed grid ({len(grid)} rows; worst: {w.check[6:]})", len(grid),
                            bad is None, all(r.exact for r in grid), w.worst, w.where, w.failure)
    return [folded] + [r for r in rows if r not in grid]


def render(c: Comparison, *, full: bool) -> str:
    """The verdict line, the operations table and the equivalence table (the grid folded into one
    row unless `full`), then the first failure's message."""
    eq = c.equivalence if full else screen_rows(c.equivalence)
    lines = [verdict_line(c), "", operations_table(c), "", equivalence_table(eq)]
    if c.contract_baseline != c.baseline:
        lines += ["", f"(equivalence is held to the contract's baseline {c.contract_baseline})"]
    return "\n".join(lines)


def as_json(c: Comparison) -> dict:
    return {"format": FORMAT, "candidate": c.candidate, "baseline": c.baseline,
            "contract_baseline": c.contract_baseline, "verdict": verdict_line(c),
            "exit_status": c.exit_status(), "equivalent": c.equivalent,
            "max_slowdown": c.max_slowdown,
            "settings": (c.settings.as_json() if c.settings else {}) | {"wall_s": c.wall_s},
            "equivalence": [r.as_dict() for r in c.equivalence],
            "speed": [t.as_dict() for t in c.timed], "memory": [m.as_dict() for m in c.memory]}
