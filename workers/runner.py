"""Executes a run inside a Celery worker: start, heartbeat, cancel, finish.

Jobs (``workers.jobs``) receive the run and a :class:`JobContext`. The context heart-beats from
a background thread, notices a cancel request, and terminates every process group the job
started through it, so a cancelled or finished run leaves no process behind.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection

from experiments.errors import Cancelled, UserError
from experiments.models import FailureReason, run_model

log = logging.getLogger(__name__)

__all__ = ["Cancelled", "JobContext", "UserError", "execute", "job", "kill_process_group"]


JobFunc = Callable[[Any, "JobContext"], None]
JOBS: dict[str, JobFunc] = {}


def job(kind: str) -> Callable[[JobFunc], JobFunc]:
    def register(func: JobFunc) -> JobFunc:
        JOBS[kind] = func
        return func

    return register


def kill_process_group(pgid: int, grace: float = 5.0) -> None:
    """SIGTERM the group, then SIGKILL whatever is still there after ``grace`` seconds."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class JobContext:
    def __init__(self, run, *, heartbeat_seconds: float | None = None):
        self.run = run
        self.cancel_event = threading.Event()
        self._groups: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._interval = heartbeat_seconds or settings.RUN_HEARTBEAT_SECONDS
        self._thread = threading.Thread(target=self._beat_loop, name="heartbeat", daemon=True)

    # --- for jobs -------------------------------------------------------------------------

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def check_cancel(self) -> None:
        if self.cancel_event.is_set():
            raise Cancelled()

    def sleep(self, seconds: float) -> None:
        """Sleep, waking at once (with :class:`Cancelled`) if the run is cancelled."""
        if self.cancel_event.wait(seconds):
            raise Cancelled()

    def progress(self, **progress) -> None:
        self.run.set_progress(**progress)

    def popen(self, args: Sequence[str], **kwargs) -> subprocess.Popen:
        """Start a subprocess in its own process group, terminated on cancel and at the end."""
        proc = subprocess.Popen(args, start_new_session=True, **kwargs)
        with self._lock:
            self._groups.add(proc.pid)
        return proc

    # --- for the runner -------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self._interval + 5)
        self.kill_processes()

    def kill_processes(self) -> None:
        with self._lock:
            groups = list(self._groups)
            self._groups.clear()
        for pgid in groups:
            kill_process_group(pgid)

    def _beat_loop(self) -> None:
        try:
            while not self._stop.wait(self._interval):
                try:
                    alive = self.run.beat()
                    if not alive or self.run.cancel_requested():
                        # Cancelled by a user, or finalised behind our back (the reaper):
                        # either way the work must stop now.
                        self.cancel_event.set()
                        self.kill_processes()
                except Exception:  # a DB blip must not kill the heartbeat thread
                    log.exception("heartbeat failed for %s", self.run)
        finally:
            connection.close()


def execute(kind: str, pk: int, *, hostname: str | None = None) -> str:
    """Run one run to a final state. Safe to call twice: only the first call starts it."""
    model = run_model(kind)
    try:
        run = model.objects.get(pk=pk)
    except model.DoesNotExist:
        log.warning("%s run %s does not exist; nothing to do", kind, pk)
        return "missing"
    if not run.start(worker=hostname or socket.gethostname(), pid=os.getpid()):
        log.info("%s run %s is %s; not starting it again", kind, pk, run.state)
        return "skipped"
    ctx = JobContext(run)
    ctx.start()
    try:
        import workers.jobs  # noqa: F401  (registers the job bodies; a broken one fails the run)

        func = JOBS.get(kind)
        if func is None:
            raise UserError(f"no worker job is registered for {kind} runs")
        func(run, ctx)
    except Cancelled:
        run.mark_cancelled()
    except UserError as exc:
        run.fail(FailureReason.INVALID_INPUT, str(exc))
    except SoftTimeLimitExceeded:
        run.fail(FailureReason.TIMEOUT, "The run exceeded its time limit and was stopped.")
    except Exception as exc:
        log.exception("%s run %s failed", kind, pk)
        run.fail(FailureReason.ERROR, f"{type(exc).__name__}: {exc}")
    else:
        if ctx.cancelled:
            run.mark_cancelled()
        else:
            run.succeed()
    finally:
        ctx.stop()
    run.refresh_from_db()
    return run.state
