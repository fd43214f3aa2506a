"""Every figure dotbias draws, and the one matplotlib set-up (Agg backend, PNG rendered in memory so
that a run's files are all rendered before the first is written): the benchmark report's bar charts
and sweep plots, the `dotbias run` plot and the cross-version plot."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import io  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402

from dotbias.io.tables import fmt_ratio, time_unit
from dotbias.report.versions import CrossVersion, op_label

AXES = {"n": ("n_users", "users = items"), "f": ("n_factors", "factors"), "bs": ("bs", "batch size")}


def _unit(values: list[float]) -> tuple[str, float]:
    return time_unit(max(values, default=1.0))


def _per(op: str) -> str:
    return "epoch" if op.startswith("epoch") else "call"


def _row_label(row, several_runs: bool) -> str:
    text = f"{row.group.device} {row.group.size.name} {row.group.dtype}"
    return text + (f"\ntorch {row.torch} {row.run}" if several_runs else "")


def bar_chart(op: str, rows: list, several_runs: bool):
    """Left: each variant's time per group, one labelled bar each; right: each ratio with its
    interval against 1, labelled on its own line, in the colour of its numerator's bar."""
    secs = [t.seconds for r in rows for t in r.times]
    unit, scale = _unit(secs)
    variants = list(dict.fromkeys(t.name for r in rows for t in r.times))
    colour = {v: f"C{i % 10}" for i, v in enumerate(variants)}
    bars = [(r, t) for r in rows for t in r.times]
    ratios = [(r, x) for r in rows for x in list(r.ratios) + ([r.aa] if r.aa else [])]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 1.4 + 0.32 * max(len(bars), len(ratios), 3)),
                                  gridspec_kw={"width_ratios": [1, 1.1]})
    ax.barh(range(len(bars)), [t.seconds / scale for _, t in bars],
            color=[colour[t.name] for _, t in bars])
    ax.set_yticks(range(len(bars)), [_bar_label(r, t.name, len(rows), several_runs) for r, t in bars],
                  fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel(f"{unit} per {_per(op)} (paired with the baseline)")
    _ratio_panel(ax2, ratios, colour, len(rows), several_runs)
    where = "" if len(rows) > 1 else f" ({_row_label(rows[0], several_runs).replace(chr(10), ' ')})"
    fig.suptitle(f"{op}{where}: time per {_per(op)} and ratio with its 95% interval", fontsize=12)
    fig.tight_layout()
    return fig


def _bar_label(row, variant: str, n_rows: int, several_runs: bool) -> str:
    return variant if n_rows == 1 else f"{variant}, {_row_label(row, several_runs).replace(chr(10), ' ')}"


def _ratio_panel(ax, ratios: list, colour: dict, n_rows: int, several_runs: bool) -> None:
    for y, (_, x) in enumerate(ratios):
        c = colour.get(x.numerator, "black")
        ax.errorbar([x.value], [y], xerr=[[x.value - x.low], [x.high - x.value]], fmt="o",
                    capsize=4, color=c, ms=6, lw=2)
    labels = [f"{x.numerator}/{x.denominator} {fmt_ratio(x.value, x.low, x.high)}"
              + ("" if n_rows == 1 else f", {_row_label(r, several_runs).replace(chr(10), ' ')}")
              for r, x in ratios]
    ax.set_yticks(range(len(ratios)), labels, fontsize=9)
    ax.invert_yaxis()
    ax.axvline(1.0, color="grey", lw=1, ls="--")
    ax.set_xlabel("time ratio with 95% interval (above 1: numerator slower)")
    ax.margins(x=0.15, y=0.08)


def sweep_plot(axis: str, rows: list, several_runs: bool):
    key, title = AXES[axis]
    ops = list(dict.fromkeys(r.group.operation for r in rows))
    fig, axs = plt.subplots(1, len(ops), figsize=(5.2 * len(ops), 4.2), squeeze=False)
    for ax, op in zip(axs[0], ops):
        lines: dict[str, list[tuple[float, float]]] = {}
        for r in (r for r in rows if r.group.operation == op):
            for t in r.times:
                name = f"{t.name} {r.group.device} {r.group.dtype}"
                name += f" torch {r.torch} {r.run}" if several_runs else ""
                lines.setdefault(name, []).append((getattr(r.group.size, key), t.seconds))
        for name, pts in lines.items():
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name)
        ax.set(xscale="log", yscale="log", xlabel=title, title=op)
        ax.legend(fontsize=8)
    axs[0][0].set_ylabel("seconds per call (paired with the baseline)")
    fig.suptitle(f"time against {title} (log-log)")
    fig.tight_layout()
    return fig


def render_plots(summary) -> dict[str, object]:
    """File name -> matplotlib Figure."""
    several = len(summary.runs) > 1
    figs = {}
    plain = [r for r in summary.rows if not r.sweep_axes]
    for op in dict.fromkeys(r.group.operation for r in plain):
        figs[f"bench_{op}.png"] = bar_chart(op, [r for r in plain if r.group.operation == op], several)
    for axis in AXES:
        swept = [r for r in summary.rows if axis in r.sweep_axes]
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


def cross_version_plot(summary: CrossVersion) -> bytes:
    """One panel per operation: every variant's time ratio to the baseline, with its 95% next-run
    interval, across torch versions."""
    rows, keys = summary.versions, summary.ratio_keys
    fig, axes = plt.subplots(1, max(len(keys), 1), figsize=(4 * max(len(keys), 1), 4.2), squeeze=False)
    xs = range(len(rows))
    for ax, k in zip(axes[0], keys):
        variants = [v for v in summary.variants if any(r.ratio(k, v) for r in rows)]
        for i, v in enumerate(variants):
            pts = [(x, r.ratio(k, v).ratio) for x, r in zip(xs, rows) if r.ratio(k, v)]
            off = (i - (len(variants) - 1) / 2) * 0.05
            err = [[p.value - p.low for _, p in pts], [p.high - p.value for _, p in pts]]
            ax.errorbar([x + off for x, _ in pts], [p.value for _, p in pts], yerr=err,
                        marker="o", ms=3, capsize=2, label=v)
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_xticks(list(xs), [r.torch.split("+")[0] for r in rows])
        ax.set(xlabel="torch", title=op_label(k), ylabel="time / baseline (95% next run)")
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return png_bytes(fig)
