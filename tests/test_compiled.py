"""Compiled variants (`Variant.compiled`, the zoo's opt-in compiled models, `--compile` twins): held
to the one contract over a bounded set of compile keys without recompiling per example, a compiled
bug still caught under its own name, and compilation kept out of the timed rounds.

Each compiled graph costs seconds, so the property here draws sizes from 2 up (dynamo specialises
0 and 1) at the default y_range: two graphs per dtype (sizes specialised, then symbolic after the
first change), however many examples; the 0/1 sizes get one fixed case. `DOTBIAS_COMPILE=1
pytest tests` (or `--compile`) runs the whole suite over the twins too, at the cost of a graph
per dtype, y_range and 0/1 size met."""
from __future__ import annotations

import argparse
from dataclasses import replace

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dotbias.models import plugins, zoo
from dotbias.models.compiled import (
    INDUCTOR_OPTIONS,
    MODES,
    CompileCount,
    CompiledBuild,
    compile_count,
    compile_kwargs,
    is_compiled,
)
from dotbias.models.registry import Registry
from dotbias.models.variant import Variant
from dotbias.pytest_bench.options import REGISTRY
from dotbias.report.markdown import verdict_lines
from dotbias.report.summary import read_benchmark, summarise_group
from dotbias.timing import rounds
from dotbias.timing.groups import Group, Size
from dotbias.timing.operations import make_op
from helpers.mutants import BUGS
from helpers.properties import equivalence_property
from helpers.strategies import ALL_DTYPES, Case, cases, index_kinds


def compiled_variants(registry: Registry) -> list[Variant]:
    """Every compiled variant of the run's registry, else the zoo's built-in ones."""
    found = [v for v in registry.variants.values() if isinstance(v.build, CompiledBuild)]
    return found or [v for v in zoo.OPT_IN if isinstance(v.build, CompiledBuild)]


def pytest_generate_tests(metafunc):
    """From the run's registry (`config.stash`): `compiled`, every compiled variant
    (`compiled_variants`); `first_compiled`, the first; `eager`, the first three not compiled."""
    registry = metafunc.config.stash[REGISTRY]
    compiled = compiled_variants(registry)
    eager = [v for v in registry.variants.values() if not isinstance(v.build, CompiledBuild)][:3]
    for arg, values in (("compiled", compiled), ("first_compiled", compiled[:1]), ("eager", eager)):
        if arg in metafunc.fixturenames:
            metafunc.parametrize(arg, values, ids=lambda v: v.name)
# No size of 0 or 1: each is a graph of its own (see the module docstring).
unspecialised = st.tuples(st.integers(2, 300), st.integers(2, 300), st.integers(2, 64),
                          st.integers(2, 512))


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_a_compiled_variant_holds_to_the_contract_with_two_graphs_per_dtype(compiled, dtype, baseline):
    variant = compiled
    if (reason := variant.unsupported(dtype)) is not None:
        pytest.skip(reason)
    for first in (Case(5, 7, 3, 4, "uniform", dtype, "cpu", 0),     # this dtype's graph, then
                  Case(6, 8, 4, 5, "uniform", dtype, "cpu", 0)):    # its symbolic-size graph
        equivalence_property(first, [variant], baseline=baseline)
    before = compile_count()

    @given(cases(st.just(dtype), sizes=unspecialised, kinds=index_kinds, y_range=st.just((0, 5.5)),
                 device=st.just("cpu")))
    def prop(case):
        equivalence_property(case, [variant], baseline=baseline)
    prop()
    recompiles = (compile_count() - before).graphs
    assert recompiles == 0, f"{variant.name} recompiled {recompiles} graph(s) across {dtype} examples"


@pytest.mark.slow
def test_a_compiled_variant_holds_at_sizes_of_one_and_an_empty_batch(compiled, baseline):
    variant = compiled
    for case in (Case(1, 1, 1, 1, "same", torch.float32, "cpu", 1),
                 Case(3, 4, 2, 0, "uniform", torch.float32, "cpu", 2)):
        equivalence_property(case, [variant], baseline=baseline)


@pytest.mark.slow
@pytest.mark.parametrize("bug", BUGS[:2], ids=[b.name for b in BUGS[:2]])
def test_a_compiled_bug_is_caught_naming_itself(bug, baseline):
    twin = bug.compiled()
    for seed in range(5):
        try:
            equivalence_property(Case(30, 40, 5, 64, "duplicates", torch.float32, "cpu", seed), [twin],
                                 baseline=baseline)
        except AssertionError as e:
            assert f"{bug.name}_compiled vs {baseline.name} (" in str(e), str(e)[:500]
            return
    pytest.fail(f"{twin.name} passed five cases")


@pytest.mark.slow
def test_an_input_of_other_strides_or_sizes_is_guarded_not_misread(first_compiled):
    """Inductor's size asserts are off (`INDUCTOR_OPTIONS`): dynamo's guards must stop an index
    tensor with the graph's sizes but other strides (users and items interleaved in memory the
    other way) or other sizes from being read as the tensor the graph was built for."""
    twin = first_compiled
    eager = replace(twin, build=twin.build.__wrapped__)
    gen = torch.Generator().manual_seed(0)
    x = torch.stack([torch.randint(0, 40, (16,), generator=gen),
                     torch.randint(0, 50, (16,), generator=gen)], dim=1)
    params = eager.to_canonical(eager.make(40, 50, 4))
    models = [v.make(40, 50, 4, params=params) for v in (eager, twin)]
    # with autograd on: the no_grad graph is left for the warm-up test below to compile
    for batch in (x, x.T.contiguous().T, x[:9], x[::2]):
        want, got = (m(batch).squeeze().detach() for m in models)
        where = f"{twin.name}, strides {batch.stride()} sizes {tuple(batch.shape)}"
        torch.testing.assert_close(got, want, msg=lambda m, where=where: f"{where}: {m}")
    assert INDUCTOR_OPTIONS == {"size_asserts": False}     # what this test stands behind


@pytest.mark.parametrize("mode", MODES, ids=str)
def test_every_mode_keeps_its_own_options_beside_dotbias_inductor_options(mode):
    """torch.compile takes a mode or options, not both: the mode's options must survive."""
    from torch._inductor import list_mode_options
    options = compile_kwargs(mode, None)["options"]
    assert options == {**list_mode_options(mode or "default"), **INDUCTOR_OPTIONS}
    assert options["size_asserts"] is False and INDUCTOR_OPTIONS.items() <= options.items()


def test_the_compiled_twin_keeps_paths_init_and_shape_of_any_variant(eager, registry):
    variant, twin = eager, eager.compiled()
    assert twin.name == f"{variant.name}_compiled" and twin.exact_with is None
    assert registry.declared_init(twin)[0] == registry.declared_init(variant)[0]
    model = twin.make(5, 6, 3)
    assert is_compiled(model)       # compiled lazily: building it costs no compilation
    params = variant.to_canonical(variant.make(5, 6, 3))
    back = twin.to_canonical(twin.load_canonical(model, params))
    assert all(torch.equal(a, b) for a, b in zip(params, back))
    assert twin.compiled("max-autotune-no-cudagraphs").name.endswith("_compiled_max_autotune_no_cudagraphs")
    assert variant.compiled(dynamic=True).name == f"{variant.name}_compiled_dynamic"
    with pytest.raises(ValueError, match="compile mode 'fastest'"):
        variant.compiled("fastest")


def test_a_declared_dtype_set_refuses_the_others_naming_the_variant():
    v = Variant("only32", zoo.TORCH_EMB.build, "float32 only", "[bs]", dict(zoo.TORCH_EMB.paths),
                dtypes=(torch.float32,), dtype_note="a test")
    assert v.unsupported(torch.float32) is None and v.compiled().unsupported(torch.float32) is None
    with pytest.raises(ValueError, match="variant 'only32' does not support torch.float16: a test"):
        v.make(2, 2, 2, dtype=torch.float16)


def test_compile_flag_and_env_register_the_twins_of_plugged_in_variants(monkeypatch):
    monkeypatch.delenv(plugins.ENV, raising=False)
    monkeypatch.delenv(plugins.COMPILE_ENV, raising=False)
    parser = argparse.ArgumentParser()
    plugins.add_variant_option(parser)
    flag = parser.parse_args(["--compile"]).compile
    assert flag is True and parser.parse_args([]).compile is False
    found = plugins.load_variants(["dotbias.models.zoo:TORCH_EMB_SPARSE"], entry_points=False,
                                  compile=flag)
    assert list(found.variants)[-3:] == ["torch_emb_sparse", "cp_compiled", "torch_emb_sparse_compiled"]
    assert "cp_compiled" not in plugins.load_variants(entry_points=False).variants   # not lasting
    monkeypatch.setenv(plugins.COMPILE_ENV, "1")
    assert "cp_compiled" in plugins.load_variants(entry_points=False).variants
    assert found.get_variant("emb_compiled").build.__wrapped__ is found.variants["emb"].build
    assert found.get_variant("emb_compiled") is found.get_variant("emb_compiled")   # made once


class FakeCompiler:
    """A counter standing in for dynamo's: a function 'compiles' on its first `warm` calls and at
    call `late` (a recompile in the middle of the timed rounds), if given."""
    def __init__(self, clock):
        self.graphs, self.clock = 0, clock

    def op(self, cost: float, warm: int, late: int | None = None):
        calls = [0]

        def fn():
            calls[0] += 1
            if calls[0] <= warm or calls[0] == late:
                self.graphs += 1
                self.clock.now += 5.0           # compilation: seconds
            self.clock.now += cost
        return fn


@pytest.fixture
def fake(monkeypatch):
    clock = type("Clock", (), {"now": 0.0, "__call__": lambda self: self.now})()
    monkeypatch.setattr(rounds.time, "perf_counter", clock)
    compiler = FakeCompiler(clock)
    monkeypatch.setattr(rounds, "compile_count", lambda: CompileCount(compiler.graphs, 0))
    return compiler


def test_compilation_never_lands_inside_a_timed_round(fake):
    """A function compiling at its first two calls (forward, then backward) is warmed up until
    a call compiles nothing; every timed block then runs compiled code."""
    res = rounds.interleave({"eager": fake.op(1e-3, 0), "compiled": fake.op(1e-3, 2)},
                            budget_s=0.2, block_s=4e-3)
    assert res.compiles_in_rounds == {"eager": 0, "compiled": 0}
    assert res.first_call_s["compiled"] == pytest.approx(5.001)
    assert max(res.seconds["compiled"]) == pytest.approx(1e-3)


def test_a_recompile_inside_the_rounds_is_counted_and_flagged_in_the_report(fake):
    res = rounds.interleave({"eager": fake.op(1e-3, 0), "compiled": fake.op(1e-3, 1, late=40)},
                            budget_s=0.2, block_s=4e-3)
    assert res.compiles_in_rounds == {"eager": 0, "compiled": 1}
    group = Group("forward", "cpu", Size("tiny", 5, 6, 2, 4), "float32")
    benches = [{"name": v, "stats": {"median": 1e-3}, "extra_info": {
        "group": group.as_dict(), "variant": v, "compiled": v == "compiled", "timing": {
            "seconds": [res.seconds[v]], "iterations": [res.iterations[v]],
            "first_call_s": [res.first_call_s[v]], "compiles_in_rounds": [res.compiles_in_rounds[v]]}}}
        for v in ("compiled", "eager")]
    text = "\n".join(verdict_lines(summarise_group([read_benchmark(b, b["name"]) for b in benches])))
    assert "RECOMPILED: compiled compiled 1 graph(s) inside the timed rounds" in text, text
    assert "compiled first call 5 s (compilation, outside the rounds)" in text, text
    assert "eager first call" not in text, text


@pytest.mark.slow
def test_a_real_compiled_forward_compiles_in_the_warm_up_only(first_compiled, registry):
    variant = first_compiled
    group = Group("forward", "cpu", Size("tiny", 20, 30, 4, 8), "float32")
    registered = dict(registry.variants)
    res = rounds.interleave({variant.name: make_op(group, variant.name, registry)}, budget_s=0.05,
                            block_s=1e-3)
    assert dict(registry.variants) == registered     # found by name, not registered as a side effect
    assert res.compiles_in_rounds == {variant.name: 0}
    assert res.first_call_s[variant.name] > 20 * max(res.seconds[variant.name])
