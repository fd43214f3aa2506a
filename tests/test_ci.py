"""`.ci/regenerate` rebuilds the committed reference only from a clean commit."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_regenerate_refuses_a_dirty_tree_and_touches_nothing(tmp_path):
    repo = tmp_path / "repo"
    (repo / ".ci").mkdir(parents=True)
    shutil.copy(ROOT / ".ci" / "regenerate", repo / ".ci" / "regenerate")
    (repo / "results" / "reference").mkdir(parents=True)
    (repo / "results" / "reference" / "run.md").write_text("committed")
    git = lambda *a: subprocess.run(["git", "-C", str(repo), *a], check=True, capture_output=True)
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    (repo / "results" / "reference" / "run.md").write_text("edited by hand")
    proc = subprocess.run(["bash", str(repo / ".ci" / "regenerate")], capture_output=True, text=True)
    assert proc.returncode == 2 and "work tree has changes" in proc.stderr
    assert (repo / "results" / "reference" / "run.md").read_text() == "edited by hand"
    assert sorted(p.name for p in (repo / "results").iterdir()) == ["reference"]
