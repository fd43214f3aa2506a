"""Built-in variants beyond the book's two, each registered on import:

- `fastai`: fastai's own `fastai.collab.EmbeddingDotBias` (what `collab_learner` builds); it adds
  the biases in another order, so it is equivalent within error, not bitwise;
- `torch_emb`: plain `nn.Embedding` tables, the book's order of operations (bitwise with it);
- `packed`: built for speed, one table per side with the bias as its last column, so one gather
  per side forward and one scatter per side backward instead of two (escape-hatch mapping);
- `einsum`, `bag`: the create_params model with the dot product as `einsum('bf,bf->b')`, and
  with `F.embedding_bag` lookups; correct but not bitwise, init inherited from `cp`.

Opt-in (`OPT_IN`, not registered by default; plug them in with `--variant dotbias.models.zoo:NAME`):
- `cp_compiled`: `torch.compile` of `cp` (dynamic shapes; each dtype, y_range and 0/1 size is a
  graph compiled once, seconds each, which the default suite and benchmarks do not pay);
- `fused`: a forward+backward candidate (its time goes to whole-table zero gradients): one table
  for both sides (users, then items; bias as the last column), so one gather forward and one
  zero-filled gradient backward; equivalent, not shown faster, so not registered by default;
- `torch_emb_sparse`: `torch_emb` with `nn.Embedding(sparse=True)`, as recommender models with
  large tables write it; its gradients are sparse tensors (compared densified, and densified
  before an optimizer step: see `training.densify_sparse_grads`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from fastai.layers import sigmoid_range
from torch import nn

from dotbias.models.book import CP, DotProductBiasCP
from dotbias.models.canonical import Canonical
from dotbias.models.variant import CREATE_PARAMS_INIT, FASTAI_EMBEDDING_INIT, Variant


def fastai_model(n_users, n_items, n_factors, y_range=(0, 5.5)) -> nn.Module:
    """fastai's constructor takes (n_factors, n_users, n_items, y_range). Imported here: fastai.collab
    pulls in pandas and scikit-learn (0.85 s), which every fresh worker process would pay."""
    from fastai.collab import EmbeddingDotBias
    return EmbeddingDotBias(n_factors, n_users, n_items, y_range=y_range)


class TorchEmbeddingDotBias(nn.Module):
    """Plain torch: `nn.Embedding` tables drawn from N(0, 0.01), the book's order of operations."""
    def __init__(self, n_users, n_items, n_factors, y_range=(0, 5.5)):
        super().__init__()
        self.user_emb, self.item_emb = nn.Embedding(n_users, n_factors), nn.Embedding(n_items, n_factors)
        self.user_b, self.item_b = nn.Embedding(n_users, 1), nn.Embedding(n_items, 1)
        for layer in (self.user_emb, self.user_b, self.item_emb, self.item_b):
            nn.init.normal_(layer.weight, 0, 0.01)
        self.y_range = y_range

    def forward(self, x):
        users, items = x[:, 0], x[:, 1]
        res = (self.user_emb(users) * self.item_emb(items)).sum(dim=1)
        res = res + (self.user_b(users) + self.item_b(items)).squeeze(1)
        return sigmoid_range(res, *self.y_range)


class SparseEmbeddingDotBias(TorchEmbeddingDotBias):
    """`TorchEmbeddingDotBias` with sparse-gradient tables: backward yields only the looked-up rows."""
    def __init__(self, n_users, n_items, n_factors, y_range=(0, 5.5)):
        super().__init__(n_users, n_items, n_factors, y_range)
        for layer in (self.user_emb, self.user_b, self.item_emb, self.item_b):
            layer.sparse = True


class PackedDotBias(nn.Module):
    """For speed: per side one `[n, n_factors + 1]` table, the bias in the last column."""
    def __init__(self, n_users, n_items, n_factors, y_range=(0, 5.5)):
        super().__init__()
        self.users = nn.Parameter(torch.zeros(n_users, n_factors + 1).normal_(0, 0.01))
        self.items = nn.Parameter(torch.zeros(n_items, n_factors + 1).normal_(0, 0.01))
        self.y_range = y_range

    def forward(self, x):
        f = self.users.shape[1] - 1
        users, user_bias = F.embedding(x[:, 0], self.users).split([f, 1], dim=1)
        items, item_bias = F.embedding(x[:, 1], self.items).split([f, 1], dim=1)
        res = (users * items).sum(dim=1)
        res = res + (user_bias + item_bias).squeeze(1)
        return sigmoid_range(res, *self.y_range)


def _split(users: torch.Tensor, items: torch.Tensor) -> Canonical:
    return Canonical(users[:, :-1].clone(), users[:, -1].clone(), items[:, :-1].clone(),
                     items[:, -1].clone())


def packed_to_canonical(model: PackedDotBias) -> Canonical:
    return _split(model.users.detach(), model.items.detach())


def packed_grads(model: PackedDotBias) -> Canonical:
    grads = [torch.zeros_like(p) if p.grad is None else p.grad.detach()
             for p in (model.users, model.items)]
    return _split(*grads)


def packed_load(model: PackedDotBias, params: Canonical) -> PackedDotBias:
    with torch.no_grad():
        for table, factors, bias in ((model.users, params.user_factors, params.user_bias),
                                     (model.items, params.item_factors, params.item_bias)):
            if list(factors.shape) != [table.shape[0], table.shape[1] - 1]:
                raise ValueError(f"canonical factors of shape {list(factors.shape)} do not fit a "
                                 f"packed table of shape {list(table.shape)}")
            table.copy_(torch.cat([factors, bias[:, None]], 1))
    return model


class FusedDotBias(nn.Module):
    """One `[n_users + n_items, n_factors + 1]` table: users' rows, then items'; bias last column."""
    def __init__(self, n_users, n_items, n_factors, y_range=(0, 5.5)):
        super().__init__()
        self.table = nn.Parameter(torch.zeros(n_users + n_items, n_factors + 1).normal_(0, 0.01))
        self.register_buffer("offsets", torch.tensor([0, n_users]), persistent=False)
        self.y_range = y_range

    def forward(self, x):
        f = self.table.shape[1] - 1
        rows = F.embedding(x + self.offsets, self.table)        # [bs, 2, f + 1]
        users, items = rows[:, 0], rows[:, 1]
        res = (users[:, :f] * items[:, :f]).sum(dim=1)
        res = res + (users[:, f] + items[:, f])
        return sigmoid_range(res, *self.y_range)


def fused_to_canonical(model: FusedDotBias) -> Canonical:
    n_users = int(model.offsets[1])
    return _split(model.table.detach()[:n_users], model.table.detach()[n_users:])


def fused_grads(model: FusedDotBias) -> Canonical:
    g = torch.zeros_like(model.table) if model.table.grad is None else model.table.grad.detach()
    n_users = int(model.offsets[1])
    return _split(g[:n_users], g[n_users:])


def fused_load(model: FusedDotBias, params: Canonical) -> FusedDotBias:
    n_users, (rows, width) = int(model.offsets[1]), model.table.shape
    for name, t, n in (("user_factors", params.user_factors, n_users),
                       ("item_factors", params.item_factors, rows - n_users)):
        if list(t.shape) != [n, width - 1]:
            raise ValueError(f"canonical {name} of shape {list(t.shape)} does not fit a fused "
                             f"table of shape {list(model.table.shape)} with {n_users} users")
    with torch.no_grad():
        model.table.copy_(torch.cat([torch.cat([params.user_factors, params.user_bias[:, None]], 1),
                                     torch.cat([params.item_factors, params.item_bias[:, None]], 1)]))
    return model


class EinsumDotBias(DotProductBiasCP):
    """The create_params model with the dot product as one einsum (a batched matmul)."""
    def forward(self, x):
        users = self.user_factors[x[:, 0]]
        movies = self.movie_factors[x[:, 1]]
        res = torch.einsum("bf,bf->b", users, movies)
        res += self.user_bias[x[:, 0]] + self.movie_bias[x[:, 1]]
        return sigmoid_range(res, *self.y_range)


class BagDotBias(DotProductBiasCP):
    """The create_params model looking rows up with `F.embedding_bag` (bags of one row)."""
    def forward(self, x):
        u, m = x[:, :1], x[:, 1:]
        users = F.embedding_bag(u, self.user_factors, mode="sum")
        movies = F.embedding_bag(m, self.movie_factors, mode="sum")
        res = (users * movies).sum(dim=1)
        res += (F.embedding_bag(u, self.user_bias[:, None], mode="sum")
                + F.embedding_bag(m, self.movie_bias[:, None], mode="sum")).squeeze(1)
        return sigmoid_range(res, *self.y_range)


FASTAI = Variant("fastai", fastai_model, "fastai.collab.EmbeddingDotBias (collab_learner's model)",
                 "[bs]", paths={"user_factors": "u_weight", "user_bias": "u_bias",
                                "item_factors": "i_weight", "item_bias": "i_bias"},
                 init=FASTAI_EMBEDDING_INIT)
TORCH_EMB = Variant("torch_emb", TorchEmbeddingDotBias, "plain nn.Embedding tables, N(0, 0.01)",
                    "[bs]", paths={"user_factors": "user_emb.weight", "user_bias": "user_b.weight",
                                   "item_factors": "item_emb.weight", "item_bias": "item_b.weight"},
                    init=CREATE_PARAMS_INIT, exact_with="book")
PACKED = Variant("packed", PackedDotBias, "one [n, f+1] table per side, bias as last column",
                 "[bs]", to_canonical=packed_to_canonical, load_canonical=packed_load,
                 canonical_grads=packed_grads, init=CREATE_PARAMS_INIT)
FUSED = Variant("fused", FusedDotBias, "one table for both sides, bias as last column", "[bs]",
                to_canonical=fused_to_canonical, load_canonical=fused_load,
                canonical_grads=fused_grads, init=CREATE_PARAMS_INIT)
EINSUM = Variant("einsum", EinsumDotBias, "create_params, dot product as einsum('bf,bf->b')", "[bs]")
BAG = Variant("bag", BagDotBias, "create_params, lookups with F.embedding_bag", "[bs]")
BUILT_IN = [FASTAI, TORCH_EMB, PACKED, EINSUM, BAG]


TORCH_EMB_SPARSE = Variant("torch_emb_sparse", SparseEmbeddingDotBias,
                           "nn.Embedding(sparse=True) tables, N(0, 0.01)", "[bs]",
                           paths=dict(TORCH_EMB.paths), init=CREATE_PARAMS_INIT, exact_with="book")
CP_COMPILED = CP.compiled()
OPT_IN = [CP_COMPILED, TORCH_EMB_SPARSE, FUSED]
