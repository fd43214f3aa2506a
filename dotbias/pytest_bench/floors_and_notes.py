"""What a `pytest bench` session measures beside a benchmark's time, each made once per session:
the floors (`timing.floors`: the dispatcher's, priced once per device, and the bandwidth's, at a
copy as big as what the variant moves) and the
contract notes (`equivalence.held`: did this variant or training setup keep the contract at this
group's shape)."""
from __future__ import annotations

import math

from dotbias.equivalence.contract_note import ContractNote
from dotbias.equivalence.held import hold
from dotbias.models.registry import Registry
from dotbias.timing.floors import floor, op_seconds
from dotbias.timing.groups import Floor, Group
from dotbias.timing.operations import make_op


class FloorsAndNotes:
    def __init__(self, baseline: str, registry: Registry):
        self.baseline, self.registry = baseline, registry
        self.prices: dict[str, float] = {}                      # device -> s per tiny op
        self.notes: dict[tuple, ContractNote] = {}              # (name, size, dtype, device) -> note

    def floor(self, group: Group, variant: str) -> Floor:
        """The variant's two floors in this group."""
        if group.device not in self.prices:
            self.prices[group.device] = op_seconds(group.device)
        return floor(make_op(group, variant, self.registry), self.prices[group.device], group.device)

    def contract(self, group: Group, name: str) -> ContractNote:
        """`name` held to the contract against the baseline at this group's shape, once per shape."""
        key = (name, group.size.name, group.dtype, group.device)
        if key not in self.notes:
            z = group.size
            try:
                self.notes[key] = hold(name, z.n_users, z.n_items, z.n_factors, z.bs, self.baseline,
                                       registry=self.registry, dtype=group.dtype, device=group.device)
            except AssertionError as e:     # the baseline outside its bound, or a crash
                self.notes[key] = ContractNote(False, "the contract", math.inf, str(e))
        return self.notes[key]
