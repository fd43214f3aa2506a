"""The two seed models start from different distributions, so two fresh models differ even under
the same seed: fastai's `Embedding` draws `normal().fmod_(2) * 0.01` (a normal with its tails folded
back inside +-2 std: every weight in (-0.02, 0.02), std ~0.00866), `create_params` a plain N(0, 0.01)
(std 0.01, ~4.6% of weights beyond 0.02)."""
from __future__ import annotations

import pytest
import torch

from dotbias.canonical import to_canonical
from dotbias.variants import DotProductBiasCP, DotProductBiasEmb

N, K = 3000, 50


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
        assert abs(w.mean().item()) < 2e-4
        assert w.std().item() == pytest.approx(0.00866, rel=0.02)   # std of fmod(N(0,1), 2) = 0.866
    for b in (emb.user_bias, emb.item_bias):              # Embedding(n, 1): same law
        assert b.abs().max() < 0.02 and b.std().item() == pytest.approx(0.00866, rel=0.1)


def test_create_params_init_is_a_plain_normal_with_std_0_01(fresh):
    _, cp = fresh
    for w in (cp.user_factors, cp.item_factors):
        assert w.std().item() == pytest.approx(0.01, rel=0.02)
        tail = (w.abs() > 0.02).float().mean().item()
        assert tail == pytest.approx(0.0455, abs=0.004)   # P(|Z| > 2) for a plain normal
        assert w.abs().max() > 0.04
    for b in (cp.user_bias, cp.item_bias):
        assert b.std().item() == pytest.approx(0.01, rel=0.1)


def test_two_fresh_models_differ_even_from_the_same_seed(fresh):
    emb, cp = fresh
    assert emb.user_factors.shape == cp.user_factors.shape
    assert not torch.equal(emb.user_factors, cp.user_factors)
    # the Embedding draws twice (nn.Embedding's own N(0, 1), then fastai's), so even the first
    # values differ; load_canonical is how the harness makes them equal
    assert emb.user_factors[0, 0] != cp.user_factors[0, 0]
