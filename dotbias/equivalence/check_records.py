"""What a check finds, as records: one tensor held to the contract (`TensorCheck`) and one
variant against the baseline on one batch (`VariantCheck`). How a mismatch is found and worded is
`mismatches`."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TensorCheck:
    """One tensor of one variant held to the contract."""
    tensor: str             # "output" or a canonical name (its gradient)
    rule: str               # "bitwise" or "within error"
    max_err: float          # vs the baseline (bitwise) or vs float64 (within error)
    allowed: float
    passed: bool
    message: str = ""       # assert_close's message, led by pair, sizes, tensor and row


@dataclass(frozen=True)
class VariantCheck:
    """A variant against the baseline on one batch."""
    variant: str
    baseline: str
    where: str
    checks: tuple[TensorCheck, ...]
    exact: bool             # every value bitwise equal to the baseline's, promised or not

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def first_failure(self) -> TensorCheck | None:
        return next((c for c in self.checks if not c.passed), None)

    @property
    def usage(self) -> float:
        """The largest error / allowed over the tensors held within error or to the a-priori
        bound (what `hypothesis.target` drives up; above 1 is a failure)."""
        return max([c.max_err / c.allowed for c in self.checks if c.allowed > 0] or [0.0])
