"""One cross-version table from the per-torch-version runs that tox leaves in results/local/tox/<env>/:
`equivalence.json` (from `dotbias check`) and `bench.json` (a pytest-benchmark run).

Per torch version: the equivalence verdict with the largest differences seen, and the
ratio (the first variant over the baseline, named from the runs) with its 95% next-run
interval per operation; plus a plot of the ratios across versions."""
from __future__ import annotations

import re
from pathlib import Path

from dotbias.io.files import read_json
from dotbias.io.tables import fmt_float
from dotbias.report.summary import load_run, summarise
from dotbias.io.tables import fmt_ratio as _fmt
from dotbias.timing.groups import OPERATIONS

EQUIVALENCE, BENCH = "equivalence.json", "bench.json"


def version_key(version: str) -> tuple:
    """'2.9.1+cu128' < '2.13.0+cpu' < '2.14.1+cu130': numeric, not string, order."""
    nums = re.findall(r"\d+", version.split("+")[0])
    return tuple(int(n) for n in nums) or (0,)


def _load_equivalence(path: Path) -> dict:
    data = read_json(path, "`dotbias check` JSON")
    if not isinstance(data, dict) or "verdict" not in data or "torch" not in data:
        raise ValueError(f"{path}: not a `dotbias check` file (no 'verdict' and 'torch')")
    return data


def collect(folder: str | Path) -> list[dict]:
    """One entry per environment folder that holds an equivalence.json and/or a bench.json."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: folder not found (run `tox` first: each torch environment "
                                "writes results/local/tox/<env>/)")
    entries = []
    for env in sorted(p for p in folder.iterdir() if p.is_dir()):
        eq, bench = env / "check" / EQUIVALENCE, env / BENCH    # check/: `dotbias check`'s result set
        eq = eq if eq.exists() else env / EQUIVALENCE
        if not eq.exists() and not bench.exists():
            continue
        entry = {"env": env.name, "equivalence": _load_equivalence(eq) if eq.exists() else None,
                 "bench": summarise([load_run(bench)]) if bench.exists() else None}
        entry["torch"] = (entry["equivalence"] or {}).get("torch") or entry["bench"].runs[0]["torch"]
        entries.append(entry)
    if not entries:
        raise ValueError(f"{folder}: no torch-version runs inside (expected <env>/{EQUIVALENCE} "
                         f"or <env>/{BENCH})")
    return sorted(entries, key=lambda e: version_key(e["torch"]))


def _ratios(bench) -> dict[str, dict]:
    """Group label -> the first ratio of that group (sweep sizes left out)."""
    out = {}
    for r in (bench.rows if bench else ()):
        if r.ratios and not r.sweep_axes:
            out[r.group.label] = r.ratios[0].as_dict()
    return out


def summarise_versions(entries: list[dict]) -> dict:
    rows = []
    for e in entries:
        eq = e["equivalence"] or {}
        env = e["bench"].runs[0] if e["bench"] else {}
        rows.append({"env": e["env"], "torch": e["torch"], "verdict": eq.get("verdict", "not run"),
                     "max_abs_output_diff": eq.get("max_abs_output_diff"),
                     "max_abs_grad_diff": eq.get("max_abs_grad_diff"),
                     "inexact_cases": eq.get("inexact_cases", []),
                     "threads": eq.get("threads"), "bench_threads": env.get("torch_threads"),
                     "cuda": env.get("cuda"), "ratios": _ratios(e["bench"])})
    rank = {op: i for i, op in enumerate(OPERATIONS)}
    keys = sorted({k for r in rows for k in r["ratios"]}, key=lambda k: (rank.get(k.split()[0], 99), k))
    pairs = sorted({f"{x['numerator']}/{x['denominator']}" for r in rows for x in r["ratios"].values()})
    return {"versions": rows, "ratio_keys": keys, "pairs": pairs}


def pair_label(summary: dict) -> str:
    """The ratio the table and plot show, named from the runs (e.g. 'emb/cp'), never assumed."""
    return ", ".join(summary.get("pairs") or ["time ratio"])


def fmt_ratio(x: dict) -> str:
    return _fmt(x["value"], x["low"], x["high"])


def op_label(key: str) -> str:
    """'forward cpu ml100k float32' -> 'forward (cpu, ml100k, float32)'."""
    op, *where = key.split()
    return f"{op} ({', '.join(where)})"


def render_markdown(summary: dict) -> str:
    rows, keys, pair = summary["versions"], summary["ratio_keys"], pair_label(summary)
    lines = ["# Across torch versions", "",
             "One row per torch version (a tox environment). *Equivalence* is `dotbias check`: the "
             "fixed grid of cases, both dtypes, deterministic algorithms off and on; *bitwise equal* "
             f"means every output and gradient matched bit for bit. Ratios are {pair} time (the first "
             "variant over the baseline) with a 95% next-run interval from `pytest bench` (above 1: "
             "the first is slower).", "",
             "## Equivalence", "",
             "| torch | verdict | max abs diff outputs | max abs diff gradients | inexact cases |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['torch']} | {r['verdict']} | {fmt_float(r['max_abs_output_diff'])} | "
                     f"{fmt_float(r['max_abs_grad_diff'])} | {'; '.join(r['inexact_cases']) or '–'} |")
    lines += ["", f"## Time ratio {pair} [95% next run]", "",
              "| torch | " + " | ".join(op_label(k) for k in keys) + " |", "|---|" + "---|" * len(keys)]
    for r in rows:
        cells = []
        for k in keys:
            x = r["ratios"].get(k)
            cells.append("–" if x is None else fmt_ratio(x) + (f" ({x['faster']} faster)"
                                                                if x["faster"] else ""))
        lines.append(f"| {r['torch']} | " + " | ".join(cells) + " |")
    lines += ["", "Environments: " + "; ".join(
        f"{r['env']}: torch {r['torch']}, {r['bench_threads'] or '?'} bench thread(s), "
        f"GPU {r['cuda'] or 'none'}" for r in rows) + ".", ""]
    return "\n".join(lines)
