"""`dotbias run`: the main job end to end on small files, and one clear line for each bad input."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from mlfiles import write_movielens

from dotbias import cli, experiment, plots, to_canonical


def run_cli(args, capsys):
    code = cli.main(args)
    out, err = capsys.readouterr()
    return code, out, err


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
    code, out, _ = run_cli(["run", "--data", str(folder), "--epochs", "2", "--factors", "4",
                            "--bs", "16", "--no-progress", "--out", str(out_dir)], capsys)
    assert code == 0
    assert sorted(p.name for p in out_dir.iterdir()) == ["run.json", "run.md", "run.png"]
    data = json.loads((out_dir / "run.json").read_text())
    assert data["dataset"]["users"] == 41 and data["dataset"]["titles"] == 30  # 29 titles + #na#
    for name in ("emb", "cp"):
        epochs = data["training"][name]["epochs"]
        assert len(epochs) == 2 and all(e["valid_loss"] > 0 for e in epochs)
        assert len(data["top5"][name]) == 5
    pair = data["equivalence"]["pairs"][0]
    assert pair["output_shapes"] == [[16, 1], [16]]
    assert pair["max_abs_output_diff"] == 0.0 and pair["bitwise_equal"]
    assert "| epoch | emb train | emb valid | emb s | cp train | cp valid | cp s |" in out
    assert (out_dir / "run.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert data["spearman_vs_true_item_bias"] == {}           # no truth for real data


def test_top5_is_each_models_own(monkeypatch, tmp_path, capsys):
    """The seed's slip: the top-5 of each model must come from that model's bias."""
    folder = write_movielens(tmp_path / "ml", n_users=40, n_items=30, n_ratings=600)
    res = experiment.run_experiment(experiment.Config(data=str(folder), epochs=1, factors=3, bs=16),
                                    progress=False, log=lambda *a: None)
    titles = list(res.item_bias["emb"].index)
    for name in ("emb", "cp"):
        own = to_canonical(res.models[name]).item_bias[1:]        # index 0 is fastai's #na#
        assert res.top[name] == [titles[i] for i in own.argsort(descending=True)[:5].tolist()]
    # the two models start from different inits, so their bias vectors differ
    assert (res.item_bias["emb"] != res.item_bias["cp"]).any()


@pytest.mark.parametrize("args,fragments", [
    (["--data", "{tmp}/missing"], ["missing: folder not found"]),
    (["--factors", "0"], ["factors must be a positive integer, got 0"]),
    (["--bs", "-4"], ["bs must be a positive integer, got -4"]),
    (["--epochs", "0"], ["epochs must be a positive integer, got 0"]),
    (["--variants", "emb,nope"], ["unknown variant 'nope'", "registered: emb, cp"]),
    (["--factors", "many"], ["argument --factors: invalid int value: 'many'"]),
    (["--device", "tpu"], ["device must be 'cpu' or 'cuda"]),
])
def test_bad_arguments_one_line_and_nothing_written(tmp_path, capsys, args, fragments):
    out_dir = tmp_path / "results"
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    try:
        code, _, err = run_cli(["run", *args, "--out", str(out_dir), "--no-progress"], capsys)
    except SystemExit as e:      # argparse's own type errors exit from parse_args
        code, err = e.code, capsys.readouterr().err
    assert_one_line_error(code, err, *fragments)
    assert not out_dir.exists() or not any(out_dir.iterdir())


@pytest.mark.parametrize("case,fragments", [
    ("no_udata", ["u.data: file not found"]),
    ("empty_item", ["u.item: file is empty"]),
    ("columns", ["u.data, line 3: expected 4 tab-separated columns", "got 5"]),
    ("rating", ["u.data, line 2, column rating: expected a number, got '4.x'"]),
    ("user", ["u.data, line 1, column user: expected an integer, got 'u1'"]),
    ("utf8", ["u.item, line 2: text is UTF-8 encoded", "latin-1"]),
])
def test_bad_files_one_line_and_nothing_written(tmp_path, capsys, case, fragments):
    folder = write_movielens(tmp_path / "ml")
    data = folder / "u.data"
    if case == "no_udata":
        data.unlink()
    elif case == "empty_item":
        (folder / "u.item").write_bytes(b"")
    elif case == "columns":
        data.write_text("1\t1\t5\t8\n2\t2\t4\t8\n3\t3\t3\t8\textra\n")
    elif case == "rating":
        data.write_text("1\t1\t5\t8\n2\t2\t4.x\t8\n")
    elif case == "user":
        data.write_text("u1\t1\t5\t8\n")
    elif case == "utf8":
        (folder / "u.item").write_bytes("1|Toy Story (1995)|\n2|Misérables, Les (1995)|\n".encode())
    out_dir = tmp_path / "results"
    code, _, err = run_cli(["run", "--data", str(folder), "--out", str(out_dir), "--no-progress"],
                           capsys)
    assert_one_line_error(code, err, str(folder), *fragments)
    assert not out_dir.exists()


def test_failure_while_rendering_writes_nothing(tmp_path, monkeypatch, capsys):
    folder = write_movielens(tmp_path / "ml", n_users=20, n_items=20, n_ratings=200)
    out_dir = tmp_path / "results"
    out_dir.mkdir()
    (out_dir / "run.md").write_text("previous run")

    def broken(res):
        raise ValueError("plot failed")
    monkeypatch.setattr(plots, "run_plot", broken)
    code, _, err = run_cli(["run", "--data", str(folder), "--epochs", "1", "--factors", "2",
                            "--bs", "8", "--out", str(out_dir), "--no-progress"], capsys)
    assert_one_line_error(code, err, "plot failed")
    assert [p.name for p in out_dir.iterdir()] == ["run.md"]
    assert (out_dir / "run.md").read_text() == "previous run"


def test_console_script_exit_status_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "dotbias.cli", "run", "--data",
                           str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert "nowhere: folder not found" in proc.stderr


def test_results_are_readable_by_everyone(tmp_path):
    from dotbias.files import write_text
    path = write_text(tmp_path / "r.md", "x")
    assert path.stat().st_mode & 0o044 == 0o044
    assert [p.name for p in tmp_path.iterdir()] == ["r.md"]     # no temp file left behind
