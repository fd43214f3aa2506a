"""What a `pytest bench` session measures beside a benchmark's time, each made once per session:
the floors (`timing.floors`: the dispatcher's and the copy bandwidth's, per device) and the
contract notes (`equivalence.held`: did this variant or training setup keep the contract at this
group's shape)."""
from __future__ import annotations

import math

from dotbias.equivalence.contract_note import ContractNote
from dotbias.equivalence.held import hold
from dotbias.timing.floors import copy_bandwidth, floor, op_seconds
from dotbias.timing.groups import Group
from dotbias.timing.operations import make_op


class Measured:
    def __init__(self):
        self.prices: dict[str, tuple[float, float]] = {}    # device -> (s per tiny op, bytes/s)
        self.contracts: dict[tuple, dict] = {}              # (name, size, dtype, device) -> note

    def floor(self, group: Group, variant: str) -> dict:
        """The variant's two floors in this group (`timing.floors.Floor` as a dict)."""
        if group.device not in self.prices:
            self.prices[group.device] = (op_seconds(group.device), copy_bandwidth(group.device))
        return floor(make_op(group, variant), *self.prices[group.device]).as_dict()

    def contract(self, group: Group, name: str) -> dict:
        """`name` held to the contract at this group's shape, once per shape (a ContractNote as a
        dict: what extra_info stores)."""
        key = (name, group.size.name, group.dtype, group.device)
        if key not in self.contracts:
            z = group.size
            try:
                note = hold(name, z.n_users, z.n_items, z.n_factors, z.bs, dtype=group.dtype,
                            device=group.device)
            except AssertionError as e:     # the baseline outside its bound, or a crash
                note = ContractNote(False, "the contract", math.inf, str(e))
            self.contracts[key] = note.as_dict()
        return self.contracts[key]
