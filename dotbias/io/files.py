"""Where results go (LOCAL), atomic single-file writes, strict JSON and one JSON reader.
A command's whole set of files goes through `dotbias.io.resultset.ResultSet`."""
from __future__ import annotations

import json
import math
import os
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Commands write to LOCAL (git-ignored) unless --out says otherwise.
LOCAL = Path("results") / "local"
DELAY_ENV = "DOTBIAS_TEST_WRITE_DELAY"   # seconds to sleep before each write (kill tests only)


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp_path)` on a temp file beside `path`, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write_delay()
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())     # mkstemp makes 0600; results are for everyone to read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | Path, text: str) -> Path:
    return write_atomic(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_json(path: str | Path, data: Any) -> Path:
    return write_text(path, dumps_strict(data))


def write_bytes(path: str | Path, data: bytes) -> Path:
    return write_atomic(path, lambda p: p.write_bytes(data))


def check_writable(out_dir: str | Path, name: str | None = None, option: str = "--out") -> Path:
    """Fail now, with one line, if `out_dir` could not receive results: it (or a parent) is a file,
    the nearest existing folder is not writable (probed by creating and removing a temp file), or
    `out_dir/name` is something other than a result set. Leaves nothing behind."""
    if not str(out_dir):
        raise ValueError(f"{option}: expected a folder, got ''")
    out_dir = Path(out_dir)
    probe = out_dir
    while not probe.exists():
        if probe.is_symlink():
            raise ValueError(f"{option} {out_dir}: {probe} is a broken symlink")
        probe = probe.parent
    if not probe.is_dir():
        raise ValueError(f"{option} {out_dir}: {probe} is a file, not a folder")
    target = out_dir / name if name else None
    if target is not None and target.exists() and not (target.is_symlink() or target.is_dir()):
        raise ValueError(f"{option} {out_dir}: {target} exists and is not a result set folder")
    test_file = probe / f".dotbias-probe-{os.getpid()}-{secrets.token_hex(3)}"
    try:
        os.close(os.open(test_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except OSError as e:
        raise ValueError(f"{option} {out_dir}: cannot write in {probe} ({e.strerror})") from None
    test_file.unlink()
    return out_dir


def read_json(path: str | Path, what: str) -> Any:
    """Parse a JSON file; a missing, empty or malformed file raises one line naming it and `what`
    was expected (e.g. "pytest-benchmark JSON")."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: file not found (expected a {what} file)")
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, expected a {what} file")
    raw = path.read_bytes()
    if not raw.strip():
        raise ValueError(f"{path}: file is empty, expected {what}")
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text, expected {what}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None


def strict_json(data: Any) -> tuple[Any, dict[str, str]]:
    """`data` with every NaN/inf float replaced by None, and {json path: reason} for each one."""
    reasons: dict[str, str] = {}

    def walk(obj: Any, path: str) -> Any:
        if isinstance(obj, dict):
            return {k: walk(v, f"{path}/{k}") for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [walk(v, f"{path}/{i}") for i, v in enumerate(obj)]
        if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
            obj = obj.item() if getattr(obj, "ndim", 0) == 0 else obj.tolist()
            return walk(obj, path)
        if isinstance(obj, float) and not math.isfinite(obj):
            reasons[path or "/"] = f"was {obj} (not a finite number; written as null)"
            return None
        if isinstance(obj, Path):
            return str(obj)
        return obj
    return walk(data, ""), reasons


def dumps_strict(data: Any) -> str:
    """JSON text that strict parsers accept; non-finite numbers become null and, when `data` is a
    dict, `null_reasons` says which and why."""
    clean, reasons = strict_json(data)
    if reasons and isinstance(clean, dict):
        clean["null_reasons"] = reasons
    return json.dumps(clean, indent=2, allow_nan=False) + "\n"


def write_delay() -> None:
    """Sleep DOTBIAS_TEST_WRITE_DELAY seconds, so a kill test's SIGKILL lands inside the writes."""
    delay = os.environ.get(DELAY_ENV)
    if delay:
        time.sleep(float(delay))
