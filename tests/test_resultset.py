"""ResultSet: a command's files appear together or not at all, old files do not linger, leftovers of
crashed runs are removed, a second writer is refused, and JSON is strict."""
from __future__ import annotations

import json
import os

import pytest

from dotbias.io.files import check_writable, dumps_strict, read_json
from dotbias.io.resultset import ResultSet, ResultSetBusy
from helpers.mlfiles import tree_digest


def write_set(out, name="run", **files):
    with ResultSet(out, name) as rs:
        for fname, text in files.items():
            rs.write_text(fname.replace("_", "."), text)
    return rs


def visible(out):
    return sorted(p.name for p in out.iterdir() if not p.name.startswith("."))


def test_a_set_appears_whole_and_replaces_the_previous_one(tmp_path):
    out = tmp_path / "out"
    first = write_set(out, run_md="one", run_json="{}", sweep_png="old")
    assert sorted(os.listdir(out / "run")) == ["manifest.json", "run.json", "run.md", "sweep.png"]
    second = write_set(out, run_md="two", run_json="{}")
    assert sorted(os.listdir(out / "run")) == ["manifest.json", "run.json", "run.md"]  # sweep.png went
    assert (out / "run" / "run.md").read_text() == "two"
    assert read_json(out / "run" / "manifest.json", "manifest")["run_id"] == second.run_id != first.run_id
    assert visible(out) == ["run"]
    assert sorted(os.listdir(out)) == sorted(["run", ".run.lock", f".run.{second.run_id}"])


def test_nothing_is_visible_until_the_block_ends(tmp_path):
    out = tmp_path / "out"
    write_set(out, run_md="old")
    with ResultSet(out, "run") as rs:
        rs.write_text("run.md", "new")
        assert (out / "run" / "run.md").read_text() == "old"
    assert (out / "run" / "run.md").read_text() == "new"


def test_an_exception_leaves_the_folder_as_it_was(tmp_path):
    out = tmp_path / "out"
    write_set(out, run_md="old")
    before = tree_digest(out)
    with pytest.raises(KeyboardInterrupt), ResultSet(out, "run") as rs:
        rs.write_text("run.md", "half")
        raise KeyboardInterrupt
    assert tree_digest(out) == before


def test_a_failed_first_set_creates_nothing(tmp_path):
    out = tmp_path / "a" / "b"
    with pytest.raises(ValueError), ResultSet(out, "run"):
        raise ValueError("bad input")
    assert not (tmp_path / "a").exists()


def test_leftovers_of_a_killed_run_are_removed_by_the_next(tmp_path):
    out = tmp_path / "out"
    write_set(out, run_md="old")
    (out / ".run.20200101T000000Z-1-abc.tmp").mkdir()          # killed while writing
    (out / ".run.20200101T000000Z-1-abc.tmp" / "run.md").write_text("half")
    (out / ".run.20200101T000000Z-2-def").mkdir()              # killed after the swap, before cleanup
    (out / ".run.link-20200101T000000Z-3-ghi").symlink_to("nowhere")
    rs = write_set(out, run_md="new")
    assert sorted(os.listdir(out)) == sorted(["run", ".run.lock", f".run.{rs.run_id}"])


def test_a_second_writer_is_refused_while_the_first_holds_the_set(tmp_path):
    out = tmp_path / "out"
    with ResultSet(out, "run") as rs:
        rs.write_text("run.md", "first")
        with pytest.raises(ResultSetBusy, match=r"out/run: another dotbias process is writing"):
            with ResultSet(out, "run"):
                pass
    assert (out / "run" / "run.md").read_text() == "first"
    write_set(out, run_md="after")                              # the lock was released


def test_two_sets_in_one_folder_are_independent(tmp_path):
    out = tmp_path / "out"
    write_set(out, "run", run_md="r")
    write_set(out, "report", REPORT_md="R")
    assert visible(out) == ["report", "run"]
    assert (out / "run" / "run.md").read_text() == "r"


def test_a_plain_folder_in_the_way_is_replaced(tmp_path):
    out = tmp_path / "out"
    (out / "run").mkdir(parents=True)
    (out / "run" / "stale.md").write_text("copied in")
    write_set(out, run_md="new")
    assert sorted(os.listdir(out / "run")) == ["manifest.json", "run.md"]
    write_set(out, run_md="newer")                              # the retired folder is cleaned up
    assert visible(out) == ["run"] and len([p for p in os.listdir(out) if p.startswith(".run.")]) == 2


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "run.old"])
def test_set_and_file_names_must_be_plain(tmp_path, name):
    with pytest.raises(ValueError):
        ResultSet(tmp_path, name)
    with pytest.raises(ValueError), ResultSet(tmp_path, "run") as rs:
        rs.write_text(name if name != "run.old" else "manifest.json", "x")


def test_strict_json_writes_null_with_a_reason():
    text = dumps_strict({"loss": float("nan"), "xs": [1.0, float("-inf")], "ok": 2})
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))
    assert data["loss"] is None and data["xs"] == [1.0, None] and data["ok"] == 2
    assert set(data["null_reasons"]) == {"/loss", "/xs/1"} and "nan" in data["null_reasons"]["/loss"]


def test_check_writable_names_the_problem_and_leaves_nothing(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"--out .*file/sub: .*file is a file, not a folder"):
        check_writable(tmp_path / "file" / "sub")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "run").write_text("x")
    with pytest.raises(ValueError, match=r"run exists and is not a result set folder"):
        check_writable(tmp_path / "out", "run")
    with pytest.raises(ValueError, match=r"cannot write in /sys"):
        check_writable("/sys/dotbias-test")
    before = tree_digest(tmp_path)
    check_writable(tmp_path / "new" / "deeper", "run")
    assert tree_digest(tmp_path) == before
