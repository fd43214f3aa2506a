"""The format of saved benchmark runs: `pytest bench` marks every benchmark with the current format,
a run of an older format is read through the one upgrade path (`report.summary.upgrade`), and a
newer or unknown format is refused in one line naming the file and the format."""
from __future__ import annotations

import json

import pytest

from dotbias.cli import main
from dotbias.report import summary
from dotbias.report.summary import FORMAT, load_run, summarise
from helpers.mlfiles import write_bench_run
from helpers.reports import FakeBenchmark, time_op_info  # noqa: F401
from helpers.synthetic_timing import paired


def with_format(src, dst, fmt="absent"):
    """A copy of the run `src` whose benchmarks carry format `fmt` ("absent": no key, format 1)."""
    data = json.loads(src.read_text())
    for b in data["benchmarks"]:
        b["extra_info"].pop("format", None)
        if fmt != "absent":
            b["extra_info"]["format"] = fmt
    dst.write_text(json.dumps(data))
    return dst


def intervals(path) -> list[tuple]:
    return [(r.group, x.numerator, x.value, x.low, x.high, x.se)
            for r in summarise([load_run(path)]).rows for x in r.ratios]


def test_the_current_format_round_trips_from_the_plugin_to_the_report(tmp_path, registry):
    variants = list(registry.variants)[:2]
    rounds = dict(zip(variants, paired(1.1, seed=3, processes=4, rounds=30)))
    benches = []
    for v in variants:
        info = time_op_info(v, registry)
        assert info["format"] == FORMAT, v
        info["timing"] = {"seconds": rounds[v], "iterations": [10] * 4}
        benches.append({"name": f"test_forward[{v}]", "extra_info": info, "stats": {"median": 1e-4}})
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"benchmarks": benches}))
    run = load_run(path)
    read = [(b.variant, b.baseline, b.compiled, b.group.as_dict(), b.rounds) for b in run.benchmarks]
    assert read == [(i["variant"], i["baseline"], i["compiled"], i["group"],
                     tuple(map(tuple, i["timing"]["seconds"]))) for i in (b["extra_info"] for b in benches)]
    [row] = summarise([run]).rows
    assert len(row.ratios) == 1 and row.ratios[0].rounds == 4 * 30


def test_an_older_run_goes_through_the_upgrade_path_and_reads_the_same(tmp_path, monkeypatch):
    current = with_format(write_bench_run(tmp_path / "src.json"), tmp_path / "current.json", FORMAT)
    old = with_format(current, tmp_path / "old.json")                # no "format": format 1
    seen = []
    upgrade_1 = summary.UPGRADES[1]
    monkeypatch.setitem(summary.UPGRADES, 1, lambda info: seen.append(info["variant"]) or upgrade_1(info))
    run = load_run(old)
    assert seen == [b.variant for b in run.benchmarks] and len(seen) >= 2
    assert all(b.baseline == "cp" for b in run.benchmarks)          # what format 1 was judged against
    seen.clear()
    load_run(current)
    assert seen == []                                                  # current: no upgrade
    assert intervals(old) == intervals(current) and intervals(current)


@pytest.mark.parametrize("fmt, says", [(FORMAT + 1, f"newer than this dotbias reads (1 to {FORMAT})"),
                                       (99, "upgrade dotbias"), (0, "unknown"), ("2", "unknown"),
                                       (2.5, "unknown"), (None, "unknown"), (True, "unknown")])
def test_a_newer_or_unknown_format_is_refused_in_one_line(tmp_path, capsys, fmt, says):
    path = with_format(write_bench_run(tmp_path / "src.json"), tmp_path / "run.json", fmt)
    out = tmp_path / "out"
    assert main(["report", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("dotbias: error: "), err
    assert str(path) in err and f"format {fmt!r}" in err and says in err, err
    assert not out.exists()
