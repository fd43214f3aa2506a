"""Child processes whose work a test only reads, run by conftest's EARLY session fixtures: started
in a background thread as soon as collection ends, so they run on another core while the tests
before their first user run in the test process. Each makes its own temporary folder (the
fixture removes it) and returns (folder, what the test reads)."""
from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CTRL_C_AFTER = (0.3, 0.8, 1.5)     # seconds after a child's start


def interrupted_runs() -> tuple[Path, dict[float, tuple[subprocess.Popen, str, str, Path]]]:
    """Three `dotbias run --quick` started together, each sent SIGINT at its own moment while
    torch/fastai still import: moment -> (the process, stdout, stderr, its --out folder)."""
    folder = Path(tempfile.mkdtemp(prefix="dotbias-ctrl-c-"))
    runs = {}
    for after in CTRL_C_AFTER:
        out = folder / f"o{after}"
        runs[after] = out, time.monotonic(), subprocess.Popen(
            [sys.executable, "-m", "dotbias.cli", "run", "--quick", "--out", str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for after, (_, started, proc) in runs.items():
        time.sleep(max(0.0, started + after - time.monotonic()))
        proc.send_signal(signal.SIGINT)
    done = {}
    for after, (out_dir, _, proc) in runs.items():
        out, err = proc.communicate(timeout=60)
        done[after] = proc, out, err, out_dir
    return folder, done


def report_child() -> tuple[Path, subprocess.CompletedProcess]:
    """`dotbias report RUN.json` and `dotbias report --versions` (on the committed reference) by
    `cli.main` in one fresh interpreter, which then prints both exit codes and which of torch and
    fastai it imported; both reports are written into the folder."""
    folder = Path(tempfile.mkdtemp(prefix="dotbias-report-"))
    ref = ROOT / "results" / "reference"
    env = folder / "tox" / "torch213"
    env.mkdir(parents=True)
    shutil.copy(ref / "bench.json", env / "bench.json")
    shutil.copy(ref / "check" / "equivalence.json", env / "equivalence.json")
    code = ("import sys; from dotbias import cli\n"
            f"a = cli.main(['report', {str(ref / 'bench.json')!r}, '--out', {str(folder)!r}])\n"
            f"b = cli.main(['report', '--versions', {str(folder / 'tox')!r}, '--out', {str(folder)!r}])\n"
            "print(a, b, sorted(m for m in ('torch', 'fastai') if m in sys.modules))")
    return folder, subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=folder)


CONSOLE_ARGV = (("run", "--seed", "-1"), ("report", "/nonexistent/run.json"))


def console_children() -> tuple[Path, dict[tuple[str, ...], subprocess.CompletedProcess]]:
    """`python -m dotbias.cli ARGV --out FOLDER/oN` for each bad ARGV of CONSOLE_ARGV, one after
    the other, each in a fresh interpreter: argv -> its CompletedProcess (tests/test_badinput.py)."""
    folder = Path(tempfile.mkdtemp(prefix="dotbias-console-"))
    return folder, {argv: subprocess.run([sys.executable, "-m", "dotbias.cli", *argv, "--out",
                                          str(folder / f"o{i}")], capture_output=True, text=True,
                                         cwd=folder)
                    for i, argv in enumerate(CONSOLE_ARGV)}
