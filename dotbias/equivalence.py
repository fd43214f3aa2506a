"""What "equivalent" means, in one place, and the checks built on it: outputs, gradients and
training trajectories of variants at identical canonical parameters.

Functions return plain results (`Diff`, `PairResult`); `check_pair` turns a mismatch into a
message naming the variant pair, the sizes, the tensor and the largest difference.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .canonical import Canonical, squeeze
from .tables import verdict_word
from .variants import Variant

# One place for tolerances: (rtol, atol) per dtype, as torch.testing.assert_close's defaults, which
# is what "matches" means here. Bitwise equality is reported separately (Diff.exact).
TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float64: (1e-7, 1e-7),
    torch.float32: (1.3e-6, 1e-5),
    torch.float16: (1e-3, 1e-5),
    torch.bfloat16: (1.6e-2, 1e-5),
}


# Where bitwise equality is expected (measured on torch 2.13, stated once here):
# - CPU outputs: always (same gathers, same elementwise ops, same reductions).
# - CPU gradients: always, except float32 when more than one thread works and the gradient
#   accumulates at least GRAIN_SIZE (32,768) values (batch x row width): then the indexing model's
#   `index_put_(accumulate=True)` adds in parallel with atomics, in no fixed order. float64, float16
#   and bfloat16 take torch's serial path; `torch.use_deterministic_algorithms(True)` forces it.
# - CUDA: never promised (atomicAdd in index_put_/embedding backward): the tolerance applies.
GRAIN_SIZE = 32_768


def expect_exact(dtype: torch.dtype, device: str | torch.device, *, numel: int = 0,
                 threads: int | None = None, deterministic: bool | None = None) -> bool:
    """Whether two variants must agree bitwise on a tensor of `dtype` on `device` whose
    computation accumulates `numel` values (0 for outputs); otherwise TOLERANCES apply."""
    if torch.device(device).type != "cpu":
        return False
    threads = torch.get_num_threads() if threads is None else threads
    deterministic = (torch.are_deterministic_algorithms_enabled() if deterministic is None
                     else deterministic)
    parallel_atomic = dtype == torch.float32 and numel >= GRAIN_SIZE and threads > 1
    return deterministic or not parallel_atomic


def tolerance(dtype: torch.dtype) -> tuple[float, float]:
    """(rtol, atol) for comparing tensors of `dtype`."""
    try:
        return TOLERANCES[dtype]
    except KeyError:
        raise ValueError(f"no tolerance stated for dtype {dtype}") from None


@dataclass
class Diff:
    """How far apart two tensors are."""
    name: str
    max_abs: float
    max_rel: float
    exact: bool
    close: bool

    def __str__(self) -> str:
        return (f"{self.name}: {verdict_word(self.exact, self.close)} "
                f"(max abs {self.max_abs:.3g}, max rel {self.max_rel:.3g})")


def diff(name: str, a: Tensor, b: Tensor) -> Diff:
    """Compare two tensors of the same shape with the tolerance of their dtype."""
    if a.shape != b.shape:
        raise ValueError(f"{name}: shapes differ, {list(a.shape)} vs {list(b.shape)}")
    a64, b64 = a.detach().double().cpu(), b.detach().double().cpu()
    d = (a64 - b64).abs()
    max_abs = d.max().item() if d.numel() else 0.0
    rel = d / b64.abs().clamp_min(torch.finfo(torch.float64).tiny)
    max_rel = rel[d > 0].max().item() if (d > 0).any() else 0.0
    rtol, atol = tolerance(a.dtype)
    close = bool(torch.isclose(a64, b64, rtol=rtol, atol=atol, equal_nan=True).all())
    return Diff(name, max_abs, max_rel, bool(torch.equal(a.detach().cpu(), b.detach().cpu())), close)


@dataclass
class PairResult:
    """Outputs and gradients of two variants on one batch at identical canonical parameters."""
    a: str
    b: str
    output_shapes: tuple[list[int], list[int]]
    output: Diff
    grads: list[Diff] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return self.output.exact and all(g.exact for g in self.grads)

    @property
    def close(self) -> bool:
        return self.output.close and all(g.close for g in self.grads)

    @property
    def max_grad_abs(self) -> float:
        return max((g.max_abs for g in self.grads), default=0.0)

    def __str__(self) -> str:
        lines = [f"{self.a} vs {self.b}: output {self.output}"]
        lines += [f"  grad {g}" for g in self.grads]
        return "\n".join(lines)


def run_batch(variant: Variant, params: Canonical, x: Tensor, y: Tensor | None = None,
              y_range=(0, 5.5)) -> tuple[Tensor, Canonical]:
    """Forward and backward on one batch from canonical `params`: (raw output, canonical grads).

    The loss is the mean squared error of the squeezed output against `y` (or the sum of the
    outputs when `y` is None), so gradients flow through every parameter the batch touches.
    """
    n_users, n_items, n_factors = params.sizes
    model = variant.make(n_users, n_items, n_factors, y_range=y_range,
                         dtype=params.user_factors.dtype, device=params.user_factors.device,
                         params=params)
    out = model(x)
    flat = squeeze(out)
    loss = flat.sum() if y is None else ((flat - y.to(flat.dtype)) ** 2).mean()
    loss.backward()
    return out.detach(), variant.canonical_grads(model)


def compare_pair(a: Variant, b: Variant, params: Canonical, x: Tensor, y: Tensor | None = None,
                 y_range=(0, 5.5)) -> PairResult:
    """Run `a` and `b` on the same batch from the same parameters and compare squeezed outputs
    and the four canonical gradients."""
    out_a, grads_a = run_batch(a, params, x, y, y_range)
    out_b, grads_b = run_batch(b, params, x, y, y_range)
    return pair_result(a, b, x, (out_a, grads_a), (out_b, grads_b))


def pair_result(a: Variant, b: Variant, x: Tensor, run_a: tuple[Tensor, Canonical],
                run_b: tuple[Tensor, Canonical]) -> PairResult:
    """Compare two `run_batch` results (squeezed outputs, canonical gradients)."""
    (out_a, grads_a), (out_b, grads_b) = run_a, run_b
    shapes = (list(out_a.shape), list(out_b.shape))
    result = PairResult(a.name, b.name, shapes, diff("output", squeeze(out_a), squeeze(out_b)))
    result.grads = [diff(f"d{name}", ga, gb)
                    for name, ga, gb in zip(Canonical._fields, grads_a, grads_b)]
    return result


def declared_shape(variant: Variant, bs: int) -> list[int]:
    """The output shape `variant.output_shape` promises for a batch of `bs` rows."""
    return {"[bs, 1]": [bs, 1], "[bs]": [bs]}[variant.output_shape]


def check_pair(a: Variant, b: Variant, params: Canonical, x: Tensor, y: Tensor | None = None,
               y_range=(0, 5.5)) -> PairResult:
    """The equivalence property for one pair on one batch: each output has its declared shape, the
    squeezed outputs and the four canonical gradients match, bitwise where `expect_exact` says so,
    within TOLERANCES otherwise. Raises AssertionError naming the pair, the sizes, the tensor and
    the largest difference."""
    n_users, n_items, n_factors = params.sizes
    dtype, device = params.user_factors.dtype, params.user_factors.device
    where = (f"{a.name} vs {b.name} (n_users={n_users}, n_items={n_items}, n_factors={n_factors}, "
             f"bs={x.shape[0]}, {str(dtype).removeprefix('torch.')}, {device})")
    runs = [run_batch(v, params, x, y, y_range) for v in (a, b)]
    for v, (out, _) in zip((a, b), runs):
        if list(out.shape) != declared_shape(v, x.shape[0]):
            raise AssertionError(f"{where}: {v.name} output has shape {list(out.shape)}, "
                                 f"declared {v.output_shape}")
    result = pair_result(a, b, x, *runs)
    bs = x.shape[0]
    for d in [result.output, *result.grads]:
        width = n_factors if d.name.endswith("factors") else 1
        numel = 0 if d.name == "output" else bs * width
        exact = expect_exact(dtype, device, numel=numel)
        if not (d.exact if exact else d.close):
            want = "bitwise equal" if exact else f"close (rtol, atol = {tolerance(dtype)})"
            raise AssertionError(f"{where}: {d.name} not {want}: max abs diff {d.max_abs:.3g}, "
                                 f"max rel diff {d.max_rel:.3g}")
    return result


# --- training trajectories: k optimizer steps from the same canonical start ---------------------

@dataclass
class TrajectoryResult:
    """Per step, the four canonical parameters of `a` and `b` compared."""
    a: str
    b: str
    optimizer: str
    steps: list[list[Diff]] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return all(d.exact for step in self.steps for d in step)

    def first_mismatch(self, *, exact: bool) -> tuple[int, Diff] | None:
        """(step, diff) of the first parameter that is not bitwise equal (or not close)."""
        for k, step in enumerate(self.steps, 1):
            for d in step:
                if not (d.exact if exact else d.close):
                    return k, d
        return None

    def __str__(self) -> str:
        bad = self.first_mismatch(exact=True)
        tail = "bitwise equal throughout" if bad is None else f"first differs at step {bad[0]}: {bad[1]}"
        return f"{self.a} vs {self.b}, {self.optimizer}, {len(self.steps)} steps: {tail}"


def compare_trajectories(a: Variant, b: Variant, params: Canonical,
                         batches: Sequence[tuple[Tensor, Tensor]], optimizer: str = "adamw",
                         y_range=(0, 5.5)) -> TrajectoryResult:
    """Train `a` and `b` from the same canonical start on the same batches; compare after each step."""
    from .training import train_steps

    run_a = train_steps(a, params, batches, optimizer, y_range)
    run_b = train_steps(b, params, batches, optimizer, y_range)
    result = TrajectoryResult(a.name, b.name, optimizer)
    for pa, pb in zip(run_a, run_b):
        result.steps.append([diff(name, ta, tb) for name, ta, tb in zip(Canonical._fields, pa, pb)])
    return result


def assert_trajectories_match(result: TrajectoryResult, *, exact: bool, where: str = "") -> None:
    """Raise AssertionError naming the pair, the optimizer, the step, the tensor and the largest
    difference."""
    bad = result.first_mismatch(exact=exact)
    if bad is not None:
        k, d = bad
        want = "bitwise equal" if exact else "close"
        raise AssertionError(f"{result.a} vs {result.b} {where}: after {result.optimizer} step {k} "
                             f"of {len(result.steps)}, {d.name} not {want}: max abs diff "
                             f"{d.max_abs:.3g}, max rel diff {d.max_rel:.3g}")
