"""How results are written for people: one markdown table renderer, one formatter per unit (time,
bytes, ratio), one wording of a speed difference and of an equivalence verdict, and the one reading
of a percentage option. Every report, verdict and printed summary goes through these.

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


# One meaning per quantity: a percentage option is read by `parse_percent` and every time ratio is
# worded by `fmt_speed` (docs/timing.md, "Reading a ratio"), in every report, verdict and screen.
PERCENT_RULE = ("5%% and 5 both mean five percent; a bare number between 0 and 1, such as 0.05, "
                "is refused as ambiguous (write 5%% or 0.05%%)")
MAX_PERCENT = 1000.0
SPEED_RULE = ("'A faster by X%': A's time is X% less than the other's (X = 1 - the ratio); "
              "beyond 2x 'A 2.11x faster'")


def parse_percent(text: str) -> float:
    """A percentage option's text as a fraction: '5%' and '5' -> 0.05, '0.5%' -> 0.005, '0' -> 0.
    A bare number strictly between 0 and 1 ('0.05': 5% or 0.05%?) is refused; so are negatives,
    more than MAX_PERCENT % and what is not a number. ValueError: one line naming the text (the
    caller puts the option's name in front)."""
    t = str(text).strip()
    number = t.removesuffix("%").strip()
    try:
        value = float(number)
    except ValueError:
        value = math.nan
    if not 0 <= value <= MAX_PERCENT:
        raise ValueError(f"expected a percentage from 0% to {MAX_PERCENT:g}% such as 5%, got {text!r}")
    if not t.endswith("%") and 0 < value < 1:
        raise ValueError(f"{text!r} could be a fraction or a percentage: write {value * 100:g}% "
                         f"or {value:g}%")
    return value / 100


def fmt_percent(x: float) -> str:
    """A share as a percentage with one decimal: 0.187 -> '18.7%'."""
    return f"{x:.1%}"


def fmt_speed(ratio: float) -> str:
    """How one time ratio (this one's time over the other's) reads, the one rule of every report:
    below 1 'faster by X%' with X = 1 - ratio, the share of the other's time saved; above 1
    'slower by X%' with X = ratio - 1, the share of the other's time added; beyond 2x either way
    'N.NNx faster' / 'N.NNx slower' with N the larger time over the smaller."""
    if ratio > 2:
        return f"{ratio:.2f}x slower"
    if ratio < 0.5:
        return f"{1 / ratio:.2f}x faster"
    if ratio == 1:
        return "as fast"
    return f"slower by {fmt_percent(ratio - 1)}" if ratio > 1 else f"faster by {fmt_percent(1 - ratio)}"


def fmt_speed_interval(value: float, low: float, high: float) -> str:
    """`fmt_speed` of `value` with its interval in the same words: 'faster by 19.0% [16.0%, 22.0%]',
    '2.11x slower [1.90x, 2.35x]'."""
    if value > 2:
        return f"{fmt_speed(value)} [{low:.2f}x, {high:.2f}x]"
    if value < 0.5:
        return f"{fmt_speed(value)} [{1 / high:.2f}x, {1 / low:.2f}x]"
    if value >= 1:
        return f"{fmt_speed(value)} [{fmt_percent(low - 1)}, {fmt_percent(high - 1)}]"
    return f"{fmt_speed(value)} [{fmt_percent(1 - high)}, {fmt_percent(1 - low)}]"


def faster_words(numerator: str, denominator: str, ratio: float) -> str:
    """The faster of the two named, with `fmt_speed`: ratio 0.81 -> 'A faster by 19.0%', ratio
    2.114 -> 'B 2.11x faster' (ratio: numerator's time over denominator's, not 1)."""
    if ratio < 1:
        return f"{numerator} {fmt_speed(ratio)}"
    return f"{denominator} {fmt_speed(1 / ratio)}"


def fmt_bytes(n: int | None) -> str:
    """Bytes in KiB below 1 MiB, else MiB; MISSING for None."""
    if n is None:
        return MISSING
    return f"{n / 2**20:.2f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"
