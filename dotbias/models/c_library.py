"""The C code dotbias builds (`row_step.c`, the whole training step of `models.row_step`):
compiled once per machine with the system's C compiler ($CC, else `cc`) into $DOTBIAS_CACHE (else
~/.cache/dotbias), named by a hash of the source, the flags, the compiler, the host and the CPU's
flags (the code is -march=native), and loaded with ctypes."""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

SOURCE = Path(__file__).with_name("row_step.c")
FLAGS = ("-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno", "-shared", "-fPIC")


def compiler() -> str:
    """The C compiler's path: $CC, else `cc`; OSError when neither is on PATH."""
    cc = os.environ.get("CC", "cc")
    path = shutil.which(cc)
    if path is None:
        raise OSError(f"row_step needs a C compiler: {cc!r} is not on PATH (set CC)")
    return path


def library_path(cc: str | None = None) -> Path:
    """Where the built library lives: named by source, flags, the compiler `cc` (default
    `compiler()`: its binary's resolved path, size and modification time, which change with the
    compiler; asking `cc --version` cost a subprocess, 2 ms, on every stepper made) and host
    (-march=native)."""
    cc = cc or compiler()
    binary = os.stat(cc)
    key = "\0".join([SOURCE.read_text(), *FLAGS, os.path.realpath(cc), str(binary.st_size),
                     str(binary.st_mtime_ns), platform.node(), platform.machine(), _cpu_flags()])
    root = Path(os.environ.get("DOTBIAS_CACHE") or Path.home() / ".cache" / "dotbias")
    return root / f"row_step-{hashlib.sha256(key.encode()).hexdigest()[:16]}.so"


def _cpu_flags() -> str:
    """The CPU's feature flags where Linux lists them (-march=native code needs the same ones)."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    return next((line for line in lines if line.startswith("flags")), "")


def load_library() -> ctypes.CDLL:
    """The compiled step, built first if this machine has not built it (atomically: a build
    beside another process's lands whole). OSError naming the compiler's first error line."""
    cc = compiler()
    path = library_path(cc)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=path.parent)
        os.close(fd)
        done = subprocess.run([cc, *FLAGS, "-o", tmp, str(SOURCE)], capture_output=True, text=True)
        if done.returncode != 0:
            os.unlink(tmp)
            first = (done.stderr.strip().splitlines() or ["no output"])[0]
            raise OSError(f"row_step: building {SOURCE.name} failed: {first}")
        os.replace(tmp, path)
    return ctypes.CDLL(str(path))
