"""One baseline, end to end: the baseline a run was judged against is recorded in the saved run and
read back from there by the report, the verdict lines, the A/A copy, the saved-run comparison and
`--fail-slower`; an old run without it reads as `cp`; runs with different baselines are never
compared silently; and `--baseline` accepts what CANDIDATE and `--variant` accept on every command."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from dotbias import cli
from dotbias.equivalence import baseline as chosen
from dotbias.models.registry import Registry
from dotbias.pytest_bench.stopped import TABLE_NOTE
from dotbias.report import saved_run
from dotbias.report.saved_run import changes, slower_than
from dotbias.report.summary import FORMAT, load_run, summarise
from dotbias.report.write import write_report
from helpers.inprocess import time_in_process
from helpers.mlfiles import write_bench_run
from helpers.synthetic_timing import paired

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parent.parent
SIZE = {"name": "ml100k", "n_users": 944, "n_items": 1665, "n_factors": 50, "bs": 64}


def _bench(variant: str, processes, base: str, aa=None) -> dict:
    info = {"format": FORMAT, "group": {"operation": "forward", "device": "cpu", "size": SIZE,
                                        "dtype": "float32"},
            "variant": variant, "baseline": base, "compiled": False, "threads": 1, "sweep_axes": [],
            "timing": {"seconds": processes, "iterations": [10] * len(processes)}}
    if aa is not None:
        info["aa"] = {"seconds": aa}
    name = f"test_forward[cpu-ml100k-float32-{variant}]"
    return {"group": "forward cpu ml100k float32", "name": name, "fullname": f"bench/test_forward.py::{name}",
            "extra_info": info, "stats": {"median": 1e-4}}


def _saved(path: Path, base: str, others: dict[str, float], seed: int = 0) -> Path:
    """A saved forward run judged against `base` (with an A/A copy), `others` at their ratios to it."""
    benches = []
    for i, (v, r) in enumerate(others.items()):
        num, den = paired(r, seed=seed + i, processes=4, rounds=30)
        benches.append(_bench(v, num, base))
    copy, den = paired(1.0, seed=seed + 99, processes=4, rounds=30)
    benches.append(_bench(base, den, base, aa=copy))
    path.write_text(json.dumps({"machine_info": {"node": "test"}, "commit_info": {},
                                "datetime": "2026-01-01T00:00:00", "benchmarks": benches}))
    return path


def test_the_report_judges_against_the_baseline_the_run_recorded(tmp_path):
    run = _saved(tmp_path / "run.json", "torch_emb", {"cp": 0.8, "emb": 1.1})
    [row] = summarise([load_run(run)]).rows
    assert row.baseline == "torch_emb"
    assert sorted(f"{x.numerator}/{x.denominator}" for x in row.ratios) == ["cp/torch_emb", "emb/torch_emb"]
    assert row.aa is not None and (row.aa.numerator, row.aa.denominator) == ("torch_emb_copy", "torch_emb")
    text = write_report([run], tmp_path / "out")
    assert "A/A torch_emb_copy/torch_emb" in text and "/cp " not in text, text
    md = (tmp_path / "out" / "REPORT.md").read_text()
    assert "Baseline: torch_emb" in md and "| / torch_emb [95% next run] |" in md, md
    assert "| torch_emb | " in md and "| baseline |" in md and "/ cp [" not in md, md
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["baselines"] == ["torch_emb"] and data["rows"][0]["baseline"] == "torch_emb"


def test_an_old_run_without_a_recorded_baseline_reads_as_cp(tmp_path):
    run = load_run(write_bench_run(tmp_path / "old.json"))        # format 1: no baseline key
    assert {b.baseline for b in run.benchmarks} == {"cp"}
    assert [b.compiled for b in run.benchmarks] == ["_compiled" in b.variant for b in run.benchmarks]
    [row] = summarise([run]).rows
    assert row.baseline == "cp" and [x.denominator for x in row.ratios] == ["cp"]


def test_a_group_whose_benchmarks_disagree_on_the_baseline_is_refused_naming_the_file(tmp_path):
    path = _saved(tmp_path / "mixed.json", "torch_emb", {"cp": 0.8})
    data = json.loads(path.read_text())
    data["benchmarks"][0]["extra_info"]["baseline"] = "cp"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"mixed\.json.*baselines cp, torch_emb"):
        summarise([load_run(path)])


def test_runs_judged_against_different_baselines_are_not_compared_and_it_is_said(tmp_path):
    before = list(summarise([load_run(_saved(tmp_path / "a.json", "cp", {"emb": 1.2}))]).rows)
    now = list(summarise([load_run(_saved(tmp_path / "b.json", "torch_emb", {"emb": 1.4}, 7))]).rows)
    assert changes(now, before) == []                       # no ratio change across baselines
    [line] = saved_run.different_baselines(now, before)
    assert "cp" in line and "torch_emb" in line and "not compared" in line, line
    assert slower_than(changes(now, before), 0.05)[0] == []
    same = list(summarise([load_run(_saved(tmp_path / "c.json", "cp", {"emb": 1.4}, 7))]).rows)
    assert saved_run.different_baselines(same, before) == [] and len(changes(same, before)) == 1


def test_the_saved_run_picked_is_the_newest_judged_against_the_same_baseline(tmp_path):
    older = _saved(tmp_path / "0001_cp.json", "cp", {"emb": 1.2, "torch_emb": 1.1})
    newer = _saved(tmp_path / "0002_torch_emb.json", "torch_emb", {"emb": 1.1, "cp": 0.9})
    needed = {b["fullname"] for b in json.loads(older.read_text())["benchmarks"]}
    assert saved_run.resolve([older, newer], needed, False, "cp") == older
    assert saved_run.resolve([older, newer], needed, False, "torch_emb") == newer
    assert saved_run.resolve([older, newer], needed, False, "fastai") == newer   # none: the newest


@pytest.mark.parametrize("gate", [None, 0.05])
def test_pytest_bench_says_a_saved_run_had_another_baseline_and_its_gate_fails(tmp_path, gate):
    from types import SimpleNamespace

    from dotbias.pytest_bench.session import Session
    session = Session(SimpleNamespace(getoption=lambda name: None), "torch_emb", Registry(), gate)
    session.compared = _saved(tmp_path / "saved.json", "cp", {"emb": 1.2})
    now = list(summarise([load_run(_saved(tmp_path / "now.json", "torch_emb", {"emb": 1.2}))]).rows)
    failed = session._compare(now)
    mixed = [ln for ln in session.lines if ln.startswith("the saved run was judged against another")]
    assert len(mixed) == 1 and "cp there, torch_emb here" in mixed[0], session.lines
    assert not any(" now " in ln and "saved" in ln for ln in session.lines), session.lines
    assert failed is (gate is not None)
    assert any(ln.startswith("--fail-slower 5%: FAILED") for ln in session.lines) is (gate is not None)


SPEC = "dotbias.models.zoo:FUSED"         # an opt-in zoo variant, named by a spec


def test_compare_takes_a_spec_as_baseline_like_candidate(monkeypatch, tmp_path, capsys):
    from dotbias.compare import command
    seen = []

    def stop(self, candidate, base):
        seen.append((candidate, base, self.args.baseline))
        raise ValueError("stopped before measuring")
    monkeypatch.setattr(command.CompareRun, "compare", stop)
    code = cli.main(["compare", "emb", "--baseline", SPEC, "--out", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "stopped before measuring" in err, err
    assert seen == [("emb", "fused", "fused")]


@pytest.mark.parametrize("option", [SPEC, "fused"])
def test_every_baseline_option_takes_a_name_or_a_spec(option, monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(cli, "_check", lambda args: seen.append(args.baseline) or 0)
    assert cli.main(["check", "--baseline", option, "--out", "", "--no-progress"]) == 0
    name, registry = chosen.choose_baseline(option, Registry())   # pytest tests / pytest bench
    assert name == "fused" and "fused" in registry.variants      # found by name: it joins the run's
    assert seen == ["fused"]


def test_a_baseline_spec_naming_no_variant_is_one_line(tmp_path, capsys):
    assert cli.main(["check", "--baseline", "no_such_module_here:X", "--out", ""]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--baseline" in err and "no_such_module_here" in err, err


@pytest.mark.timing
def test_pytest_bench_times_ratios_and_the_aa_copy_against_the_chosen_baseline(pytester, nested_pytest,
                                                                              monkeypatch):
    """`pytest bench --baseline torch_emb --aa` on the tiniest budget, in this process (its two
    workers' rounds too: helpers/inprocess.py): the verdict lines, the saved run and the report all
    judge against torch_emb."""
    time_in_process(monkeypatch)
    store = pytester.path / "store"
    result = nested_pytest(
        "bench", "-q", "--rootdir", str(pytester.path),
        "-k", "test_forward and not backward and cpu and (emb or float32-cp)", "--baseline", "torch_emb",
        "--aa", "--processes=2", "--interleave-s=0.05", "--benchmark-max-time=0.05",
        f"--benchmark-storage=file://{store}", "--benchmark-autosave")
    out = result.stdout.str()
    verdict = out.split("dotbias verdict", 1)[-1]
    ratios = [ln for ln in verdict.splitlines() if ln.startswith("forward cpu ml100k float32: ")
              and " [" in ln and "peak memory" not in ln]
    assert ratios and all("/torch_emb " in ln for ln in ratios), out[-3000:]
    # how to read pytest-benchmark's table above it (pooled, unpaired), said once, before the ratios
    assert verdict.count(TABLE_NOTE) == 1 and verdict.index(TABLE_NOTE) < verdict.index(ratios[0]), verdict
    assert any("A/A torch_emb_copy/torch_emb" in ln for ln in ratios), out[-3000:]
    [path] = store.rglob("*.json")
    infos = [b["extra_info"] for b in json.loads(path.read_text())["benchmarks"]]
    # each selected variant once (a plugged-in variant whose name starts with "cp" is selected too)
    variants = [i["variant"] for i in infos]
    assert {i["baseline"] for i in infos} == {"torch_emb"} and len(variants) == len(set(variants))
    assert {"emb", "cp", "torch_emb"} <= set(variants), variants
    write_report([path], pytester.path / "report")
    assert json.loads((pytester.path / "report" / "report.json").read_text())["baselines"] == ["torch_emb"]
