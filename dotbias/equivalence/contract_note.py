"""What `pytest bench` records beside a time (`extra_info["contract"]`): whether the timed variant
or training setup kept the contract at the benchmark's own shape, so a report can say, next to a
fast time, that it is the same model or the same training. Torch-free (the report reads it);
`equivalence.held` makes it."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ContractNote:
    passed: bool
    what: str               # what was held: one batch's output and gradients, or k one-cycle steps
    usage: float            # the largest error / allowed over every tensor held (above 1: failed)
    message: str = ""       # the first failure's message

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: object, where: str) -> ContractNote:
        """The inverse of `as_dict`; ValueError in one line naming `where`."""
        try:
            return cls(bool(d["passed"]), str(d["what"]), float(d["usage"]), str(d.get("message", "")))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ValueError(f"{where}: extra_info.contract is not a contract note: {d!r:.80}") from None

    def short(self) -> str:
        """`passed: 8 one-cycle steps (0.04 of allowed)` or `FAILED: <first failure>`."""
        if self.passed:
            return f"passed: {self.what} ({self.usage:.2g} of allowed)"
        return f"FAILED: {self.message.splitlines()[0][:160] if self.message else self.what}"
