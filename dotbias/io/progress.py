"""Progress for anything that takes more than a few seconds: a tqdm line on stderr, so stdout stays
clean for results (`dotbias run > out.md`). Whether lines show is the command's setting, a
`Progress` it makes from --no-progress and hands to what it runs: `show` None (the default, and
library use) draws only when stderr is a terminal (tqdm's `disable=None`), False never, True always.

Every tick is a safe point where a deferred Ctrl-C stops the command (`io.interrupts`). tqdm is
imported at the first bar, not with this module, so `dotbias --help` stays light."""
from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from dotbias.io.interrupts import checkpoint

if TYPE_CHECKING:
    from tqdm import tqdm

T = TypeVar("T")


def _bar(label: str, total: int | None, items: Iterable | None, show: bool | None) -> tqdm:
    """A tqdm bar on the current stderr (looked up now: tests and callers may swap it)."""
    from tqdm import tqdm
    return tqdm(items, desc=label, total=total, file=sys.stderr, mininterval=0.1, dynamic_ncols=True,
                disable=None if show is None else not show)


class Bar:
    """A progress line for loops we do not own (a fastai callback calls `update`); inert when off
    (`show`: as `Progress.show`)."""

    def __init__(self, label: str, total: int | None = None, show: bool | None = None):
        self._bar = _bar(label, total, None, show)

    def update(self, done: int, note: str = "") -> None:
        """Show `done` steps so far (absolute, not an increment) and an optional note. A safe
        point: a recorded Ctrl-C stops the loop here (`interrupts.checkpoint`), shown or not."""
        checkpoint()
        if note:
            self._bar.set_postfix_str(note.lstrip(", "), refresh=False)
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        self._bar.close()


def track(items: Iterable[T], label: str, total: int | None = None, show: bool | None = None
          ) -> Iterator[T]:
    """Yield from `items`, showing `label`, done/total and the elapsed time on stderr while it runs
    (`show`: as `Progress.show`). Before each item a safe point: a recorded Ctrl-C stops the loop
    there."""
    with _bar(label, total, items, show) as bar:
        for item in bar:
            checkpoint()
            yield item


@dataclass(frozen=True)
class Progress:
    """A command's progress setting, made once from --no-progress and passed to what it runs.
    `show`: None draws when stderr is a terminal, False never, True always."""
    show: bool | None = None

    @property
    def enabled(self) -> bool:
        return sys.stderr.isatty() if self.show is None else self.show

    def track(self, items: Iterable[T], label: str, total: int | None = None) -> Iterator[T]:
        return track(items, label, total, self.show)

    def bar(self, label: str, total: int | None = None) -> Bar:
        return Bar(label, total, self.show)

    def log(self, message: str) -> None:
        """A status line on stderr (stdout holds only the results: `dotbias run > run.md`), only
        when progress shows: an error then stays the one line."""
        if self.enabled:
            print(message, file=sys.stderr, flush=True)


AS_TERMINAL = Progress()    # the default of library calls: lines only when stderr is a terminal
