"""Init is part of the contract: fresh models of every registered variant, drawn at several sizes,
match their declared init in mean, std and range. The book's two differ by design: fastai's
`Embedding` draws `normal().fmod_(2) * 0.01` (tails folded inside +-0.02, std ~0.00866),
`create_params` a plain N(0, 0.01) (~4.6% of weights beyond 0.02)."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given
from torch import nn

from dotbias.equivalence.inits import check_init
from dotbias.models.book import DotProductBiasCP, DotProductBiasEmb
from dotbias.models.canonical import to_canonical
from dotbias.models.registry import Registry
from dotbias.models.variant import CREATE_PARAMS_INIT, Variant
from helpers.properties import init_property
from helpers.strategies import init_sizes, seeds

N, K = 3000, 50


@given(init_sizes, seeds)
def test_fresh_models_of_every_variant_match_their_declared_init(registry, sizes, seed):
    init_property(sizes, seed, list(registry.variants.values()), registry=registry)


class Std002(DotProductBiasCP):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for p in self.parameters():
            nn.init.normal_(p, 0, 0.02)


def test_a_std_0_02_subclass_of_cp_is_held_to_cp_s_init_and_fails():
    v, built_ins = Variant("std002", Std002, "std 0.02", "[bs]"), Registry()
    assert built_ins.declared_init(v) == (CREATE_PARAMS_INIT, "inherited from cp (DotProductBiasCP)")
    r = check_init(v, 300, 200, 8, registry=built_ins)
    assert not r.passed and any("std 0.02" in f and "expected 0.01" in f for f in r.failures), \
        f"{v.name}: {r.failures}"


def test_an_unrelated_class_without_a_declaration_is_reported_not_checked():
    v = Variant("loose", lambda nu, ni, nf, y_range=(0, 5.5): Std002(nu, ni, nf, y_range), "x", "[bs]")
    r = check_init(v, 30, 20, 4, registry=Registry())
    assert r.init is None and r.source.startswith("not declared") and r.passed
    assert r.stats["user_factors"][1] == pytest.approx(0.02, rel=0.2)      # reported all the same


@pytest.fixture(scope="module")
def fresh():
    torch.manual_seed(0)
    emb = to_canonical(DotProductBiasEmb(N, N, K))
    torch.manual_seed(0)
    cp = to_canonical(DotProductBiasCP(N, N, K))
    return emb, cp


def test_embedding_init_is_a_folded_normal_with_std_0_01(fresh):
    emb, _ = fresh
    for w in (emb.user_factors, emb.item_factors):
        assert w.abs().max() < 0.02                       # fmod(2) * 0.01: never reaches 0.02
        assert w.std().item() == pytest.approx(0.00866, rel=0.02)   # std of fmod(N(0,1), 2) = 0.866


def test_create_params_init_is_a_plain_normal_with_std_0_01(fresh):
    _, cp = fresh
    for w in (cp.user_factors, cp.item_factors):
        assert w.std().item() == pytest.approx(0.01, rel=0.02)
        tail = (w.abs() > 0.02).float().mean().item()
        assert tail == pytest.approx(0.0455, abs=0.004)   # P(|Z| > 2) for a plain normal


def test_two_fresh_models_differ_even_from_the_same_seed(fresh):
    emb, cp = fresh
    assert not torch.equal(emb.user_factors, cp.user_factors)
    assert emb.user_factors[0, 0] != cp.user_factors[0, 0]
