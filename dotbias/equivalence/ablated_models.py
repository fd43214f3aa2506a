"""The seed's models with one of its choices reverted, one model per change (fastbook ch. 8,
"Further Research": revert each change alone and see what happens).

Each keeps the book's attribute names and forward, changed in one place only (marked `# <-`)."""
from __future__ import annotations

import torch
from fastai.layers import Embedding, sigmoid_range
from torch import nn

from dotbias.models.book import DotProductBiasCP, DotProductBiasEmb, create_params


class CPTwoArgs(DotProductBiasCP):
    """`create_params(n, k)` instead of `create_params([n, k])`."""
    def __init__(self, n_users, n_movies, n_factors, y_range=(0, 5.5)):
        nn.Module.__init__(self)
        self.user_factors = create_params(n_users, n_factors)  # <-
        self.user_bias = create_params([n_users])
        self.movie_factors = create_params([n_movies, n_factors])
        self.movie_bias = create_params([n_movies])
        self.y_range = y_range


class EmbOneList(DotProductBiasEmb):
    """`Embedding([n, k])`, the create_params call style, instead of `Embedding(n, k)`."""
    def __init__(self, n_users, n_movies, n_factors, y_range=(0, 5.5)):
        nn.Module.__init__(self)
        self.user_factors = Embedding([n_users, n_factors])  # <-
        self.user_bias = Embedding(n_users, 1)
        self.movie_factors = Embedding(n_movies, n_factors)
        self.movie_bias = Embedding(n_movies, 1)
        self.y_range = y_range


class EmbBiasOneArg(DotProductBiasEmb):
    """The bias made like create_params' 1-D `[n]`: `Embedding(n)`."""
    def __init__(self, n_users, n_movies, n_factors, y_range=(0, 5.5)):
        nn.Module.__init__(self)
        self.user_factors = Embedding(n_users, n_factors)
        self.user_bias = Embedding(n_users)  # <-
        self.movie_factors = Embedding(n_movies, n_factors)
        self.movie_bias = Embedding(n_movies)  # <-
        self.y_range = y_range


class CPBiasColumn(DotProductBiasCP):
    """The bias made like `Embedding(n, 1)`'s weight: `create_params([n, 1])`."""
    def __init__(self, n_users, n_movies, n_factors, y_range=(0, 5.5)):
        nn.Module.__init__(self)
        self.user_factors = create_params([n_users, n_factors])
        self.user_bias = create_params([n_users, 1])  # <-
        self.movie_factors = create_params([n_movies, n_factors])
        self.movie_bias = create_params([n_movies, 1])  # <-
        self.y_range = y_range


class CPCallParam(DotProductBiasCP):
    """A parameter called like a layer: `self.user_factors(x[:, 0])`."""
    def forward(self, x):
        users = self.user_factors(x[:, 0])  # <-
        movies = self.movie_factors[x[:, 1]]
        res = (users * movies).sum(dim=1)
        res += self.user_bias[x[:, 0]] + self.movie_bias[x[:, 1]]
        return sigmoid_range(res, *self.y_range)


class EmbIndexLayer(DotProductBiasEmb):
    """A layer indexed like a tensor: `self.user_factors[x[:, 0]]`."""
    def forward(self, x):
        users = self.user_factors[x[:, 0]]  # <-
        movies = self.movie_factors(x[:, 1])
        res = (users * movies).sum(dim=1, keepdim=True)
        res += self.user_bias(x[:, 0]) + self.movie_bias(x[:, 1])
        return sigmoid_range(res, *self.y_range)


class EmbNoKeepdim(DotProductBiasEmb):
    """`keepdim=True` dropped, in-place `+=`: `[bs] += [bs, 1]` cannot broadcast in place."""
    def forward(self, x):
        users = self.user_factors(x[:, 0])
        movies = self.movie_factors(x[:, 1])
        res = (users * movies).sum(dim=1)  # <-
        res += self.user_bias(x[:, 0]) + self.movie_bias(x[:, 1])
        return sigmoid_range(res, *self.y_range)


class EmbNoKeepdimAdd(DotProductBiasEmb):
    """`keepdim=True` dropped, out-of-place `+`: `[bs] + [bs, 1]` broadcasts to `[bs, bs]`."""
    def forward(self, x):
        users = self.user_factors(x[:, 0])
        movies = self.movie_factors(x[:, 1])
        res = (users * movies).sum(dim=1)  # <-
        res = res + self.user_bias(x[:, 0]) + self.movie_bias(x[:, 1])  # <-
        return sigmoid_range(res, *self.y_range)


class CPKeepdim(DotProductBiasCP):
    """The reverse: `keepdim=True` added to the create_params model, whose biases are 1-D."""
    def forward(self, x):
        users = self.user_factors[x[:, 0]]
        movies = self.movie_factors[x[:, 1]]
        res = (users * movies).sum(dim=1, keepdim=True)  # <-
        res += self.user_bias[x[:, 0]] + self.movie_bias[x[:, 1]]
        return sigmoid_range(res, *self.y_range)


def bias_of(model: nn.Module, name: str = "movie_bias") -> torch.Tensor:
    """A bias as a 1-D tensor, whether a layer's `[n, 1]` weight or a parameter."""
    attr = getattr(model, name)
    w = attr.weight if isinstance(attr, nn.Module) else attr
    return w.detach().reshape(-1)
