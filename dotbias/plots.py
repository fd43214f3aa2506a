"""Every figure dotbias draws, and the one matplotlib set-up (Agg backend, PNG rendered in memory so
that a run's files are all rendered before the first is written): the benchmark report's bar charts
and sweep plots, the `dotbias run` plot and the cross-version plot."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import io  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402

from .tables import time_unit  # noqa: E402

AXES = {"n": ("n_users", "users = items"), "f": ("n_factors", "factors"), "bs": ("bs", "batch size")}


def _label(row: dict, several_runs: bool) -> str:
    text = f"{row['device']}\n{row['size'].get('name', '?')}\n{row['dtype']}"
    if several_runs:
        text += f"\ntorch {row['torch']} {row['run']}"
    return text


def _unit(values: list[float]) -> tuple[str, float]:
    return time_unit(max(values, default=1.0))


def bar_chart(op: str, rows: list[dict], several_runs: bool):
    medians = [s["median"] for r in rows for s in r["variants"].values() if s.get("median")]
    unit, scale = _unit(medians)
    variants = list(dict.fromkeys(v for r in rows for v in r["variants"]))
    width = 0.8 / max(len(variants), 1)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(rows) + 2), 3.6))
    for i, v in enumerate(variants):
        xs, med, lo, hi = [], [], [], []
        for j, r in enumerate(rows):
            s = r["variants"].get(v)
            if s and s.get("median"):
                xs.append(j + (i - (len(variants) - 1) / 2) * width)
                med.append(s["median"] / scale)
                q1 = s.get("q1") if s.get("q1") is not None else s["median"]
                q3 = s.get("q3") if s.get("q3") is not None else s["median"]
                lo.append(max(s["median"] - q1, 0) / scale)
                hi.append(max(q3 - s["median"], 0) / scale)
        ax.bar(xs, med, width, yerr=[lo, hi], capsize=3, label=v)
    for j, r in enumerate(rows):
        text = "\n".join(f"{x['numerator']}/{x['denominator']} {x['value']:.2f} "
                         f"[{x['low']:.2f}, {x['high']:.2f}]" for x in r["ratios"])
        ax.annotate(text, (j, 1.0), xycoords=("data", "axes fraction"), ha="center", va="bottom",
                    fontsize=7)
    ax.set_xticks(range(len(rows)), [_label(r, several_runs) for r in rows], fontsize=8)
    if medians and max(medians) / min(medians) > 20:
        ax.set_yscale("log")
    ax.set_ylabel(f"{unit} per call (median, IQR)")
    ax.set_title(op, pad=28)
    ax.legend()
    return fig


def sweep_plot(axis: str, rows: list[dict], several_runs: bool):
    key, title = AXES[axis]
    ops = list(dict.fromkeys(r["operation"] for r in rows))
    fig, axs = plt.subplots(1, len(ops), figsize=(4.2 * len(ops), 3.6), squeeze=False)
    for ax, op in zip(axs[0], ops):
        lines: dict[tuple, list[tuple[float, float]]] = {}
        for r in rows:
            if r["operation"] != op:
                continue
            for v, s in r["variants"].items():
                name = (v, r["device"], r["dtype"]) + ((r["torch"], r["run"]) if several_runs else ())
                lines.setdefault(name, []).append((r["size"][key], s["median"]))
        for name, pts in lines.items():
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=" ".join(map(str, name)))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(title)
        ax.set_ylabel("seconds per call (median)")
        ax.set_title(op)
        ax.legend(fontsize=7)
    fig.suptitle(f"time against {title} (log-log)", y=1.03)
    return fig


def render_plots(summary: dict) -> dict[str, object]:
    """File name -> matplotlib Figure."""
    rows = summary["rows"]
    several = len(summary["runs"]) > 1
    figs = {}
    plain = [r for r in rows if not r["sweep_axes"]]
    for op in dict.fromkeys(r["operation"] for r in plain):
        figs[f"bench_{op}.png"] = bar_chart(op, [r for r in plain if r["operation"] == op], several)
    for axis in AXES:
        swept = [r for r in rows if axis in r["sweep_axes"] and AXES[axis][0] in r["size"]]
        if swept:
            figs[f"sweep_{axis}.png"] = sweep_plot(axis, swept, several)
    return figs


def png_bytes(fig) -> bytes:
    """A matplotlib figure rendered to PNG in memory (then closed), so that rendering can finish
    before any file is written."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def run_plot(res) -> bytes:
    """`dotbias run`: loss per epoch for each model (epochs numbered from 1, as in run.md) and the
    two first models' learned item biases against each other."""
    d, c = res.dataset, res.config
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.6))
    fig.suptitle(f"dotbias run: {d['source']}\n{d['ratings']:,} ratings, {d['users'] - 1:,} users, "
                 f"{d['titles'] - 1:,} titles; {c.factors} factors, bs {c.bs}, {c.epochs} "
                 f"epoch{'s' * (c.epochs != 1)}, seed {c.seed}", fontsize=10)
    for i, (n, tr) in enumerate(res.training.items()):
        ep = [e.epoch + 1 for e in tr.epochs]
        size = max(10 - 3 * i, 3)           # later models drawn smaller: equal points stay visible
        line, = ax1.plot(ep, [e.valid_loss for e in tr.epochs], marker="o", ms=size, label=f"{n} valid")
        ax1.plot(ep, [e.train_loss for e in tr.epochs], ls="--", marker="s", ms=size, mfc="none",
                 color=line.get_color(), label=f"{n} train")
    ax1.set_xticks(range(1, c.epochs + 1, max(1, c.epochs // 10)))
    ax1.set_xlim(0.5, c.epochs + 0.5)
    ax1.set(xlabel="epoch", ylabel="MSE loss (stars²)", title="fit_one_cycle loss per epoch")
    ax1.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    names = list(res.item_bias)
    a, b = res.item_bias[names[0]].to_numpy(), res.item_bias[names[1]].to_numpy()
    ax2.scatter(a, b, s=4, alpha=0.5)
    lo, hi = float(min(a.min(), b.min())), float(max(a.max(), b.max()))
    ax2.plot([lo, hi], [lo, hi], color="grey", lw=0.8, label="y = x")
    ax2.set(xlabel=f"{names[0]} item bias (logit scale, before sigmoid_range)",
            ylabel=f"{names[1]} item bias (logit scale, before sigmoid_range)",
            title=f"learned item biases, {len(a):,} titles")
    ax2.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return png_bytes(fig)


def cross_version_plot(summary: dict) -> bytes:
    """The emb/cp ratios with their intervals across torch versions."""
    from .crossversion import _label

    rows, keys = summary["versions"], summary["ratio_keys"]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    xs = range(len(rows))
    for i, k in enumerate(keys):
        pts = [(x, r["ratios"][k]) for x, r in zip(xs, rows) if k in r["ratios"]]
        if not pts:
            continue
        off = (i - (len(keys) - 1) / 2) * 0.06
        err = [[p["value"] - p["low"] for _, p in pts], [p["high"] - p["value"] for _, p in pts]]
        ax.errorbar([x + off for x, _ in pts], [p["value"] for _, p in pts], yerr=err,
                    marker="o", capsize=3, label=_label(k))
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xticks(list(xs), [r["torch"] for r in rows])
    ax.set(xlabel="torch", ylabel="time ratio emb/cp (95% CI)", title="emb/cp across torch versions")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return png_bytes(fig)
