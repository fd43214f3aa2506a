"""The whole training step of the book's model in one C function (`row_step.c`): forward, MSE loss,
backward and torch AdamW's for-loop arithmetic, with no dense gradient and one pass over every
parameter and its two moments (24 bytes a float32 parameter, the least an AdamW step can move).

Why: the book's step moves a dense zero gradient and its moments through ~60 dispatched ops; at
its sizes the time is dispatch and extra bytes. Not a reformulation of the training: every row is
updated as torch AdamW updates it (rows outside the batch decay, their moments too), so the
trajectory contract (`equivalence.trajectories.check_training`) holds it to the book's setup like
any implementation. It computes the book's create_params arithmetic on the model's four canonical
tensors (read by shape, `role_candidates`), not the variant's own forward: `RowStep` refuses a
model whose forward and loss differ from that arithmetic on the first batch.

The C source is compiled once per machine (`models.c_library`). Under a torch dispatch mode (the
floor counter, `timing.floors`) the step runs as one torch op, `dotbias::row_step`, which declares
the tensors it reads and writes; otherwise the same C function is called directly (the op's dispatch
cost about 3 µs of a 35 µs step)."""
from __future__ import annotations

import ctypes
import itertools
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch._C import _len_torch_dispatch_stack

from dotbias.models.adam import BETA2, BETAS, EPS
from dotbias.models.c_library import load_library

_P, _I64, _F64 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_double


class Hypers(ctypes.Structure):
    _fields_ = [(name, ctypes.c_double) for name in
                ("lo", "hi", "lr", "beta1", "beta2", "eps", "wd", "bc1", "bc2_sqrt")]


class Ctx(ctypes.Structure):
    """row_step.c's `Ctx`: what a step needs beside its batch (sizes, the tables, their moments,
    the scratch, this step's hyper-parameters), kept by the stepper and passed by address."""
    _fields_ = [("n_users", _I64), ("n_items", _I64), ("k", _I64), ("tables", _P * 4),
                ("moments", _P * 8), ("slots", _P), ("gu", _P), ("gi", _P), ("h", Hypers)]


def _row_step(x: Tensor, y: Tensor, tables: list[Tensor], moments: Tensor, slots: Tensor,
              grads: Tensor, fn: int, ctx: int) -> float:
    """The op's CPU body: the C function at address `fn` on the `Ctx` at address `ctx`, which
    points into `tables`, `moments`, `slots` and `grads` (passed so that the op declares them)."""
    return _PROTOTYPE(fn)(ctx, x.data_ptr(), x.stride(0), y.data_ptr(), x.shape[0])


_PROTOTYPE = ctypes.CFUNCTYPE(_F64, _P, _P, _I64, _P, _I64)
# One torch op, so that the floor counter (`timing.floors`) sees the tensors the step reads and
# writes ((a!): written in place). A fragment, defined once per process: a second import of this
# module (pytester drops modules between nested sessions) finds the op already there.
OPS = torch.library.Library("dotbias", "FRAGMENT")
if not hasattr(torch.ops.dotbias, "row_step"):
    OPS.define("row_step(Tensor x, Tensor y, Tensor(a!)[] tables, Tensor(b!) moments, "
               "Tensor(c!) slots, Tensor(d!) grads, int fn, int ctx) -> float")
    OPS.impl("row_step", _row_step, "CPU")


class RowStep:
    """A stepper that runs the whole step in C (`models.training.train_step` calls
    `train(model, x, y, loss_fn)`), for the book's four canonical tensors: contiguous, float32 or
    float64, on the CPU. lr and beta1 come from `set_hypers`; the step count is its own."""
    whole_step = True

    def __init__(self, params, lr: float, wd: float):
        self.params, self.wd, self.lr, self.beta1, self.t = list(params), wd, lr, BETAS[0], 0
        if (why := refusal(self.params)) is not None:
            raise ValueError(why)
        dtype = self.params[0].dtype
        lib = load_library()
        self.fn = ctypes.cast(lib.row_step_double if dtype == torch.float64 else lib.row_step_float,
                              _P).value
        self.call = _PROTOTYPE(self.fn)
        self.lib, self.model = lib, None

    def set_hypers(self, lr: float, beta1: float) -> None:
        self.lr, self.beta1 = lr, beta1

    def train(self, model: nn.Module, x: Tensor, y: Tensor, loss_fn: Callable) -> Tensor:
        if not (x.is_cpu and y.is_cpu) or x.dim() != 2 or x.shape[1] != 2 or y.numel() != x.shape[0]:
            raise ValueError(f"row_step takes a CPU batch of [bs, 2] indices and bs targets, got "
                             f"{list(x.shape)} on {x.device} and {list(y.shape)} on {y.device}")
        if self.model is not model:
            self._bind(model, x, y, loss_fn)
        self.t += 1
        h, dtype = self.ctx.h, self.tables[0].dtype
        h.lr, h.beta1, h.bc1 = self.lr, self.beta1, 1 - self.beta1 ** self.t
        h.bc2_sqrt = (1 - BETA2 ** self.t) ** 0.5
        if self.grads.numel() < 2 * x.shape[0] * (self.ctx.k + 1):
            self._scratch(x.shape[0])
        if x.dtype != torch.int64 or x.stride(1) != 1:
            x = x.to(torch.int64).contiguous()
        if y.dtype != dtype or not y.is_contiguous():
            y = y.to(dtype).contiguous()
        if _len_torch_dispatch_stack():     # watched (the floor counter): the op declares the tensors
            loss = torch.ops.dotbias.row_step(x, y, self.tables, self.moments, self.slots,
                                              self.grads, self.fn, self.address)
        else:                               # the same C call, without ~3 us of dispatch
            loss = self.call(self.address, x.data_ptr(), x.stride(0), y.data_ptr(), x.shape[0])
        if loss < 0:
            raise IndexError(f"row_step: batch row {int(-loss) - 1} indexes outside the tables "
                             f"({self.ctx.n_users} users, {self.ctx.n_items} items): "
                             f"{x[int(-loss) - 1].tolist()}")
        return torch.scalar_tensor(loss, dtype=dtype)

    def _bind(self, model: nn.Module, x: Tensor, y: Tensor, loss_fn: Callable) -> None:
        """The model's four canonical tensors (checked to be the parameters this stepper was made
        for), fresh moments (one buffer) and scratch; ValueError when the model's forward and
        loss on this batch are not the book's arithmetic that the C step computes."""
        if sorted(map(id, model.parameters())) != sorted(map(id, self.params)):
            raise ValueError("row_step: the model's parameters are not the ones it was made for")
        y_range = tuple(getattr(model, "y_range", (0, 5.5)))
        tables = _book_roles(model, role_candidates(self.params), x, y, loss_fn, y_range)
        sizes = [t.numel() for t in tables for _ in range(2)]
        self.tables, self.moments = tables, tables[0].new_zeros(sum(sizes))
        self.ctx = Ctx(tables[0].shape[0], tables[2].shape[0], tables[0].shape[1],
                       (_P * 4)(*[t.data_ptr() for t in tables]),
                       (_P * 8)(*[m.data_ptr() for m in self.moments.split(sizes)]),
                       h=Hypers(*y_range, self.lr, self.beta1, BETA2, EPS, self.wd, 1.0, 1.0))
        self.address = ctypes.addressof(self.ctx)
        self.slots = torch.full((self.ctx.n_users + self.ctx.n_items,), -1, dtype=torch.int32)
        self.ctx.slots = self.slots.data_ptr()
        self._scratch(x.shape[0])
        self.model = model

    def _scratch(self, bs: int) -> None:
        """Gradient rows (users', then items') for a batch of `bs`; the `Ctx` told."""
        self.grads = self.tables[0].new_empty(2 * bs * (self.ctx.k + 1))
        self.ctx.gu = self.grads.data_ptr()
        self.ctx.gi = self.ctx.gu + bs * (self.ctx.k + 1) * self.grads.element_size()


def refusal(params) -> str | None:
    """Why row_step cannot train these parameters, or None: it takes the four canonical tensors
    (two [n, k] factor tables, two [n] or [n, 1] biases), contiguous CPU float32 or float64."""
    params = list(params)
    shown = ", ".join(f"{list(p.shape)} {p.dtype} {p.device}" for p in params)
    dtype = params[0].dtype if params else None
    if dtype not in (torch.float32, torch.float64) or any(
            p.device.type != "cpu" or not p.is_contiguous() or p.dtype != dtype for p in params):
        return f"row_step trains contiguous CPU tensors of one dtype, float32 or float64, got {shown}"
    if not role_candidates(params):
        return ("row_step trains a model whose parameters are the four canonical tensors (two "
                f"[n, k] factor tables, two [n] or [n, 1] biases), got {shown}")
    return None


def role_candidates(params: list[Tensor]) -> list[list[Tensor]]:
    """Every way to read the four parameters as the canonical tensors (user factors, user bias,
    item factors, item bias; detached) that fits their shapes: factors [n, k] with one k, each
    bias [n] or [n, 1] with its factors' n; the model's own order first (permutations in
    lexicographic order). Shapes alone can be ambiguous (one factor, as many users as items):
    `RowStep` keeps the first whose forward is the model's on its first batch."""
    def fits(uf, ub, itf, ib) -> bool:
        return (uf.dim() == itf.dim() == 2 and uf.shape[1] == itf.shape[1] and
                all(b.dim() in (1, 2) and b.numel() == b.shape[0] == f.shape[0]
                    for f, b in ((uf, ub), (itf, ib))))
    if len(params) != 4:
        return []
    return [[params[i].detach() for i in o] for o in itertools.permutations(range(4))
            if fits(*(params[i] for i in o))]


def _book_roles(model: nn.Module, candidates: list[list[Tensor]], x: Tensor, y: Tensor,
                loss_fn: Callable, y_range: tuple[float, float]) -> list[Tensor]:
    """The first of `candidates` (those whose tables the batch's indices fit) under which the
    model's forward and loss on this batch are the book's arithmetic; else the first one's
    ValueError (torch's IndexError where no candidate fits the indices)."""
    top = x.max(dim=0).values.tolist() if x.numel() else [-1, -1]
    fit = [t for t in candidates if top[0] < t[0].shape[0] and top[1] < t[2].shape[0]]
    with torch.no_grad():
        out = model(x)
        loss = loss_fn(out, y)
    errors = []
    for tables in fit or candidates[:1]:
        try:
            _check_book_arithmetic(tables, x, y, out, loss, y_range)
            return tables
        except ValueError as e:
            errors.append(e)
    raise errors[0]


def _check_book_arithmetic(tables: list[Tensor], x: Tensor, y: Tensor, out: Tensor, loss: Tensor,
                           y_range: tuple[float, float]) -> None:
    """ValueError unless the model's output `out` and its `loss` on this batch match the book's
    create_params forward and MSE on `tables` (what the C step computes) to `assert_close`'s
    tolerance."""
    uf, ub, itf, ib = tables
    u, i = x[:, 0], x[:, 1]
    with torch.no_grad():
        res = (uf[u] * itf[i]).sum(dim=1) + ub.reshape(-1)[u] + ib.reshape(-1)[i]
        book = torch.sigmoid(res) * (y_range[1] - y_range[0]) + y_range[0]
        pairs = [("forward", out.reshape(-1), book),
                 ("loss", loss, ((book - y.to(book.dtype)) ** 2).mean())]
    for what, got, want in pairs:
        try:
            torch.testing.assert_close(got, want)
        except AssertionError as e:
            lines = str(e).strip().splitlines()
            raise ValueError(f"row_step computes the book's create_params model and MSE loss; "
                             f"this model's {what} differs on the first batch: "
                             f"{lines[-1].strip()}") from None
