"""Progress lines go to stderr only, never to stdout, and only when enabled."""
from __future__ import annotations

from dotbias.io import progress
from dotbias.io.progress import Progress


def test_track_yields_everything_and_draws_on_stderr_when_on(capsys):
    assert list(Progress(True).track(range(5), "steps")) == [0, 1, 2, 3, 4]
    out, err = capsys.readouterr()
    assert out == "" and "steps: 100%" in err and "5/5" in err


def test_bar_takes_absolute_counts_and_a_note(capsys):
    """A fastai callback reports the step it is at, not an increment."""
    bar = Progress(True).bar("fit", 10)
    for i in (2, 5, 10):
        bar.update(i, ", epoch 1/1")
    bar.close()
    out, err = capsys.readouterr()
    assert out == "" and "10/10" in err and "epoch 1/1" in err and "11/10" not in err


def test_off_means_silent(capsys):
    off = Progress(False)
    bar = off.bar("fit", 3)
    for i in range(1, 4):
        bar.update(i)
    bar.close()
    assert list(off.track([1, 2], "x")) == [1, 2]
    off.log("a status line")
    assert capsys.readouterr() == ("", "")


def test_default_follows_whether_stderr_is_a_terminal(capsys):
    assert progress.AS_TERMINAL.enabled is False          # pytest captures stderr: not a terminal
    assert Progress(True).enabled and not Progress(False).enabled
    Progress(True).log("a status line")
    assert capsys.readouterr() == ("", "a status line\n")
