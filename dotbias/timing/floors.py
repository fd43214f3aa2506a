"""Physical context for a timing: how far a variant is from its floors.

Per call of an operation we count the aten ops it dispatches and the bytes their tensors hold
(inputs plus outputs, a gather counting the rows it reads rather than the whole table: an upper
bound on memory traffic, since small tensors stay in cache), then
price them: the dispatcher floor is that many tiny ops (a 1-element add, timed here), the
bandwidth floor is those bytes at the bandwidth of a tensor copy that moves as many bytes (timed
per floor: a working set that stays in cache copies several times faster than one that streams
from memory, so one big copy's bandwidth is no floor for a small step). A tensor an op writes in
place counts twice, read and written, also where the op returns nothing (`_fused_adamw_`, a
`_foreach_*_` op, a custom op such as `dotbias::row_step`). A time near the dispatcher floor is
overhead-bound; near the bandwidth floor, memory-bound.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from dotbias.timing.groups import Floor


class _Counter(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops, self.bytes = 0, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.ops += 1
        name = func.__name__
        ins = _tensors(args[1:] if name.startswith(("embedding.", "index.")) else args)
        outs = _tensors(out)
        gathered = outs if name.startswith(("embedding.", "index.")) else []   # rows read, not the table
        written = [t for t in _written(func, args, kwargs) if not any(t is o for o in outs)]
        self.bytes += sum(t.numel() * t.element_size()
                          for t in ins + _tensors(kwargs) + outs + gathered + written)
        return out


def _written(func, args, kwargs) -> list[torch.Tensor]:
    """The tensors `func`'s schema says it writes in place (`Tensor(a!)`), from its arguments."""
    out = []
    for i, arg in enumerate(func._schema.arguments):
        info = arg.alias_info
        if info is None or not info.is_write:
            continue
        value = args[i] if i < len(args) else (kwargs or {}).get(arg.name)
        out += _tensors(value)
    return out


def _tensors(x) -> list[torch.Tensor]:
    if isinstance(x, torch.Tensor):
        return [x]
    if isinstance(x, (list, tuple)):
        return [t for v in x for t in _tensors(v)]
    if isinstance(x, dict):
        return [t for v in x.values() for t in _tensors(v)]
    return []


def count_ops(fn: Callable[[], None]) -> tuple[int, int]:
    """(aten ops, bytes of their tensors) for one call of `fn` (after one untimed call)."""
    fn()
    with _Counter() as c:
        fn()
    return c.ops, c.bytes


def op_seconds(device: str = "cpu", calls: int = 20_000) -> float:
    """Seconds per tiny op through the dispatcher: the best of 5 blocks of 1-element adds."""
    a, b = torch.ones(1, device=device), torch.ones(1, device=device)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(calls // 5):
            torch.add(a, b)
        best = min(best, (time.perf_counter() - t0) / (calls // 5))
    return best


def copy_bandwidth(device: str = "cpu", nbytes: int = 2**29) -> float:
    """Bytes per second read plus written by a float32 tensor copy moving `nbytes` (half read,
    half written; at least 8 KiB, at most 512 MiB, past any cache): the best of 15 blocks of
    copies, each moving at least 32 MiB (a floor is the best case; 5 blocks of 8 MiB, about
    0.1 ms each at cache speed, came out 16% apart from one call to the next)."""
    n = min(max(int(nbytes), 2**13), 2**29) // 8
    src = torch.ones(n, device=device)
    dst = torch.empty_like(src)
    reps = max(1, 2**25 // (8 * n))
    best = float("inf")
    for _ in range(15):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(reps):
            dst.copy_(src)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - t0) / reps)
    return 8 * n / best


def floor(fn: Callable[[], None], op_s: float, device: str = "cpu") -> Floor:
    """`fn`'s two floors: its ops at `op_s` each, its bytes at the bandwidth of a copy as big."""
    ops, nbytes = count_ops(fn)
    return Floor(ops, nbytes, op_s, copy_bandwidth(device, nbytes))
