"""`dotbias run`'s report as markdown (run.md and what the command prints)."""
from __future__ import annotations

from dotbias.equivalence.contract import verdict_word
from dotbias.io.tables import markdown_table
from dotbias.run.config import MIN_RATINGS, TOP_KS

TIMES_NOTE = ("Per-epoch times are not shown: the models train one after the other, so on a shared "
              "machine their seconds measure the load as much as the model. For times, run "
              "`pytest bench` (interleaved rounds, ratios with intervals).")


def _threads(n) -> str:
    return "? threads" if n is None else f"{n} thread{'s' * (n != 1)}"


def _header(res, run_id: str) -> list[str]:
    d, c = res.dataset, res.config
    return ["# dotbias run", "", f"Run `{run_id}`.", "",
            f"Data: {d['source']}: {d['ratings']:,} ratings, {d['users']} users, {d['titles']} titles "
            f"(fastai classes, with #na#; train {d['train_rows']:,}, valid {d['valid_rows']:,}).", "",
            f"Config: {c.epochs} epoch{'s' * (c.epochs != 1)}, factors {c.factors}, bs {c.bs}, "
            f"lr {c.lr}, wd {c.wd}, seed {c.seed}, device {c.device}, {_threads(c.threads)}.", ""]


def _training(res) -> list[str]:
    names = list(res.training)
    head = ["epoch"] + [f"{n} {c}" for n in names for c in ("train loss", "valid loss")]
    rows = ([e + 1] + [f"{v:.4f}" for n in names for v in (res.training[n].epochs[e].train_loss,
                                                             res.training[n].epochs[e].valid_loss)]
            for e in range(res.config.epochs))
    finals = [res.training[n].final_valid_loss for n in names]
    return ["## Training (fit_one_cycle, MSE)", "", markdown_table(head, rows), "",
            "Final valid loss: " + ", ".join(f"{n} {v:.4f}" for n, v in zip(names, finals))
            + f"; largest gap {max(finals) - min(finals):.4f}.", "", TIMES_NOTE, ""] + [
                f"{n}: {note}." for n in names for note in res.training[n].notes]


def _biases(res, min_ratings: int, top_ks) -> list[str]:
    lines = ["## Top 5 titles by learned item bias (each model from its own bias)", ""]
    lines += [f"- **{n}**: " + "; ".join(res.top[n]) for n in res.training]
    lines += ["", "## Top-k overlap", "", markdown_table(
        ["pair"] + [f"top {k}" for k in top_ks],
        ([pair] + [f"{ov[k]:.0%}" for k in top_ks] for pair, ov in res.overlap.items()))]
    if res.spearman:
        corr = ", ".join(f"{n} {v:.3f}" for n, v in res.spearman.items())
        lines += ["", f"Spearman rank correlation of learned vs true item bias (items with "
                  f"{min_ratings}+ ratings): {corr}."]
    return lines + [""]


def _equivalence(res) -> list[str]:
    lines = ["## Equivalence at identical weights", ""]
    for p in res.equivalence["pairs"]:
        verdict = verdict_word(p["bitwise_equal"], p["close"])
        lines.append(f"- {p['pair']} (weights of trained {res.equivalence['weights_from']}, batch "
                     f"{p['output_shapes'][0][0]}): output shapes {p['output_shapes'][0]} / "
                     f"{p['output_shapes'][1]}, largest abs diff of outputs "
                     f"{p['max_abs_output_diff']:.3g}, of gradients {p['max_abs_grad_diff']:.3g}"
                     f" ({verdict}).")
    env = res.environment
    return lines + ["", f"Environment: Python {env['python']}, torch {env['torch']}, fastai "
                    f"{env['fastai']}, {_threads(env['threads'])}, {env['machine']}, {env['time']}.", ""]


def render_markdown(res, run_id: str = "-") -> str:
    """The whole report; epochs are numbered from 1, as in run.png."""
    return "\n".join(_header(res, run_id) + _training(res) + _biases(res, MIN_RATINGS, TOP_KS)
                     + _equivalence(res))
