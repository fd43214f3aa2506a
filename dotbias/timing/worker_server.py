"""Worker processes forked from one server (`Workers`): what `pytest bench` and `dotbias compare` time
in. A fresh interpreter per worker (`workers.run_process`) pays torch's, fastai's and dotbias's
imports again, 2.5-3.7 s a process here, a third of a benchmark run; the server
(`python -m dotbias.timing.worker_server`) imports them once and forks a worker per call. Nothing
is built or timed before the fork, and each worker first holds a random number of bytes so that
its models land at addresses of their own. A worker gets the caller's folder, `sys.path` and
environment at the time of the call; one that fails, dies or hangs raises one line naming the
process and what went wrong (a hung one is killed, and the server goes on)."""
from __future__ import annotations

import gc
import json
import os
import random
import select
import signal
import subprocess
import sys
import threading
import time

from dotbias.timing.rounds import Rounds
from dotbias.timing.workers import WorkSpec, read_result, run_spec, worker_env

LAYOUT_BYTES = 1 << 20      # a forked worker first holds 1..LAYOUT_BYTES bytes: a layout of its own


class Workers:
    """Worker processes forked from one server process that imported everything once (see the
    module doc). A context manager: the server starts at the first `run` and stops at exit (or
    when it is closed); a hung worker is killed and the server goes on."""

    def __init__(self, threads: int = 1):
        self.threads, self.server, self.lock = threads, None, threading.Lock()
        self.served = False     # whether any worker was asked of the server
        self.buffer = b""       # what the server wrote past the last line read

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the server: at the end of its input when it served a worker, at once when it
        never did (a session that failed before timing anything need not wait for its imports)."""
        if self.server is not None:
            if not self.served:
                self.server.kill()
            self.server.stdin.close()
            self.server.wait()
            self.server.stdout.close()
            self.server = None

    def start(self) -> Workers:
        """Start the server now if it is not running (its imports overlap the caller's work)."""
        if self.server is None or self.server.poll() is not None:
            self.server = subprocess.Popen([sys.executable, "-m", "dotbias.timing.worker_server"],
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                           stderr=subprocess.DEVNULL, env=worker_env(self.threads))
            self.buffer = b""
        return self

    def run(self, spec: WorkSpec, index: int, timeout_s: float) -> dict[str, Rounds]:
        """One forked worker process: group label -> its rounds (like `run_process`)."""
        with self.lock:     # one worker at a time: the server serves one request after another
            self.start()
            self.served = True
            request = {"spec": spec.to_json(), "cwd": os.getcwd(), "path": sys.path,
                       "env": worker_env(spec.threads)}
            self.server.stdin.write((json.dumps(request) + "\n").encode())
            self.server.stdin.flush()
            pid = json.loads(self._line(60.0, index))["pid"]
            try:
                done = json.loads(self._line(timeout_s, index))
            except RuntimeError:
                os.kill(pid, signal.SIGKILL)
                self._line(60.0, index)
                raise
            return read_result(done["rc"], done["out"], done["err"], index)

    def _line(self, timeout_s: float, index: int) -> str:
        """The server's next line within `timeout_s`, read from its pipe by our own buffer (a line
        already in a file object's buffer is invisible to select: a quick worker's two lines
        arriving together would look like a hang)."""
        deadline, fd = time.monotonic() + timeout_s, self.server.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise RuntimeError(f"timing worker {index + 1} did not finish within {timeout_s:.0f} s")
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                self.server = None
                raise RuntimeError(f"timing worker {index + 1}: its server process ended")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode()


def serve() -> int:
    """`python -m dotbias.timing.worker_server`: for each request line on stdin, fork a worker,
    say its pid, then its exit status and output, one JSON line each. fastai is imported here once
    too (the `fastai` variant's first build would import it in every worker), and what the imports
    made is moved out of the garbage collector's sight (`gc.freeze`)."""
    import fastai.layers  # noqa: F401  (a heavy library where it is needed: docs/architecture.md)
    gc.freeze()     # what the imports made is never collected: a worker's gc.collect skips it (0.25 s)
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
            out = f.read()
        rc = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        reply, err = (out, "") if out.startswith("{") else ("", out)
        print(json.dumps({"rc": rc, "out": reply, "err": err}), flush=True)
    return 0


def _forked(request: dict, fd: int) -> int:
    """A forked worker: the caller's folder, path and environment, a layout of its own, then one
    JSON line of results (or one line of error) on `fd`; its exit status."""
    os.dup2(2, 1)               # a stray print must not reach the server's replies
    os.chdir(request["cwd"])
    sys.path[:] = request["path"]
    os.environ.clear()
    os.environ.update(request["env"])
    padding = bytearray(random.SystemRandom().randrange(1, LAYOUT_BYTES))      # noqa: F841 (held)
    with os.fdopen(fd, "w") as out:
        rc = run_spec(request["spec"], out, out)
    return rc


if __name__ == "__main__":
    sys.exit(serve())
