"""The built-in variants beyond the book's two read like their sources and hold to the contract
(the properties in test_equivalence.py run them all; here what is specific to each)."""
from __future__ import annotations

import pytest
import torch
from fastai.collab import EmbeddingDotBias
from hypothesis import given

from dotbias.equivalence.contract import check_variant
from dotbias.models.canonical import Canonical
from dotbias.models.compiled import CompiledBuild
from dotbias.models.inputs import make_inputs
from dotbias.models.registry import BUILT_IN as REGISTERED
from dotbias.models.registry import Registry
from dotbias.models.sparse import sparse_grad_modules
from dotbias.models.zoo import BUILT_IN, OPT_IN, PackedDotBias
from helpers.properties import equivalence_property
from helpers.strategies import cases


@pytest.mark.parametrize("variant", BUILT_IN, ids=lambda v: v.name)
def test_every_built_in_is_registered_and_round_trips_its_canonical_parameters(variant, registry):
    """Found by name, and its declared paths (or escape hatch) load and read back the same four
    tensors: a wrong path or a transposed table fails here, naming the variant."""
    assert registry.get_variant(variant.name) is registry.variants[variant.name] is variant
    assert Registry().variants[variant.name] is variant
    params = make_inputs(5, 7, 3, 4, seed=1, std=0.5).params
    back = variant.to_canonical(variant.from_canonical(params))
    for name, a, b in zip(Canonical._fields, params, back):
        assert torch.equal(a, b.reshape(a.shape)), f"{variant.name}: {name} does not round-trip"


def test_the_fastai_variant_is_fastai_s_own_model():
    model = REGISTERED["fastai"].make(5, 7, 3, y_range=(0, 5.5))
    assert type(model) is EmbeddingDotBias
    assert model.u_weight.weight.shape == (5, 3) and model.i_bias.weight.shape == (7, 1)


def test_fastai_adds_the_biases_in_another_order_and_is_accepted_within_error(baseline):
    inp = make_inputs(944, 1665, 50, 4096, seed=0, std=0.5, y_range=(1, 5))
    r = check_variant(REGISTERED["fastai"], inp.params, inp.x, inp.y, (1, 5), baseline=baseline)
    assert r.passed and not r.exact          # not bitwise (1 ulp here and there), within error
    assert {c.rule for c in r.checks} == {"within error"}


def test_packed_tables_hold_the_bias_in_the_last_column(baseline):
    inp = make_inputs(5, 7, 3, 8, seed=0)
    model = REGISTERED["packed"].make(5, 7, 3, params=inp.params)
    assert isinstance(model, PackedDotBias) and model.users.shape == (5, 4)
    assert torch.equal(model.users[:, -1], inp.params.user_bias)
    assert torch.equal(model.items[:, :-1], inp.params.item_factors)
    r = check_variant(REGISTERED["packed"], inp.params, inp.x, inp.y, baseline=baseline)
    assert r.passed and r.variant == "packed" and r.baseline == baseline.name


def test_every_opt_in_eager_variant_holds_to_the_contract_and_is_found_by_name_only(baseline, registry):
    """The zoo's opt-in variants (not registered by default) are held to the same contract; the
    compiled and sparse ones have their own files (test_compiled.py, test_sparse.py)."""
    eager = [v for v in OPT_IN if not isinstance(v.build, CompiledBuild)
             and not sparse_grad_modules(v.make(3, 4, 2))]
    given(cases())(lambda case: equivalence_property(case, eager, baseline=baseline))()
    for v in eager:
        assert registry.get_variant(v.name) is v and (v.name in Registry().variants) == (v in BUILT_IN)
