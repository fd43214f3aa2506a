"""The saved run a benchmark compares with (`pytest bench --benchmark-compare`): picked like with
like, loaded or refused in one line, and the changes against it (time ratios, instruction counts).

pytest-benchmark's own choice is "the last saved run", whatever it holds, and it only warns when
that file is corrupt; a gate built on that can pass by accident. Here the newest run holding every
benchmark about to run is picked; when none does, or the named run is unreadable or lacks some,
`resolve` raises ValueError with one line naming the file and why.
"""
from __future__ import annotations

import json
from pathlib import Path

from dotbias.timing import stats
from dotbias.report.summary import Row


def _fullnames(path: Path) -> set[str]:
    """The benchmarks a saved run holds; one line naming the file if it cannot be read."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        names = {b["fullname"] for b in data["benchmarks"]}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"--benchmark-compare: {path}: cannot be read ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''})") from None
    except (KeyError, TypeError):
        raise ValueError(f"--benchmark-compare: {path}: not a pytest-benchmark run "
                         "(no benchmarks with a fullname)") from None
    return names


def _groups(names: set[str]) -> str:
    """'test_forward[cpu-ml100k-float32-emb]' -> grouped, short: the groups, not every variant."""
    short = sorted({n.split("::")[-1].rsplit("-", 1)[0] + "]" if "[" in n else n for n in names})
    return ", ".join(short[:6]) + (f" and {len(short) - 6} more" if len(short) > 6 else "")


def resolve(candidates: list[Path], needed: set[str], explicit: bool) -> Path:
    """The run to compare with. `candidates` oldest first; `explicit`: the user named one run
    (then it must be the only candidate and hold every needed benchmark)."""
    if not candidates:
        raise ValueError("--benchmark-compare: no saved run to compare with"
                         + (" matches that name" if explicit else "; run `pytest bench` once first"))
    if explicit:
        if len(candidates) > 1:
            raise ValueError(f"--benchmark-compare: {len(candidates)} saved runs match: "
                             + ", ".join(p.name for p in candidates[:5]))
        missing = needed - _fullnames(candidates[0])
        if missing:
            raise ValueError(f"--benchmark-compare: {candidates[0]} lacks {_groups(missing)}")
        return candidates[0]
    newest_missing = None
    for path in reversed(candidates):
        try:
            missing = needed - _fullnames(path)
        except ValueError:
            if newest_missing is None and path == candidates[-1]:
                raise
            continue
        if not missing:
            return path
        newest_missing = newest_missing or (path, missing)
    path, missing = newest_missing
    raise ValueError(f"--benchmark-compare: no saved run holds every benchmark selected; the newest, "
                     f"{path}, lacks {_groups(missing)}")


def change_lines(now: list[Row], before: list[Row], aa_noise: float) -> list[str]:
    """Per ratio in both: its change against the saved run with an interval, 'within noise' when
    the interval reaches inside +-aa_noise (the A/A half-width of this run, 0 without --aa)."""
    old = {(r.group, x.numerator, x.denominator): x for r in before for x in r.ratios}
    out = []
    for r in now:
        for x in r.ratios:
            prev = old.get((r.group, x.numerator, x.denominator))
            if prev is None:
                continue
            value, low, high = stats.change(x, prev)
            noise = not (low > 1 + aa_noise or high < 1 / (1 + aa_noise))
            word = "within noise" if noise else f"changed by {value - 1:+.1%}"
            out.append(f"{r.group.label}: {x.numerator}/{x.denominator} now {x.value:.3f}, saved "
                       f"{prev.value:.3f}: change {value:.3f} [{low:.3f}, {high:.3f}] -> {word}")
    return out


def instruction_minima(rows: list[Row]) -> dict[tuple[str, str], float]:
    """(group label, variant) -> minimum instructions per call, where the run has counts."""
    return {(r.group.label, t.name): min(t.extra["instructions"]["per_call"])
            for r in rows for t in r.times if t.extra.get("instructions")}
