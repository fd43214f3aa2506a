"""Canonical parameters: every registered variant reads into and loads from them bit-identically."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from dotbias import BUILT_IN, Registry, load_canonical, random_canonical
from dotbias.models.variant import Variant, check_sizes

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.each_variant("name")
def test_round_trip_is_bit_identical(name, dtype, device, registry):
    v = registry.variants[name]
    params = random_canonical(7, 11, 3, dtype=dtype, device=device,
                              generator=torch.Generator().manual_seed(0))
    model = v.make(7, 11, 3, dtype=dtype, device=device, params=params)
    back = v.to_canonical(model)
    where = f"{name} (7, 11, 3, {dtype}, {device})"
    for field, a, b in zip(params._fields, params, back):
        assert b.dtype == dtype and b.device.type == device and b.shape == a.shape, \
            f"{where}: {field} comes back as {b.dtype} on {b.device} with shape {list(b.shape)}"
        assert torch.equal(a, b), f"{where}: {field} changed on its way through the model"
    # and model -> canonical -> fresh model -> canonical again
    other = v.make(7, 11, 3, dtype=dtype, device=device)
    v.load_canonical(other, back)
    for field, a, b in zip(params._fields, back, v.to_canonical(other)):
        assert torch.equal(a, b), f"{where}: {field} changed when loaded into a fresh model"


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16], ids=str)
@pytest.mark.each_variant("name")
def test_from_canonical_takes_sizes_dtype_and_device_from_the_parameters(name, dtype, registry):
    v = registry.variants[name]
    params = random_canonical(6, 9, 5, dtype=dtype, generator=torch.Generator().manual_seed(3))
    back = v.to_canonical(v.from_canonical(params, y_range=(1, 5)))
    for field, a, b in zip(params._fields, params, back):
        assert b.dtype == dtype and b.device == a.device and torch.equal(a, b), f"{name}: {field}"
    assert v.to_canonical(v.from_canonical(params, device="meta")).user_factors.device.type == "meta"


def test_same_family_needs_a_shared_tag(registry):
    def variant(name, tag):
        return Variant(name, ColumnAndFlat, name, "[bs]", paths=PATHS, exact_with=tag)
    a, b, c, untagged = variant("a", "x"), variant("b", "x"), variant("c", "y"), variant("u", None)
    assert a.same_family(b) and b.same_family(a) and a.same_family(a)
    assert not a.same_family(c) and not untagged.same_family(untagged)
    assert not untagged.same_family(a) and not a.same_family(untagged)
    for v in registry.variants.values():
        assert v.same_family(v) == (v.exact_with is not None), v.name


@pytest.mark.each_variant("name")
def test_canonical_shapes(name, registry):
    v = registry.variants[name]
    c = v.to_canonical(v.make(5, 9, 4))
    shapes = [list(t.shape) for t in c]
    assert shapes == [[5, 4], [5], [9, 4], [9]], f"{name} at (5, 9, 4): canonical shapes {shapes}"
    assert c.sizes == (5, 9, 4), f"{name}: sizes {c.sizes}"


def test_to_canonical_is_a_copy():
    v = BUILT_IN["emb"]
    model = v.make(3, 4, 2)
    c = v.to_canonical(model)
    c.user_bias.add_(1.0)
    assert not torch.equal(v.to_canonical(model).user_bias, c.user_bias)


def test_emb_bias_is_n_by_1_and_cp_bias_is_1d():
    emb, cp = BUILT_IN["emb"].make(5, 9, 4), BUILT_IN["cp"].make(5, 9, 4)
    assert emb.user_bias.weight.shape == (5, 1) and emb.movie_bias.weight.shape == (9, 1)
    assert cp.user_bias.shape == (5,) and cp.movie_bias.shape == (9,)


def test_load_rejects_wrong_sizes():
    model = BUILT_IN["cp"].make(5, 9, 4)
    wrong = random_canonical(6, 9, 4)
    with pytest.raises(ValueError, match=r"canonical user_factors has shape \[6, 4\], the model's "
                                         r"user_factors has \[5, 4\]"):
        load_canonical(model, wrong)


def test_registry_errors_and_plugging_in():
    """A registry is read-only: a variant joins a new one (`with_variants`), the first unchanged."""
    built_ins = Registry()
    with pytest.raises(ValueError, match="unknown variant 'nope'; registered: emb, cp, "):
        built_ins.get_variant("nope")
    with pytest.raises(ValueError, match="already registered"):
        built_ins.with_variants(BUILT_IN["emb"])
    v = Variant("registry_test_copy", BUILT_IN["cp"].build, "test copy", "[bs]")
    more = built_ins.with_variants(v)
    assert "registry_test_copy" in more.variants and more.get_variant("registry_test_copy") is v
    assert "registry_test_copy" not in built_ins.variants
    assert "registry_test_copy" not in more.without("registry_test_copy").variants
    assert list(built_ins.variants) == list(BUILT_IN)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3"])
def test_sizes_must_be_positive_integers(bad):
    with pytest.raises(ValueError, match=f"n_factors must be a positive integer, got {bad!r}"):
        check_sizes(n_factors=bad)
    with pytest.raises(ValueError, match="n_users must be a positive integer"):
        BUILT_IN["emb"].make(bad, 3, 3)


def test_seed_models_read_like_the_book():
    emb, cp = BUILT_IN["emb"].make(5, 9, 4), BUILT_IN["cp"].make(5, 9, 4)
    for m in (emb, cp):
        assert [n for n, _ in m.named_children()] in ([], ["user_factors", "user_bias",
                                                           "movie_factors", "movie_bias"])
        assert m.y_range == (0, 5.5)
    assert all(isinstance(getattr(cp, a), nn.Parameter)
               for a in ("user_factors", "user_bias", "movie_factors", "movie_bias"))
    x = torch.tensor([[0, 0], [4, 8], [2, 3]])
    assert emb(x).shape == (3, 1) and cp(x).shape == (3,)
    assert ((emb(x) > 0) & (emb(x) < 5.5)).all()


class ColumnAndFlat(nn.Module):
    """Biases of both shapes, factors behind a nested attribute path."""
    def __init__(self, n_users, n_items, n_factors, y_range=(0, 5.5)):
        super().__init__()
        self.tables = nn.ModuleDict({"u": nn.Embedding(n_users, n_factors),
                                     "i": nn.Embedding(n_items, n_factors)})
        self.ub = nn.Parameter(torch.randn(n_users))          # [n]
        self.ib = nn.Embedding(n_items, 1)                    # [n, 1], a layer: its .weight

    def forward(self, x):
        return (self.tables.u(x[:, 0]) * self.tables.i(x[:, 1])).sum(1)


PATHS = {"user_factors": "tables.u.weight", "user_bias": "ub", "item_factors": "tables.i",
         "item_bias": "ib"}


def test_declared_paths_read_nested_layers_and_both_bias_shapes():
    v = Variant("paths", ColumnAndFlat, "paths", "[bs]", paths=PATHS)
    params = random_canonical(4, 6, 3, generator=torch.Generator().manual_seed(1))
    model = v.make(4, 6, 3, params=params)
    assert model.ib.weight.shape == (6, 1) and model.ub.shape == (4,)
    assert torch.equal(model.ib.weight[:, 0], params.item_bias)
    assert all(torch.equal(a, b) for a, b in zip(v.to_canonical(model), params))
    model(torch.tensor([[0, 1], [3, 5]])).sum().backward()
    g = v.canonical_grads(model)
    assert g.item_bias.shape == (6,) and not g.item_bias.any()      # no gradient flowed: zeros
    assert g.user_factors[3].abs().sum() > 0


def test_check_paths_names_the_path_and_the_misfit():
    from dotbias.models.canonical import check_paths
    model = ColumnAndFlat(4, 6, 3)
    with pytest.raises(ValueError, match=r"parameter path 'tables.x': ModuleDict has no attribute 'x'"):
        check_paths(model, {**PATHS, "item_factors": "tables.x"}, (4, 6, 3))
    with pytest.raises(ValueError, match=r"'tables.i' \(user_factors\) has shape \[6, 3\], expected "
                                         r"\[4, 3\]"):
        check_paths(model, {**PATHS, "user_factors": "tables.i"}, (4, 6, 3))
