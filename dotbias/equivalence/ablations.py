"""The seed's ablations: each of its choices reverted alone (models in `ablated_models.py`), run for real,
with what happens and how the harness caught it; plus the map of disagreement (`disagreement.py`).

`run_all()` runs them once; `ablations_report()` is the text `dotbias ablations` prints;
`write_ablations()` writes ablations.md and ablations.json into a folder (the command's
OUT/ablations/). Every outcome is computed, none is written down."""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dotbias.data.fitting import fit_fastai
from dotbias.data.ratings import collab_dls, synthetic_ratings, tensors_from_dls, top_titles
from dotbias.equivalence import ablated_models
from dotbias.equivalence.contract import assert_equivalent
from dotbias.equivalence.disagreement import Disagreement, disagreement_map, render_map
from dotbias.io.files import write_json, write_text
from dotbias.io.progress import AS_TERMINAL, Progress
from dotbias.io.tables import markdown_table
from dotbias.models.inputs import make_inputs
from dotbias.models.registry import BUILT_IN, Registry
from dotbias.models.training import train_step
from dotbias.models.variant import Variant

BS, N_USERS, N_ITEMS, N_FACTORS = 64, 30, 40, 8

# (key, change, model, the seed model it is compared with)
MODEL_ABLATIONS = [
    ("cp_two_args", "create_params given two arguments: create_params(n, k)", ablated_models.CPTwoArgs, "cp"),
    ("emb_one_list", "Embedding given one list: Embedding([n, k])", ablated_models.EmbOneList, "emb"),
    ("emb_bias_one_arg", "bias made create_params-like: Embedding(n)", ablated_models.EmbBiasOneArg, "emb"),
    ("cp_bias_column", "bias made Embedding-like: create_params([n, 1])", ablated_models.CPBiasColumn, "cp"),
    ("cp_call_param", "a parameter called: self.user_factors(x[:, 0])", ablated_models.CPCallParam, "cp"),
    ("emb_index_layer", "a layer indexed: self.user_factors[x[:, 0]]", ablated_models.EmbIndexLayer, "emb"),
    ("emb_no_keepdim", "keepdim=True dropped, in-place +=", ablated_models.EmbNoKeepdim, "emb"),
    ("emb_no_keepdim_add", "keepdim=True dropped, out-of-place +", ablated_models.EmbNoKeepdimAdd, "emb"),
    ("cp_keepdim", "keepdim=True added to the create_params model", ablated_models.CPKeepdim, "cp"),
]


@dataclass
class Ablation:
    """One reverted change and what it did."""
    key: str
    change: str
    happens: str
    caught: str
    stage: str                        # "construction", "forward", "silent", "analysis"
    error_type: str | None = None
    message: str | None = None
    output_shape: list[int] | None = None
    details: dict = field(default_factory=dict)


def _error(e: BaseException) -> tuple[str, str]:
    return type(e).__name__, str(e).split("\n")[0]


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    inp = make_inputs(N_USERS, N_ITEMS, N_FACTORS, BS, seed=seed, y_range=(0, 5))
    return inp.x, inp.y


def run_model_ablation(key: str, change: str, cls: type[nn.Module], seed_name: str, *,
                       baseline: Variant) -> Ablation:
    """Build the model and run one batch of 64; then run the equivalence property
    (`assert_equivalent`, against `baseline`) on it and record how it reports the change."""
    x, y = _batch()
    row = Ablation(key, change, "", "", "silent")
    try:
        torch.manual_seed(0)
        model = cls(N_USERS, N_ITEMS, N_FACTORS)
    except Exception as e:
        row.stage, (row.error_type, row.message) = "construction", _error(e)
    else:
        try:
            out = model(x)
            row.output_shape = list(out.shape)
        except Exception as e:
            row.stage, (row.error_type, row.message) = "forward", _error(e)
    if row.error_type:
        row.happens = f"{row.error_type} at {row.stage}: {row.message}"
    else:
        row.happens = f"no error: output {row.output_shape} for a batch of {BS}"
    seed = BUILT_IN[seed_name]          # the book's own two models
    variant = Variant(f"ablated:{key}", cls, change, seed.output_shape)
    params = make_inputs(N_USERS, N_ITEMS, N_FACTORS, BS).params
    try:
        assert_equivalent([variant], params, x, y, baseline=baseline)
        row.caught = "NOT caught: assert_equivalent passed"
    except AssertionError as e:
        row.caught = f"equivalence property (assert_equivalent) fails: {str(e).split(': ', 1)[1]}"
    except Exception as e:
        row.caught = f"equivalence property (assert_equivalent) errors: {type(e).__name__}"
    return row


def _small_data(quick: bool):

    syn = synthetic_ratings(100, 150, 2000 if quick else 4000, seed=0)
    dls = collab_dls(syn.ratings, bs=BS, seed=42)
    return dls, tensors_from_dls(dls)


def _train_broadcasting(model: nn.Module, data, epochs: int, lr: float = 1e-2, seed: int = 0
                        ) -> tuple[float, float]:
    """Adam on batches of 64 with an unflattened MSE against fastai's `[bs, 1]` targets (what
    `nn.MSELoss` does: it broadcasts `[bs, bs]` against `[bs, 1]`, with a warning).
    Returns (last epoch's mean training loss, valid MSE of the per-row prediction)."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = data.x_train.shape[0]
    broadcast_mse = lambda out, y: ((out - y[:, None]) ** 2).mean()
    for _ in range(epochs):
        order, losses = torch.randperm(n, generator=gen), []
        for s in range(0, n - BS + 1, BS):
            idx = order[s:s + BS]
            losses.append(train_step(model, opt, data.x_train[idx], data.y_train[idx],
                                     broadcast_mse).item())
    with torch.no_grad():   # per-row prediction: the output itself, or a [bs, bs] output's diagonal
        sq, count = 0.0, 0
        for s in range(0, data.x_valid.shape[0], BS):
            out = model(data.x_valid[s:s + BS])
            pred = out.diagonal() if out.dim() == 2 and out.shape[1] > 1 else out.reshape(-1)
            sq += ((pred - data.y_valid[s:s + BS]) ** 2).sum().item()
            count += pred.shape[0]
    return float(np.mean(losses)), sq / count


def silent_broadcast(row: Ablation, quick: bool, data) -> Ablation:
    """What MSELossFlat does with the `[bs, bs]` output, and the loss training reaches."""
    from fastai.losses import MSELossFlat

    x, y = _batch()
    torch.manual_seed(0)
    out = ablated_models.EmbNoKeepdimAdd(N_USERS, N_ITEMS, N_FACTORS)(x)
    try:
        with warnings.catch_warnings():   # torch warns about the size mismatch, then raises
            warnings.simplefilter("ignore", UserWarning)
            MSELossFlat()(out, y[:, None])
        flat = "MSELossFlat accepts it"
    except Exception as e:
        kind, msg = _error(e)
        row.details["mse_loss_flat"] = {"error_type": kind, "message": msg}
        flat = f"MSELossFlat raises {kind}: {msg}"
    epochs = 2 if quick else 5
    losses = {}
    for key, cls in (("seed", ablated_models.DotProductBiasEmb), ("ablated", ablated_models.EmbNoKeepdimAdd)):
        torch.manual_seed(0)
        losses[key] = _train_broadcasting(cls(data.n_users, data.n_items, N_FACTORS), data, epochs)
    (seed_train, seed_valid), (abl_train, abl_valid) = losses["seed"], losses["ablated"]
    row.details.update(epochs=epochs, seed_train_loss=seed_train, seed_valid_mse=seed_valid,
                       ablated_train_loss=abl_train, ablated_valid_mse_diagonal=abl_valid)
    row.happens += (f"; {flat}; with an unflattened MSE (broadcasting against [bs, 1]) it trains: "
                    f"loss {abl_train:.3f} after {epochs} epochs vs {seed_train:.3f} for the seed "
                    f"model (valid MSE {abl_valid:.3f} on its diagonal vs {seed_valid:.3f})")
    return row


def top5_titles(bias: torch.Tensor, titles) -> tuple[list[str], list[str]]:
    """The five lowest and five highest items by bias, as fastbook lists them."""
    import pandas as pd

    series = pd.Series(bias.detach().float().cpu().numpy(), index=list(titles))
    return top_titles(series, 5, lowest=True), top_titles(series, 5)


def sorting_slip(quick: bool, dls) -> Ablation:
    """The seed's slip: both top-5 lists sorted from the Embedding model's bias. Trains both seed
    models the seed's way (fastai fit_one_cycle, same batches) and lists each model's own top 5."""

    n_users, n_items = len(dls.classes["user"]), len(dls.classes["title"])
    titles = dls.classes["title"]
    epochs = 1 if quick else 3
    models = {}
    for name in ("emb", "cp"):
        torch.manual_seed(0)
        models[name] = BUILT_IN[name].make(n_users, n_items, 50)
        fit_fastai(models[name], dls, epochs=epochs, lr=5e-3, wd=0.1, seed=0)
    emb = top5_titles(ablated_models.bias_of(models["emb"]), titles)
    slip = (emb, emb)                   # the notebook sorted the Embedding model's bias twice
    fair = (emb, top5_titles(ablated_models.bias_of(models["cp"]), titles))
    overlap = lambda pair, k: len(set(pair[0][k]) & set(pair[1][k]))
    details = {"epochs": epochs, "emb": {"lowest": fair[0][0], "highest": fair[0][1]},
               "cp": {"lowest": fair[1][0], "highest": fair[1][1]},
               "slip_overlap": [overlap(slip, 0), overlap(slip, 1)],
               "fair_overlap": [overlap(fair, 0), overlap(fair, 1)],
               "fair_same_order": [fair[0][0] == fair[1][0], fair[0][1] == fair[1][1]]}
    happens = (f"the slip's lists agree {overlap(slip, 0)}/5 lowest, {overlap(slip, 1)}/5 highest by "
               f"construction; each model's own bias gives {overlap(fair, 0)}/5 and "
               f"{overlap(fair, 1)}/5, same order {details['fair_same_order']} (after {epochs} "
               "fastai epochs from each model's own init)")
    caught = ("top-5 lists taken from each model's own bias (ablations.top5_titles) and compared "
              "as sets; the slip could never fail")
    return Ablation("top5_sorting_slip", "both top-5 lists sorted from the Embedding model's bias",
                    happens, caught, "analysis", details=details)


def run_ablations(quick: bool = False, *, baseline: Variant, progress: Progress = AS_TERMINAL
                  ) -> list[Ablation]:
    """Every ablation, run (the reverted models judged against `baseline`)."""
    rows = [run_model_ablation(*spec, baseline=baseline)
            for spec in progress.track(MODEL_ABLATIONS, "ablations: models")]
    dls, data = _small_data(quick)
    rows = [silent_broadcast(r, quick, data) if r.key == "emb_no_keepdim_add" else r for r in rows]
    rows.append(sorting_slip(quick, dls))
    return rows


def render_ablations(rows: list[Ablation]) -> str:
    return markdown_table(["change", "what happens", "how the harness caught it"],
                          ([r.change, r.happens, r.caught] for r in rows))


@dataclass
class AblationResults:
    """Everything `dotbias ablations` shows and writes, run once."""
    ablations: list[Ablation]
    disagreement: list[Disagreement]


def run_all(quick: bool = False, *, baseline: Variant, registry: Registry,
            progress: Progress = AS_TERMINAL) -> AblationResults:
    """Every ablation (against `baseline`) and the map of disagreement over the run's `registry`."""
    return AblationResults(run_ablations(quick, baseline=baseline, progress=progress),
                           disagreement_map(list(registry.variants.values()), progress=progress))


def ablations_report(results: AblationResults) -> str:
    """The printable text of `dotbias ablations`: the ablation table and the disagreement map."""
    return ("## The seed's ablations (each change reverted alone)\n\n" + render_ablations(results.ablations)
            + "\n\n## Where the variants disagree (inputs outside a valid [bs, 2] long batch)\n\n"
            + render_map(results.disagreement) + "\n")


def write_ablations(results: AblationResults, out_dir: str | Path = "results") -> list[Path]:
    """Write ablations.md and ablations.json into `out_dir` (atomically)."""
    out = Path(out_dir)
    text = "# Ablations and the map of disagreement\n\n" + ablations_report(results)
    json_safe = lambda v: None if isinstance(v, float) and not math.isfinite(v) else v
    data = {"ablations": [{k: json_safe(v) for k, v in asdict(r).items()} for r in results.ablations],
            "disagreement": [d.as_dict() for d in results.disagreement]}
    return [write_text(out / "ablations.md", text), write_json(out / "ablations.json", data)]
