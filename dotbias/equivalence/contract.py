"""What "equivalent" means, in one place, and the check built on it.

Every variant is checked against the baseline (`cp`, the book's create_params model, unless another
is chosen: `equivalence.baseline`) and against a float64 computation of the same canonical
parameters; "every pair" is "every variant vs the baseline", since both rules are transitive within
the contract (bitwise is; within-error is measured against one shared float64 reference). The
baseline is itself held first to an a-priori bound against float64 that no variant's error enters:
a baseline that breaks it fails with its own name before anything is judged against it. Each
comparison goes through `torch.testing.assert_close`; a failure names the variant (or the
baseline), the sizes, the tensor and its worst row.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from dotbias.equivalence.baseline import DEFAULT_BASELINE, choose_baseline
from dotbias.equivalence.check_records import TensorCheck, VariantCheck
from dotbias.equivalence.mismatches import bitwise, check_output, close_message, describe, worst
from dotbias.equivalence.reference import APRIORI_ULPS, FLOOR_ULPS, Reference, reference_batch, run_batch
from dotbias.equivalence.reference import max_abs as _max
from dotbias.models.canonical import Canonical, squeeze
from dotbias.models.variant import Variant

__all__ = ["CONTRACT", "DEFAULT_BASELINE", "choose_baseline", "verdict_word", "check_variant",
           "assert_equivalent", "assert_baseline", "compare_pair"]

FACTOR = 4          # a variant may be FACTOR times as far from float64 as the baseline is, plus
                    # the floor: the error bound at FLOOR_ULPS ulps per rounding (`Reference`)
NUDGES = 3          # extra baseline trajectories with random rounding errors (see CONTRACT)
GRAIN_SIZE = 32_768
CONTRACT = (
    "Every variant is compared with the baseline (`cp` unless another is chosen) at identical "
    "canonical parameters. Output shapes are as declared and dtypes as the parameters'. Every "
    "variant, the baseline first, is within the a-priori bound of the float64 run: per tensor "
    "(output, each canonical gradient) max |variant - float64| <= the tensor's error bound with "
    f"{APRIORI_ULPS} ulps per rounding, derived from the arithmetic (each rounding costs up to that "
    "many ulps of what it rounds; sums grow as the square root of their terms, as the count of "
    "a repeated (user, item) pair's equal terms; the logit's error "
    "passes through the sigmoid's largest slope on its error interval, `1 - s` and the residual "
    "`out - y` cancel), the float64 run being the model computed from the parameters upcast; "
    "a baseline outside it fails before any variant is judged. Bitwise equal to the baseline where "
    "the two run the same ops in the same order (the same `exact_with` family, on CPU; not float32 "
    f"gradients of {GRAIN_SIZE:,}+ accumulated values on several threads unless deterministic "
    "algorithms are on). Otherwise equivalent within error: per tensor, "
    f"max |variant - float64| <= {FACTOR} x max |baseline - float64| + the same error bound with "
    f"{FLOOR_ULPS} ulps per rounding (the floor). Over k training steps the same rule holds for each "
    "parameter after each step, the baseline's error "
    f"being the largest of its run as computed and {NUDGES} runs with a random rounding error in "
    "every output (up to eps x the sum of its |terms|) and every gradient (1 ulp): how far these "
    "training dynamics carry a rounding difference (in float64 too, where the book's model trained "
    "in float64 is the reference).")


class BaselineError(AssertionError):
    """The baseline breaks the a-priori bound: nothing can be judged against it."""


def verdict_word(exact: bool, close: bool) -> str:
    """The one wording of a comparison's outcome under the contract."""
    return "bitwise equal" if exact else "equivalent within error" if close else "DIFFERENT"


def expect_exact(dtype: torch.dtype, device: str | torch.device, *, numel: int = 0,
                 threads: int | None = None, deterministic: bool | None = None) -> bool:
    """Whether two variants of one family must agree bitwise on a tensor of `dtype` on `device`
    whose computation accumulates `numel` values (0 for outputs). Measured on torch 2.13: CPU is
    exact except float32 `index_put_(accumulate=True)` on several threads (atomics); CUDA never."""
    if torch.device(device).type != "cpu":
        return False
    threads = torch.get_num_threads() if threads is None else threads
    deterministic = (torch.are_deterministic_algorithms_enabled() if deterministic is None
                     else deterministic)
    parallel_atomic = dtype == torch.float32 and numel >= GRAIN_SIZE and threads > 1
    return deterministic or not parallel_atomic


def check_tensor(name: str, runs: dict[str, Tensor], label: str, *, exact: bool,
                 scale: float | None = None, floor: float | None = None,
                 more_baselines: Sequence[Tensor] = (), bound: float | None = None,
                 what: str | None = None) -> TensorCheck:
    """Hold one tensor to the contract. `runs` holds 'variant', 'baseline', 'float64'; `floor`
    is the tensor's error bound at FLOOR_ULPS (`Reference.floors`), else FLOOR_ULPS ulps of
    `scale` (default: its largest float64 value); `more_baselines` are further
    samples of the baseline's error (the nudged trajectories), the largest of all counting;
    `bound`, the a-priori bound (None: none, as over trajectories), caps what is allowed; `what`
    names the tensor in messages (default `name`; "user_bias grad" for a gradient)."""
    v, b, ref, what = runs["variant"], runs["baseline"], runs["float64"], what or name
    if exact:
        msg = close_message(v, b, 0.0, lambda d: f"{label}: {worst(what, d)} not bitwise equal")
        return TensorCheck(name, "bitwise", _max(v.double() - b.double()), 0.0, not msg, msg)
    v64, b64 = v.double(), b.double()
    err_b = max([_max(b64 - ref)] + [_max(m.double() - ref) for m in more_baselines])
    if floor is None:
        floor = FLOOR_ULPS * torch.finfo(v.dtype).eps * (_max(ref) if scale is None else scale)
    allowed = FACTOR * err_b + floor
    runs_b = f" (largest of {1 + len(more_baselines)} runs)" if more_baselines else ""
    why = f"{FACTOR} x baseline's {err_b:.3g}{runs_b} + floor {floor:.3g}"
    if bound is not None and bound < allowed:
        allowed, why = bound, f"a-priori bound {APRIORI_ULPS} ulps per rounding"
    head = (lambda d: f"{label}: {worst(what, d)}: |variant - float64| up to {_max(d):.3g} > allowed "
            f"{why} = {allowed:.3g}")
    err = _max(v64 - ref)
    msg = close_message(v64, ref, allowed, head, largest=err)
    return TensorCheck(name, "within error", err, allowed, not msg, msg)


def check_baseline(baseline: Variant, params: Canonical, x: Tensor, y: Tensor | None = None,
                   y_range=(0, 5.5), *, reference: Reference | None = None,
                   base_run: tuple[Tensor, Canonical] | None = None) -> VariantCheck:
    """The baseline's output and four gradients against the a-priori bound (rule "a-priori"):
    what the baseline must meet before any variant is judged against it."""
    bs = x.shape[0]
    label = f"baseline {baseline.name} ({describe(params, bs)})"
    out, grads = base_run or run_baseline(baseline, params, x, y, y_range)
    ref = reference or reference_batch(params, x, y, y_range)
    checks = []
    for name, t, r in zip(("output", *Canonical._fields), (squeeze(out), *grads), (ref.out, *ref.grads)):
        what = name if name == "output" else f"{name} grad"
        bound = ref.bounds[name]
        head = (lambda d, what=what, bound=bound: f"{label}: {worst(what, d)}: |baseline - float64| "
                f"up to {_max(d):.3g} > a-priori bound {APRIORI_ULPS} ulps per rounding = "
                f"{bound:.3g}")
        t64 = t.double()
        err = _max(t64 - r)
        msg = close_message(t64, r, bound, head, largest=err)
        checks.append(TensorCheck(name, "a-priori", err, bound, not msg, msg))
    return VariantCheck(baseline.name, baseline.name, label, tuple(checks), True)


def run_baseline(baseline: Variant, params: Canonical, x: Tensor, y: Tensor | None = None,
                 y_range=(0, 5.5)) -> tuple[Tensor, Canonical]:
    """`run_batch` of the baseline; a crash or a wrong output shape or dtype is a BaselineError."""
    label = f"baseline {baseline.name} ({describe(params, x.shape[0])})"
    try:
        out, grads = run_batch(baseline, params, x, y, y_range)
        check_output(baseline, out, x.shape[0], params.user_factors.dtype, label)
    except AssertionError as e:
        raise BaselineError(str(e)) from e
    except Exception as e:
        raise BaselineError(f"{label}: raised {type(e).__name__}: {e}") from e
    return out, grads


def assert_baseline(baseline: Variant, params: Canonical, x: Tensor, y: Tensor | None = None,
                    y_range=(0, 5.5), **runs) -> VariantCheck:
    """`check_baseline`, raising BaselineError (naming the baseline) when it fails."""
    r = check_baseline(baseline, params, x, y, y_range, **runs)
    bad = r.first_failure()
    if bad is not None:
        raise BaselineError(bad.message)
    return r


def check_variant(variant: Variant, params: Canonical, x: Tensor, y: Tensor | None = None,
                  y_range=(0, 5.5), *, baseline: Variant,
                  reference: Reference | None = None,
                  base_run: tuple[Tensor, Canonical] | None = None,
                  baseline_held: bool = False) -> VariantCheck:
    """The contract for one variant on one batch (see CONTRACT); nothing raised on a mismatch:
    `VariantCheck.passed` and each `TensorCheck.message` say what failed, except that a baseline
    outside the a-priori bound raises BaselineError first (`baseline_held`: the caller held
    `base_run` to it already), and a wrong output shape or dtype raises AssertionError at once
    (nothing else is comparable then)."""
    dtype, device, bs = params.user_factors.dtype, params.user_factors.device, x.shape[0]
    label = f"{variant.name} vs {baseline.name} ({describe(params, bs)})"
    ref = reference or reference_batch(params, x, y, y_range)
    base_out, base_grads = base_run = base_run or run_baseline(baseline, params, x, y, y_range)
    if not baseline_held:
        assert_baseline(baseline, params, x, y, y_range, reference=ref, base_run=base_run)
    try:
        out, grads = run_batch(variant, params, x, y, y_range)
    except Exception as e:      # a crash on a valid batch is a failure of this pair, say which
        raise AssertionError(f"{label}: {variant.name} raised {type(e).__name__}: {e}") from e
    check_output(variant, out, bs, dtype, label)
    family = variant.same_family(baseline)
    checks = [check_tensor("output", {"variant": squeeze(out), "baseline": squeeze(base_out),
                                      "float64": ref.out}, label,
                           exact=family and expect_exact(dtype, device), floor=ref.floors["output"],
                           bound=ref.bounds["output"])]
    for name, g, gb, gr in zip(Canonical._fields, grads, base_grads, ref.grads):
        width = g.shape[1] if g.dim() == 2 else 1
        exact = family and expect_exact(dtype, device, numel=bs * width)
        checks.append(check_tensor(name, {"variant": g, "baseline": gb, "float64": gr}, label,
                                   exact=exact, floor=ref.floors[name], what=f"{name} grad",
                                   bound=ref.bounds[name]))
    return VariantCheck(variant.name, baseline.name, label, tuple(checks),
                        bitwise((out, grads), base_run))


def assert_equivalent(variants: Sequence[Variant], params: Canonical, x: Tensor,
                      y: Tensor | None = None, y_range=(0, 5.5), *, baseline: Variant
                      ) -> list[VariantCheck]:
    """The equivalence property on one batch for every variant in `variants` against
    `baseline`, the baseline first held to the a-priori bound (BaselineError naming it); raises
    AssertionError with the first failure's message. Returns the baseline's check, then each
    variant's."""
    reference = reference_batch(params, x, y, y_range)
    base_run = run_baseline(baseline, params, x, y, y_range)
    results = [assert_baseline(baseline, params, x, y, y_range, reference=reference,
                               base_run=base_run)]
    for v in variants:
        r = check_variant(v, params, x, y, y_range, baseline=baseline, reference=reference,
                          base_run=base_run, baseline_held=True)
        bad = r.first_failure()
        if bad is not None:
            raise AssertionError(bad.message)
        results.append(r)
    return results


@dataclass(frozen=True)
class PairResult:
    """Variant `b` against `a` (taken as the baseline) on one batch, as `dotbias run` reports it."""
    pair: str
    output_shapes: tuple[list[int], list[int]]
    max_abs_output_diff: float
    max_abs_grad_diff: float
    bitwise_equal: bool
    close: bool

    def as_dict(self) -> dict:
        return asdict(self)


def compare_pair(a: Variant, b: Variant, params: Canonical, x: Tensor, y: Tensor | None = None,
                 y_range=(0, 5.5)) -> PairResult:
    """`b` held to the contract with `a` as its baseline, and their largest differences."""
    run_a, run_b = run_batch(a, params, x, y, y_range), run_batch(b, params, x, y, y_range)
    try:
        close = check_variant(b, params, x, y, y_range, baseline=a, base_run=run_a).passed
    except BaselineError:       # `a` itself is outside the a-priori bound: nothing is close to it
        close = False
    grad_diff = max(_max(ga.double() - gb.double()) for ga, gb in zip(run_a[1], run_b[1]))
    return PairResult(f"{a.name} vs {b.name}", (list(run_a[0].shape), list(run_b[0].shape)),
                      _max(squeeze(run_a[0]).double() - squeeze(run_b[0]).double()), grad_diff,
                      bitwise(run_a, run_b), close)
