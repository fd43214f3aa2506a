"""Ratings data: a synthetic generator with known truth, and conversion to fastai
`CollabDataLoaders` and plain tensors (`CollabTensors`; the MovieLens 100k files are read by
`data.movielens`)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from dotbias.models.variant import check_sizes


@dataclass
class CollabTensors:
    """The same split and index coding as the DataLoaders, as plain tensors (x: [n, 2] long)."""
    x_train: Tensor
    y_train: Tensor
    x_valid: Tensor
    y_valid: Tensor
    n_users: int
    n_items: int

    def to(self, device) -> CollabTensors:
        return CollabTensors(self.x_train.to(device), self.y_train.to(device),
                             self.x_valid.to(device), self.y_valid.to(device),
                             self.n_users, self.n_items)


@dataclass
class Synthetic:
    """Synthetic ratings with the truth they were drawn from (indexed by user id and item id)."""
    ratings: pd.DataFrame          # user, movie, rating, timestamp, title
    user_bias: np.ndarray          # [n_users + 1], index = user id (0 unused)
    item_bias: np.ndarray          # [n_items + 1], index = movie id (0 unused)
    user_factors: np.ndarray
    item_factors: np.ndarray
    mean: float
    noise: float

    def true_item_bias(self) -> pd.Series:
        """True item bias keyed by title."""
        ids = np.arange(1, len(self.item_bias))
        return pd.Series(self.item_bias[1:], index=[synthetic_title(i) for i in ids])


def synthetic_title(movie: int) -> str:
    return f"Synthetic item {movie:04d} (2000)"


def _draw_pairs(rng: np.random.Generator, n_users: int, n_items: int, n_ratings: int) -> np.ndarray:
    """`n_ratings` distinct (user, item) pairs coded as user * n_items + item, drawn by long-tailed
    (Zipf-like) user activity and item popularity."""
    item_pop = 1.0 / (np.arange(1, n_items + 1) + 10.0) ** 1.1
    user_act = 1.0 / (np.arange(1, n_users + 1) + 30.0) ** 0.8
    item_pop, user_act = rng.permutation(item_pop), rng.permutation(user_act)
    pairs = np.empty(0, dtype=np.int64)
    while len(pairs) < n_ratings:      # draw pairs by popularity, keep the first of each
        need = int((n_ratings - len(pairs)) * 1.3) + 100
        u = rng.choice(n_users, need, p=user_act / user_act.sum())
        i = rng.choice(n_items, need, p=item_pop / item_pop.sum())
        drawn = np.concatenate([pairs, u * n_items + i])
        _, first = np.unique(drawn, return_index=True)
        pairs = drawn[np.sort(first)]
        if len(pairs) >= n_ratings:
            pairs = pairs[:n_ratings]
        elif need > 50 * n_ratings:   # dense corner cases: fill up uniformly
            rest = np.setdiff1d(np.arange(n_users * n_items), pairs)
            pairs = np.concatenate([pairs, rng.permutation(rest)[:n_ratings - len(pairs)]])
    return pairs


def synthetic_ratings(n_users: int = 943, n_items: int = 1682, n_ratings: int = 100_000, *,
                      rank: int = 4, seed: int = 0) -> Synthetic:
    """Ratings shaped like MovieLens 100k, drawn from a known model:

        rating = clip(round(mean + user_bias + item_bias + user_factors . item_factors + noise), 1, 5)

    Item popularity and user activity are long-tailed (Zipf-like), each (user, item) pair is rated
    at most once, and ids start at 1 like MovieLens."""
    check_sizes(n_users=n_users, n_items=n_items, n_ratings=n_ratings, rank=rank)
    if n_ratings > n_users * n_items:
        raise ValueError(f"n_ratings={n_ratings} exceeds n_users * n_items = {n_users * n_items}")
    rng = np.random.default_rng(seed)
    pairs = _draw_pairs(rng, n_users, n_items, n_ratings)
    users, items = pairs // n_items, pairs % n_items
    mean, noise = 3.5, 0.6
    user_bias = rng.normal(0, 0.35, n_users)
    item_bias = rng.normal(0, 0.6, n_items)
    user_factors = rng.normal(0, 0.55, (n_users, rank))
    item_factors = rng.normal(0, 0.55, (n_items, rank))
    score = (mean + user_bias[users] + item_bias[items]
             + (user_factors[users] * item_factors[items]).sum(1) + rng.normal(0, noise, n_ratings))
    rating = np.clip(np.rint(score), 1, 5).astype(np.int64)
    ratings = pd.DataFrame({"user": users + 1, "movie": items + 1, "rating": rating,
                            "timestamp": 874_724_710 + np.arange(n_ratings)})
    ratings["title"] = [synthetic_title(m) for m in ratings["movie"]]
    pad = lambda a: np.concatenate([np.zeros((1, *a.shape[1:])), a])
    return Synthetic(ratings, pad(user_bias), pad(item_bias), pad(user_factors), pad(item_factors),
                     mean, noise)


def collab_dls(ratings: pd.DataFrame, *, bs: int = 64, seed: int | None = 42,
               valid_pct: float = 0.2, device: str | torch.device = "cpu"):
    """The seed's `CollabDataLoaders.from_df(ratings, item_name='title', bs=64)`, seeded split."""
    from fastai.collab import CollabDataLoaders

    check_sizes(bs=bs)
    missing = {"user", "title", "rating"} - set(ratings.columns)
    if missing:
        raise ValueError(f"ratings lack column(s) {', '.join(sorted(missing))}")
    cols = ratings[["user", "title", "rating"]]
    return CollabDataLoaders.from_df(cols, item_name="title", bs=bs, seed=seed,
                                     valid_pct=valid_pct, device=torch.device(device))


def tensors_from_dls(dls) -> CollabTensors:
    """Read the encoded (user, title) indices and ratings out of fastai's collab datasets."""
    def xy(ds):
        x = torch.as_tensor(ds.cats.to_numpy(dtype=np.int64))
        y = torch.as_tensor(ds.ys.to_numpy(dtype=np.float32)).reshape(-1)
        return x, y
    (xt, yt), (xv, yv) = xy(dls.train_ds), xy(dls.valid_ds)
    return CollabTensors(xt, yt, xv, yv, len(dls.classes["user"]), len(dls.classes["title"]))


def top_titles(bias: pd.Series, k: int, *, lowest: bool = False) -> list[str]:
    """The k titles with the largest (or the smallest) bias, in order: the one top-k of dotbias."""
    return list((bias.nsmallest(k) if lowest else bias.nlargest(k)).index)


def top_overlap(a: pd.Series, b: pd.Series, k: int) -> float:
    """Share of the top-k (largest) of `a` that are also in the top-k of `b`."""
    return len(set(top_titles(a, k)) & set(top_titles(b, k))) / k
