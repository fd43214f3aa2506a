"""Progress for anything that takes more than a few seconds: one line on stderr, redrawn in place,
so stdout stays clean for results (`dotbias run > out.md`). Off when stderr is not a terminal or
after `set_enabled(False)` (`--no-progress`).

Own code rather than fastprogress: its console bar prints to stdout and assumes one loop at a time."""
from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_enabled: bool | None = None        # None: on when stderr is a terminal


def set_enabled(flag: bool | None) -> None:
    global _enabled
    _enabled = flag


def enabled() -> bool:
    return sys.stderr.isatty() if _enabled is None else _enabled


class Bar:
    """A progress line for loops we do not own (a fastai callback calls `update`); inert when off."""

    def __init__(self, label: str, total: int | None = None):
        self.label, self.total, self.on = label, total, enabled()
        self.t0 = self.shown = time.perf_counter()

    def update(self, done: int, note: str = "") -> None:
        """Redraw, at most ten times a second (a fit has thousands of steps)."""
        now = time.perf_counter()
        if self.on and (now - self.shown >= 0.1 or done == self.total):
            self.shown = now
            of = f"/{self.total}" if self.total is not None else ""
            sys.stderr.write(f"\r{self.label} {done}{of}{note} ({time.perf_counter() - self.t0:.0f} s)\x1b[K")
            sys.stderr.flush()

    def close(self) -> None:
        if self.on:
            sys.stderr.write(f"\r{self.label} done in {time.perf_counter() - self.t0:.1f} s\x1b[K\n")
            sys.stderr.flush()


def track(items: Iterable[T], label: str, total: int | None = None) -> Iterator[T]:
    """Yield from `items`, showing `label i/total, elapsed` on stderr while it runs."""
    total = total if total is not None else (len(items) if hasattr(items, "__len__") else None)
    bar = Bar(label, total)
    for i, item in enumerate(items):
        bar.update(i + 1)
        yield item
    bar.close()
