"""The loader axis of a training setup ("cp+fused+tensors"): batches cut from tensors made once
are the book's batches, bitwise, and train the book's model to the same parameters, bitwise; a
loader that is not the book's (tests/helpers/loader_mutants.py) fails the check the reference and
`dotbias compare` use (`equivalence.held.hold_loader`), naming itself and the first batch that
differs; they count in the mutation score."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dotbias.compare.training import setup_operations
from dotbias.data.fitting import fit_fastai
from dotbias.data.loaders import same_batches, tensor_batches
from dotbias.data.ratings import collab_dls, synthetic_ratings, tensors_from_dls
from dotbias.equivalence import held
from dotbias.models.inputs import random_canonical
from dotbias.timing.groups import DEFAULT_SIZES, Group
from dotbias.timing.operations import setup_in, setups_for
from helpers.loader_mutants import CORRECT_LOADERS, LOADER_BUGS


@pytest.fixture(scope="module")
def dls():
    return collab_dls(synthetic_ratings(n_users=30, n_items=40, n_ratings=1_000, seed=3).ratings,
                      bs=64, seed=42)


def test_tensor_batches_are_the_books_batches_and_train_to_the_same_parameters(dls, baseline, registry):
    assert same_batches(dls, tensor_batches(dls), epochs=3) is None
    data = tensors_from_dls(dls)
    params = random_canonical(data.n_users, data.n_items, 4, generator=torch.Generator().manual_seed(1))
    trained = []
    for loader in ("fastai", "tensors"):
        model = baseline.from_canonical(params)
        result = fit_fastai(model, dls, epochs=2, seed=5, impl=registry.get_impl("fused"), loader=loader)
        trained.append(([e.train_loss for e in result.epochs], baseline.to_canonical(model)))
    assert trained[0][0] == trained[1][0]
    assert all(torch.equal(a, b) for a, b in zip(trained[0][1], trained[1][1]))
    assert not all(torch.equal(a, b) for a, b in zip(params, trained[0][1]))     # it trained


def test_making_and_checking_the_loaders_leave_numpys_random_state_alone(dls):
    np.random.seed(11)
    expected = np.random.rand()
    np.random.seed(11)
    same_batches(dls, tensor_batches(dls))      # an unseeded fit draws what the book's would
    assert np.random.rand() == expected


@pytest.mark.parametrize("bug", LOADER_BUGS, ids=[b.__name__ for b in LOADER_BUGS])
def test_a_loader_that_is_not_the_books_fails_naming_itself_and_the_batch(bug, record_property,
                                                                           monkeypatch):
    monkeypatch.setattr(held, "feed", lambda book, loader: bug(book))
    note = held.hold_loader(bug.__name__)
    record_property("mutation", ("caught", note is not None and not note.passed))
    assert note is not None and not note.passed, f"{bug.__name__} ({bug.__doc__}) passed"
    assert note.message.startswith(f"loader {bug.__name__!r}: not the book's batches: ")
    assert "epoch" in note.message and "batch" in note.message, note.message


@pytest.mark.parametrize("loader", CORRECT_LOADERS, ids=[b.__name__ for b in CORRECT_LOADERS])
def test_a_loader_giving_the_books_batches_by_another_route_is_accepted(loader, record_property,
                                                                        monkeypatch):
    monkeypatch.setattr(held, "feed", lambda book, name: loader(book))
    note = held.hold_loader(loader.__name__)
    record_property("mutation", ("accepted", note is None))
    assert note is None, note.message


def test_a_loader_setup_is_timed_in_the_fastai_epoch_only(registry, baseline):
    parse = registry.setup
    base = baseline.name
    setup = parse(f"{base}+fused+tensors")
    assert (setup.impl, setup.loader, setup.name) == ("fused", "tensors", f"{base}+fused+tensors")
    assert parse(f"{base}+torch+tensors").name == f"{base}+torch+tensors"
    assert parse(f"{base}+torch+fastai").name == base
    for op in ("step", "epoch_lean", "epoch_fastai"):
        group = Group(op, "cpu", DEFAULT_SIZES[0], "float32")
        timed = setups_for(group, [setup, parse(f"{base}+fused")], registry)
        assert timed == ((setup.name, f"{base}+fused") if op == "epoch_fastai" else (f"{base}+fused",))
        if op != "epoch_fastai":
            with pytest.raises(ValueError, match="a loader feeds fastai's Learner only"):
                setup_in(group, setup.name, registry)
    with pytest.raises(ValueError, match="unknown loader 'pandas'"):
        parse(f"{base}+fused+pandas")
    with pytest.raises(ValueError, match=r"'\S+\+fused\+tensors' is timed in epoch_fastai; "
                                         r"--operations gave step, epoch_lean$"):
        setup_operations(["step", "epoch_lean"], setup, registry)      # not the optimizer's list


def test_a_setup_with_the_books_optimizer_and_its_own_loader_is_held_to_the_books_batches(
        registry, baseline, monkeypatch):
    """Caught: a setup whose only change is its loader held as a plain variant (one batch's output
    and gradients), its batches never compared."""
    name = f"{baseline.name}+torch+tensors"
    note = held.hold(name, 20, 30, 4, 16, baseline.name, registry=registry)
    assert note.passed and "the book's batches, bitwise" in note.what, note
    monkeypatch.setattr(held, "feed", lambda book, loader: LOADER_BUGS[0](book))
    note = held.hold(name, 20, 30, 4, 16, baseline.name, registry=registry)
    assert not note.passed and note.message.startswith("loader 'tensors': not the book's batches"), note
