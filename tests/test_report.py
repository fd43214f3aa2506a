"""`dotbias report`: small synthetic pytest-benchmark runs in, REPORT.md / report.json / PNGs out;
bad inputs give one-line errors naming the file and leave the output folder untouched."""
from __future__ import annotations

import json

import numpy as np
import pytest

from dotbias.cli import main
from dotbias.report import default_runs, load_run, ratio_ci, write_report


def _bench(op, variant, seconds, *, interleaved=None, size="ml100k", n=944, axes=(), torch="2.13.0"):
    s = np.asarray(seconds, float)
    q1, med, q3 = np.quantile(s, [0.25, 0.5, 0.75])
    info = {"operation": op, "variant": variant, "device": "cpu", "dtype": "float32",
            "size": {"name": size, "n_users": n, "n_items": n, "n_factors": 50, "bs": 64},
            "sweep_axes": list(axes), "torch": torch, "torch_threads": 1}
    if interleaved is not None:
        info["interleaved"] = {"seconds": list(interleaved), "iterations": 10, "rounds": len(interleaved)}
    return {"group": f"{op} | cpu | {size} | float32", "name": f"test_{op}[cpu-{size}-float32-{variant}]",
            "fullname": f"bench/test_{op}.py::test_{op}[cpu-{size}-float32-{variant}]",
            "params": {"variant": variant}, "param": f"cpu-{size}-float32-{variant}", "extra_info": info,
            "stats": {"min": float(s.min()), "max": float(s.max()), "mean": float(s.mean()),
                      "stddev": float(s.std(ddof=1)), "rounds": len(s), "median": float(med),
                      "iqr": float(q3 - q1), "q1": float(q1), "q3": float(q3), "iterations": 1,
                      "data": s.tolist()}}


def _run(path, benchmarks, torch="2.13.0"):
    data = {"machine_info": {"node": "test", "cpu": {"brand_raw": "TestCPU"}, "python_version": "3.11",
                             "dotbias": {"torch": torch, "torch_threads": 1, "cpu_count": 2}},
            "commit_info": {"id": "abc123", "dirty": False}, "datetime": "2026-01-01T00:00:00",
            "version": "5.3.1", "benchmarks": benchmarks}
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def good_run(tmp_path):
    rng = np.random.default_rng(0)
    cp = 1e-4 * (1 + 0.05 * rng.random(200))
    emb = cp * 1.2
    benches = [_bench("forward", "emb", emb, interleaved=emb), _bench("forward", "cp", cp, interleaved=cp),
               _bench("epoch_lean", "emb", [2.0, 2.1, 2.05]), _bench("epoch_lean", "cp", [2.0, 2.02, 2.1])]
    for n, k in ((1000, 1.0), (10_000, 3.0), (100_000, 10.0)):
        benches += [_bench("forward", v, cp * k * f, size=f"n{n}", n=n, axes=["n"])
                    for v, f in (("emb", 1.1), ("cp", 1.0))]
    return _run(tmp_path / "0001_run.json", benches)


def test_report_writes_markdown_json_and_plots(good_run, tmp_path):
    out = tmp_path / "out"
    summary = write_report([good_run], out)
    assert "emb/cp = 1.200" in summary and "paired" in summary
    md = (out / "REPORT.md").read_text()
    assert "## forward" in md and "## epoch_lean" in md and "TestCPU" in md and "emb/cp [95% CI]" in md
    report = json.loads((out / "report.json").read_text())
    row = next(r for r in report["rows"] if r["group"] == "forward | cpu | ml100k | float32")
    ratio = row["ratios"][0]
    assert ratio["low"] <= 1.2 <= ratio["high"] and ratio["faster"] == "cp"
    for png in ("bench_forward.png", "bench_epoch_lean.png", "sweep_n.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert not list(out.glob(".*")), "temp files left behind"


def test_several_runs_are_grouped_by_torch_version(good_run, tmp_path):
    other = _run(tmp_path / "0002_run.json",
                 [_bench("forward", "emb", [2e-4] * 5 + [2.1e-4] * 5, torch="2.9.1"),
                  _bench("forward", "cp", [1e-4] * 5 + [1.1e-4] * 5, torch="2.9.1")], torch="2.9.1")
    summary = write_report([good_run, other], tmp_path / "out")
    assert "torch 2.9.1, run #2" in summary and "torch 2.13.0, run #1" in summary
    rows = json.loads((tmp_path / "out" / "report.json").read_text())["rows"]
    forward = [r["torch"] for r in rows if r["group"] == "forward | cpu | ml100k | float32"]
    assert forward == ["2.13.0", "2.9.1"]


def test_unpaired_and_normal_ratio_methods():
    a, b = _bench("x", "emb", [2.0, 2.1, 1.9, 2.0]), _bench("x", "cp", [1.0, 1.05, 0.95, 1.0])
    r = ratio_ci(a, b)
    assert r.method == "unpaired" and r.low <= 2.0 <= r.high and r.faster == "cp"
    for x in (a, b):
        del x["stats"]["data"]
    r = ratio_ci(a, b)
    assert r.method == "normal" and r.value == pytest.approx(2.0) and r.low < 2.0 < r.high


@pytest.mark.parametrize("content, expected", [
    ("", "file is empty"),
    ("  \n", "file is empty"),
    ('{"benchmarks": [', "not valid JSON"),
    ("[1, 2]", "not a pytest-benchmark file"),
    ('{"benchmarks": []}', "holds no benchmarks"),
    ('{"benchmarks": [{"name": "t", "stats": {}}]}', "not a pytest-benchmark file"),
])
def test_bad_json_gives_one_line_error_naming_the_file(tmp_path, capsys, good_run, content, expected):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=expected) as e:
        write_report([good_run, bad], out)
    assert str(bad) in str(e.value) and "\n" not in str(e.value)
    assert not out.exists(), "a failing report must not write anything"
    assert main(["report", str(good_run), str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dotbias: error: ") and str(bad) in err and err.count("\n") == 1
    assert not out.exists()


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
