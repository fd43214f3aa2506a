"""torch.compile'd models: the compiled twin of any variant (`Variant.compiled`), the dynamo
settings that keep one compiled graph across the sizes the checks draw, and compile counters.

The model is compiled in place (`nn.Module.compile`): its parameters stay where the variant's
paths say, so canonical parameters read, load and compare as for the eager model. Shapes are
torch's automatic dynamic by default (`dynamic=None`): the first graph is specialised to its
sizes (fastest for a benchmark's fixed shape), the first size change recompiles once with
symbolic sizes, parameters' included; `dynamic=True` starts symbolic. What still recompiles is a
new dtype, a new `y_range` (a Python constant in the graph), gradients on or off, and a size of 0
or 1 (dynamo specialises those). Compiled code is cached per code object, so every model built by
one variant shares its graphs.

Everything dotbias compiles (twins, the compiled optimizer step, the compiled whole step) goes
through `compile_fn`, with one inductor setting beyond the mode's: `INDUCTOR_OPTIONS`."""
from __future__ import annotations

import sys
from dataclasses import dataclass

import torch
from torch import nn

# Dynamo's default of 8 graphs per function is below the dtypes x y_ranges x 0/1-sizes a suite
# draws; past the limit it would silently run eager, so past ours it raises instead.
RECOMPILE_LIMIT = 64
MODES = (None, "default", "reduce-overhead", "max-autotune-no-cudagraphs")
# Inductor's `size_asserts` re-check, inside the compiled code on every call, that each input has
# the sizes and strides the graph was built for: dynamo's guards check exactly that before they
# choose the graph (a tensor of other sizes or strides recompiles or takes another graph; tested in
# test_compiled). Off, a compiled forward at the benchmark's shape took 0.44 of eager `cp` instead
# of 0.50 (five assert calls per call, measured by hand). Out-of-range indices are still caught
# (`assert_indirect_indexing` stays on).
INDUCTOR_OPTIONS = {"size_asserts": False}


def configure() -> None:
    """The dynamo settings compiled variants rely on (idempotent): dynamic parameter shapes, a
    recompile limit of RECOMPILE_LIMIT and an error, not an eager fallback, past it."""
    import torch._dynamo  # deferred: importing dynamo costs about as much as torch itself

    cfg = torch._dynamo.config
    cfg.force_parameter_static_shapes = False
    cfg.recompile_limit = max(cfg.recompile_limit, RECOMPILE_LIMIT)
    cfg.accumulated_recompile_limit = max(cfg.accumulated_recompile_limit, 16 * RECOMPILE_LIMIT)
    cfg.fail_on_recompile_limit_hit = True


def compile_model(model: nn.Module, mode: str | None = None, dynamic: bool | None = None
                  ) -> nn.Module:
    """`model`, compiled in place (its attributes and parameters unchanged)."""
    if mode not in MODES:
        raise ValueError(f"compile mode {mode!r}: expected one of {', '.join(map(str, MODES))}")
    model.compile(**compile_kwargs(mode, dynamic))
    return model


def compile_fn(fn, mode: str | None = None, dynamic: bool | None = None):
    """`torch.compile(fn)` with dotbias's settings (`configure`, `INDUCTOR_OPTIONS`)."""
    return torch.compile(fn, **compile_kwargs(mode, dynamic))


def compile_kwargs(mode: str | None, dynamic: bool | None) -> dict:
    """torch.compile's arguments for `mode`: its options (torch takes a mode or options, not
    both) plus INDUCTOR_OPTIONS; dynamo configured first (`configure`)."""
    from torch._inductor import list_mode_options
    configure()
    options = {**list_mode_options(mode or "default", dynamic), **INDUCTOR_OPTIONS}
    return {"dynamic": dynamic, "options": options}


class CompiledBuild:
    """`build` of a compiled twin: the original's model, compiled. A class (not a lambda) so it
    pickles, says what it wraps, and `declared_init` can look through it (`__wrapped__`)."""
    def __init__(self, build, mode: str | None = None, dynamic: bool | None = None):
        self.__wrapped__, self.mode, self.dynamic = build, mode, dynamic

    def __call__(self, *args, **kwargs) -> nn.Module:
        return compile_model(self.__wrapped__(*args, **kwargs), self.mode, self.dynamic)

    def __repr__(self) -> str:
        return f"CompiledBuild({self.__wrapped__!r}, mode={self.mode!r}, dynamic={self.dynamic})"


@dataclass(frozen=True)
class CompileCount:
    """Dynamo's counters at one moment: graphs compiled so far and frames it tried to compile."""
    graphs: int
    frames: int

    def __sub__(self, other: CompileCount) -> CompileCount:
        return CompileCount(self.graphs - other.graphs, self.frames - other.frames)


def compile_count() -> CompileCount:
    """Graphs compiled and frames converted in this process so far (dynamo's own counters; none
    while dynamo was never imported: every compilation imports it)."""
    if "torch._dynamo" not in sys.modules:
        return CompileCount(0, 0)
    from torch._dynamo.utils import counters
    return CompileCount(int(counters["stats"]["unique_graphs"]), int(counters["frames"]["total"]))


def is_compiled(model: nn.Module) -> bool:
    return getattr(model, "_compiled_call_impl", None) is not None
