"""`dotbias report`: synthetic pytest-benchmark runs (noisy pairs with a known ratio, several
processes) in, REPORT.md / report.json / PNGs out; bad inputs give one-line errors naming the file
and leave the output folder untouched."""
from __future__ import annotations

import json

import pytest

from dotbias.cli import main
from dotbias.report.summary import default_runs, load_run, summarise
from dotbias.report.write import write_report
from helpers.reports import ML100K
from helpers.reports import bench_entry as _bench
from helpers.reports import pair as _pair
from helpers.reports import write_run as _run
from helpers.synthetic_timing import paired


@pytest.fixture
def good_run(tmp_path):
    benches = _pair("forward", 1.2, 0) + _pair("epoch_lean", 1.0, 1, processes=3, rounds=2)
    for i, n in enumerate((1000, 10_000, 100_000)):
        size = dict(ML100K, name=f"n{n}", n_users=n, n_items=n)
        benches += _pair("forward", 1.1, 10 + i, size=size, axes=["n"])
    return _run(tmp_path / "0001_run.json", benches)


def test_report_writes_markdown_json_and_plots(good_run, tmp_path):
    out = tmp_path / "out"
    text = write_report([good_run], out)
    assert "forward cpu ml100k float32: emb/cp 1.19" in text and "-> cp faster by" in text
    assert "epoch_lean cpu ml100k float32: emb/cp" in text and "only 6 paired rounds" in text
    md = (out / "REPORT.md").read_text()
    assert "## forward" in md and "## epoch_lean" in md and "TestCPU" in md and "Student t" in md
    assert "is partial: no forward_backward, step, epoch_fastai" in md
    report = json.loads((out / "report.json").read_text())
    row = next(r for r in report["rows"] if r["label"] == "forward cpu ml100k float32")
    ratio, times = row["ratios"][0], row["times"]
    assert ratio["low"] <= 1.2 <= ratio["high"] and ratio["faster"] == "cp" and ratio["processes"] == 6
    # the ratio shown is the ratio of the times shown
    assert ratio["value"] == pytest.approx(times["emb"]["seconds"] / times["cp"]["seconds"], rel=1e-12)
    for png in ("bench_forward.png", "bench_epoch_lean.png", "sweep_n.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert not list(out.glob(".*")), "temp files left behind"


def test_aa_check_flags_a_noisy_machine(tmp_path):
    num, den = paired(1.0, seed=5, process_sd=0.0)
    shifted = [[t * 1.05 for t in p] for p in num]         # the "copy" 5% slower: an A/A failure
    for aa, word in ((num, "-> ok"), (shifted, "this machine was too noisy")):
        path = _run(tmp_path / "r.json", [_bench("step", "emb", den), _bench("step", "cp", den, aa=aa)])
        [row] = summarise([load_run(path)]).rows
        assert row.aa is not None and row.aa.numerator == "cp_copy"
        assert word in write_report([path], tmp_path / "out")


def test_several_runs_are_grouped_by_torch_version(good_run, tmp_path):
    other = _run(tmp_path / "0002_run.json", _pair("forward", 0.9, 7), torch="2.9.1")
    summary = write_report([good_run, other], tmp_path / "out")
    assert "[torch 2.9.1, run #2]" in summary and "[torch 2.13.0, run #1]" in summary
    rows = json.loads((tmp_path / "out" / "report.json").read_text())["rows"]
    forward = [r["torch"] for r in rows if r["label"] == "forward cpu ml100k float32"]
    assert forward == ["2.13.0", "2.9.1"]


def test_millions_of_rounds_are_thinned_and_said_so(tmp_path):
    num, den = paired(1.2, seed=2, processes=4, rounds=50_000)
    path = _run(tmp_path / "big.json", [_bench("forward", "emb", num), _bench("forward", "cp", den)])
    [row] = summarise([load_run(path)]).rows
    assert row.thinned == 40 and row.ratios[0].rounds == 5_000
    write_report([path], tmp_path / "out")
    assert "thinned to every k-th round" in (tmp_path / "out" / "REPORT.md").read_text()


@pytest.mark.parametrize("content, expected", [
    ("", "file is empty"),
    ("  \n", "file is empty"),
    ('{"benchmarks": [', "not valid JSON"),
    ("[1, 2]", "not a pytest-benchmark file"),
    ('{"benchmarks": []}', "holds no benchmarks"),
    ('{"benchmarks": [{"name": "t", "stats": {"median": 1}}]}', "has no extra_info.group"),
    ('{"benchmarks": [{"name": "t", "extra_info": {"group": {"operation": "x"}}}]}', "not a benchmark group"),
])
def test_bad_json_gives_one_line_error_naming_the_file(tmp_path, capsys, good_run, content, expected):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=expected) as e:
        write_report([good_run, bad], out)
    assert "\n" not in str(e.value)
    assert not out.exists(), "a failing report must not write anything"
    assert main(["report", str(good_run), str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dotbias: error: ") and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize("servers, says", [([0, 1], "each of its 3 processes"),
                                           ([0, 1, -1], "timing.servers is [0, 1, -1]"),
                                           ("0,1,2", "timing.servers is '0,1,2'")])
def test_a_bad_servers_list_is_one_line_naming_the_file(tmp_path, capsys, servers, says):
    """Caught: a servers list that does not fit the processes read as if it did (every interval
    of the group then counted the wrong layouts) or a traceback."""
    num, den = paired(1.2, seed=0, processes=3, rounds=5)
    entries = [_bench("forward", "emb", num), _bench("forward", "cp", den)]
    entries[1]["extra_info"]["timing"]["servers"] = servers
    path = _run(tmp_path / "servers.json", entries)
    assert main(["report", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "servers.json" in err and says in err, err
    assert not (tmp_path / "out").exists()


def test_the_servers_a_run_saved_make_its_interval(tmp_path):
    """A saved run's servers (process i from server i % 2) reach the report's interval: wider
    than the same rounds read as independent processes when the servers differ."""
    num, den = paired(1.2, seed=1, processes=6, rounds=20, process_sd=0.001)
    num = [[t * (1.03 if i % 2 else 1.0) for t in p] for i, p in enumerate(num)]
    widths = []
    for servers in (None, [i % 2 for i in range(6)]):
        entries = [_bench("forward", "emb", num), _bench("forward", "cp", den)]
        if servers:
            entries[1]["extra_info"]["timing"]["servers"] = servers
        [row] = summarise([load_run(_run(tmp_path / f"s{servers is None}.json", entries))]).rows
        widths.append(row.ratios[0].half_width)
    assert widths[1] > 3 * widths[0], widths


def test_a_zero_time_is_one_line_not_a_zero_division(tmp_path, capsys):
    num, den = paired(1.2, seed=0, processes=2, rounds=5)
    den[1][3] = 0.0
    path = _run(tmp_path / "zero.json", [_bench("forward", "emb", num), _bench("forward", "cp", den)])
    assert main(["report", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "zero.json" in err and "time of 0.0 s" in err


def test_missing_file(tmp_path, capsys):
    missing = tmp_path / "nope.json"
    with pytest.raises(FileNotFoundError, match="file not found"):
        load_run(missing)
    assert main(["report", str(missing), "--out", str(tmp_path / "out")]) == 2
    assert str(missing) in capsys.readouterr().err


def test_default_runs_picks_the_newest_per_machine(tmp_path, good_run):
    assert default_runs(tmp_path / "none") == []
    for machine, names in (("Linux-A", ["0001_x.json", "0002_y.json"]), ("Linux-B", ["0001_z.json"])):
        (tmp_path / "store" / machine).mkdir(parents=True)
        for name in names:
            (tmp_path / "store" / machine / name).write_bytes(good_run.read_bytes())
    assert [p.name for p in default_runs(tmp_path / "store")] == ["0002_y.json", "0001_z.json"]


def test_floors_leave_out_compiled_kernels_and_say_why(tmp_path):
    """A compiled variant has no floor (its kernels are not aten ops: counting ops counted the
    eager ops they replace, 154% of such a 'floor' for a compiled step); the section says so.
    Caught: a compiled row shown with a floor above its own time, or left out without a word."""
    entries = _pair("step", 0.5, seed=3)
    floor = {"ops": 80, "bytes": 14_000_000, "op_seconds": 1e-6, "bytes_per_second": 4e10}
    entries[1]["extra_info"]["floor"] = floor
    entries[0]["extra_info"]["compiled"] = True
    entries[0]["extra_info"]["variant"] = "emb_compiled"
    text = (write_report([_run(tmp_path / "run.json", entries)], tmp_path / "out") and
            (tmp_path / "out" / "REPORT.md").read_text())
    section = text[text.index("## Floors"):]
    assert "No floor for emb_compiled: compiled kernels are not aten ops" in section
    assert "| step cpu ml100k float32 | cp |" in section and "| emb_compiled |" not in section


def test_the_fastest_named_is_the_fastest_that_kept_the_contract(tmp_path):
    """Caught: a faster variant that FAILED the contract named as the answer; a run that held
    nothing given an answer anyway. Ratios 0.5 (failed), 0.8 (kept), 0.9 (kept) to the baseline."""
    entries = []
    for name, ratio, passed in [("fast_wrong", 0.5, False), ("fast_right", 0.8, True),
                                ("slower_right", 0.9, True)]:
        num, den = paired(ratio, seed=1, processes=6, rounds=40)      # one seed: the same cp rounds
        entry = _bench("step", name, num)
        entry["extra_info"]["contract"] = {"passed": passed, "what": "8 one-cycle steps",
                                           "usage": 0.1 if passed else 3.0,
                                           "message": "" if passed else f"{name}: user_factors off"}
        entries.append(entry)
    entries.append(_bench("step", "cp", den))
    text = (write_report([_run(tmp_path / "run.json", entries)], tmp_path / "out") and
            (tmp_path / "out" / "REPORT.md").read_text())
    section = text[text.index("## Fastest that is still the same"):text.index("## step")]
    [row] = [ln for ln in section.splitlines() if ln.startswith("| step ")]
    assert "| fast_right |" in row and "passed: 8 one-cycle steps" in row, row
    assert "| fast_wrong | " in text and "FAILED: fast_wrong: user_factors off" in text
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["rows"][0]["times"]["fast_wrong"]["contract"]["passed"] is False
    plain = write_report([_run(tmp_path / "plain.json", _pair("step", 0.8, seed=2))], tmp_path / "o2")
    assert plain and "## Fastest" not in (tmp_path / "o2" / "REPORT.md").read_text()
