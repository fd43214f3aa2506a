"""The map of disagreement: each input on which the seed's two models differ, pinned."""
from __future__ import annotations

import pytest
import torch

from dotbias.equivalence.disagreement import N, disagreement_map, render_map
from dotbias.models.registry import BUILT_IN

SEED_MODELS = [BUILT_IN["emb"], BUILT_IN["cp"]]


@pytest.fixture(scope="module")
def rows():
    return {r.key: r for r in disagreement_map(SEED_MODELS)}


def test_negative_indices_wrap_around_in_indexing_and_raise_in_embedding(rows):
    r = rows["negative"]
    emb, cp = r.outcome("emb"), r.outcome("cp")
    assert (emb.error_type, emb.message) == ("IndexError", "index out of range in self")
    assert cp.ok and cp.shape == [2]
    assert not r.agree


def test_a_negative_index_reads_the_last_row():

    from dotbias.equivalence.disagreement import run_input
    wrapped = run_input(torch.tensor([[-1, 0]]), SEED_MODELS[1:])[0]
    last = run_input(torch.tensor([[N - 1, 0]]), SEED_MODELS[1:])[0]
    assert wrapped.values == last.values


@pytest.mark.parametrize("key", ["uint8", "bool"])
def test_uint8_and_bool_indices_are_masks_to_indexing(rows, key):
    r = rows[key]
    emb, cp = r.outcome("emb"), r.outcome("cp")
    assert emb.error_type == "RuntimeError" and "Long, Int" in emb.message
    assert cp.ok and cp.rows == 3 and cp.shape == [2]      # rows 0 and 2 selected, not looked up
    assert not r.agree
    assert (cp.warning is not None) == (key == "uint8")    # uint8 masks are deprecated


def test_a_mask_of_the_wrong_length_raises_in_indexing(rows):
    cp = rows["uint8_short"].outcome("cp")
    assert cp.error_type == "IndexError" and "The shape of the mask [2]" in cp.message


def test_out_of_range_indices_raise_in_both_with_different_messages(rows):
    r = rows["out_of_range"]
    emb, cp = r.outcome("emb"), r.outcome("cp")
    assert (emb.error_type, emb.message) == ("IndexError", "index out of range in self")
    assert (cp.error_type, cp.message) == ("IndexError",
                                           f"index {N} is out of bounds for dimension 0 with size {N}")
    assert not r.agree


@pytest.mark.parametrize("key", ["float", "int16"])
def test_float_and_int16_indices_raise_different_errors(rows, key):
    emb, cp = rows[key].outcome("emb"), rows[key].outcome("cp")
    assert emb.error_type == "RuntimeError" and "scalar types: Long, Int" in emb.message
    assert cp.error_type == "IndexError" and "must be long, int, byte or bool" in cp.message


def test_int32_indices_work_in_both_and_agree(rows):
    r = rows["int32"]
    assert r.outcome("emb").shape == [2, 1] and r.outcome("cp").shape == [2]
    assert r.agree


def test_an_empty_batch_gives_empty_outputs_of_each_model_s_shape(rows):
    r = rows["empty"]
    assert r.outcome("emb").shape == [0, 1] and r.outcome("cp").shape == [0]
    assert r.agree


def test_the_map_renders_one_row_per_input(rows):
    text = render_map(list(rows.values()), ["emb", "cp"])
    assert text.splitlines()[0] == "| input | emb | cp | agree? |"
    assert len(text.splitlines()) == len(rows) + 2


def test_outputs_one_ulp_apart_are_within_error_and_further_apart_are_not():
    """Values are kept whole: no rounding hides a difference (or invents an agreement)."""
    from dotbias.equivalence.disagreement import Disagreement, Outcome
    base = [1.2345678, 3.0]
    ulp = [float(torch.nextafter(torch.tensor(v), torch.tensor(9.0))) for v in base]
    near = Disagreement("k", "x", [Outcome("a", 2, [2], base), Outcome("b", 2, [2], ulp)])
    far = Disagreement("k", "x", [Outcome("a", 2, [2], base), Outcome("b", 2, [2], [1.2345718, 3.0])])
    assert near.verdict == "within error" and near.agree
    assert far.verdict == "NO" and not far.agree
    same = Disagreement("k", "x", [Outcome("a", 2, [2], base), Outcome("b", 2, [2], list(base))])
    assert same.verdict == "yes"
