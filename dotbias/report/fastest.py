"""REPORT.md's answer to "what is the fastest thing that is still the same?": per benchmark group
(operation, device, size, dtype, run), the variant or training setup with the lowest ratio to the
baseline among those the run held to the contract and that kept it (`extra_info["contract"]`),
with its time, ratio and interval. A group where nothing timed was held (a run made before the
contract was recorded) gets no row; where nothing that kept it beat the baseline, the baseline."""
from __future__ import annotations

from dotbias.io.tables import fmt_ratio, fmt_seconds, markdown_table
from dotbias.report.summary import Row


def fastest_kept(row: Row) -> tuple[str, str, str, str] | None:
    """(name, time, ratio [interval], contract) of `row`'s fastest variant or setup that kept the
    contract, or None when the run held none of them."""
    held = [t for t in row.times if t.measured and t.measured.contract]
    if not held:
        return None
    by_num = {x.numerator: x for x in row.ratios}
    kept = [(by_num[t.name], t) for t in held if t.measured.contract.passed and t.name in by_num]
    best = min(kept, key=lambda xt: xt[0].value, default=None)
    if best is not None and best[0].high < 1:
        x, t = best
        return t.name, fmt_seconds(t.seconds), fmt_ratio(x.value, x.low, x.high), t.measured.contract.short()
    base = row.time(row.baseline)
    if base is None:
        return None
    return (row.baseline, fmt_seconds(base.seconds), "1 (the baseline: nothing that kept the "
            "contract was faster beyond its interval)", "the baseline")


def fastest_markdown(rows: list[Row], several: bool) -> list[str]:
    """The section: one row per group whose run held its variants to the contract."""
    body = []
    for r in rows:
        found = fastest_kept(r)
        if found is not None:
            where = [r.group.operation, f"{r.group.device} {r.group.size.name} {r.group.dtype}"]
            body.append(where + ([r.run] if several else []) + list(found))
    if not body:
        return []
    head = ["operation", "where"] + (["run"] if several else []) + [
        "fastest that kept the contract", "time", "/ baseline [95% next run]", "contract"]
    return ["## Fastest that is still the same", "",
            "Per group, the variant or training setup with the lowest ratio to the baseline among "
            "those `pytest bench` held to the contract at the group's shape and that kept it "
            "(a variant: output and gradients on one batch; a setup: 8 one-cycle steps against the "
            "book's setup in float64); the baseline where none was faster beyond its interval.", "",
            markdown_table(head, body), ""]
