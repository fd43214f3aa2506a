"""The MovieLens reader, its errors, the synthetic generator and the conversion to dls/tensors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dotbias.data.movielens import read_movielens, read_ratings, read_titles
from dotbias.data.ratings import collab_dls, synthetic_ratings, tensors_from_dls
from helpers.mlfiles import write_movielens


def test_reads_real_format_with_latin1_titles(tmp_path):
    folder = write_movielens(tmp_path / "ml-100k")
    df = read_movielens(folder)
    assert list(df.columns) == ["user", "movie", "rating", "timestamp", "title"]
    assert len(df) == 500
    assert "Misérables, Les (1995)" in set(df["title"])
    assert "Cité des enfants perdus, La (1995)" in set(df["title"])
    assert df["rating"].between(1, 5).all() and df["user"].dtype == np.int64
    # merged on the movie id: every row's title is its movie's title
    titles = read_titles(folder / "u.item").set_index("movie")["title"]
    assert (df["title"] == titles.reindex(df["movie"]).to_numpy()).all()


def test_title_keyed_like_the_seed_duplicate_titles_merge(tmp_path):
    folder = write_movielens(tmp_path / "ml", n_items=40)
    df = read_movielens(folder)
    assert df["movie"].nunique() == 40 and df["title"].nunique() == 39
    dls = collab_dls(df, bs=16, seed=1)
    assert len(dls.classes["title"]) == 39 + 1        # + fastai's #na#
    assert dls.classes["title"][0] == "#na#"


def _err(tmp_path, data=None, item=None, match=""):
    folder = write_movielens(tmp_path / "ml")
    if data is not None:
        (folder / "u.data").write_bytes(data)
    if item is not None:
        (folder / "u.item").write_bytes(item)
    with pytest.raises((ValueError, FileNotFoundError), match=match) as exc:
        read_movielens(folder)
    assert "\n" not in str(exc.value)
    return str(exc.value)


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="folder not found"):
        read_movielens(tmp_path / "nope")


@pytest.mark.parametrize("name", ["u.data", "u.item"])
def test_missing_file(tmp_path, name):
    folder = write_movielens(tmp_path / "ml")
    (folder / name).unlink()
    with pytest.raises(FileNotFoundError, match=rf"{name}: file not found"):
        read_movielens(folder)


@pytest.mark.parametrize("name", ["u.data", "u.item"])
def test_empty_file(tmp_path, name):
    kw = {"data" if name == "u.data" else "item": b""}
    _err(tmp_path, match=rf"{name}: file is empty", **kw)


def test_wrong_number_of_columns(tmp_path):
    msg = _err(tmp_path, data=b"1\t1\t5\t881250949\n2\t3\t4\n",
               match=r"u.data, line 2: expected 4 tab-separated columns .* got 3")
    assert "'2\\t3\\t4'" in msg


def test_comma_separated_file_is_a_column_error(tmp_path):
    _err(tmp_path, data=b"1,1,5,881250949\n", match=r"line 1: expected 4 tab-separated columns")


def test_non_numeric_rating(tmp_path):
    _err(tmp_path, data=b"1\t1\t5\t881250949\n1\t2\tfive\t881250949\n",
         match=r"u.data, line 2, column rating: expected a number, got 'five'")


@pytest.mark.parametrize("col,line", [("user", b"x1\t1\t5\t8"), ("movie", b"1\t1.5\t5\t8"),
                                      ("timestamp", b"1\t1\t5\tyesterday")])
def test_non_numeric_id(tmp_path, col, line):
    _err(tmp_path, data=b"1\t1\t5\t881250949\n" + line + b"\n",
         match=rf"u.data, line 2, column {col}: expected an integer")


def test_non_numeric_movie_id_in_titles(tmp_path):
    _err(tmp_path, item=b"1|Toy Story (1995)|x\nabc|Heat (1995)|x\n",
         match=r"u.item, line 2, column movie id: expected an integer, got 'abc'")


def test_title_file_in_utf8(tmp_path):
    item = "1|Toy Story (1995)|x\n2|Misérables, Les (1995)|x\n".encode()
    _err(tmp_path, item=item, match=r"u.item, line 2: text is UTF-8 encoded .*Misérables.* latin-1")


def test_title_file_in_utf16(tmp_path):
    _err(tmp_path, item="1|Toy Story (1995)|x\n".encode("utf-16"), match=r"u.item: looks UTF-16")


def test_rating_of_unknown_movie(tmp_path):
    _err(tmp_path, data=b"1\t1\t5\t881250949\n1\t999\t4\t881250949\n",
         match=r"u.data, line 2, column movie: id 999 has no title in u.item")


def test_line_numbers_count_blank_lines_and_only_newlines(tmp_path):
    """An editor's line numbers: blank lines count, and a latin-1 0x85 (NEL) or form feed, which
    str.splitlines() treats as line breaks, does not start a new line."""
    _err(tmp_path, data=b"1\t1\t5\t8\n\n\r\n1\t2\t5\t8\x0c\n1\t3\tx\t8\n",
         match=r"u.data, line 5, column rating: expected a number, got 'x'")
    _err(tmp_path, item=b"1|Toy Story (1995)|x\n\n2|Heat\x85 (1995)|x\n",
         match=r"u.item, line 3, column 7: byte 0x85 is a control character in latin-1")


def test_cp1252_byte_in_titles_is_refused_with_line_and_column(tmp_path):
    msg = _err(tmp_path, item=b"1|Toy Story (1995)|x\n2|Schindler\x92s List (1993)|x\n",
               match=r"u.item, line 2, column 12: byte 0x92 is a control character in latin-1")
    assert "\u2019" in msg      # names what the byte means in cp1252 (a right single quote)


@pytest.mark.parametrize("rating", [b"7", b"-1", b"5.6"])
def test_rating_outside_y_range_is_refused_unless_allowed(tmp_path, rating):
    data = b"1\t1\t5\t8\n1\t2\t" + rating + b"\t8\n"
    _err(tmp_path, data=data, match=r"u.data, line 2, column rating: .* outside the models' y_range")
    folder = tmp_path / "ml"
    assert float(rating) in set(read_movielens(folder, allow_out_of_range=True)["rating"])


def test_folder_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match="not a folder"):
        read_movielens(tmp_path / "f")


def test_ratings_reader_alone(tmp_path):
    (tmp_path / "u.data").write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    df = read_ratings(tmp_path / "u.data")
    assert df.values.tolist() == [[196, 242, 3, 881250949], [186, 302, 3, 891717742]]


def test_synthetic_has_movielens_shape_and_truth():
    syn = synthetic_ratings(seed=3)
    r = syn.ratings
    assert len(r) == 100_000 and r["user"].nunique() == 943 and r["movie"].nunique() <= 1682
    assert r["user"].min() == 1 and r["movie"].min() == 1
    assert set(r["rating"].unique()) <= {1, 2, 3, 4, 5}
    assert not r.duplicated(["user", "movie"]).any()
    counts = r["movie"].value_counts()
    assert counts.max() > 20 * counts.median()                 # long-tailed popularity
    assert syn.item_bias.shape == (1683,) and syn.user_factors.shape[0] == 944
    # the truth explains the ratings: item bias correlates with the item's mean rating
    mean_by_item = r.groupby("movie")["rating"].mean()
    corr = np.corrcoef(mean_by_item, syn.item_bias[mean_by_item.index])[0, 1]
    assert corr > 0.5


def test_synthetic_is_seeded():
    a, b, c = synthetic_ratings(50, 60, 1000, seed=1), synthetic_ratings(50, 60, 1000, seed=1), \
        synthetic_ratings(50, 60, 1000, seed=2)
    assert a.ratings.equals(b.ratings) and not a.ratings.equals(c.ratings)


def test_synthetic_dense_corner_and_bad_sizes():
    assert len(synthetic_ratings(5, 4, 20, seed=0).ratings) == 20
    with pytest.raises(ValueError, match="n_ratings=21 exceeds"):
        synthetic_ratings(5, 4, 21)
    with pytest.raises(ValueError, match="n_users must be a positive integer, got 0"):
        synthetic_ratings(0, 4, 2)


def test_tensors_match_the_dataloaders(tmp_path):
    df = read_movielens(write_movielens(tmp_path / "ml"))
    dls = collab_dls(df, bs=16, seed=0)
    t = tensors_from_dls(dls)
    assert t.x_train.dtype == torch.int64 and t.x_train.shape == (400, 2)
    assert t.x_valid.shape == (100, 2) and t.y_valid.dtype == torch.float32
    assert t.n_users == len(dls.classes["user"]) and t.n_items == len(dls.classes["title"])
    # decoding the indices gives back the rows of the DataFrame
    users = [dls.classes["user"][i] for i in t.x_valid[:, 0].tolist()]
    titles = [dls.classes["title"][i] for i in t.x_valid[:, 1].tolist()]
    got = set(zip(users, titles, t.y_valid.tolist()))
    assert got <= set(zip(df["user"], df["title"], df["rating"].astype(float)))


def test_split_is_seeded(tmp_path):
    df = read_movielens(write_movielens(tmp_path / "ml"))
    a, b = tensors_from_dls(collab_dls(df, seed=5)), tensors_from_dls(collab_dls(df, seed=5))
    assert torch.equal(a.x_valid, b.x_valid)


def test_dls_rejects_bad_batch_size(tmp_path):
    df = read_movielens(write_movielens(tmp_path / "ml"))
    with pytest.raises(ValueError, match="bs must be a positive integer, got 0"):
        collab_dls(df, bs=0)


@pytest.mark.parametrize("line, column, got", [
    ("-3\t1\t5\t8", "user", "positive id (MovieLens numbers them from 1), got -3"),
    ("0\t1\t5\t8", "user", "positive id (MovieLens numbers them from 1), got 0"),
    ("1\t-1\t5\t8", "movie", "positive id (MovieLens numbers them from 1), got -1"),
    ("1\t0\t5\t8", "movie", "got 0"),
    ("1_0\t1\t5\t8", "user", "expected an integer, got '1_0'"),         # int() would read 10
    ("\uff11\t1\t5\t8", "user", "expected an integer"),                   # int() would read 1
    ("1\t1\t4_5\t8", "rating", "expected a number, got '4_5'"),          # float() would read 45
    ("1\t1\t5\t99999999999999999999", "timestamp", "expected an integer"),  # beyond int64
])
def test_ids_are_positive_and_numbers_plain_ascii(tmp_path, line, column, got):
    """A negative or zero user or movie id was trained on silently (MovieLens ids start at 1); '1_0'
    and non-ASCII digits were read by int() as other ids. Each is refused with file, line, column."""
    msg = _err(tmp_path, data=f"1\t1\t5\t8\n\n{line}\n".encode(), match="u.data")
    assert "u.data, line 3, column " + column in msg and got in msg, msg


def test_a_movie_id_in_u_item_is_positive(tmp_path):
    msg = _err(tmp_path, item=b"1|Toy Story (1995)|x\n-2|Heat (1995)|x\n", match="u.item")
    assert "u.item, line 2, column movie id: expected a positive id" in msg and "got -2" in msg
