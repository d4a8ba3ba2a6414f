"""Executes a lifecycle row (a run, a training node) inside a Celery worker: start,
heartbeat, cancel, finish.

:func:`execute_row` is the one executor; :func:`execute` runs a run's registered job through
it. Jobs (``workers.jobs``) receive the row and a :class:`JobContext`. The context heart-beats
from a background thread, notices a cancel request (or the row's own stop condition), and
terminates every process group the job started through it, so a cancelled or finished row
leaves no process behind.
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

from experiments.errors import Cancelled, Failed, UserError
from experiments.models import FailureReason, run_model

log = logging.getLogger(__name__)

__all__ = [
    "Cancelled",
    "Failed",
    "JobContext",
    "UserError",
    "execute",
    "execute_row",
    "job",
    "kill_process_group",
]


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
    def __init__(self, row, *, heartbeat_seconds: float | None = None):
        self.row = row
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
        self.row.set_progress(**progress)

    def popen(self, args: Sequence[str], **kwargs) -> subprocess.Popen:
        """Start a subprocess in its own process group, terminated on cancel and at the end."""
        proc = subprocess.Popen(args, start_new_session=True, **kwargs)
        with self._lock:
            self._groups.add(proc.pid)
        return proc

    # --- for the runner -------------------------------------------------------------------

    def start(self) -> None:
        """Check once now (a row may start when its job is already stopping), then beat."""
        self.check()
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

    def check(self) -> bool:
        """One heartbeat: True once the work must stop (then it is stopped)."""
        try:
            if not self.row.beat() or self.row.stop_requested():
                # Cancelled by a user, finalised behind our back (the reaper), or the larger
                # job the row is part of stopped: either way the work must stop now.
                self.cancel_event.set()
                self.kill_processes()
        except Exception:  # a DB blip must not kill the heartbeat thread
            log.exception("heartbeat failed for %s", self.row)
        return self.cancel_event.is_set()

    def _beat_loop(self) -> None:
        try:
            while not self._stop.wait(self._interval):
                self.check()
        finally:
            connection.close()


Body = Callable[[Any, JobContext], None]


def execute_row(
    model, body: Body, *, hostname: str | None = None, propagate: bool = False, **lookup
) -> str:
    """Run the row of ``model`` that ``lookup`` selects to a final state with ``body(row, ctx)``.

    Safe to call twice: only the first call starts the row. Errors become its final state:
    Cancelled → cancelled, Failed → failed with its reason, UserError → invalid_input,
    SoftTimeLimitExceeded → timeout, any other exception → error. A body that finalised the row
    itself (e.g. failed it with its trainer's reason) keeps that state. ``propagate``: the row
    runs inside another row's job (node 0 inside its run's task): the error, once recorded,
    is raised again to end the enclosing row the same way.
    """
    row = model.objects.filter(**lookup).first()
    if row is None:
        log.warning("no %s with %s; nothing to do", model._meta.label, lookup)
        return "missing"
    if not row.start(worker=hostname or socket.gethostname(), pid=os.getpid()):
        log.info("%s %s is %s; not starting it again", model._meta.label, row.pk, row.state)
        return "skipped"
    ctx = JobContext(row)
    ctx.start()
    try:
        body(row, ctx)
    except Exception as exc:
        _record_error(row, exc)
        if propagate:
            raise
    else:
        if ctx.cancelled:
            row.mark_cancelled()
        else:
            row.succeed()
    finally:
        ctx.stop()
    row.refresh_from_db()
    return row.state


def _record_error(row, exc: Exception) -> None:
    if isinstance(exc, Cancelled):
        row.mark_cancelled()
    elif isinstance(exc, Failed):
        row.fail(exc.reason, str(exc))
    elif isinstance(exc, UserError):
        row.fail(FailureReason.INVALID_INPUT, str(exc))
    elif isinstance(exc, SoftTimeLimitExceeded):
        row.fail(FailureReason.TIMEOUT, "The run exceeded its time limit and was stopped.")
    else:
        log.exception("%s %s failed", row._meta.label, row.pk)
        row.fail(FailureReason.ERROR, f"{type(exc).__name__}: {exc}")


def execute(kind: str, pk: int, *, hostname: str | None = None) -> str:
    """Run one run to a final state with its kind's registered job."""
    return execute_row(run_model(kind), _run_job, hostname=hostname, pk=pk)


def _run_job(run, ctx: JobContext) -> None:
    import workers.jobs  # noqa: F401  (registers the job bodies; a broken one fails the run)

    func = JOBS.get(run.kind)
    if func is None:
        raise UserError(f"no worker job is registered for {run.kind} runs")
    func(run, ctx)
