"""The MovieLens 100k reader: `u.data` (tab-separated ratings) and `u.item` (pipe-separated latin-1
titles), merged the seed's way. Every problem is one line naming the file, the line as an editor
counts it, and the column."""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = ("user", "movie", "rating", "timestamp")


Y_RANGE = (0.0, 5.5)      # the models' sigmoid_range: a rating outside it cannot be fitted
# Plain ASCII numbers only: Python's int() and float() also take '1_000' and non-ASCII digits
# ('\uff15' is 5), which no MovieLens file holds: read silently, they would be other ids.
_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise FileNotFoundError(f"{path}: file not found (a MovieLens 100k folder holds u.data and u.item)")
    if not path.is_file():
        raise ValueError(f"{path}: not a file")
    data = path.read_bytes()
    if not data.strip():
        raise ValueError(f"{path}: file is empty")
    return data


def _lines(text: str):
    """(line number, line) as an editor counts them: only '\n' ends a line, blank lines count."""
    for line_no, line in enumerate(text.split("\n"), 1):
        line = line.removesuffix("\r")
        if line.strip():
            yield line_no, line


def _int(path: Path, line_no: int, column: str, value: str) -> int:
    if not _INTEGER.fullmatch(value) or len(value) > 18:        # int64, as pandas stores it
        raise ValueError(f"{path}, line {line_no}, column {column}: expected an integer, "
                         f"got {value[:40]!r}")
    return int(value)


def _id(path: Path, line_no: int, column: str, value: str) -> int:
    """A user or movie id: MovieLens numbers them from 1."""
    number = _int(path, line_no, column, value)
    if number < 1:
        raise ValueError(f"{path}, line {line_no}, column {column}: expected a positive id "
                         f"(MovieLens numbers them from 1), got {number}")
    return number


def _rating(path: Path, line_no: int, value: str) -> float:
    rating = float(value) if _NUMBER.fullmatch(value.strip()) else float("nan")
    if not np.isfinite(rating):
        raise ValueError(f"{path}, line {line_no}, column rating: expected a number, got {value[:40]!r}")
    return rating


def read_ratings(path: str | Path) -> pd.DataFrame:
    """Read `u.data`: tab-separated user, movie, rating, timestamp; integers, no header.
    `df.attrs["lines"]` holds each row's line number in the file."""
    path = Path(path)
    rows, lines = [], []
    for line_no, line in _lines(_read_bytes(path).decode("latin-1")):
        fields = line.split("\t")
        if len(fields) != 4:
            raise ValueError(f"{path}, line {line_no}: expected 4 tab-separated columns "
                             f"(user, movie, rating, timestamp), got {len(fields)}: {line[:60]!r}")
        user, movie = (_id(path, line_no, c, fields[i].strip()) for c, i in (("user", 0), ("movie", 1)))
        ts = _int(path, line_no, "timestamp", fields[3].strip())
        rows.append((user, movie, _rating(path, line_no, fields[2]), ts))
        lines.append(line_no)
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    df["rating"] = df["rating"].astype("int64") if (df["rating"] % 1 == 0).all() else df["rating"]
    df.attrs["lines"] = lines
    return df


def _check_encoding(path: Path, data: bytes) -> None:
    """u.item is latin-1 text: refuse UTF-16, a UTF-8 BOM or UTF-8 text, and control characters
    (bytes 0x80-0x9f are C1 controls in latin-1: typically a cp1252 quote or dash)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data:
        raise ValueError(f"{path}: looks UTF-16 encoded; MovieLens 100k's u.item is latin-1")
    if data.startswith(b"\xef\xbb\xbf"):
        raise ValueError(f"{path}: starts with a UTF-8 byte-order mark; u.item is latin-1")
    try:
        as_utf8 = data.decode("utf-8")
    except UnicodeDecodeError:
        as_utf8 = None
    if as_utf8 is not None and not as_utf8.isascii():
        line_no, line = next((i, ln) for i, ln in _lines(as_utf8) if not ln.isascii())
        raise ValueError(f"{path}, line {line_no}: text is UTF-8 encoded "
                         f"({line.split('|')[1] if '|' in line else line[:40]!r}); "
                         "MovieLens 100k's u.item is latin-1")
    for line_no, line in _lines(data.decode("latin-1")):
        bad = next((i for i, ch in enumerate(line) if (ord(ch) < 32 and ch != "\t") or 127 <= ord(ch) < 160),
                   None)
        if bad is not None:
            byte = ord(line[bad])
            hint = bytes([byte]).decode("cp1252", errors="replace")
            raise ValueError(f"{path}, line {line_no}, column {bad + 1}: byte 0x{byte:02x} is a control "
                             f"character in latin-1, not text (in cp1252 it is {hint!r}); "
                             "MovieLens 100k's u.item is latin-1")


def read_titles(path: str | Path) -> pd.DataFrame:
    """Read `u.item`: pipe-separated, latin-1; the first two columns are movie id and title."""
    path = Path(path)
    data = _read_bytes(path)
    _check_encoding(path, data)
    rows = []
    for line_no, line in _lines(data.decode("latin-1")):
        fields = line.split("|")
        if len(fields) < 2:
            raise ValueError(f"{path}, line {line_no}: expected pipe-separated columns "
                             f"(movie id|title|...), got {len(fields)}: {line[:60]!r}")
        rows.append((_id(path, line_no, "movie id", fields[0].strip()), fields[1]))
    df = pd.DataFrame(rows, columns=["movie", "title"])
    dup = df["movie"].duplicated()
    if dup.any():
        raise ValueError(f"{path}: movie id {df['movie'][dup].iloc[0]} appears twice")
    return df


def _folder(folder: str | Path) -> Path:
    folder = Path(folder)
    if not folder.exists():
        raise FileNotFoundError(f"{folder}: folder not found (expected a MovieLens 100k folder "
                                "with u.data and u.item)")
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder (expected a MovieLens 100k folder)")
    if not os.access(folder, os.R_OK | os.X_OK):
        raise PermissionError(13, "Permission denied (cannot read the folder)", str(folder))
    return folder


def check_rating_range(ratings: pd.DataFrame, path: Path, y_range=Y_RANGE) -> None:
    """Refuse a rating the models' y_range cannot produce, naming its line."""
    outside = ~ratings["rating"].between(*y_range)
    if outside.any():
        i = int(np.flatnonzero(outside.to_numpy())[0])
        line = ratings.attrs.get("lines", range(1, len(ratings) + 1))[i]
        raise ValueError(f"{path}, line {line}, column rating: {ratings['rating'].iloc[i]} is outside "
                         f"the models' y_range {y_range}; pass --allow-out-of-range to train anyway")


def read_movielens(folder: str | Path, *, allow_out_of_range: bool = False) -> pd.DataFrame:
    """Read a MovieLens 100k folder as the seed does: ratings merged with titles on the movie id.

    Columns: user, movie, rating, timestamp, title. Unlike a bare `merge`, a rating whose movie id
    has no title is an error rather than a silently dropped row; so is a rating outside the
    models' y_range unless `allow_out_of_range`."""
    folder = _folder(folder)
    ratings = read_ratings(folder / "u.data")
    titles = read_titles(folder / "u.item")
    missing = ~ratings["movie"].isin(titles["movie"])
    if missing.any():
        line_no = ratings.attrs["lines"][int(np.flatnonzero(missing.to_numpy())[0])]
        raise ValueError(f"{folder / 'u.data'}, line {line_no}, column movie: id "
                         f"{ratings['movie'][missing].iloc[0]} has no title in u.item")
    if not allow_out_of_range:
        check_rating_range(ratings, folder / "u.data")
    merged = ratings.merge(titles)
    merged.attrs = {}
    return merged


