"""A benchmark `Summary` for people: REPORT.md (tables through `tables.markdown_table`), the verdict
lines `pytest bench` and `dotbias report` print, and report.json (serialised here, at the edge)."""
from __future__ import annotations

import math

from dotbias.io.tables import SPEED_RULE, faster_words, fmt_bytes, fmt_ratio, fmt_seconds, markdown_table
from dotbias.report.fastest import fastest_markdown
from dotbias.report.floors_and_counts import floors_markdown, instructions_markdown
from dotbias.report.summary import CAP_ROUNDS, Benchmark, Row, Summary
from dotbias.timing import stats
from dotbias.timing.groups import EPOCH_NOTE, TARGET_HALF_WIDTH, memory_differs

AA_FAIL = "this machine was too noisy: do not trust the ratios"


def ratio_text(r: stats.Ratio) -> str:
    return f"{r.numerator}/{r.denominator} {fmt_ratio(r.value, r.low, r.high)}"


def verdict(r: stats.Ratio) -> str:
    """`cp faster by 18.7%`, `cp 2.11x faster` (`tables.faster_words`), `no clear difference`, or
    why no winner is named."""
    if r.rounds < stats.MIN_ROUNDS:
        return f"only {r.rounds} paired rounds: no winner named (needs {stats.MIN_ROUNDS})"
    if r.faster is None:
        return "no clear difference"
    return faster_words(r.numerator, r.denominator, r.value)


def aa_text(r: stats.Ratio) -> str:
    ok = r.low <= 1 <= r.high
    return f"A/A {ratio_text(r)} -> {'ok' if ok else AA_FAIL}"


def verdict_lines(row: Row, several: bool = False) -> list[str]:
    """The terminal lines for one group: one per ratio, then the A/A line."""
    where = row.group.label + (f" [torch {row.torch}, run {row.run}]" if several else "")
    lines = [f"{where}: {ratio_text(r)} -> {verdict(r)}" for r in row.ratios]
    if not row.ratios:
        why = ("no interleaved rounds" if row.time(row.baseline) else
               f"its baseline {row.baseline} was not run")
        lines.append(f"{where}: " + ", ".join(f"{t.name} {fmt_seconds(t.seconds)}" for t in row.times)
                     + f" ({why}: no ratio)")
    if row.aa is not None:
        lines.append(f"{where}: {aa_text(row.aa)}")
    return lines + [f"{where}: {note}" for _, note in variant_notes(row)]


def variant_notes(row: Row) -> list[tuple[str, str]]:
    """Every note on the group, each with the variant it is about (REPORT.md puts it in that
    variant's row), in the order the verdict lines print them: interval misses, compilation and
    first calls, memory."""
    return _misses(row) + _compile_notes(row) + _memory_notes(row)


def _memory_notes(row: Row) -> list[tuple[str, str]]:
    """A line for each variant whose peak memory differs from the baseline's beyond noise (memory
    is deterministic: `groups.memory_differs`)."""
    base = row.time(row.baseline)
    if base is None or base.peak_bytes is None:
        return []
    return [(t.name, f"peak memory {t.name}/{base.name} {t.peak_bytes / base.peak_bytes:.2f}x "
             f"({fmt_bytes(t.peak_bytes)} vs {fmt_bytes(base.peak_bytes)} per call)")
            for t in row.times if t is not base and t.peak_bytes is not None and base.peak_bytes
            and memory_differs(t.peak_bytes, base.peak_bytes)]


def _compile_notes(row: Row) -> list[tuple[str, str]]:
    """A flag for each variant that compiled inside the timed rounds (its time includes that),
    the notes stored with it (sparse gradients densified), and the first call of each variant
    whose first call took 100x its timed call: compilation where the run recorded the variant as
    compiled, else warm-up (lazy initialisation, first allocations)."""
    measured = [(t, t.measured) for t in row.times if t.measured is not None]
    out = [(t.name, f"RECOMPILED: {t.name} compiled {m.compiles_in_rounds} graph(s) inside the "
            "timed rounds; its time includes compilation") for t, m in measured if m.compiles_in_rounds]
    out += [(t.name, note) for t, m in measured for note in m.notes]
    return out + [(t.name, f"{t.name} first call {fmt_seconds(m.first_call_s)} "
                   f"({'compilation' if m.compiled else 'warm-up'}, outside the rounds)")
                  for t, m in measured if (m.first_call_s or 0) > 100 * t.seconds]


def misses(row: Row) -> list[str]:
    """Why a ratio is less precise than the default run aims at, if it is, and which knob helps:
    the processes differ more than their rounds' noise explains -> more processes; else more rounds."""
    return [note for _, note in _misses(row)]


def _misses(row: Row) -> list[tuple[str, str]]:
    target = TARGET_HALF_WIDTH.get(row.group.operation)
    return [(x.numerator, f"{x.numerator}/{x.denominator} half-width {x.half_width:.1%} misses the "
             f"{target:.0%} target with {x.processes} processes x {x.rounds // x.processes} rounds: "
             f"{_why(x)}") for x in row.ratios if target and x.half_width > target]


def _why(x) -> str:
    share = x.process_share
    if math.isnan(share):       # one process: no spread between processes to split
        return ("the rounds were too noisy or too few; rerun on a quieter machine or with more "
                "--epoch-rounds / --processes")
    if share >= 0.5:
        return (f"{share:.0%} of the spread is between processes (layout, load), beyond their rounds' "
                "noise: more --processes narrows it, more --epoch-rounds hardly does")
    return (f"the rounds' own noise explains {1 - share:.0%} of the spread between processes: more "
            "--epoch-rounds (or a quieter machine) narrows it")


def render_text(summary: Summary) -> str:
    several = len(summary.runs) > 1
    lines = [ln for row in summary.rows for ln in verdict_lines(row, several)]
    return "\n".join(list(summary.partial) + lines)


def _group_table(rows: list[Row], several: bool) -> str:
    """One row per variant (and the A/A copy) of each group row: a table that fits a screen
    however many variants a run times. The contract column where the run held its variants."""
    contract = any(t.measured and t.measured.contract for r in rows for t in r.times)
    head = ["where", "torch"] + (["run"] if several else []) + [
        "variant", "time", f"/ {rows[0].baseline} [95% next run]", "verdict"] + (
        [f"same as {rows[0].baseline}? (contract)"] if contract else []) + [
        "peak memory", "processes x rounds", "notes"]
    body = []
    for r in rows:
        where = [f"{r.group.device} {r.group.size.name} {r.group.dtype}", f"{r.torch}, {r.threads} thr"]
        where += [r.run] if several else []
        by_num, notes = {x.numerator: x for x in r.ratios}, {}
        for name, note in variant_notes(r):
            notes.setdefault(name, []).append(note)
        for t in r.times:
            x = by_num.get(t.name)
            ratio = fmt_ratio(x.value, x.low, x.high) if x else "baseline" if t.name == r.baseline else None
            body.append(where + [t.name, fmt_seconds(t.seconds), ratio, verdict(x) if x else None]
                        + ([_contract_cell(t, r.baseline)] if contract else [])
                        + [fmt_bytes(t.peak_bytes) if t.peak_bytes is not None else None,
                           f"{x.processes} x {x.rounds // max(x.processes, 1)}" if x else None,
                           "; ".join(notes.get(t.name, [])) or None])
        if r.aa is not None:
            ok = r.aa.low <= 1 <= r.aa.high
            body.append(where + [f"{r.aa.numerator} (A/A)", None, fmt_ratio(r.aa.value, r.aa.low, r.aa.high),
                                 "ok" if ok else AA_FAIL] + [None] * (3 + contract))
    return markdown_table(head, body)


def _contract_cell(t, baseline: str) -> str | None:
    """Whether the timed variant or setup kept the contract at this shape (`pytest bench` held it)."""
    if t.name == baseline:
        return "the baseline"
    return t.measured.contract.short() if t.measured and t.measured.contract else None


def render_markdown(summary: Summary) -> str:
    several = len(summary.runs) > 1
    lines = ["# Benchmark report", "", "How to read it: one table per operation, one row per variant "
             "and group (device, size, dtype), every variant timed on the same inputs. A ratio is "
             "the geometric mean over processes of each "
             "process's median paired round ratio; the baseline's time is the same over its own "
             "rounds and every other time the baseline's times its ratio, so the ratio is the "
             f"ratio of the times shown (above 1: the first variant is slower). Verdicts: {SPEED_RULE}. "
             "Method: "
             + stats.METHOD + f". Intervals are {stats.CONFIDENCE:.0%}. No winner is named from fewer "
             f"than {stats.MIN_ROUNDS} paired rounds. A/A: a second copy of the baseline timed against "
             f"it (`pytest bench --aa`); if its interval excludes 1, {AA_FAIL}. Epochs: {EPOCH_NOTE}. Peak "
             "memory: the most bytes allocated at once during one call, measured from the allocator "
             "(deterministic, so a difference over 1% and over 4 KiB is named in the verdict).", ""]
    lines += [f"**{p}**" for p in summary.partial] + ([""] if summary.partial else [])
    if any(r.thinned > 1 for r in summary.rows):
        lines += [f"Groups with more than {CAP_ROUNDS:,} rounds were thinned to every k-th round "
                  "(k in report.json) to keep memory bounded.", ""]
    lines += [_baselines_line(summary), ""] + fastest_markdown(list(summary.rows), several)
    for op in dict.fromkeys(r.group.operation for r in summary.rows):
        lines += [f"## {op}", ""]
        for base in dict.fromkeys(r.baseline for r in summary.rows if r.group.operation == op):
            rows = [r for r in summary.rows if r.group.operation == op and r.baseline == base]
            lines += [_group_table(rows, several), ""]
    lines += floors_markdown(summary.rows) + instructions_markdown(summary.rows)
    lines += ["## Environment", "", "Made by `pytest bench` (runs saved under results/local/benchmarks) "
              "and `dotbias report`.", ""]
    envs = [env.as_dict() for env in summary.runs]
    keys = list(envs[0]) if envs else []
    lines += [markdown_table(keys, [[env[k] for k in keys] for env in envs]), ""]
    return "\n".join(lines)


def _baselines_line(summary: Summary) -> str:
    """Which baseline every ratio is to, as the runs recorded it (`pytest bench --baseline`)."""
    if len(summary.baselines) == 1:
        return (f"Baseline: {summary.baselines[0]} (every ratio is a variant's time over "
                f"{summary.baselines[0]}'s, as the run recorded it).")
    runs = {b: sorted({r.run for r in summary.rows if r.baseline == b}) for b in summary.baselines}
    return ("Baselines: " + "; ".join(f"{b} (run {', '.join(rs)})" for b, rs in runs.items())
            + ". Runs judged against different baselines are not compared with each other.")


def row_json(r: Row) -> dict:
    return {"group": r.group.as_dict(), "label": r.group.label, "run": r.run, "torch": r.torch,
            "baseline": r.baseline,
            "threads": r.threads, "thinned_every": r.thinned, "sweep_axes": list(r.sweep_axes),
            "times": {t.name: {"seconds": t.seconds, "processes": t.processes, "rounds": t.rounds}
                      | measured_json(t.measured) for t in r.times},
            "ratios": [x.as_dict() for x in r.ratios], "aa": r.aa.as_dict() if r.aa else None}


def measured_json(m: Benchmark | None) -> dict:
    """What report.json says a variant's benchmark measured beside its time, as the run stored it:
    floor, instruction counts, peak memory, notes, compiled, the slowest first call, the graphs
    compiled inside the timed rounds, the contract note (the keys present only where there is
    something to say)."""
    if m is None:
        return {}
    out = {"floor": m.floor.as_dict() if m.floor else None,
           "instructions": m.instructions.as_dict() if m.instructions else None,
           "memory": {"peak_bytes": m.peak_bytes} if m.peak_bytes is not None else None,
           "notes": list(m.notes), "compiled": m.compiled, "first_call_s": m.first_call_s,
           "compiles_in_rounds": m.compiles_in_rounds,
           "contract": m.contract.as_dict() if m.contract else None}
    return {k: v for k, v in out.items() if v or k == "compiled"}


def summary_json(summary: Summary) -> dict:
    """report.json: the one writer of a summary."""
    return {"confidence": stats.CONFIDENCE, "method": stats.METHOD, "epoch": EPOCH_NOTE,
            "partial": list(summary.partial), "runs": [env.as_dict() for env in summary.runs],
            "baselines": summary.baselines,
            "rows": [row_json(r) for r in summary.rows]}
