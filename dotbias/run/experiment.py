"""The main job (`dotbias run`): the seed's experiment run on every chosen variant, checked against
each other and, on synthetic data, against the truth. `prepare` reads and checks everything before a
model exists; `run_prepared` trains and compares; `run.markdown` renders; `write_results` writes
one result set."""
from __future__ import annotations

import platform
import time
from dataclasses import asdict, dataclass, field

import fastai
import pandas as pd
import torch

from dotbias.data import preflight
from dotbias.data.fitting import TrainResult, fit_fastai
from dotbias.data.movielens import read_movielens
from dotbias.data.ratings import Synthetic, collab_dls, synthetic_ratings, top_overlap, top_titles
from dotbias.equivalence.contract import compare_pair
from dotbias.io.progress import AS_TERMINAL, Progress
from dotbias.models.registry import Registry
from dotbias.report.plots import run_plot
from dotbias.run.config import MIN_RATINGS, TOP_KS, Config
from dotbias.run.markdown import render_markdown


@dataclass(frozen=True)
class Prepared:
    """Data read and every check passed: what `run_prepared` needs."""
    config: Config
    ratings: pd.DataFrame
    synthetic: Synthetic | None
    source: str


def prepare(cfg: Config, registry: Registry, log=print) -> Prepared:
    """Validate the options (the variants against the run's `registry`), read and check the data,
    estimate memory: all before any model."""
    cfg.validate(registry)
    if cfg.data is not None:
        ratings = read_movielens(cfg.data, allow_out_of_range=cfg.allow_out_of_range)
        syn, source, where = None, f"MovieLens 100k ({cfg.data})", f"{cfg.data}/u.data"
    else:
        syn = synthetic_ratings(seed=cfg.seed)
        ratings, where = syn.ratings, "synthetic data"
        source = "synthetic (MovieLens 100k shape, known truth)"
    preflight.check_trainable(len(ratings), cfg.bs, where)
    n_users, n_items = ratings["user"].nunique() + 1, ratings["title"].nunique() + 1   # + #na#
    preflight.check_memory(n_users, n_items, cfg.factors, len(cfg.variants))
    log(f"data: {source}: {len(ratings):,} ratings, {n_users - 1} users, {n_items - 1} titles")
    return Prepared(cfg, ratings, syn, source)


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
        return {"config": asdict(self.config), "dataset": self.dataset, "environment": self.environment,
                "training": {k: v.as_dict() for k, v in self.training.items()},
                "top5": self.top, "overlap": self.overlap,
                "spearman_vs_true_item_bias": self.spearman, "equivalence": self.equivalence}


def environment() -> dict:
    return {"python": platform.python_version(), "torch": torch.__version__,
            "fastai": fastai.__version__, "threads": torch.get_num_threads(),
            "machine": platform.machine(), "time": time.strftime("%Y-%m-%d %H:%M:%S")}


def train_variants(cfg: Config, dls, registry: Registry, log=print, progress: Progress = AS_TERMINAL
                   ) -> tuple[dict, dict, dict]:
    """Each variant from its own seeded init, trained the seed's way on the same batches:
    (training results, item biases by title, models). `progress`: whether fit bars show."""
    titles = list(dls.classes["title"])
    n_users, n_items = len(dls.classes["user"]), len(titles)
    training, biases, models = {}, {}, {}
    for i, name in enumerate(cfg.variants, 1):
        log(f"training {name} ({i}/{len(cfg.variants)}): {cfg.epochs} epoch{'s' * (cfg.epochs != 1)}, "
            f"{cfg.factors} factors")
        torch.manual_seed(cfg.seed)
        variant = registry.get_variant(name)
        model = variant.make(n_users, n_items, cfg.factors, device=cfg.device)
        training[name] = fit_fastai(model, dls, cfg.epochs, cfg.lr, cfg.wd, seed=cfg.seed,
                                    progress=progress)
        models[name] = model
        bias = variant.to_canonical(model).item_bias.float().cpu().numpy()
        biases[name] = pd.Series(bias[1:], index=titles[1:])    # index 0 is fastai's #na#
    return training, biases, models


def compare_biases(biases: dict[str, pd.Series], p: Prepared) -> tuple[dict, dict]:
    """Top-k overlaps between every pair (and with the truth) and, on synthetic data, the Spearman
    correlation of each model's item biases with the true ones."""
    names = list(biases)
    overlap = {f"{a}~{b}": {k: top_overlap(biases[a], biases[b], k) for k in TOP_KS}
               for i, a in enumerate(names) for b in names[i + 1:]}
    spearman = {}
    if p.synthetic is not None:
        counts = p.ratings["title"].value_counts()
        truth = p.synthetic.true_item_bias()
        for name, b in biases.items():
            overlap[f"{name}~truth"] = {k: top_overlap(b, truth.reindex(b.index), k) for k in TOP_KS}
            keep = counts.reindex(b.index).fillna(0) >= MIN_RATINGS
            spearman[name] = float(b[keep].corr(truth.reindex(b.index)[keep], method="spearman"))
    return overlap, spearman


def run_prepared(p: Prepared, registry: Registry, log=print, progress: Progress = AS_TERMINAL
                 ) -> ExperimentResult:
    """Train every variant the seed's way from its own seeded init on the same batches, compare
    (each looked up in the run's `registry`)."""
    cfg = p.config
    dls = collab_dls(p.ratings, bs=cfg.bs, seed=cfg.seed, device=cfg.device)
    dataset = {"source": p.source, "ratings": len(p.ratings), "users": len(dls.classes["user"]),
               "titles": len(dls.classes["title"]), "train_rows": len(dls.train_ds),
               "valid_rows": len(dls.valid_ds)}
    training, biases, models = train_variants(cfg, dls, registry, log, progress)
    overlap, spearman = compare_biases(biases, p)
    top = {name: top_titles(b, 5) for name, b in biases.items()}
    variants = [registry.get_variant(n) for n in cfg.variants]
    equivalence = equivalence_at_identical_weights(models[cfg.variants[0]], variants, dls, cfg)
    return ExperimentResult(cfg, dataset, training, top, overlap, spearman, equivalence,
                            environment(), biases, models)


def equivalence_at_identical_weights(trained, variants, dls, cfg: Config) -> dict:
    """Load the first variant's trained weights into every variant; compare on one valid batch."""
    params = variants[0].to_canonical(trained)
    x, y = next(iter(dls.valid))
    x, y = x[:cfg.bs].to(cfg.device), y[:cfg.bs].reshape(-1).float().to(cfg.device)
    out = {"batch": list(x.shape), "weights_from": variants[0].name, "pairs": []}
    for b in variants[1:]:
        out["pairs"].append(compare_pair(variants[0], b, params, x, y).as_dict())
    return out


def write_results(res: ExperimentResult, rs) -> str:
    """Render run.md, run.json and run.png, then write them into the open ResultSet `rs`, each
    carrying its run id; returns the markdown."""
    md, data, png = render_markdown(res, rs.run_id), res.as_dict(), run_plot(res)
    rs.write_text("run.md", md)
    rs.write_json("run.json", {"run_id": rs.run_id, **data})
    rs.write_bytes("run.png", png)
    return md
