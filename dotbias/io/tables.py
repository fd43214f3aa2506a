"""How results are written for people: one markdown table renderer, one unit formatter, one
wording of an equivalence verdict. Every report and printed summary goes through these.

Own code rather than `pandas.DataFrame.to_markdown`: that needs the extra `tabulate` package and
pads cells, which makes diffs of committed reports noisy."""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

MISSING = "–"


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub markdown table; `|` and newlines inside cells are escaped so a cell stays a cell."""
    def cell(v: object) -> str:
        return MISSING if v is None else str(v).replace("|", "/").replace("\n", " ")
    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt_seconds(s: float | None) -> str:
    """3 significant digits in the largest unit that keeps the number >= 1 (s, ms, µs, ns)."""
    if s is None or not math.isfinite(s):
        return "?"
    unit, scale = time_unit(s)
    return f"{s / scale:.3g} {unit}"


def time_unit(s: float) -> tuple[str, float]:
    """(unit, seconds per unit) for showing `s` (or a set of values whose largest is `s`)."""
    return next(((u, k) for u, k in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)) if s >= k), ("ns", 1e-9))


def fmt_ratio(value: float, low: float, high: float) -> str:
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def fmt_float(x: float | None) -> str:
    return MISSING if x is None else f"{x:.3g}"


def verdict_word(exact: bool, close: bool) -> str:
    """The one wording of a comparison's outcome."""
    return "bitwise equal" if exact else "equivalent within error" if close else "DIFFERENT"
