"""Peak memory of one call of an operation, measured from the allocator, not estimated.

CPU: `torch.profiler` with `profile_memory=True` records every allocation and free of the CPU
allocator (operator outputs, autograd's saved tensors and gradients, a kernel's own temporaries);
the peak is the largest running sum of those events above the bytes live at the start. CUDA:
`torch.cuda.reset_peak_memory_stats` and `max_memory_allocated` minus the bytes allocated at the
start. One warm-up call first, so lazily created state (an optimizer's moments) is not counted as
a per-call cost; the same call then gives the same figure every time."""
from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Callable, Iterator

import torch
from torch.profiler import ProfilerActivity, profile

from dotbias.models.registry import Registry
from dotbias.timing.groups import Group
from dotbias.timing.operations import make_op


@contextlib.contextmanager
def _quiet_fd2() -> Iterator[None]:
    """The profiler's C++ side prints start/stop lines on file descriptor 2 (not through Python);
    they say nothing about the user's input, so fd 2 points at /dev/null while it runs."""
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def _cpu_memory_events(fn: Callable[[], object]) -> list[int]:
    """Bytes allocated (+) and freed (-) by the CPU allocator during one call, in order."""
    with _quiet_fd2(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = [(e.start_ns(), i, e.nbytes()) for i, e in enumerate(prof.profiler.kineto_results.events())
              if e.name() == "[memory]" and e.device_type().name == "CPU"]
    return [nbytes for _, _, nbytes in sorted(events)]


def cpu_peak_bytes(fn: Callable[[], object]) -> int:
    """The largest number of bytes the CPU allocator held above its level at the start, during one
    call of `fn` (allocations added, frees subtracted, in order). The warm-up call runs under the
    profiler too: it reports the free of a block only if it saw the block's allocation, so the
    buffers a call frees from the call before (last step's gradients) are then always counted."""
    _cpu_memory_events(fn)
    live = peak = 0
    for nbytes in _cpu_memory_events(fn):
        live += nbytes
        peak = max(peak, live)
    return peak


def cuda_peak_bytes(fn: Callable[[], object], device: str | torch.device) -> int:
    """The CUDA caching allocator's peak of allocated bytes during one call, above the start."""
    torch.cuda.synchronize(device)
    start = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize(device)
    return int(torch.cuda.max_memory_allocated(device) - start)


def peak_bytes(fn: Callable[[], object], device: str | torch.device = "cpu") -> int:
    """Peak bytes allocated by one call of `fn` after one warm-up call. The garbage collector is
    off during the calls: otherwise it may free another object's tensors in the middle of one, at
    a moment that differs from run to run. (No collection first: garbage left from before is not
    freed while the collector is off, and a full collection with torch and fastai loaded took
    0.22 s, most of what measuring a benchmark's memory cost.)"""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        if torch.device(device).type == "cuda":
            fn()
            return cuda_peak_bytes(fn, device)
        return cpu_peak_bytes(fn)
    finally:
        if was_enabled:
            gc.enable()


def op_peak_bytes(group: Group, variant: str, registry: Registry, seed: int = 0) -> int:
    """Peak bytes of one call of `group.operation` of `variant` (`make_op`'s closure; `registry`:
    the run's)."""
    return peak_bytes(make_op(group, variant, registry, seed), group.device)
