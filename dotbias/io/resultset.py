"""A command's files written as one set and swapped in whole, so a reader never sees a mix of two
runs or a half-written file, even after `kill -9`.

    with ResultSet("results/local", "run") as rs:       # takes the lock, opens a temp folder
        rs.write_text("run.md", md)                      # files go into the temp folder
        rs.write_json("run.json", data)                  # strict JSON (no NaN/Infinity)
        rs.write_bytes("run.png", png)
    # on a clean exit: results/local/run -> .run.<id>/ (one atomic symlink replace); old set removed

Layout inside `out_dir`: `<name>` is a symlink to the hidden folder `.<name>.<run id>/` that holds the
set plus `manifest.json` (run id, files, sizes, sha256, git commit), written last. On an exception
(KeyboardInterrupt included) the temp folder goes and the previous set stays. `.<name>.lock` (flock)
makes a second writer into the same set fail at once with one line. Temp folders of crashed runs
and superseded sets are removed by the next writer that completes (one that fails leaves `out_dir`
as it found it). Own code: no kept library swaps a folder of
files atomically (atomicwrites and friends do single files)."""
from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from dotbias.io.files import dumps_strict, write_delay
from dotbias.io.interrupts import checkpoint

_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")     # no '.': `.run.*` must not match set "run.x"


class ResultSetBusy(OSError):
    """Another process holds the lock of this result set."""


def new_run_id() -> str:
    """Sortable and unique: UTC time, pid and a random tail."""
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}-{secrets.token_hex(3)}"


def git_commit(where: Path) -> dict[str, Any] | None:
    """The commit of the git work tree holding `where` and whether it had changes; None outside git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


class ResultSet:
    """One set of result files, visible at `out_dir/name` only once complete (see module doc)."""

    def __init__(self, out_dir: str | Path, name: str, *, run_id: str | None = None,
                 meta: dict[str, Any] | None = None):
        if not _SET.match(name):
            raise ValueError(f"result set name {name!r}: use letters, digits, '_' and '-'")
        self.out_dir, self.name = Path(out_dir), name
        self.run_id = run_id or new_run_id()
        self.meta = dict(meta or {})                     # recorded in the manifest (e.g. threads)
        self.path = self.out_dir / name                  # what readers open
        self._tmp = self.out_dir / f".{name}.{self.run_id}.tmp"
        self._lock_fd: int | None = None
        self.files: dict[str, Path] = {}                 # file name -> final path
        self._created: list[Path] = []
        self._new_lock = False

    # -- writing -------------------------------------------------------------------------------
    def write_bytes(self, fname: str, data: bytes) -> Path:
        """Write one file of the set (into the temp folder until commit); its final path."""
        if self._lock_fd is None:
            raise RuntimeError("ResultSet.write_* outside `with ResultSet(...)`")
        checkpoint()                # a deferred Ctrl-C stops between files: the set is dropped whole
        if not _FILE.match(fname) or fname == "manifest.json" or fname in self.files:
            raise ValueError(f"result file name {fname!r}: must be a new plain file name")
        write_delay()
        with open(self._tmp / fname, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        self.files[fname] = self.path / fname
        return self.path / fname

    def write_text(self, fname: str, text: str) -> Path:
        return self.write_bytes(fname, text.encode("utf-8"))

    def write_json(self, fname: str, data: Any) -> Path:
        return self.write_text(fname, dumps_strict(data))

    # -- the set's life ------------------------------------------------------------------------
    @property
    def staging(self) -> Path:
        """The temp folder the set is written into: a writer that takes a folder (`write_report(..,
        rs.staging)`) writes there; every file in it at commit becomes part of the set."""
        return self._tmp

    def __enter__(self) -> ResultSet:
        self._created = _missing_dirs(self.out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        lock = self.out_dir / f".{self.name}.lock"
        self._new_lock = not lock.exists()
        try:
            self._lock(lock)
            self._tmp.mkdir()
        except BaseException:
            self._abort()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                checkpoint()                # the last safe point before the swap
            except KeyboardInterrupt:
                self._abort()
                raise
        if exc_type is not None:
            self._abort()
            return
        try:
            self._commit()
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._unlock()

    def _abort(self) -> None:
        """Leave `out_dir` as it was: no temp folder, and no lock file or folders this set created."""
        shutil.rmtree(self._tmp, ignore_errors=True)
        if self._lock_fd is not None and self._new_lock:
            (self.out_dir / f".{self.name}.lock").unlink(missing_ok=True)
        self._unlock()
        for d in reversed(self._created):
            try:
                d.rmdir()
            except OSError:
                break

    def _lock(self, lock: Path) -> None:
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise ResultSetBusy(f"{self.path}: another dotbias process is writing this "
                                    "result set; wait for it to finish or give another --out") from None
            raise
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)          # closing the fd releases the flock
            self._lock_fd = None

    def current(self) -> Path | None:
        """The hidden folder the visible set points at now, or None."""
        return self.out_dir / os.readlink(self.path) if self.path.is_symlink() else None

    def _clean_stale(self) -> None:
        """Under the lock, every `.<name>.*` folder but the current set is a leftover: remove it."""
        keep = (self.current(), self._tmp)
        for p in self.out_dir.glob(f".{self.name}.*"):
            if p.is_dir() and not p.is_symlink() and p not in keep:
                shutil.rmtree(p, ignore_errors=True)
            elif p.name.startswith(f".{self.name}.link-"):
                p.unlink(missing_ok=True)

    def _commit(self) -> None:
        self._clean_stale()                  # only now: a command that fails changes nothing
        files = {p.name: _sha256(p) for p in sorted(self._tmp.iterdir()) if p.name != "manifest.json"}
        manifest = {"set": self.name, "run_id": self.run_id, "files": files, **self.meta,
                    "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "git": git_commit(self.out_dir.resolve())}
        self._write_manifest(manifest)
        final = self.out_dir / f".{self.name}.{self.run_id}"
        os.replace(self._tmp, final)
        old = self.current()
        if self.path.exists() and not self.path.is_symlink():
            _retire(self.path)               # a plain folder from elsewhere (e.g. a copy): set aside
        link = self.out_dir / f".{self.name}.link-{self.run_id}"
        os.symlink(final.name, link)
        write_delay()
        os.replace(link, self.path)          # the one step that makes the new set visible
        _fsync_dir(self.out_dir)
        if old is not None and old != final:
            shutil.rmtree(old, ignore_errors=True)

    def _write_manifest(self, manifest: dict) -> None:
        data = dumps_strict(manifest).encode("utf-8")
        write_delay()
        with open(self._tmp / "manifest.json", "wb") as f:
            f.write(data)
            os.fsync(f.fileno())
        _fsync_dir(self._tmp)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _missing_dirs(path: Path) -> list[Path]:
    """`path` and its parents that do not exist yet, outermost first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing[::-1]


def _retire(path: Path) -> None:
    os.replace(path, path.with_name(f".{path.name}.retired-{secrets.token_hex(3)}"))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
