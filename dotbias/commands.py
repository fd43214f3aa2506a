"""The one skeleton of every `dotbias` command that writes a result set, and the Ctrl-C state it
checks. A subcommand module plugs in with a function that builds its parser:

    def add_parser(sub) -> None:                      # called once in cli.build_parser
        p = options.subcommand(sub, "compare", _compare, "is CANDIDATE the same model, and faster?")
        options.add_common(p, str(files.LOCAL), trains=True)

    def _compare(args) -> int:
        return commands.run_command(args, "compare", lambda rs, _: (write_compare(rs.staging), 0))

Only the standard library and `dotbias.io` at module level, so `dotbias --help` stays light;
torch is imported inside `pin_threads`, when a command that trains or times runs."""
from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from dotbias.io import interrupts
from dotbias.io.files import check_writable
from dotbias.io.progress import Progress
from dotbias.io.resultset import ResultSet

T = TypeVar("T")
Work = Callable[[ResultSet | None, T], tuple[str, int]]


def run_command(args, name: str, work: Work, prepare: Callable[[], T] = lambda: None, *,
                threads: int | None = None) -> int:
    """Run a command whose files form the result set `args.out/name`, always in this order:
    1. check --out now (one line if it cannot take the results; no set at all when --out is ''
       and the command allows that: `add_common(skip_out=True)`);
    2. pin the torch threads it runs with: `threads` when the command fixes its own (`check`),
       else --threads; the manifest records that number;
    3. `prepare()`: validate and read the input, before anything is locked;
    4. inside the locked set, `work(rs, prepared)` -> (text, exit status). Ctrl-C is only
       recorded (`dotbias.io.interrupts`); it stops the command at the checkpoints: after the
       threads are pinned (torch imported), after `prepare`, at every progress tick inside
       `work`, and before the set is swapped in, so nothing half-written becomes visible;
    5. the set is swapped in whole, then `text` goes to stdout (the set's final path in place of
       its temp folder) and `wrote DIR/ (files)` to stderr; a Ctrl-C that came during the swap
       still ends the command with 130 (the set on disk is complete). Returns the exit status."""
    ran_with = threads if threads is not None else getattr(args, "threads", None)
    rs = _result_set(args, name, ran_with)
    if ran_with is not None:
        pin_threads(ran_with)
    stop_if_interrupted()
    prepared = prepare()
    stop_if_interrupted()
    with rs if rs is not None else contextlib.nullcontext():
        text, code = work(rs, prepared)
        stop_if_interrupted()
    stop_if_interrupted()
    print(text.replace(str(rs.staging), str(rs.path)) if rs is not None else text)
    if rs is not None:
        print(f"wrote {rs.path}/ ({', '.join(sorted(rs.files) or _listing(rs.path))})", file=sys.stderr)
    return code


def _result_set(args, name: str, threads: int | None) -> ResultSet | None:
    """The command's ResultSet in --out, checked now (entered once the input is validated); None
    when --out is '' and the command may print only."""
    if not args.out and getattr(args, "print_only_ok", False):
        return None
    check_writable(args.out, name)
    meta: dict[str, Any] = {"command": " ".join(["dotbias", *args.argv])}
    if threads is not None:
        meta["threads"] = threads
    return ResultSet(args.out, name, meta=meta)


def _listing(path: Path) -> list[str]:
    """The files of a set written through its staging folder (not through `rs.write_*`)."""
    return sorted(p.name for p in path.iterdir() if p.name != "manifest.json")


def pin_threads(n: int) -> None:
    """Run torch on `n` threads (--threads defaults to 1: on a busy machine more threads contend
    with the load and the run gets slower and less steady)."""
    import torch
    torch.set_num_threads(n)


def progress_of(args) -> Progress:
    """The command's progress setting, from its --no-progress (`io.progress.Progress`: status
    lines and bars on stderr only when it shows; `Progress.log` prints a status line)."""
    return Progress(False if getattr(args, "no_progress", False) else None)


# --- Ctrl-C: deferred (dotbias.io.interrupts); the command stops at its checkpoints ----------
@contextlib.contextmanager
def handling_interrupts() -> Iterator[None]:
    """Ctrl-C and SIGTERM deferred inside (recorded, never raised by the handler: the command stops
    at its next `stop_if_interrupted`), and the caller's handlers put back after: an in-process
    caller (a test) keeps its own, and no later child process inherits ours. A signal recorded
    before (the `dotbias` command defers from its first import) still counts."""
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM), sys.unraisablehook
    sys.unraisablehook = unraisable
    interrupts.install(interrupts.installed(before[0]))      # ours already (early): kept, seen or not
    try:
        yield
    finally:
        for signum, handler in zip((signal.SIGINT, signal.SIGTERM), before):
            if handler is not None:          # None: set outside Python, cannot be restored from here
                signal.signal(signum, handler)
        sys.unraisablehook = before[2]


def unraisable(info) -> None:
    """sys.unraisablehook: a KeyboardInterrupt raised inside a callback Python cannot raise from
    (by a caller's own handler, or a library's) is printed by CPython as 'Exception ignored in
    ...' with a traceback. It is still an interrupt: remember it, print nothing."""
    record = interrupts.installed()
    if isinstance(info.exc_value, KeyboardInterrupt) or interrupts.seen():
        if record is not None:
            record.seen = True
        return
    sys.__unraisablehook__(info)


def stop_if_interrupted() -> None:
    """A safe point: the recorded Ctrl-C stops the command here, from our own frame."""
    interrupts.checkpoint()
