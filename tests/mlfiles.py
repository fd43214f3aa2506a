"""Write small MovieLens 100k folders in the real format (u.data tab-separated, u.item pipe-separated
latin-1) so the reader is tested without downloading anything."""
from __future__ import annotations

from pathlib import Path

import numpy as np

TITLES = ["Toy Story (1995)", "Misérables, Les (1995)", "Cité des enfants perdus, La (1995)",
          "Shawshank Redemption, The (1994)", "Amélie (2001)", "Star Wars (1977)"]


def item_line(movie: int, title: str) -> str:
    genres = "|".join(["0"] * 19)
    return f"{movie}|{title}|01-Jan-1995||http://us.imdb.com/M/title-exact?x|{genres}"


def write_movielens(folder: Path, n_users: int = 30, n_items: int = 40, n_ratings: int = 500,
                    seed: int = 0, duplicate_title: bool = True) -> Path:
    """A small valid folder: every item rated, the book's latin-1 titles first, and (like the real
    data) two movie ids sharing one title when `duplicate_title`."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    titles = [TITLES[i] if i < len(TITLES) else f"Movie {i + 1} (1990)" for i in range(n_items)]
    if duplicate_title and n_items > len(TITLES) + 1:
        titles[-1] = titles[0]            # u.item has such duplicates: 1682 ids, 1664 titles
    items = "\n".join(item_line(i + 1, t) for i, t in enumerate(titles)) + "\n"
    (folder / "u.item").write_bytes(items.encode("latin-1"))
    pairs = rng.choice(n_users * n_items, size=n_ratings, replace=False)
    pairs[:n_items] = np.arange(n_items)  # every movie rated at least once (by user 1)
    lines = [f"{p // n_items + 1}\t{p % n_items + 1}\t{rng.integers(1, 6)}\t{874965758 + k}"
             for k, p in enumerate(pairs)]
    (folder / "u.data").write_text("\n".join(lines) + "\n")
    return folder
