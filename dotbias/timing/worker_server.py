"""Worker processes forked from servers (`Workers`): what `pytest bench` and `dotbias compare` time
in. A fresh interpreter per worker (`workers.run_process`) pays torch's, fastai's and dotbias's
imports in the worker's own time, 2.5-3.7 s a process here, a third of a benchmark run; a server
(`python -m dotbias.timing.worker_server`) imports them ahead, while the last server's worker is
timed on the other core, and forks the next worker (`USES` of them, then it is retired). Processes
forked from one server share its layout (code and import-time heap addresses; every server has hash
seed 0), and one server's processes agree more than two servers' do; so each server forks one
worker by default: every process a layout of its own, as a fresh interpreter. Nothing is built or
timed before the fork, and each worker first holds a random number of bytes so that its models land
at addresses of their own. A worker gets the caller's folder, `sys.path` and environment at the
time of the call; one that fails, dies or hangs raises one line naming the process and what went
wrong (a hung one is killed, and the server goes on)."""
from __future__ import annotations

import gc
import importlib
import io
import json
import os
import random
import select
import signal
import subprocess
import sys
import threading
import time

from dotbias.timing.groups import KERNELS
from dotbias.timing.rounds import Rounds
from dotbias.timing.workers import WorkSpec, read_result, run_spec, worker_env

LAYOUT_BYTES = 1 << 20      # a forked worker first holds 1..LAYOUT_BYTES bytes: a layout of its own


SERVERS = 2     # servers running at once: the next imports while the one before forks the timed worker
USES = 1        # workers a server forks before it is retired (docs/timing.md, round 28)


def servers_of(processes: int, uses: int) -> tuple[int, ...]:
    """The server each of the first `processes` processes forks from, servers forking `uses`
    workers each in turn (`Workers.run`: process i from the (i // uses)-th server); () for no
    servers (fresh interpreters)."""
    return tuple(i // uses for i in range(processes)) if uses else ()
# What a worker timing the built-in variants would otherwise import after the fork, every process:
# fastai's collab module (the `fastai` variant's class, and with it fastai's tabular stack, scipy
# and sklearn) and dynamo (torch.optim's first step imports it): 1,515 modules, about 1.4 s of a
# 7.5 s process (three kernel groups of 2 s) spent before its rounds, 2026-12-07.
PRELOAD = ("fastai.layers", "fastai.collab", "torch._dynamo")


class Server:
    """One server process (`serve`), started at once, and what it wrote past the last line read."""

    def __init__(self, threads: int, argv: list[str] | None = None):
        """`argv`: the command to start instead of the server (a test's stand-in)."""
        self.proc: subprocess.Popen | None = subprocess.Popen(
            argv or [sys.executable, "-m", "dotbias.timing.worker_server"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=worker_env(threads))
        self.buffer = b""
        self.served = False     # whether any worker was asked of it
        self.ready = False      # whether it said its imports are done

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, index: int) -> None:
        """Wait for its imports (it says so in one line before serving)."""
        if not self.ready:
            if json.loads(self.line(120.0, index)) != {"ready": True}:
                raise RuntimeError(f"timing worker {index + 1}: its server did not say it was ready")
            self.ready = True

    def ask(self, request: dict, timeout_s: float, index: int) -> dict:
        """Fork one worker for `request`: its exit status and output (a hung one is killed)."""
        self.served = True
        self.proc.stdin.write((json.dumps(request) + "\n").encode())
        self.proc.stdin.flush()
        pid = json.loads(self.line(60.0, index))["pid"]
        try:
            return json.loads(self.line(timeout_s, index))
        except RuntimeError:
            os.kill(pid, signal.SIGKILL)
            self.line(60.0, index)
            raise

    def line(self, timeout_s: float, index: int) -> str:
        """Its next line within `timeout_s`, read from its pipe by our own buffer (a line
        already in a file object's buffer is invisible to select: a quick worker's two lines
        arriving together would look like a hang)."""
        deadline, fd = time.monotonic() + timeout_s, self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise RuntimeError(f"timing worker {index + 1} did not finish within {timeout_s:.0f} s")
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                self.close()
                raise RuntimeError(f"timing worker {index + 1}: its server process ended")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode()

    def close(self) -> None:
        """Stop it: at the end of its input when it served a worker, at once when it never did (a
        session that failed before timing anything need not wait for its imports)."""
        if self.proc is not None:
            if not self.served:
                self.proc.kill()
            self.proc.stdin.close()
            self.proc.wait()
            self.proc.stdout.close()
            self.proc = None


class Workers:
    """Worker processes forked from servers that imported everything ahead (see the module doc):
    `count` servers run at once, the first forks the next worker while the others import, and
    each is retired after forking `uses` workers, so process `index` forks from the
    (index // uses)-th server (`servers_of`) and the interval counts the processes of one server
    as sharing its layout (`stats.ratio`'s `servers`). A context manager: the servers start at
    `start` (or the first `run`) and stop at exit or `close`; a kernel worker waits for its own
    server's imports only, an epoch worker for every server's (`alone`); a hung worker is killed
    (its server is retired after its uses as usual)."""

    def __init__(self, threads: int = 1, servers: int = SERVERS, uses: int = USES,
                 argv: list[str] | None = None):
        """`argv`: the command each server runs instead of the server (a test's stand-in)."""
        self.threads, self.count, self.uses, self.lock = threads, servers, uses, threading.Lock()
        self.argv = argv
        self.servers: list[Server] = []     # the first forks the next worker
        self.forked = 0                     # workers the first server has forked
        self.imported: list[str] = []       # the modules the last worker imported after its fork

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for server in self.servers:
            server.close()
        self.servers = []

    def start(self) -> Workers:
        """Start servers until `count` run (their imports overlap the caller's work); a server
        that died is closed first (its pipes), and one in the first place forked nothing yet."""
        first = self.servers[0] if self.servers else None
        for server in self.servers:
            if not server.alive():
                server.close()
        kept = [s for s in self.servers if s.proc is not None]
        if not kept or kept[0] is not first:
            self.forked = 0
        self.servers = kept + [Server(self.threads, self.argv) for _ in range(self.count - len(kept))]
        return self

    def run(self, spec: WorkSpec, index: int, timeout_s: float) -> dict[str, Rounds]:
        """One forked worker process: group label -> its rounds (like `run_process`). A worker
        that times an epoch group waits for every server's imports first (`alone`)."""
        with self.lock:     # one worker at a time
            self.start()
            server = self.servers[0]
            for waited in (self.servers if alone(spec) else [server]):
                waited.wait_ready(index)
            request = {"spec": spec.to_json(), "cwd": os.getcwd(), "path": sys.path,
                       "env": worker_env(spec.threads)}
            try:
                done = server.ask(request, timeout_s, index)
            finally:
                self.forked += 1
                if self.forked >= self.uses:     # retired: the next server's worker is a layout of its own
                    self.servers.pop(0).close()
                    self.forked = 0
                    self.start()
            self.imported = done.get("imported", [])
            return read_result(done["rc"], done["out"], done["err"], index)


def alone(spec: WorkSpec) -> bool:
    """Whether a worker for `spec` runs with no server importing beside it: where it times an
    epoch group. An import beside a worker was measured harmless for kernel groups only: their
    blocks of a few ms interleave the variants, and a kernel process (about 3 s) lies within the
    import (about 3.5 s), the same in every process. An epoch's rounds are single calls of up to
    a second in a process of tens of seconds, which an import would meet in some of them only;
    epoch workers keep round 27's rule (docs/timing.md, round 28)."""
    return any(g.operation not in KERNELS for g in spec.groups)


def serve() -> int:
    """`python -m dotbias.timing.worker_server`: for each request line on stdin, fork a worker,
    say its pid, then its exit status, output and the modules it imported, one JSON line each.
    PRELOAD is imported here once, not in every worker, and what the imports made is moved out of
    the garbage collector's sight (`gc.freeze`)."""
    for name in PRELOAD:    # heavy libraries where they are needed (docs/architecture.md)
        importlib.import_module(name)
    gc.freeze()     # what the imports made is never collected: a worker's gc.collect skips it (0.25 s)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        out_r, out_w = os.pipe()
        pid = os.fork()
        if pid == 0:            # the worker: whatever happens (Ctrl-C too), it never returns here
            rc = 1
            try:
                os.close(out_r)
                rc = _forked(request, out_w)
            finally:
                os._exit(rc)
        os.close(out_w)
        print(json.dumps({"pid": pid}), flush=True)
        with os.fdopen(out_r) as f:
            raw = f.read()
        rc = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        try:
            sent = json.loads(raw)
            out, imported = sent["out"], sent["imported"]
        except (json.JSONDecodeError, TypeError, KeyError):    # it died before it wrote
            out, imported = raw, []
        reply, err = (out, "") if out.startswith("{") else ("", out)
        print(json.dumps({"rc": rc, "out": reply, "err": err, "imported": imported}), flush=True)
    return 0


def _forked(request: dict, fd: int) -> int:
    """A forked worker: the caller's folder, path and environment, a layout of its own, then on
    `fd` one JSON object: its output (a line of results, or one line of error) and the modules it
    imported; its exit status."""
    os.dup2(2, 1)               # a stray print must not reach the server's replies
    os.chdir(request["cwd"])
    sys.path[:] = request["path"]
    os.environ.clear()
    os.environ.update(request["env"])
    padding = bytearray(random.SystemRandom().randrange(1, LAYOUT_BYTES))      # noqa: F841 (held)
    before, out = set(sys.modules), io.StringIO()
    rc = run_spec(request["spec"], out, out)
    with os.fdopen(fd, "w") as f:
        json.dump({"out": out.getvalue(), "imported": sorted(set(sys.modules) - before)}, f)
    return rc


if __name__ == "__main__":
    code = serve()
    sys.stdout.flush()
    os._exit(code)      # not the teardown of what PRELOAD imported (0.16 s): a retired server ends at once
