"""Instruction counts: the gate on saved runs (synthetic JSON through the same path `pytest bench
--benchmark-compare` uses), the report's count-vs-time table, and the one-line skip when valgrind
or the torch build cannot count. A real callgrind gate test runs with DOTBIAS_CALLGRIND_TESTS=1
(about two minutes: valgrind starts python, torch and fastai)."""
from __future__ import annotations

import json
import os

import pytest

from dotbias.report import markdown as rendering
from dotbias.report.saved_run import instruction_minima
from dotbias.report.summary import load_run, summarise
from dotbias.timing import instruction_counts as ins
from helpers.reports import bench_entry as _bench
from helpers.reports import write_run as _run
from helpers.synthetic_timing import paired


def _counted(tmp_path, name, counts: dict[str, float], ratio=1.19):
    num, den = paired(ratio, seed=4)
    benches = [_bench("forward", "emb", num), _bench("forward", "cp", den)]
    for b in benches:
        c = counts[b["extra_info"]["variant"]]
        b["extra_info"]["instructions"] = ins.Counts((c * 1.001, c, c * 1.002), 20,
                                                     (("f", c / 2),), ()).as_dict()
    return list(summarise([load_run(_run(tmp_path / name, benches))]).rows)


def test_gate_passes_unchanged_and_fails_a_costlier_variant_naming_it(tmp_path):
    before = instruction_minima(_counted(tmp_path, "a.json", {"emb": 400_000, "cp": 337_000}))
    same = instruction_minima(_counted(tmp_path, "b.json", {"emb": 400_500, "cp": 336_800}))
    assert ins.gate(same, before) == []                      # 0.1%: under the 1% threshold
    costlier = instruction_minima(_counted(tmp_path, "c.json", {"emb": 400_000, "cp": 347_000}))
    [line] = ins.gate(costlier, before)
    assert "forward cpu ml100k float32 cp" in line and "+2.97%" in line and "emb" not in line
    assert ins.gate(costlier, before, threshold=0.05) == []


def test_report_puts_the_count_ratio_beside_the_time_ratio(tmp_path):
    agree = rendering.instructions_markdown(_counted(tmp_path, "a.json", {"emb": 400_000, "cp": 337_000}))
    text = "\n".join(agree)
    assert "1.187" in text and "| agree |" in text and "Where the instructions go" in text
    apart = rendering.instructions_markdown(_counted(tmp_path, "b.json", {"emb": 400_000, "cp": 400_000}))
    assert "DISAGREE: memory/cache" in "\n".join(apart)


def test_counts_round_trip_and_spread():
    c = ins.Counts((101.0, 100.0, 102.0), 20, (("f", 1.0),), (("g", -2.0),))
    assert ins.Counts.from_dict(c.as_dict()) == c
    assert c.minimum == 100.0 and c.spread == pytest.approx(0.02)


def test_unsupported_is_one_line(monkeypatch):
    import torch
    monkeypatch.setattr(ins.shutil, "which", lambda name: None)
    assert ins.unsupported() == "valgrind is not installed (apt-get install valgrind): --instructions skipped"
    monkeypatch.setattr(ins.shutil, "which", lambda name: "/usr/bin/valgrind")
    monkeypatch.setattr(torch._C, "_valgrind_supported_platform", lambda: False)
    assert "no valgrind support" in ins.unsupported() and "\n" not in ins.unsupported()


EXTRA_OP = """
from dotbias.models.book import DotProductBiasCP
from dotbias.models.variant import Variant
class Costlier(DotProductBiasCP):
    def forward(self, x):
        return super().forward(x) * 1.0          # one extra op
COSTLIER = Variant("cp_costlier", Costlier, "cp with an extra multiply", "[bs]")
"""


def test_the_callgrind_child_runs_each_job_s_repeats_then_moves_on_at_each_dump(tmp_path):
    """Without valgrind: the child's `fn` runs the current job, and each gc "stop" (torch's script
    collects after its first call and after every dump) moves it to the next job in order, each
    job's repeats together, counting the moves in its file."""
    import gc
    import runpy

    from dotbias.timing.groups import Group, Size
    g = Group("forward", "cpu", Size("tiny", 5, 6, 2, 4), "float32")
    config = {"threads": 1, "plugins": [], "repeats": 2, "parent": -1,
              "jobs": [[g.as_dict(), "cp", 3], [g.as_dict(), "emb", 2]],
              "moves_file": str(tmp_path / "moves")}
    (tmp_path / "jobs.json").write_text(json.dumps(config))
    fn = runpy.run_path(str(ins.CHILD))["start"](str(tmp_path / "jobs.json"))
    try:
        seen = []
        for _ in range(5):
            seen.append(fn.current[1])
            fn()
            gc.collect()
    finally:
        gc.callbacks.remove(fn.next_job)
        gc.enable()
    assert seen == [3, 3, 3, 2, 2] and (tmp_path / "moves").read_text() == "5"


@pytest.mark.skipif(not os.environ.get("DOTBIAS_CALLGRIND_TESTS") or ins.unsupported() is not None,
                    reason="real callgrind runs take minutes: set DOTBIAS_CALLGRIND_TESTS=1")
def test_real_counts_catch_an_extra_op(tmp_path, monkeypatch):
    """Two valgrind processes at once (counts do not depend on load): cp alone, and cp beside the
    costlier copy in one process (collect_all's job switching). The gate passes cp against cp and
    fails the extra multiply."""
    from concurrent.futures import ThreadPoolExecutor

    from dotbias.timing.groups import Group, Size
    g = Group("forward", "cpu", Size("ml100k", 944, 1665, 50, 64), "float32")
    (tmp_path / "costlier.py").write_text(EXTRA_OP)
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    monkeypatch.syspath_prepend(str(tmp_path))      # Timer runs the setup here once, too
    with ThreadPoolExecutor(2) as pool:
        alone = pool.submit(ins.collect_all, [(g, "cp")], repeats=2)
        both = pool.submit(ins.collect_all, [(g, "cp"), (g, "cp_costlier")], repeats=2,
                           plugins=["costlier:COSTLIER"])
        n = ins.calls_for(g)
        base = ins.counts(alone.result()[(g.label, "cp")], n).minimum
        again, costly = (ins.counts(both.result()[(g.label, v)], n).minimum
                         for v in ("cp", "cp_costlier"))
    assert ins.gate({("g", "cp"): again}, {("g", "cp"): base}) == []
    assert ins.gate({("g", "cp"): costly}, {("g", "cp"): base}) != []


def test_children_start_without_address_randomization_and_the_persona_is_restored():
    """Counts of two runs differed up to 0.68% with ASLR on, 0.064% with it off."""
    import ctypes
    import subprocess
    import sys
    old = ins._no_aslr()
    if old is None:
        pytest.skip("personality() not available here")
    try:
        assert ctypes.CDLL(None).personality(0xFFFFFFFF) & ins.ADDR_NO_RANDOMIZE
        child = subprocess.run([sys.executable, "-c", "print(open('/proc/self/personality').read())"],
                               capture_output=True, text=True)
        assert int(child.stdout, 16) & ins.ADDR_NO_RANDOMIZE       # inherited by the child
    finally:
        ins._restore_persona(old)
    assert ctypes.CDLL(None).personality(0xFFFFFFFF) == old
