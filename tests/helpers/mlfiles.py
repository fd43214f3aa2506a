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


def write_bench_run(path: Path, *, median: float = 1e-4, n: int = 40, seed: int = 0) -> Path:
    """A small pytest-benchmark JSON run (forward, emb and cp, interleaved rounds), the format
    `dotbias report` reads; `median=0` gives the degenerate all-zero timings."""
    import json

    rng = np.random.default_rng(seed)

    def bench(variant: str, factor: float) -> dict:
        processes = [(median * factor * (1 + 0.05 * rng.random(n // 4))).tolist() for _ in range(4)]
        s = sum(processes, [])
        q1, med, q3 = np.quantile(s, [0.25, 0.5, 0.75]).tolist()
        size = {"name": "ml100k", "n_users": 944, "n_items": 1683, "n_factors": 50, "bs": 64}
        info = {"operation": "forward", "variant": variant, "device": "cpu", "dtype": "float32",
                "size": size, "sweep_axes": [], "torch": "2.13.0", "torch_threads": 1, "threads": 1,
                "interleaved": {"seconds": s, "iterations": 10, "rounds": n},
                # the same timings as rounds in worker processes, the layout of newer bench/ runs
                "group": {"operation": "forward", "device": "cpu", "size": size, "dtype": "float32"},
                "timing": {"seconds": processes, "iterations": [10] * len(processes)}}
        name = f"test_forward[cpu-ml100k-float32-{variant}]"
        return {"group": "forward | cpu | ml100k | float32", "name": name,
                "fullname": f"bench/test_forward.py::{name}",
                "params": {"variant": variant}, "param": f"cpu-ml100k-float32-{variant}", "extra_info": info,
                "stats": {"min": min(s), "max": max(s), "mean": float(np.mean(s)), "stddev": float(np.std(s)),
                          "rounds": n, "median": med, "iqr": q3 - q1, "q1": q1, "q3": q3, "iterations": 10,
                          "data": s}}
    data = {"machine_info": {"node": "test", "cpu": {"brand_raw": "TestCPU"}, "python_version": "3.11"},
            "commit_info": {"id": "abc123", "dirty": False}, "datetime": "2026-01-01T00:00:00",
            "version": "5.3.1", "benchmarks": [bench("emb", 1.2), bench("cp", 1.0)]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def tree_digest(folder: Path) -> dict[str, str]:
    """Every entry under `folder` (hidden ones too) -> sha256 of a file, a symlink's target or
    'dir': equal digests mean the folder is byte-for-byte unchanged."""
    import hashlib
    import os

    if not folder.exists() and not folder.is_symlink():
        return {}
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = Path(root) / name
            rel = str(p.relative_to(folder))
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
            elif p.is_dir():
                out[rel] = "dir"
            else:
                with open(p, "rb") as f:
                    out[rel] = hashlib.sha256(f.read()).hexdigest()
    return out
