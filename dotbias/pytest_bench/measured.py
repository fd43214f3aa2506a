"""What one `pytest bench` item measured, as the record the report reads
(`report.benchmark_json.Benchmark`), built from the values the session holds: the session hands
report typed records, never pytest-benchmark-shaped dicts. The extra_info saved beside it is the
JSON edge (`session.measure` writes it, `benchmark_json.read_benchmark` reads a saved run)."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from dotbias.equivalence.contract_note import ContractNote
from dotbias.report.benchmark_json import Benchmark
from dotbias.timing.adaptive import GroupTiming
from dotbias.timing.groups import SWEEP_AXES, Floor, Group
from dotbias.timing.instruction_counts import Counts


def benchmark_record(group: Group, variant: str, baseline: str, timed: GroupTiming, *,
                     compiled: bool, aa: Sequence[Sequence[float]] = (), notes: Sequence[str] = (),
                     peak_bytes: int | None = None, floor: Floor | None = None,
                     instructions: Counts | None = None, contract: ContractNote | None = None
                     ) -> Benchmark:
    """(group, variant)'s record: its rounds per process in `timed`, the A/A copy's (`aa`), and
    what else was measured (`compiled`: whether its first call compiles,
    `Registry.compiles`); the same values its extra_info saves. Name, pytest's node id and
    pytest-benchmark's median are the benchmark's own (`dataclasses.replace` them in)."""
    first_calls = [r.first_call_s[variant] for r in timed.rounds]
    return Benchmark(
        "", group, variant, baseline, tuple(tuple(p) for p in timed.seconds(variant)),
        tuple(tuple(p) for p in aa), None, compiled, torch.get_num_threads(),
        tuple(SWEEP_AXES.get(group.size.name, ())), max(first_calls) if first_calls else None,
        sum(r.compiles_in_rounds[variant] for r in timed.rounds), peak_bytes, floor,
        instructions, tuple(notes), contract=contract, servers=timed.servers)
