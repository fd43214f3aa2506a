"""Where two runs of a batch differ and how a failure says it: the sizes (`describe`), the worst
row (`worst`), `torch.testing.assert_close`'s message led by them (`close_message`), bitwise
equality of a run (`bitwise`) and the declared output shape and dtype (`check_output`)."""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from dotbias.models.canonical import Canonical, squeeze
from dotbias.models.variant import Variant


def describe(params: Canonical, bs: int) -> str:
    n_users, n_items, n_factors = params.sizes
    t = params.user_factors
    return (f"n_users={n_users}, n_items={n_items}, n_factors={n_factors}, bs={bs}, "
            f"{str(t.dtype).removeprefix('torch.')}, {t.device.type}")


def worst(tensor: str, diff: Tensor) -> str:
    """'user_factors row 12' / 'output index 3': where `diff` is largest."""
    if diff.numel() == 0:
        return tensor
    idx = int(diff.reshape(-1).argmax())
    row = idx // diff.shape[1] if diff.dim() == 2 else idx
    return f"{tensor} {'index' if tensor == 'output' else 'row'} {row}"


def close_message(actual: Tensor, expected: Tensor, atol: float, head: Callable[[Tensor], str],
                  largest: float | None = None) -> str:
    """torch.testing.assert_close with rtol 0; '' when it passes, else its message led by head.
    A pass `surely_close` sees is returned without it (assert_close costs ~0.3 ms a tensor, a
    third of a property's check); `largest`: max |actual - expected|, where the caller has it."""
    if surely_close(actual, expected, atol, largest):
        return ""
    try:
        torch.testing.assert_close(actual, expected, rtol=0, atol=atol, equal_nan=True,
                                   msg=lambda m: f"{head((actual - expected).abs())}\n{m}")
    except AssertionError as e:
        return str(e)
    return ""


def surely_close(actual: Tensor, expected: Tensor, atol: float, largest: float | None = None) -> bool:
    """True only where `close_message`'s assert_close (rtol 0, `atol`, NaNs equal) passes too:
    same shape, dtype and device, dense, and bitwise equal when `atol` is 0, else float64 with
    every |actual - expected| finite and <= atol (isclose's own test, in the same dtype, which
    holds a non-finite value close only to itself). False says nothing: ask assert_close.
    `largest`: that max |actual - expected|, where the caller computed it already."""
    if (actual.shape != expected.shape or actual.dtype != expected.dtype or actual.numel() == 0
            or actual.device != expected.device or actual.layout != torch.strided
            or expected.layout != torch.strided):
        return False
    if atol == 0:
        return torch.equal(actual, expected)
    if actual.dtype != torch.float64:
        return False
    if largest is None:
        largest = float((actual - expected).abs().max())
    return math.isfinite(largest) and largest <= atol


def bitwise(run: tuple[Tensor, Canonical], other: tuple[Tensor, Canonical]) -> bool:
    """Output and every gradient bitwise equal."""
    return torch.equal(squeeze(run[0]), squeeze(other[0])) and all(
        torch.equal(a, b) for a, b in zip(run[1], other[1]))


def check_output(variant: Variant, out: Tensor, bs: int, dtype: torch.dtype, label: str) -> None:
    """The declared output shape and the parameters' dtype, exactly."""
    want = {"[bs, 1]": [bs, 1], "[bs]": [bs]}.get(variant.output_shape)
    if want is None:
        raise ValueError(f"variant {variant.name!r}: output_shape must be '[bs]' or '[bs, 1]', "
                         f"got {variant.output_shape!r}")
    if list(out.shape) != want:
        raise AssertionError(f"{label}: {variant.name} output has shape {list(out.shape)}, "
                             f"declared {variant.output_shape}")
    if out.dtype != dtype:
        raise AssertionError(f"{label}: {variant.name} output is {out.dtype}, parameters {dtype}")
