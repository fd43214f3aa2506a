"""What is timed, torch-free: the operations, a benchmark `Group` (operation, device, `Size`,
dtype), the default sizes and the sweep, the timing budgets, and the `Floor` record a measurement
carries. Reports read these without importing torch."""
from __future__ import annotations

from dataclasses import asdict, dataclass

# The one operation order: kernels first, then whole epochs.
OPERATIONS = ("forward", "forward_backward", "step", "epoch_lean", "epoch_fastai")
KERNELS = OPERATIONS[:3]
EPOCH_RATINGS = 10_000   # an "epoch" is one pass over the train split of this many synthetic ratings
# The interval half-width a default `pytest bench` aims at; the report says when a run misses it.
TARGET_HALF_WIDTH = {"epoch_lean": 0.03, "epoch_fastai": 0.05}
# Epoch rounds per process: about the fewest that keep a default run's epoch ratios near
# TARGET_HALF_WIDTH; every round is a whole epoch, so more rounds make `pytest bench` much longer.
# A fastai epoch costs several lean ones, hence fewer fastai rounds.
EPOCH_ROUNDS = {"epoch_lean": 8, "epoch_fastai": 3}
# Seconds of interleaved rounds per kernel group and process: a run of adaptive rounds adds
# processes (each a fresh layout, and a t quantile that falls with them) until its target. 1 s
# since a forked worker starts in 0.1 s (worker_server.PRELOAD): in the same 48 s, 12 processes
# of 1 s gave widest intervals of +-0.97-2.31% (median 1.6%) where 6 of 2 s gave +-1.22-4.45%
# (median 2.0%), four alternating runs each of `pytest bench -k "not epoch"`, 2026-12-07.
INTERLEAVE_S = 1.0
EPOCH_NOTE = (f"an epoch is one fit over the train split (80%) of the first {EPOCH_RATINGS:,} synthetic "
              "MovieLens-shaped ratings, batch 64, from the same canonical parameters every round")


@dataclass(frozen=True)
class Size:
    """One problem size: table rows, factors and batch; `name` is how ids and reports show it."""
    name: str
    n_users: int
    n_items: int
    n_factors: int
    bs: int


@dataclass(frozen=True)
class Group:
    """What one benchmark group times: every variant runs this operation on the same inputs."""
    operation: str
    device: str
    size: Size
    dtype: str

    @property
    def label(self) -> str:
        return f"{self.operation} {self.device} {self.size.name} {self.dtype}"

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Group:
        """The inverse of `as_dict`; a malformed dict raises ValueError."""
        try:
            return cls(str(d["operation"]), str(d["device"]), Size(**d["size"]), str(d["dtype"]))
        except (KeyError, TypeError) as e:
            raise ValueError(f"not a benchmark group: {d!r:.120} ({e})") from None


@dataclass(frozen=True)
class Floor:
    ops: int               # aten ops per call
    bytes: int             # bytes of their inputs and outputs per call
    op_seconds: float      # one tiny dispatcher-bound op
    bytes_per_second: float

    @property
    def dispatch_s(self) -> float:
        return self.ops * self.op_seconds

    @property
    def bandwidth_s(self) -> float:
        return self.bytes / self.bytes_per_second

    def as_dict(self) -> dict:
        return asdict(self)


# Peak memory is deterministic (`timing.memory`): two figures differ when they differ by more than
# 1% and more than 4 KiB (smaller gaps are allocator rounding and scalars, not a design change).
MEMORY_NOISE_BYTES, MEMORY_NOISE_SHARE = 4096, 0.01


def memory_differs(a: int, b: int) -> bool:
    """Whether two peak-memory figures differ beyond noise (see MEMORY_NOISE_*)."""
    return abs(a - b) > max(MEMORY_NOISE_BYTES, MEMORY_NOISE_SHARE * max(a, b))


# MovieLens 100k as fastbook loads it (944 user ids, 1665 titles), n_factors=50, bs=64.
DEFAULT_SIZES = [Size("ml100k", 944, 1665, 50, 64)]


def sweep_sizes() -> list[tuple[Size, list[str]]]:
    """One axis at a time around a base (n=1e4 users and items, 64 factors, batch 1024)."""
    base = dict(n=10_000, f=64, bs=1024)
    axes = {"n": [1_000, 10_000, 100_000, 1_000_000], "f": [8, 32, 64, 128, 256],
            "bs": [64, 256, 1024, 4096, 16384]}
    sizes: dict[tuple, list[str]] = {}
    for axis, values in axes.items():
        for value in values:
            key = tuple((value if k == axis else base[k]) for k in ("n", "f", "bs"))
            sizes.setdefault(key, []).append(axis)
    return [(Size(f"n{n:.0e}-f{f}-bs{bs}".replace("+0", ""), n, n, f, bs), axes_)
            for (n, f, bs), axes_ in sizes.items()]


SIZES = {s.name: s for s in DEFAULT_SIZES + [s for s, _ in sweep_sizes()]}
SWEEP_AXES = {s.name: axes for s, axes in sweep_sizes()}
