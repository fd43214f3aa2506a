"""Bad input, as a table: every case over `run`, `report`, `check` and `ablations` must exit 2 with
exactly one stderr line that names the file or option, no traceback, and leave every folder it
could touch byte-for-byte unchanged (checksummed before and after). In-process (`cli.main`):
validation happens before training, so the whole table runs in seconds."""
from __future__ import annotations

import errno
import fcntl
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dotbias import cli
from dotbias.io.resultset import ResultSet
from helpers.children import CONSOLE_ARGV
from helpers.mlfiles import tree_digest, write_bench_run, write_movielens

OK_ITEM = b"1|Toy Story (1995)|x\n2|Heat (1995)|x\n3|Casino (1995)|x\n"


@dataclass
class Case:
    id: str
    argv: str                             # split on spaces; {ml} {out} {tmp} {file} {bench} {sys} filled in
    fragments: tuple[str, ...]            # each must be in the one error line
    data: bytes | None = None             # replaces {ml}/u.data
    item: bytes | None = None             # replaces {ml}/u.item
    setup: str | None = None              # name of a function below: (tmp, monkeypatch) -> None
    marks: list = field(default_factory=list)


def ratings(*rows: str) -> bytes:
    return "".join(r + "\n" for r in rows).encode()


RUN = "run --data {ml} --out {out} --epochs 1 --factors 2 --bs 8"
CASES = [
    # -- run: options, each named with the value it got ---------------------------------------------
    Case("seed_negative", "run --seed -1 --out {out}", ("--seed: expected a non-negative integer, got -1",)),
    Case("seed_word", "run --seed abc --out {out}", ("--seed", "'abc'")),
    Case("seed_too_big", "run --seed 4294967296 --out {out}", ("--seed", "4294967296")),
    Case("seed_underscore", "run --seed 1_0 --out {out}", ("--seed: expected a non-negative integer, got '1_0'",)),
    Case("seed_other_digits", "run --seed \uff15 --out {out}", ("--seed", "'\uff15'")),
    Case("device_other_digits", "run --device cuda:\u0663 --out {out}", ("--device", "'cuda:\u0663'")),
    Case("factors_zero", "run --factors 0 --out {out}", ("--factors: expected a positive integer, got 0",)),
    Case("factors_negative", "run --factors -3 --out {out}", ("--factors", "-3")),
    Case("factors_huge", "run --factors 100000 --out {out}", ("--factors", "at most 4,096", "100000")),
    Case("factors_float", "run --factors 1.5 --out {out}", ("--factors", "'1.5'")),
    Case("bs_zero", "run --bs 0 --out {out}", ("--bs: expected a positive integer, got 0",)),
    Case("bs_negative", "run --bs -4 --out {out}", ("--bs", "-4")),
    Case("bs_word", "run --bs x --out {out}", ("--bs", "'x'")),
    Case("epochs_zero", "run --epochs 0 --out {out}", ("--epochs: expected a positive integer, got 0",)),
    Case("epochs_huge", "run --epochs 1001 --out {out}", ("--epochs", "1001")),
    Case("epochs_word", "run --epochs two --out {out}", ("--epochs", "'two'")),
    # Python 3.11's argparse drops a value of '--' (`--epochs=--` parsed as epochs=[] and ran)
    Case("epochs_dashes", "run --epochs=-- --out {out}", ("--epochs: expected a positive integer, got '--'",)),
    Case("seed_dashes", "run --seed=-- --out {out}", ("--seed", "'--'")),
    Case("threads_zero", "run --threads 0 --out {out}", ("--threads: expected a positive integer, got 0",)),
    Case("threads_huge", "run --threads 1000 --out {out}", ("--threads", "1000")),
    Case("threads_word", "run --threads all --out {out}", ("--threads", "'all'")),
    Case("device_tpu", "run --device tpu --out {out}", ("--device: expected cpu, cuda or cuda:N, got 'tpu'",)),
    Case("device_cuda_x", "run --device cuda:x --out {out}", ("--device", "'cuda:x'")),
    Case("variants_twice", "run --variants emb,emb --out {out}", ("--variants", "'emb' given twice",)),
    Case("variants_one", "run --variants emb --out {out}", ("--variants", "at least two")),
    Case("variants_empty_name", "run --variants emb,,cp --out {out}", ("--variants", "empty variant name")),
    Case("variants_unknown", RUN + " --variants emb,nope", ("--variants", "unknown variant 'nope'", "emb, cp")),
    Case("unknown_option", "run --foo --out {out}", ("unrecognized arguments: --foo",)),
    Case("missing_value", "run --out {out} --bs", ("--bs: expected one argument",)),
    Case("extra_positional", "run extra --out {out}", ("unrecognized arguments: extra",)),
    Case("no_command", "", ("required: command",)),
    Case("unknown_command", "train", ("invalid choice: 'train'",)),
    # -- run: the output folder, checked before anything else runs ----------------------------------
    Case("out_is_file", "run --out {file}", ("--out", "is a file, not a folder")),
    Case("out_under_file", "run --out {file}/sub", ("--out", "is a file, not a folder")),
    Case("out_not_writable", "run --out {sys}", ("--out", "cannot write in /sys")),
    Case("out_empty", "run --out ", ("--out: expected a folder",)),
    Case("out_set_is_file", "run --data {ml} --out {tmp}/blocked", ("--out", "run exists and is not a result set"),
         setup="blocked_set"),
    Case("out_broken_symlink", "run --out {tmp}/dangling/x", ("--out", "broken symlink"), setup="dangling"),
    Case("out_busy", RUN, ("another dotbias process is writing", "run"), setup="hold_lock"),
    Case("out_disk_full", RUN, ("No space left on device",), setup="disk_full"),
    # -- run: the data folder and its files ---------------------------------------------------------
    Case("data_missing", "run --data {tmp}/nowhere --out {out}", ("nowhere: folder not found",)),
    Case("data_is_file", "run --data {file} --out {out}", ("afile: not a folder",)),
    Case("data_unreadable_folder", RUN, ("ml: Permission denied",), setup="unreadable_folder"),
    Case("udata_missing", RUN, ("u.data: file not found",), setup="no_udata"),
    Case("uitem_missing", RUN, ("u.item: file not found",), setup="no_uitem"),
    Case("udata_unreadable", RUN, ("u.data: Permission denied",), setup="unreadable_udata"),
    Case("udata_is_folder", RUN, ("u.data: not a file",), setup="udata_folder"),
    Case("udata_empty", RUN, ("u.data: file is empty",), data=b""),
    Case("udata_blank", RUN, ("u.data: file is empty",), data=b"\n \n\t\n"),
    Case("uitem_empty", RUN, ("u.item: file is empty",), item=b""),
    Case("udata_3_columns", RUN, ("u.data, line 2: expected 4 tab-separated columns", "got 3"),
         data=ratings("1\t1\t5\t8", "1\t2\t4")),
    Case("udata_5_columns", RUN, ("u.data, line 1: expected 4", "got 5"), data=ratings("1\t1\t5\t8\tx")),
    Case("udata_commas", RUN, ("u.data, line 1: expected 4 tab-separated", "got 1"), data=ratings("1,1,5,8")),
    Case("rating_word", RUN, ("u.data, line 1, column rating: expected a number, got 'five'",),
         data=ratings("1\t1\tfive\t8")),
    Case("rating_nan", RUN, ("u.data, line 1, column rating", "'nan'"), data=ratings("1\t1\tnan\t8")),
    Case("rating_inf", RUN, ("u.data, line 1, column rating", "'inf'"), data=ratings("1\t1\tinf\t8")),
    Case("user_word", RUN, ("u.data, line 1, column user: expected an integer, got 'u1'",),
         data=ratings("u1\t1\t5\t8")),
    Case("user_negative", RUN, ("u.data, line 2, column user: expected a positive id", "got -4"),
         data=ratings("1\t1\t5\t8", "-4\t1\t5\t8")),
    Case("movie_zero", RUN, ("u.data, line 1, column movie: expected a positive id", "got 0"),
         data=ratings("1\t0\t5\t8")),
    Case("movie_float", RUN, ("u.data, line 1, column movie", "'1.5'"), data=ratings("1\t1.5\t5\t8")),
    Case("timestamp_word", RUN, ("u.data, line 1, column timestamp", "'noon'"), data=ratings("1\t1\t5\tnoon")),
    Case("blank_lines_counted", RUN, ("u.data, line 4, column rating", "'x'"),
         data=b"1\t1\t5\t8\n\n\n1\t2\tx\t8\n"),
    Case("crlf_lines_counted", RUN, ("u.data, line 3, column user", "'y'"),
         data=b"1\t1\t5\t8\r\n1\t2\t4\t8\r\ny\t2\t4\t8\r\n"),
    Case("formfeed_is_not_a_line", RUN, ("u.data, line 2, column rating", "'q'"),
         data=b"1\t1\t5\t8\x0c\n1\t2\tq\t8\n"),
    Case("rating_above_range", RUN, ("u.data, line 2, column rating: 7", "y_range", "--allow-out-of-range"),
         data=ratings("1\t1\t5\t8", "1\t2\t7\t8")),
    Case("rating_below_range", RUN, ("u.data, line 1, column rating: -1", "y_range"), data=ratings("1\t1\t-1\t8")),
    Case("movie_without_title", RUN, ("u.data, line 2, column movie: id 99 has no title in u.item",),
         data=ratings("1\t1\t5\t8", "1\t99\t5\t8")),
    Case("uitem_utf16", RUN, ("u.item: looks UTF-16",), item="1|Toy Story (1995)|x\n".encode("utf-16")),
    Case("uitem_utf8_bom", RUN, ("u.item: starts with a UTF-8 byte-order mark",), item=b"\xef\xbb\xbf" + OK_ITEM),
    Case("uitem_utf8", RUN, ("u.item, line 2: text is UTF-8 encoded",),
         item="1|Toy Story (1995)|x\n2|Amélie (2001)|x\n".encode()),
    Case("uitem_cp1252_quote", RUN, ("u.item, line 2, column 12: byte 0x92", "latin-1"),
         item=b"1|Toy Story (1995)|x\n2|Schindler\x92s List (1993)|x\n"),
    Case("uitem_cp1252_dash", RUN, ("u.item, line 4, column 9: byte 0x96",),
         item=b"1|Toy Story (1995)|x\n\n2|Heat (1995)|x\n3|Casino\x96 (1995)|x\n"),
    Case("uitem_control_char", RUN, ("u.item, line 1, column 3: byte 0x01",), item=b"1|\x01Toy (1995)|x\n"),
    Case("uitem_duplicate_id", RUN, ("u.item: movie id 1 appears twice",), item=OK_ITEM + b"1|Again (1995)|x\n"),
    Case("uitem_no_pipes", RUN, ("u.item, line 2: expected pipe-separated columns",),
         item=b"1|Toy Story (1995)|x\nHeat (1995)\n"),
    Case("uitem_word_id", RUN, ("u.item, line 1, column movie id: expected an integer, got 'one'",),
         item=b"one|Toy Story (1995)|x\n"),
    # -- run: data that cannot train --------------------------------------------------------------------
    Case("one_rating", RUN, ("u.data: 1 rating(s) leave the validation split empty",), data=ratings("1\t1\t5\t8")),
    Case("two_ratings", RUN, ("u.data: 2 rating(s)", "validation split empty"),
         data=ratings("1\t1\t5\t8", "1\t2\t4\t8")),
    Case("fewer_rows_than_a_batch", RUN.replace("--bs 8", "--bs 64"), ("--bs 64: more than the 32 training rows", "40 ratings"),
         data=ratings(*[f"{u}\t{m}\t4\t8" for u in range(1, 21) for m in (1, 2)])),
    Case("bs_above_train_rows", "run --data {ml} --out {out} --bs 161", ("--bs 161: more than the 160 training rows",)),
    Case("bs_above_synthetic_rows", "run --out {out} --bs 80001", ("--bs 80001", "80000 training rows",
                                                                   "synthetic data")),
    Case("memory", RUN.replace("--factors 2", "--factors 4096"), ("--factors 4096: training needs about",
                                                                  "GiB available"), setup="little_memory"),
    Case("cuda_missing", RUN + " --device cuda", ("--device cuda: torch sees no CUDA device",),
         setup="no_cuda"),
    # -- ablations and check ----------------------------------------------------------------------------
    Case("ablations_out_file", "ablations --quick --out {file}", ("--out", "is a file, not a folder")),
    Case("ablations_out_sys", "ablations --quick --out {sys}", ("--out", "cannot write in /sys")),
    Case("ablations_set_is_file", "ablations --quick --out {tmp}/blocked", ("ablations exists and is not a result",),
         setup="blocked_set"),
    Case("ablations_threads", "ablations --threads 0", ("--threads: expected a positive integer, got 0",)),
    Case("ablations_unknown", "ablations --fast", ("unrecognized arguments: --fast",)),
    Case("ablations_busy", "ablations --quick --out {out}", ("another dotbias process is writing",),
         setup="hold_lock"),
    Case("check_out_file", "check --out {file}", ("--out", "is a file, not a folder")),
    Case("check_out_sys", "check --out {sys}", ("--out", "cannot write in /sys")),
    Case("check_set_is_file", "check --out {tmp}/blocked", ("check exists and is not a result set",),
         setup="blocked_set"),
    Case("check_threads", "check --threads -1", ("--threads", "-1")),
    Case("check_extra", "check now", ("unrecognized arguments: now",)),
    # -- report --------------------------------------------------------------------------------------------
    Case("report_missing", "report {tmp}/none.json --out {out}", ("none.json: file not found",)),
    Case("report_empty", "report {tmp}/empty.json --out {out}", ("empty.json: file is empty",), setup="bad_json"),
    Case("report_not_json", "report {tmp}/broken.json --out {out}", ("broken.json: not valid JSON", "line 1"),
         setup="bad_json"),
    Case("report_list", "report {tmp}/list.json --out {out}", ("list.json: not a pytest-benchmark file",),
         setup="bad_json"),
    Case("report_no_benchmarks", "report {tmp}/nobench.json --out {out}", ("nobench.json: holds no benchmarks",),
         setup="bad_json"),
    Case("report_no_stats", "report {tmp}/nostats.json --out {out}", ("nostats.json: benchmark #0",),
         setup="bad_json"),
    Case("report_not_utf8", "report {tmp}/latin.json --out {out}", ("latin.json: not UTF-8",), setup="bad_json"),
    Case("report_folder", "report {tmp} --out {out}", ("is a folder",)),
    Case("report_zero_median", "report {tmp}/zero.json --out {out}", ("zero.json", "time of 0"),
         setup="bad_json"),
    Case("report_storage_empty", "report --storage {tmp}/emptystore --out {out}", ("emptystore: no saved",),
         setup="empty_store"),
    Case("report_storage_missing", "report --storage {tmp}/nostore --out {out}", ("nostore: no saved",)),
    Case("report_out_file", "report {bench} --out {file}", ("--out", "is a file, not a folder")),
    Case("report_out_sys", "report {bench} --out {sys}", ("--out", "cannot write in /sys")),
    Case("report_set_is_file", "report {bench} --out {tmp}/blocked", ("report exists and is not a result set",),
         setup="blocked_set"),
    Case("report_busy", "report {bench} --out {out}", ("another dotbias process is writing", "report"),
         setup="hold_lock"),
    Case("report_versions_missing", "report --versions {tmp}/notox --out {out}", ("notox: folder not found",)),
    Case("report_versions_empty", "report --versions {tmp}/emptystore --out {out}", ("no torch-version runs",),
         setup="empty_store"),
    Case("report_versions_corrupt", "report --versions {tmp}/tox --out {out}", ("equivalence.json: not valid",),
         setup="corrupt_tox"),
    Case("report_unknown_option", "report --pdf", ("unrecognized arguments: --pdf",)),
]


# -- setups ----------------------------------------------------------------------------------------
def blocked_set(tmp, mp):
    for name in ("run", "ablations", "check", "report"):
        (tmp / "blocked").mkdir(exist_ok=True)
        (tmp / "blocked" / name).write_text("a file where the result set goes")


def dangling(tmp, mp):
    (tmp / "dangling").symlink_to(tmp / "gone")


_held: list[int] = []


def hold_lock(tmp, mp):
    for name in ("run", "ablations", "report", "check"):
        fd = os.open(tmp / "out" / f".{name}.lock", os.O_RDWR)   # another writer holds every set
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _held.append(fd)


def disk_full(tmp, mp):
    def full(self, fname, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.staging / fname))
    mp.setattr(ResultSet, "write_bytes", full)


def unreadable_folder(tmp, mp):
    real = os.access
    mp.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == tmp / "ml" else real(p, mode, **kw))


def unreadable_udata(tmp, mp):
    real = Path.read_bytes

    def read_bytes(self):
        if self.name == "u.data":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real(self)
    mp.setattr(Path, "read_bytes", read_bytes)


def no_udata(tmp, mp):
    (tmp / "ml" / "u.data").unlink()


def no_uitem(tmp, mp):
    (tmp / "ml" / "u.item").unlink()


def udata_folder(tmp, mp):
    (tmp / "ml" / "u.data").unlink()
    (tmp / "ml" / "u.data").mkdir()


def little_memory(tmp, mp):
    from dotbias.data import preflight
    mp.setattr(preflight, "available_memory", lambda: 2**20)


def no_cuda(tmp, mp):
    import torch
    mp.setattr(torch.cuda, "is_available", lambda: False)


def bad_json(tmp, mp):
    write_bench_run(tmp / "zero.json", median=0.0)
    (tmp / "empty.json").write_text("")
    (tmp / "broken.json").write_text("{not json")
    (tmp / "list.json").write_text("[1, 2]")
    (tmp / "nobench.json").write_text('{"benchmarks": []}')
    (tmp / "nostats.json").write_text('{"benchmarks": [{"name": "x"}]}')
    (tmp / "latin.json").write_bytes(b'{"benchmarks": "caf\xe9"}')


def empty_store(tmp, mp):
    (tmp / "emptystore").mkdir()


def corrupt_tox(tmp, mp):
    (tmp / "tox" / "torch213").mkdir(parents=True)
    (tmp / "tox" / "torch213" / "equivalence.json").write_text("{oops")


SETUPS = {f.__name__: f for f in (blocked_set, dangling, hold_lock, disk_full, unreadable_folder,
                                  unreadable_udata, no_udata, no_uitem, udata_folder, little_memory,
                                  no_cuda, bad_json, empty_store, corrupt_tox)}


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """What every case starts from, made once and copied: a MovieLens folder, a previous result of
    every command (result sets are relative symlinks: they copy as they are), a file where a
    folder is expected and a saved benchmark run."""
    tmp = tmp_path_factory.mktemp("badinput-template")
    write_movielens(tmp / "ml", n_users=20, n_items=20, n_ratings=200, duplicate_title=False)
    for name in ("run", "ablations", "check", "report"):
        with ResultSet(tmp / "out", name) as rs:
            rs.write_text(f"{name}.md", f"previous {name}")
    (tmp / "afile").write_text("not a folder")
    write_bench_run(tmp / "bench.json")
    return tmp


def prepare(tmp: Path, case: Case, mp, template: Path) -> list[str]:
    shutil.copytree(template, tmp, symlinks=True, dirs_exist_ok=True)
    ml = tmp / "ml"
    if case.data is not None:
        (ml / "u.data").write_bytes(case.data)
    if case.item is not None:
        (ml / "u.item").write_bytes(case.item)
    if case.setup:
        SETUPS[case.setup](tmp, mp)
    fill = {"ml": str(ml), "out": str(tmp / "out"), "tmp": str(tmp), "file": str(tmp / "afile"),
            "bench": str(tmp / "bench.json"), "sys": "/sys/dotbias-test"}
    argv = case.argv.format(**fill).split(" ")
    return [a for a in argv if a] + ([""] if case.argv.endswith("--out ") else [])


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(case, tmp_path, monkeypatch, capsys,
                                                          template):
    monkeypatch.chdir(tmp_path)          # a default --out (results/local) would land in tmp_path
    argv = prepare(tmp_path, case, monkeypatch, template)
    before = tree_digest(tmp_path)
    try:
        code = cli.main(argv)
    finally:
        while _held:
            os.close(_held.pop())
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, (code, err)
    assert len(lines) == 1 and lines[0].startswith("dotbias: error: "), err
    assert "Traceback" not in err + out
    for fragment in case.fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert tree_digest(tmp_path) == before


def test_the_table_is_large_and_names_are_unique():
    assert len(CASES) >= 80 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("argv", CONSOLE_ARGV, ids=["run", "report"])
def test_the_console_script_prints_the_same_one_line(console_children, argv):
    """The real process (helpers/children.py, started early on another core): exit 2, one line, no
    traceback, no --out folder made."""
    folder, procs = console_children
    proc = procs[argv]
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("dotbias: error: "), proc.stderr
    assert not (folder / f"o{CONSOLE_ARGV.index(argv)}").exists()
