"""Sparse-gradient variants (`nn.Embedding(sparse=True)`, here the zoo's opt-in `torch_emb_sparse`)
run everywhere a dense one does: gradients compared densified, and every operation with an
optimizer (timing `step`, epochs, trajectories with Adam/AdamW, fastai's fit) densifies them
before the step, which the benchmark report says."""
from __future__ import annotations

import inspect

import pytest
import torch
from hypothesis import example, given

from dotbias.data.fitting import fit_fastai, fit_lean
from dotbias.data.ratings import collab_dls, synthetic_ratings, tensors_from_dls
from dotbias.models import zoo
from dotbias.models.inputs import make_inputs
from dotbias.models.registry import Registry
from dotbias.models.sparse import SPARSE_NOTE, densify_sparse_grads, sparse_grad_modules
from dotbias.models.training import train_step
from dotbias.pytest_bench.options import REGISTRY
from dotbias.timing.groups import OPERATIONS, Group, Size
from dotbias.timing.operations import make_op, op_notes
from helpers.properties import SATURATED, equivalence_property, trajectory_property
from helpers.strategies import cases, duplicate_cases, optimizers, small_cases, step_counts


def makes_sparse_grads(variant) -> bool:
    """Whether the variant's model has a module that makes sparse gradients, looked for in its
    model as built before any torch.compile (which keeps the modules; wrapping the first model
    costs a second)."""
    return bool(sparse_grad_modules(inspect.unwrap(variant.build)(3, 4, 2)))


def sparse_variants(registry: Registry):
    """Every variant of the run's registry whose model makes sparse gradients, else the zoo's."""
    found = [v for v in registry.variants.values() if makes_sparse_grads(v)]
    return found or [v for v in zoo.OPT_IN if makes_sparse_grads(v)]


TINY = Size("tiny", 20, 30, 4, 8)


def pytest_generate_tests(metafunc):
    """`sparse`: each sparse-gradient variant of the run's registry (`sparse_variants`)."""
    if "sparse" in metafunc.fixturenames:
        metafunc.parametrize("sparse", sparse_variants(metafunc.config.stash[REGISTRY]),
                             ids=lambda v: v.name)


@pytest.fixture(scope="module")
def sparse_all(registry):
    return sparse_variants(registry)


@pytest.fixture
def with_sparse(sparse, registry):
    """The run's registry with the variant in it (timing looks variants up by name)."""
    return registry if registry.variants.get(sparse.name) is sparse else registry.with_variants(sparse)


def test_its_gradients_are_sparse_and_an_optimizer_step_densifies_them(sparse):
    inp = make_inputs(20, 30, 4, 16, seed=1)
    model = sparse.make(20, 30, 4, params=inp.params)
    opt = torch.optim.AdamW(model.parameters())
    model(inp.x).sum().backward()
    assert any(p.grad.is_sparse for p in model.parameters())
    with pytest.raises(RuntimeError, match="does not support sparse gradients"):
        opt.step()                      # what a plain loop meets
    train_step(model, opt, inp.x, inp.y)
    assert not any(p.grad.is_sparse for p in model.parameters())
    assert densify_sparse_grads(model.parameters()) == 0


def test_every_operation_runs_and_the_report_says_how(sparse, with_sparse):
    for op in OPERATIONS:
        group = Group(op, "cpu", TINY, "float32")
        make_op(group, sparse.name, with_sparse)()
        notes = op_notes(group, sparse.name, with_sparse)
        if op in ("forward", "forward_backward"):
            assert notes == []
        else:
            assert len(notes) == 1 and notes[0].startswith(f"{sparse.name}: {SPARSE_NOTE}"), notes


@given(cases())
@example(SATURATED)
def test_it_holds_to_the_contract(baseline, sparse_all, case):
    equivalence_property(case, sparse_all, baseline=baseline)


@given(duplicate_cases)
def test_it_holds_to_the_contract_with_duplicate_indices(baseline, sparse_all, case):
    equivalence_property(case, sparse_all, baseline=baseline)


@given(small_cases, optimizers, step_counts)
def test_its_optimizer_steps_keep_it_within_the_contract(baseline, sparse_all, case, optimizer, k):
    trajectory_property(case, optimizer, k, sparse_all, baseline=baseline)


def test_dense_variants_get_no_note(registry, sparse_all):
    step = Group("step", "cpu", TINY, "float32")
    for name, v in registry.variants.items():
        if v not in sparse_all:
            assert op_notes(step, name, registry) == [], name


def test_both_training_loops_train_it_and_say_how(sparse):
    dls = collab_dls(synthetic_ratings(n_ratings=2000, seed=0).ratings, bs=64, seed=0)
    data = tensors_from_dls(dls)
    for fit, on in ((fit_lean, data), (fit_fastai, dls)):
        result = fit(sparse.make(data.n_users, data.n_items, 4), on, epochs=1)
        assert result.final_valid_loss == result.final_valid_loss       # trained: not NaN
        assert len(result.notes) == 1 and result.notes[0].startswith(SPARSE_NOTE), fit.__name__
