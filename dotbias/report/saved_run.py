"""The saved run a benchmark compares with (`pytest bench --benchmark-compare`): picked like with
like, loaded or refused in one line, the changes against it (time ratios, instruction counts), and
the time gate `--fail-slower` built on those changes' noise-aware intervals.

pytest-benchmark's own choice is "the last saved run", whatever it holds, and it only warns when
that file is corrupt; a gate built on that can pass by accident. Here the newest run holding every
benchmark about to run is picked; when none does, or the named run is unreadable or lacks some,
`resolve` raises ValueError with one line naming the file and why.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dotbias.io.tables import fmt_ratio, fmt_seconds, fmt_speed_interval
from dotbias.report.summary import Row, load_run
from dotbias.timing import stats


def _contents(path: Path) -> tuple[set[str], set[str]]:
    """The benchmarks a saved run holds and the baselines it records, read through the one reader
    (`load_run`); one line naming the file if it cannot be read."""
    try:
        run = load_run(path)
    except (OSError, ValueError) as e:
        raise ValueError(f"--benchmark-compare: {' '.join(str(e).split())}") from None
    return {b.fullname for b in run.benchmarks}, {b.baseline for b in run.benchmarks}


def _groups(names: set[str]) -> str:
    """'test_forward[cpu-ml100k-float32-emb]' -> grouped, short: the groups, not every variant."""
    short = sorted({n.split("::")[-1].rsplit("-", 1)[0] + "]" if "[" in n else n for n in names})
    return ", ".join(short[:6]) + (f" and {len(short) - 6} more" if len(short) > 6 else "")


def resolve(candidates: list[Path], needed: set[str], explicit: bool, baseline: str | None = None
            ) -> Path:
    """The run to compare with. `candidates` oldest first; `explicit`: the user named one run
    (then it must be the only candidate and hold every needed benchmark). Else the newest run
    holding every needed benchmark and judged against `baseline`; failing that, the newest holding
    them at all (the comparison then says the baselines differ)."""
    if not candidates:
        raise ValueError("--benchmark-compare: no saved run to compare with"
                         + (" matches that name" if explicit else "; run `pytest bench` once first"))
    if explicit:
        if len(candidates) > 1:
            raise ValueError(f"--benchmark-compare: {len(candidates)} saved runs match: "
                             + ", ".join(p.name for p in candidates[:5]))
        missing = needed - _contents(candidates[0])[0]
        if missing:
            raise ValueError(f"--benchmark-compare: {candidates[0]} lacks {_groups(missing)}")
        return candidates[0]
    newest_missing = other_baseline = None
    for path in reversed(candidates):
        try:
            names, bases = _contents(path)
        except ValueError:
            if newest_missing is None and path == candidates[-1]:
                raise
            continue
        if needed <= names and (baseline is None or bases == {baseline}):
            return path
        other_baseline = other_baseline or (path if needed <= names else None)
        newest_missing = newest_missing or (None if needed <= names else (path, needed - names))
    if other_baseline is not None:
        return other_baseline
    path, missing = newest_missing
    raise ValueError(f"--benchmark-compare: no saved run holds every benchmark selected; the newest, "
                     f"{path}, lacks {_groups(missing)}")


@dataclass(frozen=True)
class Change:
    """One ratio (numerator/denominator in `group`) now and in the saved run: change = now/saved
    with the interval it lies in when only noise differs (`stats.change`)."""
    group: str
    numerator: str
    denominator: str
    now: float
    saved: float
    value: float
    low: float
    high: float

    def within_noise(self, aa_noise: float = 0.0) -> bool:
        """The interval reaches inside +-aa_noise (the A/A half-width of this run, 0 without --aa)."""
        return not (self.low > 1 + aa_noise or self.high < 1 / (1 + aa_noise))

    def words(self, aa_noise: float = 0.0) -> str:
        """'within noise', or the change in `tables.fmt_speed`'s words with its interval:
        'slower by X% [a%, b%]', 'faster by X% [a%, b%]', '2.11x slower [...]'."""
        if self.within_noise(aa_noise):
            return "within noise"
        return fmt_speed_interval(self.value, self.low, self.high)

    def line(self, aa_noise: float = 0.0) -> str:
        return (f"{self.group}: {self.numerator}/{self.denominator} now {self.now:.3f}, saved "
                f"{self.saved:.3f}: change {fmt_ratio(self.value, self.low, self.high)} -> "
                f"{self.words(aa_noise)}")


def different_baselines(now: list[Row], before: list[Row]) -> list[str]:
    """One line when groups in both runs were judged against different baselines (their ratios
    are not compared: `changes` skips them); none when every common group agrees."""
    saved = {r.group: r.baseline for r in before}
    pairs = sorted({(saved[r.group], r.baseline) for r in now
                    if r.group in saved and saved[r.group] != r.baseline})
    if not pairs:
        return []
    said = ", ".join(f"{a} there, {b} here" for a, b in pairs)
    return [f"the saved run was judged against another baseline ({said}): its ratios are not "
            "compared with this run's; rerun with the same --baseline to compare"]


# The baseline's time against the saved run's beyond which the machine ran at another speed.
# Ratios move with it: in 10 default runs of round 30 the host ran either fast (cp's forward
# 31-34 us a call) or 1.4x slower for a whole run (44-47 us), and forward emb/cp was 1.309-1.330
# in the fast runs and 1.279-1.286 in the slow ones, each run's interval +-1.4-2.3%; in the 20
# runs of round 29, cp's forward 29-32 us in every run (docs/timing.md, round 30).
OTHER_SPEED = 1.25


def other_speed(now: list[Row], before: list[Row]) -> list[str]:
    """One line per group whose baseline ran OTHER_SPEED times slower or faster than in the saved
    run (same baseline): its changes may be the machine's, which no interval of either run can
    show (each run's processes share its speed)."""
    saved = {r.group: r for r in before}
    out = []
    for r in now:
        prev = saved.get(r.group)
        if prev is None or prev.baseline != r.baseline:
            continue
        a, b = r.time(r.baseline), prev.time(r.baseline)
        if a is None or b is None or not (a.seconds > 0 and b.seconds > 0):
            continue
        factor = a.seconds / b.seconds
        if max(factor, 1 / factor) >= OTHER_SPEED:
            out.append(f"{r.group.label}: {r.baseline} ran {factor:.2f}x its saved time "
                       f"({fmt_seconds(b.seconds)} -> {fmt_seconds(a.seconds)} a call): the machine "
                       "ran at another speed, and ratios move with it (docs/timing.md, rounds 30 "
                       "and 31); compare runs made at the same speed")
    return out


def changes(now: list[Row], before: list[Row]) -> list[Change]:
    """Every ratio present in both runs, in this run's order, with its change against the saved
    run; a ratio's denominator is its run's baseline, so none is compared across baselines."""
    old = {(r.group, x.numerator, x.denominator): x for r in before for x in r.ratios}
    out = []
    for r in now:
        for x in r.ratios:
            prev = old.get((r.group, x.numerator, x.denominator))
            if prev is not None:
                out.append(Change(r.group.label, x.numerator, x.denominator, x.value, prev.value,
                                  *stats.change(x, prev)))
    return out


def slower_than(found: list[Change], allowed: float, aa_noise: float = 0.0) -> tuple[list[str], str]:
    """The time gate (`--fail-slower`): one failing line per ratio whose change lies wholly above
    +allowed (the interval's low end beyond 1 + allowed), naming the group and the variant; and a
    closing line that says how the others stood."""
    pct = f"--fail-slower {allowed * 100:g}%"
    bad = [c for c in found if c.low > 1 + allowed]
    fails = [f"{pct}: FAILED: {c.group}: {c.numerator} (its ratio to {c.denominator} {c.saved:.3f} "
             f"saved, {c.now:.3f} now) is {c.words()}, wholly beyond +{allowed * 100:g}%" for c in bad]
    if bad:
        return fails, f"{pct}: {len(bad)} of {len(found)} ratios slower beyond it"
    noise = sum(c.within_noise(aa_noise) for c in found)
    return fails, (f"{pct}: passed: {noise} of {len(found)} ratios within noise, none slower "
                   f"beyond +{allowed * 100:g}%")


def instruction_minima(rows: list[Row]) -> dict[tuple[str, str], float]:
    """(group label, variant) -> minimum instructions per call, where the run has counts."""
    return {(r.group.label, t.name): t.measured.instructions.minimum
            for r in rows for t in r.times if t.measured and t.measured.instructions}
