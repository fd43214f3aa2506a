"""Ctrl-C and SIGTERM, deferred: the handler only records the signal; the command stops at its next
safe point (`checkpoint()`: progress ticks, between variants, groups and files, before a result
set is swapped in), where our own Python code raises KeyboardInterrupt.

A handler that raises lands in whatever frame runs, and that can be a pybind11 call (torch
importing `torch.distributed`): the exception then crosses C++ and the process dies with SIGABRT
and a C++ trace. Recording never raises, so the interrupt waits until imports and library calls
have returned. The `dotbias` command installs the handler as soon as the package starts importing
(`install_early`), so a Ctrl-C before torch loads is deferred too. Standard library only."""
from __future__ import annotations

import os
import signal
import sys

SIGNALS = (signal.SIGINT, signal.SIGTERM)
MESSAGE = "dotbias: interrupted"
EXIT = 130


class Interrupt:
    """The process-wide record of a Ctrl-C (a signal handler has nowhere else to put it).
    `forced`: a second signal leaves at once (only in the `dotbias` process, never in-process)."""
    seen = False
    forced_exit = False


def on_signal(signum, frame) -> None:
    """Record the signal and return: never raise inside foreign code. A second Ctrl-C in the
    `dotbias` command leaves at once (one line, 130): visible result sets are swapped in whole,
    so leaving mid-write shows nothing half-written (the next writer clears the temp folder)."""
    if Interrupt.seen and Interrupt.forced_exit:
        os.write(2, (MESSAGE + "\n").encode())
        os._exit(EXIT)
    Interrupt.seen = True


def checkpoint() -> None:
    """A safe point: stop here (KeyboardInterrupt, from our own frame) if a signal was recorded."""
    if Interrupt.seen:
        raise KeyboardInterrupt


def is_command() -> bool:
    """Whether this process is the `dotbias` command (the console script or `python -m
    dotbias.cli`), not a library user such as pytest importing dotbias."""
    argv = getattr(sys, "orig_argv", sys.argv)
    if os.path.basename(sys.argv[0] if sys.argv else "") == "dotbias":
        return True
    return "-m" in argv[:-1] and argv[argv.index("-m") + 1] in ("dotbias.cli", "dotbias")


def install() -> None:
    for signum in SIGNALS:
        signal.signal(signum, on_signal)


def install_early() -> None:
    """In the `dotbias` command only: defer signals from the first line of `dotbias/__init__`."""
    if is_command() and signal.getsignal(signal.SIGINT) is not on_signal:
        Interrupt.seen, Interrupt.forced_exit = False, True
        install()
