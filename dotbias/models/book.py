"""The seed's two DotProductBias models, as fastbook chapter 8 writes them.

`DotProductBiasEmb` is the book's first version (fastai `Embedding` layers, `[n, 1]` biases,
`keepdim=True`); `DotProductBiasCP` is the "from scratch" version (`create_params` tensors,
1-D biases, indexing). `EMB` and `CP` declare them as variants; `registry` registers them."""
from __future__ import annotations

import torch
from fastai.layers import Embedding, sigmoid_range
from fastai.torch_core import Module
from torch import nn

from dotbias.models.variant import CREATE_PARAMS_INIT, FASTAI_EMBEDDING_INIT, Variant


class DotProductBiasEmb(Module):
    def __init__(self, n_users, n_movies, n_factors, y_range=(0, 5.5)):
        self.user_factors = Embedding(n_users, n_factors)
        self.user_bias = Embedding(n_users, 1)
        self.movie_factors = Embedding(n_movies, n_factors)
        self.movie_bias = Embedding(n_movies, 1)
        self.y_range = y_range

    def forward(self, x):
        users = self.user_factors(x[:, 0])
        movies = self.movie_factors(x[:, 1])
        res = (users * movies).sum(dim=1, keepdim=True)
        res += self.user_bias(x[:, 0]) + self.movie_bias(x[:, 1])
        return sigmoid_range(res, *self.y_range)


def create_params(size):
    return nn.Parameter(torch.zeros(*size).normal_(0, 0.01))


class DotProductBiasCP(Module):
    def __init__(self, n_users, n_movies, n_factors, y_range=(0, 5.5)):
        self.user_factors = create_params([n_users, n_factors])
        self.user_bias = create_params([n_users])
        self.movie_factors = create_params([n_movies, n_factors])
        self.movie_bias = create_params([n_movies])
        self.y_range = y_range

    def forward(self, x):
        users = self.user_factors[x[:, 0]]
        movies = self.movie_factors[x[:, 1]]
        res = (users * movies).sum(dim=1)
        res += self.user_bias[x[:, 0]] + self.movie_bias[x[:, 1]]
        return sigmoid_range(res, *self.y_range)


EMB = Variant("emb", DotProductBiasEmb, "fastai Embedding layers, [n, 1] biases, keepdim=True",
              "[bs, 1]", init=FASTAI_EMBEDDING_INIT, exact_with="book")
CP = Variant("cp", DotProductBiasCP, "create_params tensors, 1-D biases, indexing", "[bs]",
             init=CREATE_PARAMS_INIT, exact_with="book")
BUILT_IN = [EMB, CP]
