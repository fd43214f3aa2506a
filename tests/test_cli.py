"""`dotbias run`: the main job end to end on small files, and one clear line for each bad input."""
from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
import torch

from dotbias import cli, commands, to_canonical
from dotbias.io import interrupts
from dotbias.io.files import read_json
from dotbias.io.resultset import ResultSet
from dotbias.run import experiment
from helpers.controlled import baseline_and_copy, only
from helpers.mlfiles import tree_digest, write_movielens


def run_cli(args, capsys, registry=None):
    code = cli.main(args, registry=registry)
    out, err = capsys.readouterr()
    return code, out, err


def manifest(set_path):
    """What the set's manifest records (command, threads, files), read as any JSON result is."""
    return read_json(set_path / "manifest.json", "manifest")


def assert_one_line_error(code, err, *fragments):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("dotbias: error: ")
    assert "Traceback" not in err
    for f in fragments:
        assert f in lines[0], (f, lines[0])


def test_run_on_a_small_movielens_folder(tmp_path, capsys):
    folder = write_movielens(tmp_path / "ml-100k", n_users=40, n_items=30, n_ratings=600)
    out_dir = tmp_path / "results"
    code, out, err = run_cli(["run", "--data", str(folder), "--epochs", "2", "--factors", "4",
                              "--bs", "16", "--no-progress", "--out", str(out_dir)], capsys)
    assert code == 0, err
    run = out_dir / "run"
    assert sorted(p.name for p in run.iterdir()) == ["manifest.json", "run.json", "run.md", "run.png"]
    data = json.loads((run / "run.json").read_text())
    assert data["run_id"] == manifest(run)["run_id"] and f"Run `{data['run_id']}`" in out
    assert data["dataset"]["users"] == 41 and data["dataset"]["titles"] == 30  # 29 titles + #na#
    assert data["config"]["threads"] == 1 and data["environment"]["threads"] == 1
    for name in ("emb", "cp"):
        epochs = data["training"][name]["epochs"]
        assert len(epochs) == 2 and all(e["valid_loss"] > 0 for e in epochs)
        assert len(data["top5"][name]) == 5
    pair = data["equivalence"]["pairs"][0]
    assert pair["output_shapes"] == [[16, 1], [16]]
    assert pair["max_abs_output_diff"] == 0.0 and pair["bitwise_equal"]
    assert "| epoch | emb train loss | emb valid loss | cp train loss | cp valid loss |" in out
    assert "\n| 1 | " in out and "\n| 2 | " in out and "\n| 0 | " not in out   # epochs from 1, as the plot
    assert (run / "run.md").read_text() == out.removesuffix("\n")
    assert (run / "run.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert data["spearman_vs_true_item_bias"] == {}           # no truth for real data
    assert "wrote" in err and "wrote" not in out               # stdout holds only the report


def test_top5_is_each_models_own(tmp_path, registry):
    """The seed's slip: the top-5 of each model must come from that model's own bias. The data and
    seed are chosen so the two models' top-5 differ; with the slip (both lists from the Embedding
    model's bias) cp's list would equal emb's and the first assertion would fail."""
    folder = write_movielens(tmp_path / "ml", n_users=40, n_items=30, n_ratings=600)
    quiet = lambda *a: None
    cfg = experiment.Config(data=str(folder), epochs=1, factors=3, bs=16)
    res = experiment.run_prepared(experiment.prepare(cfg, registry, log=quiet), registry, log=quiet)
    assert res.top["emb"] != res.top["cp"]
    titles = list(res.item_bias["emb"].index)
    for name in ("emb", "cp"):
        own = to_canonical(res.models[name]).item_bias[1:]        # index 0 is fastai's #na#
        assert res.top[name] == [titles[i] for i in own.argsort(descending=True)[:5].tolist()]
        assert res.item_bias[name].to_numpy().tolist() == own.tolist()


@pytest.fixture
def previous_set(tmp_path):
    """A small MovieLens folder and an output folder already holding a run set: (data, out, digest)."""
    folder = write_movielens(tmp_path / "ml", n_users=20, n_items=20, n_ratings=200)
    out_dir = tmp_path / "results"
    with ResultSet(out_dir, "run") as rs:
        rs.write_text("run.md", "previous run")
    return folder, out_dir, tree_digest(out_dir)


def test_failure_while_rendering_writes_nothing(previous_set, monkeypatch, capsys):
    folder, out_dir, before = previous_set

    def broken(res):
        raise ValueError("plot failed")
    monkeypatch.setattr(experiment, "run_plot", broken)    # where write_results looks it up
    code, _, err = run_cli(["run", "--data", str(folder), "--epochs", "1", "--factors", "2",
                            "--bs", "8", "--out", str(out_dir), "--no-progress"], capsys)
    assert_one_line_error(code, err, "plot failed")
    assert tree_digest(out_dir) == before
    assert (out_dir / "run" / "run.md").read_text() == "previous run"


def test_interrupt_during_training_exits_130_and_keeps_the_previous_set(previous_set, monkeypatch, capsys):
    folder, out_dir, before = previous_set

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(experiment, "fit_fastai", interrupted)
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM), sys.unraisablehook
    code, out, err = run_cli(["run", "--data", str(folder), "--out", str(out_dir)], capsys)
    assert code == 130 and err.strip().splitlines()[-1] == "dotbias: interrupted" and out == ""
    assert tree_digest(out_dir) == before
    # the caller's handlers are back (an ignored SIGINT left behind would be inherited by children)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM), sys.unraisablehook) == handlers


def test_results_are_readable_by_everyone(tmp_path):
    from dotbias.io.files import write_text
    path = write_text(tmp_path / "r.md", "x")
    assert path.stat().st_mode & 0o044 == 0o044
    assert [p.name for p in tmp_path.iterdir()] == ["r.md"]     # no temp file left behind


def test_ctrl_c_in_the_first_seconds_is_one_line_and_exit_130(interrupted_runs):
    """SIGINT while torch/fastai are still importing: one line and 130, not a traceback, not death
    by SIGINT (-2) after a KeyboardInterrupt crossed C++ code, not an interrupt swallowed during an
    import. Three `dotbias run --quick` started together (conftest's interrupted_runs), each
    interrupted at its own moment, 0.3, 0.8 and 1.5 s after its start."""
    assert sorted(interrupted_runs) == [0.3, 0.8, 1.5]
    for after, (proc, out, err, out_dir) in interrupted_runs.items():
        assert proc.returncode == 130, (after, err)
        assert err.strip().splitlines() == ["dotbias: interrupted"], (after, err)
        assert "Traceback" not in err + out, (after, err)
        assert not out_dir.exists(), after


def test_help_is_fast_light_and_shows_defaults():
    """--help must not import torch or fastai (they take seconds to load)."""
    code = ("import sys; from dotbias import cli; rc = cli.main(['run', '--help']); "
            "assert 'torch' not in sys.modules and 'fastai' not in sys.modules, 'heavy import'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for text in ("(default: 50)", "(default: 64)", "(default: 42)", "(default: 1)",
                 "(default: results/local)", "(default: emb,cp)", "default: 5, or 1 with --quick"):
        assert text in " ".join(proc.stdout.split()), text


def test_threads_are_set_and_recorded(tmp_path, capsys, monkeypatch):
    """--threads reaches torch.set_num_threads and the results (recorded, not just echoed: the
    environment reads torch back). Recorded by a stand-in, so the test itself stays on 1 thread."""
    import torch
    folder = write_movielens(tmp_path / "ml", n_users=20, n_items=20, n_ratings=200)
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    monkeypatch.setattr(torch, "get_num_threads", lambda: calls[-1] if calls else 1)
    code, _, err = run_cli(["run", "--data", str(folder), "--epochs", "1", "--factors", "2",
                            "--bs", "8", "--threads", "3", "--out", str(tmp_path / "o")], capsys)
    assert code == 0, err
    assert calls == [3]
    data = json.loads((tmp_path / "o" / "run" / "run.json").read_text())
    assert data["config"]["threads"] == data["environment"]["threads"] == 3
    assert manifest(tmp_path / "o" / "run")["threads"] == 3


def test_check_records_the_threads_it_ran_with(tmp_path, capsys, monkeypatch, baseline, registry):
    """`dotbias check` pins its own thread count whatever --threads says; its results and manifest
    record the count the grid ran with, not the option. Run on a set the test controls (the
    baseline and a copy of it), so a wrong variant plugged in cannot fail this mechanics test."""
    from dotbias.equivalence import check as grid
    monkeypatch.setattr(grid, "CASES", [("same", 5, 5, 2, 32, "same")])
    seen = []
    run_checks = grid.run_checks
    monkeypatch.setattr(grid, "run_checks",
                        lambda **k: seen.append(torch.get_num_threads()) or run_checks(**k))
    chosen = only(*baseline_and_copy(baseline), baseline=baseline, registry=registry)
    names = list(chosen.variants)
    code, out, err = run_cli(["check", "--threads", "3", "--out", str(tmp_path), "--no-progress",
                              "--baseline", baseline.name], capsys, registry=chosen)
    assert code == 0, f"dotbias check on {names}: exit {code}\n{out}{err}"
    data = json.loads((tmp_path / "check" / "equivalence.json").read_text())
    assert seen == [grid.THREADS] == [1]
    assert data["threads"] == manifest(tmp_path / "check")["threads"] == grid.THREADS
    assert {r["pair"].split(" ")[0] for r in data["rows"]} == set(names)     # only the set it chose


def test_an_interrupt_turned_into_another_error_on_its_way_is_still_exit_130(monkeypatch, capsys):
    """Ctrl-C during an import can come out of CPython's warnings machinery as `TypeError:
    expected a message argument`: still an interrupt (130), not an internal error."""
    import argparse
    import types

    def func(args):
        interrupts.installed().seen = True       # the record main installed
        raise TypeError("expected a message argument")
    ns = argparse.Namespace(func=func, no_progress=True)
    monkeypatch.setattr(cli, "build_parser", lambda: types.SimpleNamespace(parse_args=lambda a: ns))
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        assert cli.main(["run"]) == 130
        assert capsys.readouterr().err.strip() == "dotbias: interrupted"
        ns.func = lambda args: (_ for _ in ()).throw(TypeError("a bug"))     # no Ctrl-C: a bug
        assert cli.main(["run"]) == 1
        assert "internal error: TypeError: a bug" in capsys.readouterr().err
    finally:
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])


def test_an_interrupt_inside_a_callback_prints_no_traceback(capsys, monkeypatch):
    """Ctrl-C inside importlib's module-lock weakref callback is printed by CPython as
    'Exception ignored in: ...' plus a traceback. The hook keeps it as an interrupt, silently;
    anything else still goes to the default hook."""
    import types
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    record = interrupts.install()
    info = types.SimpleNamespace(exc_type=KeyboardInterrupt, exc_value=KeyboardInterrupt(),
                                 exc_traceback=None, err_msg=None, object=None)
    commands.unraisable(info)
    assert record.seen and capsys.readouterr().err == ""
    record.seen = False
    passed_on = []
    monkeypatch.setattr(sys, "__unraisablehook__", passed_on.append)
    other = types.SimpleNamespace(exc_type=ValueError, exc_value=ValueError("x"), exc_traceback=None,
                                  err_msg="Exception ignored in", object=None)
    commands.unraisable(other)
    signal.signal(signal.SIGINT, before[0])
    signal.signal(signal.SIGTERM, before[1])
    assert not record.seen and passed_on == [other]


def test_a_failure_while_a_variant_runs_names_it():
    """conftest adds the variant under test to any failing report: a wrong variant plugged in
    that crashes inside a loop over the registry (an IndexError that names nothing) is named."""
    import dataclasses

    from conftest import variants_in_traceback

    from dotbias import BUILT_IN

    culprit = dataclasses.replace(BUILT_IN["emb"], name="culprit_x")

    def run_batch(variant, baseline):
        raise IndexError("index 7 is out of bounds for dimension 0 with size 5")
    try:
        for v in [culprit]:
            run_batch(v, BUILT_IN["cp"])
    except IndexError as e:
        tb = e.__traceback__
    assert variants_in_traceback(tb, "cp") == ["culprit_x"]        # the baseline left out
