"""Benchmark reports: read pytest-benchmark JSON runs (one or many machines / torch versions), put the
variants of each group side by side with a ratio and its 95% confidence interval, and write
REPORT.md, report.json and plots into one folder.

Ratios compare each variant with a baseline (`cp` when present): Emb/CP > 1 means Emb is slower.
The interval comes from a bootstrap: over the per-round ratios of rounds interleaved between the
variants when the run has them (`extra_info["interleaved"]`, paired), else over each variant's own
rounds (`stats.data`, unpaired), else a normal approximation from mean, stddev and rounds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import tables
from .tables import fmt_seconds
from .files import read_json, write_bytes, write_json, write_text

CONFIDENCE = 0.95
RESAMPLES = 2000
OPERATION_ORDER = ("forward", "forward_backward", "step", "epoch_lean", "epoch_fastai")


@dataclass
class Run:
    """One pytest-benchmark JSON file."""
    path: Path
    machine: dict
    commit: dict
    datetime: str
    benchmarks: list[dict]
    label: str = ""

    @property
    def torch(self) -> str:
        info = self.machine.get("dotbias") or {}
        return info.get("torch") or next((b.get("extra_info", {}).get("torch") for b in self.benchmarks
                                          if b.get("extra_info", {}).get("torch")), "?")

    def environment(self) -> dict:
        d = self.machine.get("dotbias") or {}
        cpu = self.machine.get("cpu") or {}
        return {"run": self.label, "file": self.path.name, "datetime": self.datetime,
                "commit": (self.commit.get("id") or "?")[:10]
                + (" (dirty)" if self.commit.get("dirty") else ""),
                "node": self.machine.get("node", "?"),
                "cpu": cpu.get("brand_raw") or self.machine.get("processor") or "?",
                "cpu_count": d.get("cpu_count", cpu.get("count")),
                "python": self.machine.get("python_version"),
                "torch": self.torch, "fastai": d.get("fastai"), "torch_threads": d.get("torch_threads"),
                "cuda": d.get("cuda"), "gpu": d.get("gpu")}


def load_run(path: str | Path) -> Run:
    """Read one pytest-benchmark JSON file; a bad file raises with a one-line message naming it."""
    path = Path(path)
    data = read_json(path, "pytest-benchmark JSON")
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise ValueError(f"{path}: not a pytest-benchmark file (no 'benchmarks' list at the top level)")
    if not data["benchmarks"]:
        raise ValueError(f"{path}: holds no benchmarks (was it saved from a --benchmark-disable run?)")
    for i, b in enumerate(data["benchmarks"]):
        stats = b.get("stats") if isinstance(b, dict) else None
        if not isinstance(stats, dict) or not isinstance(stats.get("median"), (int, float)):
            name = b.get("name", "?") if isinstance(b, dict) else "?"
            raise ValueError(f"{path}: benchmark #{i} ({name}) has no stats.median; "
                             "not a pytest-benchmark file")
    return Run(path, data.get("machine_info") or {}, data.get("commit_info") or {},
               str(data.get("datetime", "?")), data["benchmarks"])


def default_runs(storage: Path = Path("results/benchmarks")) -> list[Path]:
    """The newest saved run of each machine folder in pytest-benchmark's file storage."""
    storage = Path(storage)
    if not storage.is_dir():
        return []
    newest = []
    for folder in sorted(p for p in storage.iterdir() if p.is_dir()):
        runs = sorted(folder.glob("*.json"))     # names start with a zero-padded counter
        if runs:
            newest.append(runs[-1])
    return newest


@dataclass
class Ratio:
    numerator: str
    denominator: str
    value: float
    low: float
    high: float
    method: str        # "paired" | "unpaired" | "normal"
    n: int

    @property
    def faster(self) -> str | None:
        """The faster variant when the interval excludes 1, else None."""
        if self.low > 1:
            return self.denominator
        if self.high < 1:
            return self.numerator
        return None


def _bootstrap_median(samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    idx = rng.integers(0, len(samples), size=(RESAMPLES, len(samples)))
    return np.median(samples[idx], axis=1)


def ratio_ci(num: dict, den: dict, seed: int = 0) -> Ratio:
    """The ratio of two benchmarks of one group (num / den) with a 95% bootstrap interval."""
    rng = np.random.default_rng(seed)
    alpha = (1 - CONFIDENCE) / 2
    names = (_variant(num), _variant(den))
    a = (num.get("extra_info") or {}).get("interleaved", {}).get("seconds")
    b = (den.get("extra_info") or {}).get("interleaved", {}).get("seconds")
    if a and b and len(a) == len(b) and len(a) >= 2:
        r = np.asarray(a, float) / np.asarray(b, float)
        boot = _bootstrap_median(r, rng)
        return Ratio(*names, float(np.median(r)), *np.quantile(boot, [alpha, 1 - alpha]).tolist(),
                     "paired", len(r))
    a, b = num["stats"].get("data"), den["stats"].get("data")
    if a and b and len(a) >= 2 and len(b) >= 2:
        a, b = np.asarray(a, float), np.asarray(b, float)
        boot = _bootstrap_median(a, rng) / _bootstrap_median(b, rng)
        return Ratio(*names, float(np.median(a) / np.median(b)),
                     *np.quantile(boot, [alpha, 1 - alpha]).tolist(), "unpaired", min(len(a), len(b)))
    sa, sb = num["stats"], den["stats"]
    value = sa["median"] / sb["median"]
    se = math.sqrt(sum((s.get("stddev", 0) / s["mean"]) ** 2 / max(s.get("rounds", 1), 1)
                       for s in (sa, sb) if s.get("mean")))
    z = 1.959963984540054
    return Ratio(*names, value, value * math.exp(-z * se), value * math.exp(z * se), "normal",
                 min(sa.get("rounds", 1), sb.get("rounds", 1)))


def _variant(b: dict) -> str:
    info = b.get("extra_info") or {}
    if info.get("variant"):
        return info["variant"]
    params = b.get("params") or {}
    if isinstance(params.get("variant"), str):
        return params["variant"]
    return str(b.get("param") or b.get("name", "?")).split("-")[-1].rstrip("]")


def _variant_stats(b: dict) -> dict:
    """Median and quartiles from the interleaved rounds when the run has them (the same rounds the
    ratio comes from), else pytest-benchmark's own stats; both are kept."""
    own = {k: b["stats"].get(k) for k in ("median", "iqr", "q1", "q3", "mean", "stddev", "min",
                                          "rounds", "iterations")}
    seconds = (b.get("extra_info") or {}).get("interleaved", {}).get("seconds")
    if not seconds:
        return own | {"source": "pytest-benchmark", "pytest_benchmark": dict(own)}
    q1, median, q3 = np.quantile(np.asarray(seconds, float), [0.25, 0.5, 0.75]).tolist()
    return {"median": median, "iqr": q3 - q1, "q1": q1, "q3": q3, "rounds": len(seconds),
            "source": "interleaved", "pytest_benchmark": own}


def _baseline(variants: list[str]) -> str:
    return "cp" if "cp" in variants else variants[-1]


def _row(run: Run, group: str, benches: list[dict]) -> dict:
    info = benches[0].get("extra_info") or {}
    parts = [p.strip() for p in group.split("|")]
    variants = {_variant(b): b for b in benches}
    base = _baseline(list(variants))
    ratios = [ratio_ci(variants[v], variants[base]) for v in variants if v != base]
    return {
        "group": group, "run": run.label, "torch": run.torch,
        "operation": info.get("operation", parts[0]),
        "device": info.get("device", parts[1] if len(parts) > 1 else "?"),
        "size": info.get("size", {"name": parts[2] if len(parts) > 2 else "?"}),
        "dtype": info.get("dtype", parts[3] if len(parts) > 3 else "?"),
        "sweep_axes": info.get("sweep_axes", []),
        "variants": {v: _variant_stats(b) for v, b in variants.items()},
        "ratios": [r.__dict__ | {"faster": r.faster} for r in ratios],
    }


def summarise(runs: list[Run]) -> dict:
    """Everything report.json holds: the runs' environments and one row per (group, run)."""
    for i, run in enumerate(runs, 1):
        run.label = run.label or f"#{i}"
    rows = []
    for run in runs:
        groups: dict[str, list[dict]] = {}
        for b in run.benchmarks:
            groups.setdefault(b.get("group") or b.get("name", "?").split("[")[0], []).append(b)
        rows += [_row(run, g, bs) for g, bs in groups.items()]
    op_rank = {op: i for i, op in enumerate(OPERATION_ORDER)}
    size_key = lambda z: tuple(z.get(k) or 0 for k in ("n_users", "n_items", "n_factors", "bs"))
    rows.sort(key=lambda r: (op_rank.get(r["operation"], 99), r["operation"], r["device"],
                             bool(r["sweep_axes"]), size_key(r["size"]), r["size"].get("name", ""),
                             r["dtype"], r["torch"], r["run"]))
    return {"confidence": CONFIDENCE, "ratio_method": __doc__.split("\n\n")[1].replace("\n", " "),
            "runs": [r.environment() for r in runs], "rows": rows}


def fmt_ratio(r: dict) -> str:
    return tables.fmt_ratio(r["value"], r["low"], r["high"])


def render_markdown(summary: dict) -> str:
    rows = summary["rows"]
    several = len(summary["runs"]) > 1
    lines = ["# Benchmark report", "",
             "Each row is one benchmark group: every variant timed on the same inputs. Times are "
             "medians per call with the interquartile range, taken from the rounds interleaved "
             "between the variants where the run has them (the rounds the ratio comes from; "
             "pytest-benchmark's own per-variant stats are in report.json); a ratio above 1 means "
             "the first variant "
             f"is slower. Intervals are {summary['confidence']:.0%} bootstrap intervals: *paired* over "
             "rounds interleaved between the variants, *unpaired* over each variant's own rounds, "
             "*normal* from mean and stddev. **Bold** marks the faster variant where the interval "
             "excludes 1.", ""]
    for op in dict.fromkeys(r["operation"] for r in rows):
        op_rows = [r for r in rows if r["operation"] == op]
        variants = list(dict.fromkeys(v for r in op_rows for v in r["variants"]))
        ratio_names = list(dict.fromkeys(f"{x['numerator']}/{x['denominator']}"
                                         for r in op_rows for x in r["ratios"]))
        head = ["device", "size", "dtype", "torch"] + (["run"] if several else [])
        head += [f"{v} median (IQR)" for v in variants] + [f"{n} [95% CI]" for n in ratio_names]
        head += ["method (n)", "faster"]
        lines += [f"## {op}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in op_rows:
            faster = [x["faster"] for x in r["ratios"] if x["faster"]]
            cells = [r["device"], r["size"].get("name", "?"), r["dtype"], r["torch"]]
            cells += [r["run"]] if several else []
            for v in variants:
                s = r["variants"].get(v)
                text = f"{fmt_seconds(s['median'])} ({fmt_seconds(s['iqr'])})" if s else "–"
                cells.append(f"**{text}**" if s and v in faster else text)
            by_name = {f"{x['numerator']}/{x['denominator']}": x for x in r["ratios"]}
            cells += [fmt_ratio(by_name[n]) if n in by_name else "–" for n in ratio_names]
            cells.append(", ".join(f"{x['method']} ({x['n']})" for x in r["ratios"]) or "–")
            cells.append(", ".join(faster) or "no clear difference")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Environment", "",
              "Made by `pytest bench` (runs saved under results/benchmarks) and `dotbias report RUN.json "
              "...`; `pytest bench --sweep` adds the size sweep. Torch runs with a fixed thread count "
              "(`--threads`, default 1), garbage collection off while timing, a warm-up before timing.",
              ""]
    keys = list(summary["runs"][0]) if summary["runs"] else []
    lines += ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for env in summary["runs"]:
        lines.append("| " + " | ".join(str(env[k]) for k in keys) + " |")
    return "\n".join(lines) + "\n"


def render_text(summary: dict) -> str:
    """The lines `dotbias report` prints: one ratio with its interval per group."""
    out = []
    for r in summary["rows"]:
        times = ", ".join(f"{v} {fmt_seconds(s['median'])}" for v, s in r["variants"].items())
        for x in r["ratios"]:
            verdict = f"{x['faster']} faster" if x["faster"] else "no clear difference"
            run = f", run {r['run']}" if len(summary["runs"]) > 1 else ""
            out.append(f"{r['group']} [torch {r['torch']}{run}]: {times}; "
                       f"{x['numerator']}/{x['denominator']} = {fmt_ratio(x)} "
                       f"({x['method']}, n={x['n']}) -> {verdict}")
    return "\n".join(out)


@dataclass
class Outputs:
    texts: dict[str, str] = field(default_factory=dict)
    pngs: dict[str, bytes] = field(default_factory=dict)


def write_report(paths: list[Path], out_dir: Path) -> str:
    """Read `paths`, write REPORT.md, report.json and PNG plots into `out_dir`; return the summary text.

    Every input is read and every output rendered before the first file is written, so a bad input
    leaves `out_dir` as it was."""
    from .plots import png_bytes, render_plots

    if not paths:
        raise ValueError("no benchmark runs given")
    runs = [load_run(p) for p in paths]
    summary = summarise(runs)
    markdown = render_markdown(summary)
    pngs = {name: png_bytes(fig) for name, fig in render_plots(summary).items()}
    out_dir = Path(out_dir)
    written = [write_text(out_dir / "REPORT.md", markdown), write_json(out_dir / "report.json", summary)]
    for name, data in pngs.items():
        written.append(write_bytes(out_dir / name, data))
    return render_text(summary) + "\nwrote " + ", ".join(str(p) for p in written)
