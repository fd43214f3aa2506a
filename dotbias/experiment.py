"""The main job: the seed's experiment run on both models, checked against each other and, on
synthetic data, against the truth. `run_experiment` computes; `render_*` turn results into text."""
from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from .equivalence import compare_pair
from .tables import markdown_table, verdict_word
from .data import Synthetic, collab_dls, read_movielens, synthetic_ratings
from .training import TrainResult, fit_fastai
from .variants import VARIANTS, check_sizes, get_variant

TOP_KS = (5, 20, 100)
MIN_RATINGS = 20   # items with fewer ratings have noisy biases; rank correlation uses the rest


@dataclass
class Config:
    data: str | None = None        # a MovieLens 100k folder; None = synthetic
    epochs: int = 5
    factors: int = 50
    bs: int = 64
    lr: float = 5e-3
    wd: float = 0.1
    seed: int = 42
    device: str = "cpu"
    variants: tuple[str, ...] = ("emb", "cp")
    quick: bool = False

    def validate(self) -> None:
        check_sizes(epochs=self.epochs, factors=self.factors, bs=self.bs)
        if len(self.variants) < 2:
            raise ValueError("give at least two variants to compare")
        for name in self.variants:
            get_variant(name)
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device {self.device!r} asked for, but torch sees no CUDA device")
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {self.device!r}")


@dataclass
class ExperimentResult:
    config: Config
    dataset: dict
    training: dict[str, TrainResult]
    top: dict[str, list[str]]                       # variant -> top-5 titles by its own bias
    overlap: dict[str, dict[int, float]]            # "emb~cp" / "emb~truth" -> {k: overlap}
    spearman: dict[str, float] = field(default_factory=dict)   # variant -> vs true item bias
    equivalence: dict = field(default_factory=dict)
    environment: dict = field(default_factory=dict)
    item_bias: dict[str, pd.Series] = field(default_factory=dict, repr=False)  # by title
    models: dict[str, torch.nn.Module] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict:
        return {"config": vars(self.config), "dataset": self.dataset, "environment": self.environment,
                "training": {k: v.as_dict() for k, v in self.training.items()},
                "top5": self.top, "overlap": self.overlap,
                "spearman_vs_true_item_bias": self.spearman, "equivalence": self.equivalence}


def environment() -> dict:
    import fastai
    return {"python": platform.python_version(), "torch": torch.__version__,
            "fastai": fastai.__version__, "threads": torch.get_num_threads(),
            "machine": platform.machine(), "time": time.strftime("%Y-%m-%d %H:%M:%S")}


def load_ratings(cfg: Config) -> tuple[pd.DataFrame, Synthetic | None, str]:
    if cfg.data is not None:
        return read_movielens(cfg.data), None, f"MovieLens 100k ({cfg.data})"
    syn = synthetic_ratings(seed=cfg.seed)
    return syn.ratings, syn, "synthetic (MovieLens 100k shape, known truth)"


def top_overlap(a: pd.Series, b: pd.Series, k: int) -> float:
    """Share of the top-k (largest) of `a` that are also in the top-k of `b`."""
    return len(set(a.nlargest(k).index) & set(b.nlargest(k).index)) / k


def run_experiment(cfg: Config, *, progress: bool = True, log=print) -> ExperimentResult:
    """Train every variant the seed's way from its own seeded init on the same batches."""
    cfg.validate()
    ratings, syn, source = load_ratings(cfg)
    dls = collab_dls(ratings, bs=cfg.bs, seed=cfg.seed, device=cfg.device)
    titles = list(dls.classes["title"])
    n_users, n_items = len(dls.classes["user"]), len(titles)
    dataset = {"source": source, "ratings": len(ratings), "users": n_users, "titles": n_items,
               "train_rows": len(dls.train_ds), "valid_rows": len(dls.valid_ds)}
    log(f"data: {source}: {len(ratings):,} ratings, {n_users} users, {n_items} titles "
        f"(fastai classes, with #na#)")
    training, biases, models = {}, {}, {}
    for i, name in enumerate(cfg.variants, 1):
        log(f"training {name} ({i}/{len(cfg.variants)}): {cfg.epochs} epochs, {cfg.factors} factors")
        torch.manual_seed(cfg.seed)
        model = get_variant(name).make(n_users, n_items, cfg.factors, device=cfg.device)
        training[name] = fit_fastai(model, dls, cfg.epochs, cfg.lr, cfg.wd, seed=cfg.seed,
                                    progress=progress)
        models[name] = model
        bias = get_variant(name).to_canonical(model).item_bias.float().cpu().numpy()
        biases[name] = pd.Series(bias[1:], index=titles[1:])    # index 0 is fastai's #na#
    top = {name: list(b.nlargest(5).index) for name, b in biases.items()}
    overlap: dict[str, dict[int, float]] = {}
    names = list(cfg.variants)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            overlap[f"{a}~{b}"] = {k: top_overlap(biases[a], biases[b], k) for k in TOP_KS}
    spearman = {}
    if syn is not None:
        counts = ratings["title"].value_counts()
        truth = syn.true_item_bias()
        for name, b in biases.items():
            overlap[f"{name}~truth"] = {k: top_overlap(b, truth.reindex(b.index), k) for k in TOP_KS}
            keep = counts.reindex(b.index).fillna(0) >= MIN_RATINGS
            spearman[name] = float(b[keep].corr(truth.reindex(b.index)[keep], method="spearman"))
    equivalence = equivalence_at_identical_weights(models[names[0]], names, dls, cfg)
    return ExperimentResult(cfg, dataset, training, top, overlap, spearman, equivalence,
                            environment(), biases, models)


def equivalence_at_identical_weights(trained, names, dls, cfg: Config) -> dict:
    """Load the first variant's trained weights into every variant; compare on one valid batch."""
    params = get_variant(names[0]).to_canonical(trained)
    x, y = next(iter(dls.valid))
    x, y = x[:cfg.bs].to(cfg.device), y[:cfg.bs].reshape(-1).float().to(cfg.device)
    out = {"batch": list(x.shape), "weights_from": names[0], "pairs": []}
    for b in names[1:]:
        out["pairs"].append(compare_pair(VARIANTS[names[0]], VARIANTS[b], params, x, y).as_dict())
    return out


def render_markdown(res: ExperimentResult) -> str:
    names = list(res.training)
    lines = ["# dotbias run", "", f"Data: {res.dataset['source']}: {res.dataset['ratings']:,} ratings, "
             f"{res.dataset['users']} users, {res.dataset['titles']} titles "
             f"(train {res.dataset['train_rows']:,}, valid {res.dataset['valid_rows']:,}).", "",
             f"Config: epochs {res.config.epochs}, factors {res.config.factors}, bs {res.config.bs}, "
             f"lr {res.config.lr}, wd {res.config.wd}, seed {res.config.seed}, "
             f"device {res.config.device}.", "", "## Training (fit_one_cycle)", ""]
    head = ["epoch"] + [f"{n} {c}" for n in names for c in ("train", "valid", "s")]
    lines.append(markdown_table(head, (
        [e] + [v for n in names for v in (f"{res.training[n].epochs[e].train_loss:.4f}",
                                          f"{res.training[n].epochs[e].valid_loss:.4f}",
                                          f"{res.training[n].epochs[e].seconds:.1f}")]
        for e in range(res.config.epochs))))
    finals = [res.training[n].final_valid_loss for n in names]
    lines += ["", "Final valid loss: " + ", ".join(f"{n} {v:.4f}" for n, v in zip(names, finals))
              + f"; largest gap {max(finals) - min(finals):.4f}.", "",
              "## Top 5 titles by learned item bias (each model from its own bias)", ""]
    for n in names:
        lines += [f"- **{n}**: " + "; ".join(res.top[n])]
    lines += ["", "## Top-k overlap", "", markdown_table(
        ["pair"] + [f"top {k}" for k in TOP_KS],
        ([pair] + [f"{ov[k]:.0%}" for k in TOP_KS] for pair, ov in res.overlap.items()))]
    if res.spearman:
        corr = ", ".join(f"{n} {v:.3f}" for n, v in res.spearman.items())
        lines += ["", f"Spearman rank correlation of learned vs true item bias (items with "
                  f"{MIN_RATINGS}+ ratings): {corr}."]
    lines += ["", "## Equivalence at identical weights", ""]
    for p in res.equivalence["pairs"]:
        verdict = verdict_word(p["bitwise_equal"], p["close"])
        lines.append(f"- {p['pair']} (weights of trained {res.equivalence['weights_from']}, batch "
                     f"{p['output_shapes'][0][0]}): output shapes {p['output_shapes'][0]} / "
                     f"{p['output_shapes'][1]}, largest abs diff of outputs "
                     f"{p['max_abs_output_diff']:.3g}, of gradients {p['max_abs_grad_diff']:.3g}"
                     f" ({verdict}).")
    env = res.environment
    lines += ["", f"Environment: Python {env['python']}, torch {env['torch']}, fastai {env['fastai']}, "
              f"{env['threads']} threads, {env['machine']}, {env['time']}.", ""]
    return "\n".join(lines)


def write_results(res: ExperimentResult, out_dir: str | Path = "results") -> list[Path]:
    """Write run.md, run.json, run.png; everything is rendered before the first file is written."""
    from .files import write_bytes, write_json, write_text
    from .plots import run_plot

    out_dir = Path(out_dir)
    md, data, png = render_markdown(res), res.as_dict(), run_plot(res)
    return [write_text(out_dir / "run.md", md), write_json(out_dir / "run.json", data),
            write_bytes(out_dir / "run.png", png)]
