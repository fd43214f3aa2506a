"""The seed's ablations: each reverted change, run, has exactly the outcome the report states."""
from __future__ import annotations

import json

import pytest
import torch

from dotbias.equivalence import ablated_models as ablated
from dotbias.equivalence.ablations import (
    BS,
    MODEL_ABLATIONS,
    ablations_report,
    run_all,
    run_model_ablation,
    write_ablations,
)

SPECS = {key: (key, change, cls, seed) for key, change, cls, seed in MODEL_ABLATIONS}

EXPECTED = {   # key: (stage, exception type, message fragment)
    "cp_two_args": ("construction", "TypeError",
                    "create_params() takes 1 positional argument but 2 were given"),
    "emb_one_list": ("construction", "TypeError", "missing 1 required positional argument: 'nf'"),
    "emb_bias_one_arg": ("construction", "TypeError", "missing 1 required positional argument: 'nf'"),
    "cp_bias_column": ("forward", "RuntimeError",
                       f"output with shape [{BS}] doesn't match the broadcast shape [{BS}, {BS}]"),
    "cp_call_param": ("forward", "TypeError", "'Parameter' object is not callable"),
    "emb_index_layer": ("forward", "TypeError", "'Embedding' object is not subscriptable"),
    "emb_no_keepdim": ("forward", "RuntimeError",
                       f"output with shape [{BS}] doesn't match the broadcast shape [{BS}, {BS}]"),
    "cp_keepdim": ("forward", "RuntimeError",
                   f"output with shape [{BS}, 1] doesn't match the broadcast shape [{BS}, {BS}]"),
}


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_each_failing_ablation_raises_what_the_report_says(key, baseline):
    row = run_model_ablation(*SPECS[key], baseline=baseline)
    stage, kind, fragment = EXPECTED[key]
    assert (row.stage, row.error_type) == (stage, kind)
    assert fragment in row.message and fragment in row.happens
    assert row.caught.startswith(f"equivalence property (assert_equivalent) fails: ablated:{key} "
                                 f"raised {kind}: ") and fragment in row.caught


def test_dropping_keepdim_out_of_place_is_silent_and_the_property_reports_the_shape(baseline):
    row = run_model_ablation(*SPECS["emb_no_keepdim_add"], baseline=baseline)
    assert row.stage == "silent" and row.error_type is None
    assert row.output_shape == [BS, BS]
    assert f"output has shape [{BS}, {BS}], declared [bs, 1]" in row.caught
    assert "ablated:emb_no_keepdim_add" in row.caught


def test_the_silent_broadcast_breaks_mse_loss_flat_and_still_trains():
    from fastai.losses import MSELossFlat
    out = ablated.EmbNoKeepdimAdd(5, 5, 3)(torch.zeros(BS, 2, dtype=torch.long))
    with pytest.warns(UserWarning, match="Using a target size"), \
            pytest.raises(RuntimeError, match=rf"size of tensor a \({BS * BS}\) must match the size "
                                              rf"of tensor b \({BS}\)"):
        MSELossFlat()(out, torch.zeros(BS, 1))     # torch warns of the broadcast, then fails


@pytest.fixture(scope="module")
def quick_results(baseline, registry):
    return run_all(quick=True, baseline=baseline, registry=registry)


@pytest.fixture(scope="module")
def quick_rows(quick_results):
    return {r.key: r for r in quick_results.ablations}


def test_the_full_run_records_training_and_the_mse_loss_flat_error(quick_rows):
    row = quick_rows["emb_no_keepdim_add"]
    assert row.details["mse_loss_flat"]["error_type"] == "RuntimeError"
    for k in ("seed_train_loss", "ablated_train_loss", "seed_valid_mse", "ablated_valid_mse_diagonal"):
        assert 0 < row.details[k] < 10
    assert f"loss {row.details['ablated_train_loss']:.3f} after" in row.happens
    assert f"vs {row.details['seed_train_loss']:.3f} for the seed model" in row.happens
    assert "MSELossFlat raises RuntimeError" in row.happens


def test_the_sorting_slip_hides_a_real_mismatch(quick_rows):
    d = quick_rows["top5_sorting_slip"].details
    assert (d["emb"]["lowest"], d["emb"]["highest"]) != (d["cp"]["lowest"], d["cp"]["highest"])
    fair = [len(set(d["emb"][k]) & set(d["cp"][k])) for k in ("lowest", "highest")]
    assert d["fair_overlap"] == fair and fair != [5, 5] or d["fair_same_order"] != [True, True]


def test_top5_titles_lists_the_lowest_and_highest_biases_in_order():
    from dotbias.equivalence.ablations import top5_titles
    bias = torch.tensor([0.3, -2.0, 5.0, 0.0, -1.0, 4.0, 1.0, -3.0])
    titles = [f"t{i}" for i in range(8)]
    assert top5_titles(bias, titles) == (["t7", "t1", "t4", "t3", "t0"], ["t2", "t5", "t6", "t0", "t3"])


def test_report_and_files_list_every_ablation_and_the_map(tmp_path, quick_results, registry):
    text = ablations_report(quick_results)
    for _, change, _, _ in MODEL_ABLATIONS:
        assert change in text
    assert "both top-5 lists sorted from the Embedding model's bias" in text
    assert "| change | what happens | how the harness caught it |" in text
    assert "| input | " + " | ".join(registry.variants) + " | agree? |" in text
    md, js = write_ablations(quick_results, tmp_path)
    assert md.read_text().startswith("# Ablations")
    data = json.loads(js.read_text())
    assert len(data["ablations"]) == len(MODEL_ABLATIONS) + 1
    assert {d["key"] for d in data["disagreement"]} >= {"negative", "uint8", "bool", "empty"}
