"""Ctrl-C is deferred, never raised inside foreign code: the handler records it and the command
stops at its next checkpoint, with one line and exit 130, leaving no result set half-written."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dotbias import cli
from dotbias.io import interrupts, progress
from dotbias.io.resultset import ResultSet
from helpers.mlfiles import tree_digest, write_movielens

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def deferred():
    """Our handler installed for the test, the caller's put back after."""
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    yield interrupts.install()
    signal.signal(signal.SIGINT, before[0])
    signal.signal(signal.SIGTERM, before[1])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_the_handler_records_and_never_raises(deferred, signum):
    """With a raising handler the KeyboardInterrupt would land in this frame (or in a pybind11
    call of torch's import); now the code under way runs on to the checkpoint."""
    ran_on = []
    os.kill(os.getpid(), signum)
    for i in range(1000):           # bytecodes after the signal: the handler has run by now
        ran_on.append(i)
    assert len(ran_on) == 1000 and deferred.seen and interrupts.installed() is deferred
    with pytest.raises(KeyboardInterrupt):
        interrupts.checkpoint()


def test_progress_ticks_are_checkpoints(deferred):
    seen = []
    with pytest.raises(KeyboardInterrupt):
        for i in progress.track(range(10), "steps"):
            seen.append(i)
            if i == 3:
                os.kill(os.getpid(), signal.SIGINT)
    assert seen == [0, 1, 2, 3]                  # stopped before the next item, not at the end
    bar = progress.Bar("fit", 10)
    with pytest.raises(KeyboardInterrupt):
        bar.update(1)
    bar.close()


def test_a_signal_during_a_set_drops_it_whole(deferred, tmp_path):
    with ResultSet(tmp_path, "run") as rs:
        rs.write_text("run.md", "previous")
    before = tree_digest(tmp_path)
    with pytest.raises(KeyboardInterrupt), ResultSet(tmp_path, "run") as rs:
        rs.write_text("run.md", "new")
        os.kill(os.getpid(), signal.SIGINT)      # after the last write: the swap is the checkpoint
    assert tree_digest(tmp_path) == before
    deferred.seen = False
    with pytest.raises(KeyboardInterrupt), ResultSet(tmp_path, "run") as rs:
        os.kill(os.getpid(), signal.SIGINT)
        rs.write_text("run.md", "new")           # a write is a checkpoint too
    assert tree_digest(tmp_path) == before


def test_a_signal_inside_work_ends_the_command_at_the_next_checkpoint(tmp_path, monkeypatch, capsys):
    """The signal arrives inside the training (as inside a library call): training goes on to
    the next progress tick, the command stops there, one line and 130, the set is not written, and
    the caller's handlers are back."""
    from dotbias.run import experiment
    folder = write_movielens(tmp_path / "ml", n_users=20, n_items=20, n_ratings=200)
    out = tmp_path / "out"
    fit = experiment.fit_fastai
    calls = []

    def fit_then_signal(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)      # no exception here: it is only recorded
        calls.append("fit")
        return fit(*args, **kwargs)
    monkeypatch.setattr(experiment, "fit_fastai", fit_then_signal)
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    code = cli.main(["run", "--data", str(folder), "--epochs", "1", "--factors", "2", "--bs", "8",
                     "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 130 and err.strip().splitlines() == ["dotbias: interrupted"], err
    assert calls == ["fit"]                      # the first tick stopped it: cp never trained
    assert not out.exists()
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers


def python_started_from_a_terminal(code: str) -> subprocess.CompletedProcess:
    """`python -c CODE` as an interactive shell starts it: SIGINT at its default action, so Python
    installs its own handler. A disposition of "ignored" is inherited through exec, and a test
    process started as a background job of a script (`pytest tests > log &`: the shell ignores
    SIGINT there) would hand its children an ignored SIGINT, which Python keeps: a small launcher
    puts SIGINT back to its default and execs the child."""
    launch = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
              "os.execv(sys.executable, [sys.executable, '-c', sys.argv[1]])")
    return subprocess.run([sys.executable, "-c", launch, code], capture_output=True, text=True, cwd=ROOT)


def test_only_the_dotbias_command_defers_from_the_first_import():
    """`import dotbias` in a library user (pytest, a notebook) keeps Python's own Ctrl-C; the
    `dotbias` command (python -m dotbias.cli, the console script) defers from its first import."""
    show = "h = signal.getsignal(signal.SIGINT); print(getattr(h, '__name__', h))"
    lib = python_started_from_a_terminal(f"import signal, dotbias; {show}")
    assert lib.stdout.strip() == "default_int_handler", (lib.returncode, lib.stdout, lib.stderr)
    probe = ("import sys; sys.orig_argv[1:] = ['-m', 'dotbias.cli', 'run']; import signal, dotbias; "
             + show)
    as_cmd = python_started_from_a_terminal(probe)
    assert as_cmd.stdout.strip() == "on_signal", (as_cmd.returncode, as_cmd.stdout, as_cmd.stderr)


def test_a_signal_before_main_still_counts(monkeypatch, capsys):
    """Recorded while `dotbias` was still importing (before `main` installed anything): `main`
    keeps it and stops at its first checkpoint, before any subcommand runs."""
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        interrupts.install().seen = True
        monkeypatch.setattr(cli, "_run", lambda args: pytest.fail("the subcommand ran"))
        assert cli.main(["run", "--quick"]) == 130
        assert capsys.readouterr().err.strip() == "dotbias: interrupted"
    finally:
        signal.signal(signal.SIGINT, before[0])
        signal.signal(signal.SIGTERM, before[1])


@pytest.mark.slow
def test_ctrl_c_at_twelve_moments_is_one_line_and_130_and_no_half_set():
    """The CI-sized `.ci/interrupts`: 12 delays from 0.1 to 3 s after the process starts."""
    proc = subprocess.run([sys.executable, str(ROOT / ".ci" / "interrupts"), "12"],
                          capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "12 runs" in proc.stdout and "0 failures" in proc.stdout, proc.stdout
