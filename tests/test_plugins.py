"""Users' variants are found without editing dotbias: DOTBIAS_VARIANTS, --variant (the `dotbias`
subcommands, `pytest tests`, `pytest bench`) and the `dotbias.variants` entry points of an
installed package; a bad spec is one line naming it, exit status 2."""
from __future__ import annotations

import os
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from dotbias import cli
from dotbias.equivalence import check as grid
from dotbias.equivalence.contract import assert_equivalent
from dotbias.models import plugins
from dotbias.models.inputs import make_inputs

MODULE = textwrap.dedent('''
    import torch
    from torch import nn
    from dotbias import Variant

    class Mine(nn.Module):
        def __init__(self, n_users, n_items, n_factors, y_range=(0, 5.5)):
            super().__init__()
            self.u = nn.Embedding(n_users, n_factors)
            self.i = nn.Embedding(n_items, n_factors)
            self.ub = nn.Parameter(torch.zeros(n_users))
            self.ib = nn.Parameter(torch.zeros(n_items, 1))
            self.y_range = y_range

        def forward(self, x):
            lo, hi = self.y_range
            res = (self.u(x[:, 0]) * self.i(x[:, 1])).sum(1) + self.ub[x[:, 0]] + self.ib[x[:, 1], 0]
            return torch.sigmoid(res) * (hi - lo) + lo

    PATHS = dict(user_factors="u.weight", user_bias="ub", item_factors="i", item_bias="ib")
    VARIANT = Variant("{name}", Mine, "a user's model", "[bs]", paths=PATHS)
    def make():
        return [Variant("{name}_b", Mine, "another", "[bs]", paths=PATHS)]
    WRONG_PATH = Variant("{name}_bad", Mine, "typo", "[bs]", paths={{**PATHS, "item_bias": "ibb"}})
    WRONG_SHAPE = Variant("{name}_shape", Mine, "swapped", "[bs]", paths={{**PATHS, "user_bias": "ib"}})
    NOT_A_VARIANT = 42
''')


def write_module(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(MODULE.format(name=name))
    return folder


@pytest.fixture
def clean(monkeypatch):
    """No DOTBIAS_VARIANTS from outside (every load makes a registry of its own)."""
    monkeypatch.delenv(plugins.ENV, raising=False)
    return monkeypatch


def plugged(registry) -> list[str]:
    """The names the specs loaded into `registry` registered, in order."""
    return [name for names in registry.loaded.values() for name in names]


def test_env_var_registers_a_variant_from_outside_the_repo(tmp_path, clean, baseline):
    clean.syspath_prepend(str(write_module(tmp_path / "elsewhere", "envmod")))
    clean.setenv(plugins.ENV, "envmod:VARIANT, envmod:make")
    found = plugins.load_variants()
    assert plugged(found) == ["envmod", "envmod_b"] and found.specs == ("envmod:VARIANT", "envmod:make")
    again = plugins.load_variants(registry=found)                        # twice: registered once
    assert plugged(again) == ["envmod", "envmod_b"] and list(again.variants) == list(found.variants)
    inp = make_inputs(30, 40, 5, 64, seed=1, std=0.5)
    assert_equivalent([found.variants["envmod"], found.variants["envmod_b"]], inp.params, inp.x, inp.y,
                      baseline=baseline)


def test_an_installed_entry_point_is_found(tmp_path, clean):
    site = write_module(tmp_path / "site", "epmod")
    dist = site / "epmod-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: epmod\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[dotbias.variants]\nmine = epmod:VARIANT\n")
    clean.syspath_prepend(str(site))
    assert "epmod" in plugins.load_variants().variants


def test_dotbias_check_takes_variant(tmp_path, clean, capsys):
    clean.syspath_prepend(str(write_module(tmp_path / "x", "climod")))
    clean.setattr(grid, "CASES", [("small", 20, 30, 4, 64, "uniform")])
    assert cli.main(["check", "--variant", "climod:VARIANT"]) == 0
    assert "| small | climod vs cp | float32 | cpu | no | within error |" in capsys.readouterr().out


@pytest.mark.parametrize("spec, problem", [
    ("nodots", "expected pkg.module:attr"),
    ("no_such_module_xyz:V", "module 'no_such_module_xyz' not found"),
    ("badmod:MISSING", "'badmod' has no attribute 'MISSING'"),
    ("badmod:NOT_A_VARIANT", "got int, expected a Variant"),
    ("badmod:WRONG_PATH", "parameter path 'ibb': Mine has no attribute 'ibb'"),
    ("badmod:WRONG_SHAPE", "parameter path 'ib' (user_bias) has shape [4, 1], expected [3] or [3, 1]"),
])
def test_a_bad_spec_is_one_line_naming_it_and_exit_2(tmp_path, clean, capsys, spec, problem):
    clean.syspath_prepend(str(write_module(tmp_path / "b", "badmod")))
    with pytest.raises(ValueError, match=f"variant spec '{spec}'") as e:
        plugins.load_variants([spec])
    assert problem in str(e.value) and "\n" not in str(e.value)
    assert cli.main(["check", "--variant", spec]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and problem in err and "Traceback" not in err


def test_a_name_taken_by_another_variant_is_refused(tmp_path, clean):
    clean.syspath_prepend(str(write_module(tmp_path / "c", "cp_clash")))
    (tmp_path / "c" / "cp_clash.py").write_text(MODULE.format(name="cp"))
    with pytest.raises(ValueError, match="a variant named 'cp' is already registered"):
        plugins.load_variants(["cp_clash:VARIANT"])


def test_pytest_tests_picks_up_variant_and_env(tmp_path, clean, nested_pytest):
    """`pytest tests` collects the user's variant from --variant and the env (`pytest bench`: the
    next test, which also times it)."""
    clean.syspath_prepend(str(write_module(tmp_path / "p", "pymod")))
    out = nested_pytest("tests/test_equivalence.py", "tests/test_canonical.py", "--collect-only", "-q",
                        "--variant", "pymod:VARIANT", env={plugins.ENV: "pymod:make"})
    ids = "\n".join(out.outlines)
    assert out.ret == 0, ids[-2000:] + "\n".join(out.errlines)[-2000:]
    assert "[pymod" in ids or "-pymod" in ids, ids[-2000:]
    assert "pymod_b" in ids, ids[-2000:]


@pytest.mark.slow
@pytest.mark.timing        # real timing: .ci/run runs these serially (docs/ci.md)
def test_pytest_bench_times_a_variant_from_outside_in_its_worker_processes(tmp_path, clean, nested_pytest):
    """Not only collected: the fresh timing processes load the same specs and time the variant."""
    folder = write_module(tmp_path / "w", "benchmod")
    clean.syspath_prepend(str(folder))
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH")) if p)
    store = tmp_path / "store"
    done = nested_pytest("bench", "-q", "--variant", "benchmod:VARIANT", "-k",
                         "test_forward and not backward and cpu", "--processes=1", "--interleave-s=0.01",
                         "--benchmark-max-time=0.01", f"--benchmark-storage=file://{store}",
                         "--benchmark-autosave", env={"PYTHONPATH": path, plugins.ENV: "benchmod:make"})
    out = SimpleNamespace(stdout="\n".join(done.outlines), stderr="\n".join(done.errlines))
    assert done.ret == 0, out.stdout[-2000:] + out.stderr[-2000:]
    [saved] = store.rglob("*.json")
    import json
    names = {b["name"] for b in json.loads(saved.read_text())["benchmarks"]}
    assert any("benchmod]" in n or "-benchmod]" in n for n in names), names
    assert any("benchmod_b" in n for n in names), names
    assert "benchmod" in out.stdout and "dotbias verdict" in out.stdout.lower(), out.stdout[-2000:]
