"""`dotbias check`'s answer as records: one `CheckRow` per (case, pair, dtype, device, mode), one
`InitRow` per variant, and the `CheckSummary` over them with its verdict. JSON only at the edge:
`as_json` is the one writer of equivalence.json and `read_check_summary` its one reader (any format
up to FORMAT; a file without "format" is format 1, which lacked it). Standard library and `io`
only, so that `dotbias report --versions` reads it without torch."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

from dotbias.io.files import read_json

FORMAT = 2      # equivalence.json's "format"; the files of format 1 had no "format" key


@dataclass(frozen=True)
class CheckRow:
    case: str
    pair: str
    dtype: str
    device: str
    deterministic: bool
    rule: str                   # "bitwise", "within error" (per tensor; both when mixed)
    exact: bool                 # bitwise equal to the baseline, promised or not
    close: bool                 # held to the contract
    max_abs_output_diff: float | None   # vs the baseline (None: not comparable, see failure)
    max_abs_grad_diff: float | None     # vs the baseline, over the four gradients
    worst_ratio: float | None           # largest error / allowed over the within-error tensors
    failure: str = ""           # the first failing tensor's message, first line
    worst_tensor: str = ""      # the tensor of `worst_ratio` ("output" or a canonical gradient)


@dataclass(frozen=True)
class InitRow:
    """A variant's fresh init against what it declares (`inits.check_init`)."""
    variant: str
    init: str | None            # the declared init's text (None: not declared)
    source: str                 # "declared" or where it was inherited from
    passed: bool
    failures: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckSummary:
    """The grid's verdict on one torch build: 'bitwise equal', 'equivalent within error' or
    'DIFFERENT', with every row and init behind it."""
    torch: str
    threads: int
    contract: str
    verdict: str
    baseline: str
    rows: tuple[CheckRow, ...]
    inits: tuple[InitRow, ...] = ()

    @property
    def max_abs_output_diff(self) -> float | None:
        return _largest(r.max_abs_output_diff for r in self.rows)

    @property
    def max_abs_grad_diff(self) -> float | None:
        return _largest(r.max_abs_grad_diff for r in self.rows)

    @property
    def inexact_cases(self) -> list[str]:
        return sorted({f"{r.case} {r.pair} {r.dtype} {r.device}" + (" det" if r.deterministic else "")
                       for r in self.rows if not r.exact})

    def as_json(self) -> dict:
        """equivalence.json (format FORMAT): the one writer."""
        return {"format": FORMAT, "torch": self.torch, "threads": self.threads,
                "contract": self.contract, "verdict": self.verdict, "baseline": self.baseline,
                "inits": [asdict(i) | {"failures": list(i.failures)} for i in self.inits],
                "max_abs_output_diff": self.max_abs_output_diff,
                "max_abs_grad_diff": self.max_abs_grad_diff, "inexact_cases": self.inexact_cases,
                "rows": [asdict(r) for r in self.rows]}


def _largest(values) -> float | None:
    return max((v for v in values if v is not None), default=None)


def _record(cls, data: dict, where: str):
    """`cls` from a JSON object: its known keys (a missing one with a default takes it)."""
    known = {f.name for f in fields(cls)}
    try:
        return cls(**{k: v for k, v in data.items() if k in known})
    except TypeError as e:
        raise ValueError(f"{where}: {str(e).split('(', 1)[-1].rstrip(')')}") from None


def check_summary_from_json(data: object, where: str) -> CheckSummary:
    """The one reader of equivalence.json: any format this dotbias reads, else one line naming
    `where`."""
    if not isinstance(data, dict) or "verdict" not in data or "torch" not in data:
        raise ValueError(f"{where}: not a `dotbias check` file (no 'verdict' and 'torch')")
    version = data.get("format", 1)
    if version not in range(1, FORMAT + 1) or isinstance(version, bool):
        raise ValueError(f"{where}: `dotbias check` format {version!r}; this dotbias reads 1 to {FORMAT}")
    rows = tuple(_record(CheckRow, r, f"{where}: row {i}") for i, r in enumerate(data.get("rows", [])))
    inits = tuple(_record(InitRow, {**i, "failures": tuple(i.get("failures", ()))}, f"{where}: init")
                  for i in data.get("inits", []))
    return CheckSummary(str(data["torch"]), data.get("threads"), data.get("contract", ""),
                        data["verdict"], data.get("baseline", "cp"), rows, inits)


def read_check_summary(path: str | Path) -> CheckSummary:
    """equivalence.json read once into a `CheckSummary`; a bad file raises one line naming it."""
    return check_summary_from_json(read_json(path, "`dotbias check` JSON"), str(path))
