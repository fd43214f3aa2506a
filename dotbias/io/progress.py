"""Progress for anything that takes more than a few seconds: a tqdm line on stderr, so stdout stays
clean for results (`dotbias run > out.md`). Off when stderr is not a terminal (tqdm's
`disable=None`) or after `set_enabled(False)` (`--no-progress`); `set_enabled(True)` forces it on.

Every tick is a safe point where a deferred Ctrl-C stops the command (`io.interrupts`). tqdm is
imported at the first bar, not with this module, so `dotbias --help` stays light."""
from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, TypeVar

from dotbias.io.interrupts import checkpoint

if TYPE_CHECKING:
    from tqdm import tqdm

T = TypeVar("T")
# None: on when stderr is a terminal. Process-wide on purpose: the process has one stderr (set by
# the CLI from --no-progress), and every progress line of a run goes to it.
_enabled: bool | None = None


def set_enabled(flag: bool | None) -> None:
    global _enabled
    _enabled = flag


def enabled() -> bool:
    return sys.stderr.isatty() if _enabled is None else _enabled


def _bar(label: str, total: int | None, items: Iterable | None = None) -> tqdm:
    """A tqdm bar on the current stderr (looked up now: tests and callers may swap it)."""
    from tqdm import tqdm
    return tqdm(items, desc=label, total=total, file=sys.stderr, mininterval=0.1, dynamic_ncols=True,
                disable=None if _enabled is None else not _enabled)


class Bar:
    """A progress line for loops we do not own (a fastai callback calls `update`); inert when off."""

    def __init__(self, label: str, total: int | None = None):
        self._bar = _bar(label, total)

    def update(self, done: int, note: str = "") -> None:
        """Show `done` steps so far (absolute, not an increment) and an optional note. A safe
        point: a recorded Ctrl-C stops the loop here (`interrupts.checkpoint`), shown or not."""
        checkpoint()
        if note:
            self._bar.set_postfix_str(note.lstrip(", "), refresh=False)
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        self._bar.close()


def track(items: Iterable[T], label: str, total: int | None = None) -> Iterator[T]:
    """Yield from `items`, showing `label`, done/total and the elapsed time on stderr while it runs.
    Before each item a safe point: a recorded Ctrl-C stops the loop there."""
    with _bar(label, total, items) as bar:
        for item in bar:
            checkpoint()
            yield item
