"""REPORT.md's two sections on what bounds a time: the physical floors (dispatcher overhead and
memory bandwidth) beside each time, and callgrind's instruction counts beside each time ratio."""
from __future__ import annotations

from dotbias.io.tables import fmt_ratio, fmt_seconds, markdown_table
from dotbias.report.summary import Row
from dotbias.timing.instruction_counts import TOP, Counts, short_name


def instructions_markdown(rows: list[Row]) -> list[str]:
    """REPORT.md's section: count ratio beside time ratio, and the breakdown of one group."""
    body, breakdown = [], []
    for r in rows:
        counted = {t.name: t.measured.instructions for t in r.times
                   if t.measured and t.measured.instructions}
        for x in r.ratios:
            if x.numerator in counted and x.denominator in counted:
                a, b = counted[x.numerator], counted[x.denominator]
                cr = a.minimum / b.minimum
                agree = "agree" if x.low <= cr <= x.high else "DISAGREE: memory/cache, not instructions"
                body.append([r.group.label, f"{x.numerator}/{x.denominator}", f"{a.minimum:,.0f}",
                             f"{b.minimum:,.0f}", f"{max(a.spread, b.spread):.2%}", f"{cr:.3f}",
                             fmt_ratio(x.value, x.low, x.high), agree])
        if counted and not breakdown and any(c.top for c in counted.values()):
            breakdown = _breakdown(r.group.label, counted)
    if not body:
        return []
    head = ["group", "ratio", "numerator instr/call", "denominator instr/call", "spread of repeats",
            "count ratio", "time ratio [95% next run]", "time vs count"]
    return ["## Instruction counts (callgrind)", "", "Minimum over repeats of denoised instructions "
            "per call; a time ratio whose interval misses the count ratio points at memory or cache "
            "effects.", "", markdown_table(head, body), ""] + breakdown


def _breakdown(label: str, counted: dict[str, Counts]) -> list[str]:
    names = list(counted)
    head = ["#"] + [h for n in names for h in (f"{n} function", "instr/call")]
    body = []
    for i in range(TOP):
        row = [i + 1]
        for n in names:
            top = counted[n].top
            row += [f"`{short_name(top[i][0])[:80]}`", f"{top[i][1]:,.0f}"] if i < len(top) else [None, None]
        body.append(row)
    out = [f"### Where the instructions go: {label}", "", markdown_table(head, body), ""]
    for n, c in counted.items():
        if c.delta:
            out += [f"Largest differences, {n} minus baseline (instructions per call):", "",
                    markdown_table(["function", "difference"],
                                   [[f"`{short_name(f)[:100]}`", f"{d:+,.0f}"] for f, d in c.delta]), ""]
    return out


def floors_markdown(rows: list[Row]) -> list[str]:
    """REPORT.md's section: per group and variant, the time beside its two floors."""
    body, compiled = [], set()
    for r in rows:
        for t in r.times:
            fl = t.measured.floor if t.measured else None
            if fl is None:
                if t.measured and t.measured.compiled:
                    compiled.add(t.name)
                continue
            bound = "overhead" if fl.dispatch_s >= fl.bandwidth_s else "bandwidth"
            body.append([r.group.label, t.name, fmt_seconds(t.seconds), fl.ops,
                         fmt_seconds(fl.dispatch_s), f"{fl.dispatch_s / t.seconds:.0%}",
                         f"{fl.bytes / 1e6:.3g} MB", fmt_seconds(fl.bandwidth_s),
                         f"{fl.bandwidth_s / t.seconds:.0%}", bound])
    if not body:
        return []
    head = ["group", "variant", "time", "aten ops", "dispatch floor", "of time", "bytes touched",
            "bandwidth floor", "of time", "larger floor"]
    return ["## Floors: dispatcher overhead and memory bandwidth", "",
            "Dispatch floor: the same number of 1-element torch ops as the variant dispatches per call; "
            "bandwidth floor: the bytes of those ops' tensors (an upper bound on traffic; a tensor "
            "written in place counts read and written) at the bandwidth of a tensor copy moving as "
            "many bytes, measured. A step that updates its tensors in place moves its bytes without "
            "a copy's second buffer and can beat that copy (over 100%)." + _no_floor(compiled),
            "", markdown_table(head, body), ""]


def _no_floor(compiled: set[str]) -> str:
    if not compiled:
        return ""
    return (f" No floor for {', '.join(sorted(compiled))}: compiled kernels are not aten ops, so "
            "counting ops would count the eager ops they replace (a compiled step came out at 154% "
            "of such a floor).")
