"""One cross-version summary from the per-torch-version runs that tox leaves in results/local/tox/<env>/:
`check/equivalence.json` (from `dotbias check`) and `bench.json` (a pytest-benchmark run).

Per torch version: the equivalence verdict with the largest share of the error budget used, and the
time ratio of every variant to the baseline per operation with its 95% next-run interval (and the
instruction-count ratio where the run counted them). Versions are compared in order: a variant whose
verdict changes, or whose ratio's interval does not overlap the previous version's, is a change
beyond noise, and the first line of the markdown names it."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from packaging.version import InvalidVersion, Version

from dotbias.equivalence.check_summary import CheckSummary, read_check_summary
from dotbias.io.tables import fmt_float, fmt_ratio, markdown_table
from dotbias.report.summary import Row, Summary, load_run, summarise
from dotbias.timing.groups import OPERATIONS
from dotbias.timing.stats import Ratio

EQUIVALENCE, BENCH = "equivalence.json", "bench.json"


def version_key(version: str) -> Version:
    """torch's version order ('2.9.1+cu128' < '2.13.0+cpu' < '2.14.1'; '2.6.0rc1' < '2.6.0')."""
    try:
        return Version(version)
    except InvalidVersion:
        raise ValueError(f"not a torch version: {version!r}") from None


@dataclass(frozen=True)
class VersionRun:
    """One tox environment's runs: its `dotbias check` summary and its benchmark summary."""
    env: str
    torch: str
    equivalence: CheckSummary | None
    bench: Summary | None


@dataclass(frozen=True)
class VersionRatio:
    """A variant's time ratio to the baseline in one version, and its instruction-count ratio."""
    ratio: Ratio
    count_ratio: float | None

    def as_json(self) -> dict:
        return self.ratio.as_dict() | {"faster": self.ratio.faster, "count_ratio": self.count_ratio}


@dataclass(frozen=True)
class VersionRow:
    """One torch version's line of the table: its equivalence and its ratios per operation."""
    env: str
    torch: str
    verdict: str
    worst_ratio: float | None
    worst_where: str
    pairs: dict[str, str]               # pair -> "bitwise", "within error" or "DIFFERENT"
    threads: int | None
    bench_threads: int | None
    cuda: str | None
    ratios: dict[str, dict[str, VersionRatio]] = field(default_factory=dict)   # key -> variant -> ratio

    def ratio(self, key: str, variant: str) -> VersionRatio | None:
        return self.ratios.get(key, {}).get(variant)

    def as_json(self) -> dict:
        return asdict(self) | {"ratios": {k: {v: x.as_json() for v, x in per.items()}
                                          for k, per in self.ratios.items()}}


@dataclass(frozen=True)
class CrossVersion:
    """The versions in torch order, the operations' keys, the variants shown and every change
    beyond noise; `as_json` is cross_version.json."""
    versions: tuple[VersionRow, ...]
    ratio_keys: tuple[str, ...]
    variants: tuple[str, ...]
    changes: tuple[str, ...]

    def as_json(self) -> dict:
        return {"versions": [r.as_json() for r in self.versions], "ratio_keys": list(self.ratio_keys),
                "variants": list(self.variants), "changes": list(self.changes)}


def collect(folder: str | Path) -> list[VersionRun]:
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
        check = read_check_summary(eq) if eq.exists() else None
        summary = summarise([load_run(bench)]) if bench.exists() else None
        entries.append(VersionRun(env.name, check.torch if check else summary.runs[0].torch,
                                  check, summary))
    if not entries:
        raise ValueError(f"{folder}: no torch-version runs inside (expected <env>/check/{EQUIVALENCE} "
                         f"or <env>/{BENCH})")
    return sorted(entries, key=lambda e: version_key(e.torch))


def _count_ratio(row: Row, variant: str) -> float | None:
    """Minimum instructions per call of `variant` over the baseline's, where both were counted."""
    def least(name: str) -> float | None:
        t = row.time(name)
        return t.measured.instructions.minimum if t and t.measured and t.measured.instructions else None
    num, den = least(variant), least(row.ratios[0].denominator) if row.ratios else None
    return num / den if num and den else None


def _ratios(bench: Summary | None) -> dict[str, dict[str, VersionRatio]]:
    """Operation -> variant -> its ratio to the baseline (default sizes only, CPU and CUDA alike)."""
    out: dict[str, dict[str, VersionRatio]] = {}
    for r in (bench.rows if bench else ()):
        if r.sweep_axes:
            continue
        for x in r.ratios:
            out.setdefault(r.group.label, {})[x.numerator] = VersionRatio(x, _count_ratio(r, x.numerator))
    return out


def _version_row(e: VersionRun) -> VersionRow:
    """The verdict, the worst row by share of the error budget, each pair's own verdict, and the
    ratios of the version `e`."""
    eq, env = e.equivalence, (e.bench.runs[0] if e.bench else None)
    rows = eq.rows if eq else ()
    worst = max(rows, key=lambda r: r.worst_ratio or 0.0, default=None)
    pairs: dict[str, str] = {}
    for r in rows:
        word = "DIFFERENT" if not r.close else "bitwise" if r.exact else "within error"
        now = pairs.get(r.pair)
        pairs[r.pair] = word if now in (None, "bitwise") or word == "DIFFERENT" else now
    where = f"{worst.pair}, {worst.case}, {worst.dtype}" if worst and worst.worst_ratio else ""
    return VersionRow(e.env, e.torch, eq.verdict if eq else "not run",
                      worst.worst_ratio if worst else None, where, pairs, eq.threads if eq else None,
                      env and env.torch_threads, env and env.cuda, _ratios(e.bench))


def _changes(rows: list[VersionRow]) -> list[str]:
    """Verdicts and ratios that changed beyond noise from one version to the next."""
    out = []
    for prev, now in zip(rows, rows[1:]):
        for pair, word in now.pairs.items():
            if pair in prev.pairs and prev.pairs[pair] != word:
                out.append(f"torch {now.torch}: {pair} {prev.pairs[pair]} -> {word}")
        for key, per_variant in now.ratios.items():
            for v, vx in per_variant.items():
                x, p = vx.ratio, (vp.ratio if (vp := prev.ratio(key, v)) else None)
                same = p and p.denominator == x.denominator      # one baseline, or none
                if same and (x.low > p.high or x.high < p.low):
                    out.append(f"torch {now.torch}: {key.split()[0]} {v}/{x.denominator} "
                               f"{p.value:.3f} -> {x.value:.3f}")
    return out


def summarise_versions(entries: list[VersionRun]) -> CrossVersion:
    rows = [_version_row(e) for e in entries]
    rank = {op: i for i, op in enumerate(OPERATIONS)}
    keys = sorted({k for r in rows for k in r.ratios}, key=lambda k: (rank.get(k.split()[0], 99), k))
    variants = dict.fromkeys(v for r in rows for k in keys for v in r.ratios.get(k, {}))
    return CrossVersion(tuple(rows), tuple(keys), tuple(variants), tuple(_changes(rows)))


def first_line(summary: CrossVersion) -> str:
    versions = ", ".join(r.torch for r in summary.versions)
    if summary.changes:
        return f"Changed beyond noise across torch {versions}: " + "; ".join(summary.changes) + "."
    return f"No verdict and no time ratio changed beyond noise across torch {versions}."


def op_label(key: str) -> str:
    """'forward cpu ml100k float32' -> 'forward (cpu, ml100k, float32)'."""
    op, *where = key.split()
    return f"{op} ({', '.join(where)})"


def _cell(x: VersionRatio | None) -> str:
    if x is None:
        return "–"
    counts = f"; counts {x.count_ratio:.3f}" if x.count_ratio else ""
    return fmt_ratio(x.ratio.value, x.ratio.low, x.ratio.high) + counts


def render_markdown(summary: CrossVersion) -> str:
    rows, keys = summary.versions, summary.ratio_keys
    lines = [first_line(summary), "", "# Across torch versions", "",
             "One tox environment per torch version. *Equivalence* is `dotbias check` (the fixed grid, "
             "float32 and float64, deterministic algorithms off and on); *worst share* is the largest "
             "error/allowed of any row. Ratios are each variant's time over the baseline's with a 95% "
             "next-run interval from `pytest bench` (above 1: slower than the baseline). A change "
             "beyond noise: a pair's verdict differs from the previous version's, or a ratio's "
             "interval does not overlap it.", "", "## Equivalence", "",
             markdown_table(["torch", "verdict", "worst share of the budget", "where", "pairs not bitwise"],
                            [[r.torch, r.verdict, fmt_float(r.worst_ratio), r.worst_where or "–",
                              ", ".join(p for p, w in r.pairs.items() if w != "bitwise") or "–"]
                             for r in rows]), ""]
    for k in keys:
        base = next((x.ratio.denominator for r in rows for x in r.ratios.get(k, {}).values()), "?")
        lines += [f"## {op_label(k)}: time / {base}'s [95% next run]", "",
                  markdown_table(["variant", *(f"torch {r.torch}" for r in rows)],
                                 [[v, *(_cell(r.ratio(k, v)) for r in rows)] for v in summary.variants
                                  if any(r.ratio(k, v) for r in rows)]), ""]
    lines += ["Environments: " + "; ".join(
        f"{r.env}: torch {r.torch}, {r.bench_threads or '?'} bench thread(s), "
        f"GPU {r.cuda or 'none'}" for r in rows) + ".", ""]
    return "\n".join(lines)
