"""`equivalence.held.hold`: what `pytest bench` records beside a time, at the benchmark's shape."""
from __future__ import annotations

import math

import pytest

from dotbias.equivalence.contract_note import ContractNote
from dotbias.equivalence.held import STEPS, hold
from helpers.mutants import OPTIMIZER_BUGS

SHAPE = (60, 80, 8, 16)


def test_every_variant_and_a_correct_setup_keep_the_contract_at_a_shape(baseline, registry):
    for name in [*registry.variants, f"{baseline.name}+fused"]:
        note = hold(name, *SHAPE, baseline.name, registry=registry)
        assert note.passed and 0 <= note.usage <= 1 and not note.message, (name, note)
    fused = hold(f"{baseline.name}+fused", *SHAPE, baseline.name, registry=registry)
    assert fused.what == f"{STEPS} one-cycle steps"


@pytest.mark.parametrize("bug", OPTIMIZER_BUGS[:2], ids=[b.name for b in OPTIMIZER_BUGS[:2]])
def test_a_wrong_optimizer_fails_naming_its_setup(bug, baseline, registry):
    """Caught: a note that passes whatever the trajectory (the report would call a wrong
    optimizer the same training next to its time)."""
    note = hold(f"{baseline.name}+{bug.name}", *SHAPE, baseline.name, registry=registry.with_impls(bug))
    assert not note.passed and bug.name in note.message and note.usage > 1, note
    assert note.short().startswith("FAILED: ")


def test_a_note_reads_back_and_refuses_garbage():
    note = ContractNote(True, "8 one-cycle steps", 0.04)
    assert ContractNote.from_dict(note.as_dict(), "x") == note
    assert note.short() == "passed: 8 one-cycle steps (0.04 of allowed)"
    with pytest.raises(ValueError, match="^run.json: extra_info.contract is not a contract note"):
        ContractNote.from_dict({"passed": True}, "run.json")
    assert math.isinf(ContractNote(False, "the contract", math.inf, "boom").usage)
