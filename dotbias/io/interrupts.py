"""Ctrl-C and SIGTERM, deferred: the handler only records the signal; the command stops at its next
safe point (`checkpoint()`: progress ticks, between variants, groups and files, before a result
set is swapped in), where our own Python code raises KeyboardInterrupt.

A handler that raises lands in whatever frame runs, and that can be a pybind11 call (torch
importing `torch.distributed`): the exception then crosses C++ and the process dies with SIGABRT
and a C++ trace. Recording never raises, so the interrupt waits until imports and library calls
have returned. The `dotbias` command installs the handler as soon as the package starts importing
(`install_early`), so a Ctrl-C before torch loads is deferred too. Standard library only.

The record is an `Interrupts` object, the one the command installed: its `on_signal` is the
handler. A checkpoint finds it through the handler Python holds for SIGINT (`installed()`), so
no module of dotbias keeps it; with none of ours installed (a library user's own handler) a
checkpoint does nothing, as before."""
from __future__ import annotations

import os
import signal
import sys

SIGNALS = (signal.SIGINT, signal.SIGTERM)
MESSAGE = "dotbias: interrupted"
EXIT = 130


class Interrupts:
    """A command's record of a Ctrl-C, set by its bound `on_signal` (the installed handler).
    `forced_exit`: a second signal leaves at once (only in the `dotbias` process, never
    in-process)."""

    def __init__(self, forced_exit: bool = False):
        self.seen, self.forced_exit = False, forced_exit

    def on_signal(self, signum, frame) -> None:
        """Record the signal and return: never raise inside foreign code. A second Ctrl-C in the
        `dotbias` command leaves at once (one line, 130): visible result sets are swapped in whole,
        so leaving mid-write shows nothing half-written (the next writer clears the temp folder)."""
        if self.seen and self.forced_exit:
            os.write(2, (MESSAGE + "\n").encode())
            os._exit(EXIT)
        self.seen = True

    def install(self) -> Interrupts:
        """Make `on_signal` the handler of SIGINT and SIGTERM; returns self."""
        for signum in SIGNALS:
            signal.signal(signum, self.on_signal)
        return self


def installed(handler=None) -> Interrupts | None:
    """The record whose `on_signal` is `handler` (default: SIGINT's handler now), else None."""
    owner = getattr(signal.getsignal(signal.SIGINT) if handler is None else handler, "__self__", None)
    return owner if isinstance(owner, Interrupts) else None


def seen() -> bool:
    """Whether the installed record (if any) has seen a signal."""
    record = installed()
    return record is not None and record.seen


def checkpoint() -> None:
    """A safe point: stop here (KeyboardInterrupt, from our own frame) if a signal was recorded."""
    if seen():
        raise KeyboardInterrupt


def is_command() -> bool:
    """Whether this process is the `dotbias` command (the console script or `python -m
    dotbias.cli`), not a library user such as pytest importing dotbias."""
    argv = getattr(sys, "orig_argv", sys.argv)
    if os.path.basename(sys.argv[0] if sys.argv else "") == "dotbias":
        return True
    return "-m" in argv[:-1] and argv[argv.index("-m") + 1] in ("dotbias.cli", "dotbias")


def install(record: Interrupts | None = None) -> Interrupts:
    """Install `record` (default: a fresh one) as the handler of SIGINT and SIGTERM; returns it."""
    return (record or Interrupts()).install()


def install_early() -> None:
    """In the `dotbias` command only: defer signals from the first line of `dotbias/__init__`."""
    if is_command() and installed() is None:
        Interrupts(forced_exit=True).install()
