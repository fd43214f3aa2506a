"""The map of disagreement: inputs outside the book's `[bs, 2]` long batch of valid indices, each
run against every registered variant at identical canonical parameters, recording what each does.

Nothing here is written down by hand: `disagreement_map()` runs each input and keeps the exception
type and message, or the output shape and values."""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch

from dotbias.io.progress import AS_TERMINAL, Progress
from dotbias.io.tables import markdown_table
from dotbias.models.inputs import make_inputs
from dotbias.models.variant import Variant

N = 3           # users and items: small enough that a 3-row mask has the shape of a parameter
N_FACTORS = 4
ULPS = 4        # outputs this close (in float32 ulps of their scale) differ only by rounding


@dataclass
class Outcome:
    """What one model did with one input: an output, or an exception."""
    variant: str
    rows: int = 0
    shape: list[int] | None = None
    values: list[float] | None = None
    error_type: str | None = None
    message: str | None = None
    warning: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_type is None

    def __str__(self) -> str:
        if not self.ok:
            return f"{self.error_type}: {self.message}"
        warned = f" (warns: {self.warning})" if self.warning else ""
        return f"output {self.shape} for {self.rows} rows{warned}"


@dataclass
class Disagreement:
    """One input, what each variant did, and whether they agree."""
    key: str
    input: str
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """'yes' (same values bitwise, or the same exception type and message), 'within error'
        (outputs apart by at most ULPS float32 ulps of their scale: a reordered sum) or 'NO'."""
        first = self.outcomes[0]
        if not first.ok:
            same = all((o.error_type, o.message) == (first.error_type, first.message)
                       for o in self.outcomes)
            return "yes" if same else "NO"
        if not all(o.ok and o.shape is not None and len(o.values) == len(first.values)
                   for o in self.outcomes):
            return "NO"
        if all(o.values == first.values for o in self.outcomes):
            return "yes"
        a = torch.tensor(first.values, dtype=torch.float64)
        atol = ULPS * torch.finfo(torch.float32).eps * (a.abs().max().item() if a.numel() else 0.0)
        close = all(torch.allclose(torch.tensor(o.values, dtype=torch.float64), a, rtol=0, atol=atol)
                    for o in self.outcomes)
        return "within error" if close else "NO"

    @property
    def agree(self) -> bool:
        return self.verdict != "NO"

    def outcome(self, variant: str) -> Outcome:
        return next(o for o in self.outcomes if o.variant == variant)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["agree"], d["verdict"] = self.agree, self.verdict
        return d


def inputs() -> list[tuple[str, str, torch.Tensor]]:
    """(key, description, batch) for every input on the map; models have N users, N items."""
    mask = [[1, 1], [0, 0], [1, 1]]
    return [
        ("negative", "negative index (user -1)", torch.tensor([[-1, 0], [0, 1]])),
        ("out_of_range", f"out-of-range index (user {N}, one past the end)",
         torch.tensor([[N, 0], [0, 1]])),
        ("uint8", f"uint8 indices, {N} rows (a mask's shape)", torch.tensor(mask, dtype=torch.uint8)),
        ("bool", f"bool indices, {N} rows (a mask's shape)", torch.tensor(mask, dtype=torch.bool)),
        ("uint8_short", "uint8 indices, 2 rows", torch.tensor(mask[:2], dtype=torch.uint8)),
        ("float", "float indices", torch.tensor([[0.0, 1.0], [2.0, 0.0]])),
        ("int32", "int32 indices", torch.tensor([[0, 1], [2, 0]], dtype=torch.int32)),
        ("int16", "int16 indices", torch.tensor([[0, 1], [2, 0]], dtype=torch.int16)),
        ("empty", "empty batch [0, 2]", torch.zeros(0, 2, dtype=torch.long)),
    ]


def run_input(x: torch.Tensor, variants: Sequence[Variant], seed: int = 0) -> list[Outcome]:
    """Run `x` through each variant at the same canonical parameters; record what happens."""
    params = make_inputs(N, N, N_FACTORS, 1, seed=seed, std=0.5).params
    out = []
    for variant in variants:
        name, model = variant.name, variant.from_canonical(params)
        try:
            with torch.no_grad(), warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                y = model(x)
        except Exception as e:  # the point is to record whatever it raises
            out.append(Outcome(name, x.shape[0], error_type=type(e).__name__,
                               message=str(e).split("\n")[0]))
            continue
        warning = str(caught[0].message).split("\n")[0] if caught else None
        out.append(Outcome(name, x.shape[0], list(y.shape),
                           y.reshape(-1).tolist(), warning=warning))
    return out


def disagreement_map(variants: Sequence[Variant], progress: Progress = AS_TERMINAL
                     ) -> list[Disagreement]:
    """Every input on the map, run against every variant of `variants` (a run's: its registry's)."""
    return [Disagreement(key, desc, run_input(x, variants))
            for key, desc, x in progress.track(inputs(), "ablations: disagreement map")]


def render_map(rows: list[Disagreement], variants: list[str] | None = None) -> str:
    """A markdown table: input | one column per variant | agree?"""
    names = variants or [o.variant for o in rows[0].outcomes]
    return markdown_table(["input", *names, "agree?"],
                          ([r.input, *(_short(str(r.outcome(n))) for n in names), r.verdict]
                           for r in rows))


def _short(text: str, width: int = 110) -> str:
    text = text.replace("|", "/")
    return text if len(text) <= width else text[:width - 3] + "..."
