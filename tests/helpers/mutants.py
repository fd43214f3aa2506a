"""A catalogue of plausible refactoring bugs the suite must catch, and correct-but-different
variants it must accept (tests/test_mutants.py runs the suite's properties against each).

Each bug is the book's create_params model (or a zoo variant) changed in one place, marked `# <-`,
of a different kind: a wrong lookup, a dropped or detached term, a gradient-only change, bugs that
show only with duplicate indices, only with large batches, only at the last row, only in float64,
only in half precision, only after several training steps, and in the init. Optimizer bugs are
training setups (`Training`): the baseline trained by a hand-written AdamW with one bug."""
from __future__ import annotations

import torch
from fastai.layers import sigmoid_range
from torch import nn

from dotbias.models.book import DotProductBiasCP
from dotbias.models.optimizers import BETAS, EPS, AdamImpl, Training
from dotbias.models.variant import Variant
from dotbias.models.zoo import BAG, EINSUM, FASTAI, PACKED, TorchEmbeddingDotBias


def _dot_bias(self, users, movies, x):
    res = (users * movies).sum(dim=1)
    res += self.user_bias[x[:, 0]] + self.movie_bias[x[:, 1]]
    return sigmoid_range(res, *self.y_range)


class UserIndexForItemBias(DotProductBiasCP):
    """Wrong lookup: the item bias indexed with the user column."""
    def forward(self, x):
        res = (self.user_factors[x[:, 0]] * self.movie_factors[x[:, 1]]).sum(dim=1)
        res += self.user_bias[x[:, 0]] + self.movie_bias[x[:, 0]]  # <-
        return sigmoid_range(res, *self.y_range)


class DroppedUserBias(DotProductBiasCP):
    """Dropped term: the user bias left out of the sum."""
    def forward(self, x):
        res = (self.user_factors[x[:, 0]] * self.movie_factors[x[:, 1]]).sum(dim=1)
        res += self.movie_bias[x[:, 1]]  # <-
        return sigmoid_range(res, *self.y_range)


class DetachedItemBias(DotProductBiasCP):
    """Gradient-only: the item bias detached (outputs exact, its gradient zero)."""
    def forward(self, x):
        res = (self.user_factors[x[:, 0]] * self.movie_factors[x[:, 1]]).sum(dim=1)
        res += self.user_bias[x[:, 0]] + self.movie_bias[x[:, 1]].detach()  # <-
        return sigmoid_range(res, *self.y_range)


class _SigmoidRange(torch.autograd.Function):
    """A hand-fused sigmoid_range whose backward forgets the (hi - lo) factor."""
    @staticmethod
    def forward(ctx, x, lo, hi):
        s = torch.sigmoid(x)
        ctx.save_for_backward(s)
        return s * (hi - lo) + lo

    @staticmethod
    def backward(ctx, grad):
        (s,) = ctx.saved_tensors
        return grad * s * (1 - s), None, None  # <- should be * (hi - lo)


class FusedSigmoidRange(DotProductBiasCP):
    """Gradient-only: a custom autograd sigmoid_range with a wrong backward."""
    def forward(self, x):
        res = (self.user_factors[x[:, 0]] * self.movie_factors[x[:, 1]]).sum(dim=1)
        res += self.user_bias[x[:, 0]] + self.movie_bias[x[:, 1]]
        return _SigmoidRange.apply(res, *self.y_range)  # <-


class _Gather(torch.autograd.Function):
    """Row lookup with a hand-written backward that assigns instead of accumulating."""
    @staticmethod
    def forward(ctx, weight, idx):
        ctx.save_for_backward(idx)
        ctx.shape = weight.shape
        return weight[idx]

    @staticmethod
    def backward(ctx, grad):
        (idx,) = ctx.saved_tensors
        out = grad.new_zeros(ctx.shape)
        out[idx] = grad  # <- duplicates: the last write wins; index_put_(..., accumulate=True)
        return out, None


class AssignNotAccumulate(DotProductBiasCP):
    """Only with duplicate indices: a custom lookup whose backward drops repeated rows' sums."""
    def forward(self, x):
        users = _Gather.apply(self.user_factors, x[:, 0])  # <-
        return _dot_bias(self, users, self.movie_factors[x[:, 1]], x)


class ChunkedBias(DotProductBiasCP):
    """Only with large batches: chunks of 4,096 rows to bound memory, every chunk's biases looked
    up from the first chunk's rows (the offset forgotten)."""
    CHUNK = 4096

    def forward(self, x):
        outs = []
        for s in range(0, max(len(x), 1), self.CHUNK):
            xc, xb = x[s:s + self.CHUNK], x[:min(self.CHUNK, len(x) - s)]  # <- x[s:s + CHUNK]
            res = (self.user_factors[xc[:, 0]] * self.movie_factors[xc[:, 1]]).sum(dim=1)
            outs.append(res + self.user_bias[xb[:, 0]] + self.movie_bias[xb[:, 1]])
        return sigmoid_range(torch.cat(outs), *self.y_range)


class LastRowUnreachable(DotProductBiasCP):
    """Only at the last row: indices clamped "to be safe" with an off-by-one bound."""
    def forward(self, x):
        items = x[:, 1].clamp(0, max(self.movie_factors.shape[0] - 2, 0))  # <- n - 1
        res = (self.user_factors[x[:, 0]] * self.movie_factors[items]).sum(dim=1)
        res += self.user_bias[x[:, 0]] + self.movie_bias[items]
        return sigmoid_range(res, *self.y_range)


class Float32Dot(DotProductBiasCP):
    """Only in float64: the dot product done in float32 "for speed", cast back."""
    def forward(self, x):
        users, movies = self.user_factors[x[:, 0]], self.movie_factors[x[:, 1]]
        dot = (users.float() * movies.float()).sum(dim=1).to(users.dtype)  # <-
        res = dot + (self.user_bias[x[:, 0]] + self.movie_bias[x[:, 1]])
        return sigmoid_range(res, *self.y_range)


class HalfFastPath(DotProductBiasCP):
    """Only in half precision: a separate float32 path for half inputs that forgets the item bias."""
    def forward(self, x):
        if self.user_factors.dtype not in (torch.float16, torch.bfloat16):
            return super().forward(x)
        users, movies = self.user_factors[x[:, 0]].float(), self.movie_factors[x[:, 1]].float()
        res = (users * movies).sum(dim=1) + self.user_bias[x[:, 0]].float()  # <- + item bias
        return sigmoid_range(res, *self.y_range).to(self.user_factors.dtype)


class DecayInForward(DotProductBiasCP):
    """In-place parameter change: weight decay applied by hand in forward."""
    def forward(self, x):
        with torch.no_grad():
            self.user_factors.mul_(0.999)  # <- belongs in the optimizer (and not per forward)
        return super().forward(x)


class BiasNotAParameter(DotProductBiasCP):
    """Only after training steps: the item bias kept as a plain tensor that requires grad, so
    its gradient is right but no optimizer sees it (and `.to(dtype)` does not convert it)."""
    def __init__(self, n_users, n_movies, n_factors, y_range=(0, 5.5)):
        super().__init__(n_users, n_movies, n_factors, y_range)
        bias = self.movie_bias.detach().clone().requires_grad_()
        del self.movie_bias
        self.movie_bias = bias  # <- nn.Parameter(bias)


class WideInit(DotProductBiasCP):
    """In the init: std 0.02 instead of 0.01 (a doubled std from a copied layer default)."""
    def __init__(self, n_users, n_movies, n_factors, y_range=(0, 5.5)):
        super().__init__(n_users, n_movies, n_factors, y_range)
        for p in self.parameters():
            nn.init.normal_(p, 0, 0.02)  # <-


class TorchEmbUniformInit(TorchEmbeddingDotBias):
    """In the init: nn.Embedding's default N(0, 1) kept (the explicit init line deleted)."""
    def __init__(self, n_users, n_items, n_factors, y_range=(0, 5.5)):
        super().__init__(n_users, n_items, n_factors, y_range)
        for layer in (self.user_emb, self.user_b, self.item_emb, self.item_b):
            nn.init.normal_(layer.weight)  # <-


def _torch_emb_like(name: str, cls, description: str) -> Variant:
    from dotbias.models.zoo import TORCH_EMB
    return Variant(name, cls, description, "[bs]", paths=TORCH_EMB.paths)


BUGS = [Variant(f"bug_{name}", cls, cls.__doc__.split("\n")[0], "[bs]") for name, cls in [
    ("wrong_lookup", UserIndexForItemBias), ("dropped_term", DroppedUserBias),
    ("detached_bias", DetachedItemBias), ("fused_sigmoid_backward", FusedSigmoidRange),
    ("duplicates_assign", AssignNotAccumulate), ("large_batch_chunks", ChunkedBias),
    ("last_row", LastRowUnreachable), ("float64_only", Float32Dot),
    ("half_only", HalfFastPath), ("decay_in_forward", DecayInForward),
    ("bias_not_a_parameter", BiasNotAParameter), ("init_std", WideInit),
]] + [_torch_emb_like("bug_init_default", TorchEmbUniformInit, TorchEmbUniformInit.__doc__)]

# Correct but different: other ops or orders than the baseline; the suite must accept them.
CORRECT = [FASTAI, PACKED, EINSUM, BAG]

# Each bug also as a module attribute, so one can be registered alone:
# DOTBIAS_VARIANTS=helpers.mutants:bug_last_row pytest tests (with tests/ on PYTHONPATH).
globals().update({bug.name: bug for bug in BUGS})


class HandAdamW:
    """fastai Adam's arithmetic written out (decoupled weight decay, bias-corrected moments, eps
    outside the sqrt, lr and beta1 from the schedule), with at most one `bug` switched on."""
    def __init__(self, params, lr: float, wd: float, bug: str | None = None):
        self.params, self.lr, self.wd, self.bug = list(params), lr, wd, bug
        self.beta1 = self.pending = BETAS[0]
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.t = 0

    def set_hypers(self, lr: float, beta1: float) -> None:
        self.lr = lr
        if self.bug == "stale_beta1":       # <- the previous step's beta1: read before the scheduler
            self.beta1, self.pending = self.pending, beta1
        else:
            self.beta1 = beta1

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        b1, b2, bug = self.beta1, BETAS[1], self.bug
        bc1, bc2 = (1.0, 1.0) if bug == "no_bias_correction" else (1 - b1 ** self.t, 1 - b2 ** self.t)  # <-
        for p, m, v in zip(self.params, self.m, self.v):
            g = p.grad
            if bug == "coupled_wd":
                g = g + self.wd * p  # <- L2 in the gradient: p.mul_(1 - lr * wd)
            else:
                p.mul_(1 - self.lr * self.wd)
            m.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            if bug == "eps_inside_sqrt":
                denom = (v / bc2 + EPS).sqrt()  # <- (v / bc2).sqrt() + eps
            else:
                denom = (v / bc2).sqrt() + EPS
            p.addcdiv_(m, denom, value=-self.lr / bc1)


def _hand(bug: str | None) -> AdamImpl:
    name = f"bug_{bug}" if bug else "hand_adamw"
    return AdamImpl(name, lambda ps, lr, wd: HandAdamW(ps, lr, wd, bug),
                    f"hand-written AdamW{', ' + bug.replace('_', ' ') if bug else ''}")


# Optimizer bugs, each an implementation registered only while its test runs (test_mutants.py),
# trained on the baseline's variant; and the correct hand-written one, accepted beside the built-ins.
OPTIMIZER_BUGS = [_hand(b) for b in ("no_bias_correction", "coupled_wd", "eps_inside_sqrt",
                                     "stale_beta1")]
HAND_ADAMW = _hand(None)
CORRECT_OPTIMIZERS = ["foreach", "fused", "fastai", "wrapped_fused", "compiled", "compiled_step",
                      "row_step"]


def setup_of(impl: AdamImpl | str, baseline: str) -> Training:
    """The baseline's variant trained by `impl`."""
    return Training(baseline, impl if isinstance(impl, str) else impl.name)
