"""A small pool of symbolic-checker subprocesses with a hard per-call deadline.

Why subprocesses and not threads or multiprocessing: math-verify's timeouts rely on
signal.alarm (main thread only), sympy can hang inside C code where no signal helps, and Celery
prefork children are daemonic processes that multiprocessing refuses to give children. A plain
subprocess can always be killed, so a stuck check becomes a `verifier_timeout` verdict, never a
hang. Workers are reused (importing sympy/math-verify costs about a second) and replaced when
killed.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass


@dataclass
class SymbolicResult:
    equal: bool
    timeout: bool = False
    error: str | None = None
    pred_parsed: bool = True


class _Worker:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "distill.verify._mathworker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
            start_new_session=True,  # a Ctrl-C or Celery signal to our group does not hit it
        )
        self.buffer = b""
        self.ready = False

    def readline(self, deadline: float) -> bytes | None:
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return None
                self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line

    def kill(self) -> None:
        try:
            self.proc.kill()
        except ProcessLookupError:
            pass
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass


class MathPool:
    STARTUP_S = 60.0  # first import of sympy can be slow on a busy machine

    def __init__(self, size: int = 2) -> None:
        self.size = max(1, size)
        self._idle: list[_Worker] = []
        self._count = 0
        self._cond = threading.Condition()
        self._pid = os.getpid()

    def resize(self, size: int) -> None:
        with self._cond:
            self.size = max(self.size, size)
            self._cond.notify_all()

    def _acquire(self) -> _Worker:
        with self._cond:
            if (
                self._pid != os.getpid()
            ):  # forked (e.g. Celery prefork): workers belong to the parent
                self._idle, self._count, self._pid = [], 0, os.getpid()
            while not self._idle and self._count >= self.size:
                self._cond.wait()
            if self._idle:
                return self._idle.pop()
            self._count += 1
        try:
            return _Worker()
        except BaseException:
            self._release(None)
            raise

    def _release(self, worker: _Worker | None) -> None:
        with self._cond:
            if worker is None:
                self._count -= 1
            else:
                self._idle.append(worker)
            self._cond.notify()

    def check(self, gold: str, pred: str, timeout_s: float, raw: bool = False) -> SymbolicResult:
        worker = self._acquire()
        ok = False
        try:
            if not worker.ready:
                if worker.readline(time.monotonic() + self.STARTUP_S) is None:
                    return SymbolicResult(False, error="symbolic worker failed to start")
                worker.ready = True
            request = {"gold": gold, "pred": pred, "timeout": max(1, int(timeout_s)), "raw": raw}
            worker.proc.stdin.write((json.dumps(request) + "\n").encode())
            worker.proc.stdin.flush()
            # math-verify's own alarm fires at int(timeout_s); the kill is the backstop.
            line = worker.readline(time.monotonic() + timeout_s + 1.0)
            if line is None:
                return SymbolicResult(False, timeout=True)
            reply = json.loads(line)
            ok = True
            if reply.get("timeout"):
                return SymbolicResult(False, timeout=True)
            if "error" in reply:
                return SymbolicResult(False, error=reply["error"])
            return SymbolicResult(
                bool(reply.get("equal")), pred_parsed=reply.get("pred_parsed", True)
            )
        except (OSError, ValueError) as exc:
            return SymbolicResult(False, error=f"symbolic worker failed: {exc}")
        finally:
            if ok:
                self._release(worker)
            else:
                worker.kill()
                self._release(None)

    def close(self) -> None:
        with self._cond:
            workers, self._idle = self._idle, []
            self._count -= len(workers)
        for worker in workers:
            worker.kill()


_POOL: MathPool | None = None
_POOL_LOCK = threading.Lock()


def get_pool(size: int = 2) -> MathPool:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = MathPool(size)
            atexit.register(_POOL.close)
        else:
            _POOL.resize(size)
        return _POOL
