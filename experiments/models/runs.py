"""The lifecycle every row that a worker runs shares: runs of every kind, training nodes.

One indexed ``state``; every transition is a conditional UPDATE whose row count is checked, so
a retried or duplicated Celery delivery cannot move a row that already finished.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import current_app
from django.apps import apps
from django.conf import settings
from django.db import models, transaction
from django.db.models.signals import class_prepared
from django.urls import reverse
from django.utils import timezone

from experiments import provenance

log = logging.getLogger(__name__)


class RunState(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"
    CANCELLED = "cancelled", "cancelled"


FINAL_STATES = (RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED)
ACTIVE_STATES = (RunState.QUEUED, RunState.RUNNING)


class FailureReason(models.TextChoices):
    WORKER_LOST = "worker_lost", "worker lost"
    ERROR = "error", "error"
    INVALID_INPUT = "invalid_input", "invalid input"
    TIMEOUT = "timeout", "time limit exceeded"


class LifecycleQuerySet(models.QuerySet):
    def active(self):
        return self.filter(state__in=ACTIVE_STATES)

    def finished(self):
        return self.filter(state__in=FINAL_STATES)

    def stale(self, now=None):
        """Running rows whose worker has not heart-beaten within RUN_STALE_AFTER_SECONDS."""
        now = now or timezone.now()
        cutoff = now - timedelta(seconds=settings.RUN_STALE_AFTER_SECONDS)
        return self.filter(state=RunState.RUNNING, heartbeat_at__lt=cutoff)

    def reap_stale(self) -> int:
        """Fail the stale rows as worker lost (the reaper's work); how many this call failed."""
        return sum(row.reap() for row in self.stale())


class RunQuerySet(LifecycleQuerySet):
    def recent(self, limit: int = 20):
        return self.select_related("launched_by").order_by("-created_at")[:limit]


class Lifecycle(models.Model):
    """Abstract base of every row that a worker runs to a final state: a run, a node of a
    multi-node training run (and whatever else one job is split into).

    ``workers.runner.execute_row`` drives it: :meth:`start` (only the first delivery does), a
    heartbeat thread calling :meth:`beat` and :meth:`stop_requested`, then :meth:`succeed`,
    :meth:`fail` or :meth:`mark_cancelled`. A subclass adds what its job needs and, where its
    work must also stop for something other than its own cancel flag, :meth:`stop_requested`.
    """

    # Indexed: the overview, the reaper (state=running) and every list page filter on it.
    state = models.CharField(
        max_length=16, choices=RunState.choices, default=RunState.QUEUED, db_index=True
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)

    failure_reason = models.CharField(max_length=40, blank=True)
    failure_message = models.TextField(blank=True)

    celery_task_id = models.CharField(max_length=64, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    worker_pid = models.IntegerField(null=True, blank=True)

    objects = LifecycleQuerySet.as_manager()

    class Meta:
        abstract = True

    # --- reading ----------------------------------------------------------------------------

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def duration(self) -> timedelta | None:
        if not self.started_at:
            return None
        return (self.finished_at or timezone.now()) - self.started_at

    # --- transitions ------------------------------------------------------------------------

    def _transition(self, from_states, to_state: str | None = None, **fields) -> bool:
        """UPDATE ... WHERE state IN from_states; True when this call made the change."""
        if to_state is not None:
            fields["state"] = to_state
        changed = type(self).objects.filter(pk=self.pk, state__in=from_states).update(**fields)
        self.refresh_from_db()
        return changed == 1

    def start(self, *, worker: str, pid: int, **fields) -> bool:
        now = timezone.now()
        return self._transition(
            [RunState.QUEUED],
            RunState.RUNNING,
            started_at=now,
            heartbeat_at=now,
            worker=worker[:200],
            worker_pid=pid,
            **fields,
        )

    def beat(self, **fields) -> bool:
        """Record a heartbeat (and optionally progress); False once the row is no longer running."""
        return (
            type(self)
            .objects.filter(pk=self.pk, state=RunState.RUNNING)
            .update(heartbeat_at=timezone.now(), **fields)
            == 1
        )

    def succeed(self, **fields) -> bool:
        return self._transition(
            [RunState.RUNNING], RunState.SUCCEEDED, finished_at=timezone.now(), **fields
        )

    def fail(self, reason: str, message: str, **fields) -> bool:
        return self._transition(
            ACTIVE_STATES,
            RunState.FAILED,
            finished_at=timezone.now(),
            failure_reason=reason,
            failure_message=message[:10_000],
            **fields,
        )

    def mark_cancelled(self, message: str = "", **fields) -> bool:
        if message:
            fields["failure_message"] = message[:10_000]
        return self._transition(
            ACTIVE_STATES, RunState.CANCELLED, finished_at=timezone.now(), **fields
        )

    def reap(self) -> bool:
        """Fail a row whose worker stopped heart-beating (the reaper, through ``stale()``)."""
        message = (
            f"Worker lost: {self.worker or 'the worker'} stopped sending heartbeats "
            f"(last at {self.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC). The process was killed "
            "or its machine went away; relaunch or resume the run."
        )
        if not self.fail(FailureReason.WORKER_LOST, message):
            return False
        log.warning("reaped %s %s: %s", self._meta.label, self.pk, message)
        return True

    def cancel_requested(self) -> bool:
        return type(self).objects.filter(pk=self.pk, cancel_requested_at__isnull=False).exists()

    def stop_requested(self) -> bool:
        """Checked by the heartbeat: True when the work must stop (a running row's own cancel
        flag here; a row that is part of a larger job adds the job's reasons)."""
        return self.cancel_requested()


def lifecycle_models() -> list[type[Lifecycle]]:
    """Every concrete model with the lifecycle: what the reaper goes through."""
    return [m for m in apps.get_models() if issubclass(m, Lifecycle)]


class Run(Lifecycle):
    """Abstract base: subclasses add what their job needs and name their Celery task.

    A concrete subclass that sets ``kind`` is a kind of run: it is registered in
    :data:`RUN_KINDS` when Django has prepared it, and ``title`` names its pages.
    """

    kind: str = ""  # URL slug and registry key, set by subclasses
    # Plural display title of the kind's pages. A class attribute rather than
    # Meta.verbose_name_plural, which would change the migrations.
    title: str = ""
    task_name: str = ""  # dotted Celery task that executes this kind of run

    name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    launched_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The complete configuration the run was launched with: what it ran is what it says here.
    config = models.JSONField(default=dict, blank=True)
    code_version = models.CharField(max_length=64, blank=True)
    package_versions = models.JSONField(default=dict, blank=True)

    # Stage-by-stage progress: {"stage": "...", "done": n, "total": m, "stages": {...}}.
    progress = models.JSONField(default=dict, blank=True)

    objects = RunQuerySet.as_manager()

    class Meta:
        abstract = True
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name or f"{self.kind} #{self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("run_detail", args=[self.kind, self.pk])

    # --- launching --------------------------------------------------------------------------

    @classmethod
    def launch(cls, *, user=None, **fields):
        """Create a run in ``queued`` and send it to its worker once the row is committed.

        The one way a run is launched: views, schedules and re-runs call it with the run's
        fields (kinds may take other arguments, see :meth:`new`)."""
        run = cls.create_queued(user=user, **fields)
        run.enqueue_on_commit()
        return run

    @classmethod
    def create_queued(cls, *, user=None, **fields):
        """The run row in ``queued`` with what its kind adds (:meth:`on_launch`), in one
        transaction, not yet sent anywhere: :meth:`launch` sends it, a management command
        may execute it inline."""
        with transaction.atomic():
            run = cls.new(launched_by=user, **fields)
            run.state = RunState.QUEUED
            run.save()
            run.on_launch()
        return run

    @classmethod
    def new(cls, **fields):
        """The unsaved run that :meth:`launch` creates; a kind that derives fields from what it
        is given (its configuration, its queue) overrides this."""
        return cls(**fields)

    def on_launch(self) -> None:
        """Rows a kind needs before a worker sees the run (inside the launch transaction)."""

    def relaunch(self) -> bool:
        """Failed or cancelled → queued again and sent to its worker after commit; False (and
        nothing sent) when the run is not failed or cancelled."""
        if not self.resume():
            return False
        self.enqueue_on_commit()
        return True

    def enqueue_on_commit(self) -> None:
        """:meth:`enqueue` once the current transaction commits (at once in autocommit), so the
        worker always finds the row it is sent."""
        transaction.on_commit(self.enqueue)

    # --- reading ----------------------------------------------------------------------------

    def status_dict(self) -> dict:
        return {
            "kind": self.kind,
            "id": self.pk,
            "name": str(self),
            "state": self.state,
            "failure_reason": self.failure_reason,
            "failure_message": self.failure_message,
            "progress": self.progress,
            "created_at": self.created_at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "heartbeat_at": self.heartbeat_at.isoformat() if self.heartbeat_at else None,
            "cancel_requested": self.cancel_requested_at is not None,
            "url": self.get_absolute_url(),
        }

    # --- transitions ------------------------------------------------------------------------

    def enqueue(self, **options) -> None:
        """Send the run to its worker queue; the web request never does the work itself."""
        result = current_app.send_task(self.task_name, args=[self.kind, self.pk], **options)
        type(self).objects.filter(pk=self.pk).update(celery_task_id=result.id)
        self.celery_task_id = result.id

    def start(self, *, worker: str, pid: int, **fields) -> bool:
        """As every lifecycle row; a run also records the code and packages it ran with."""
        return super().start(
            worker=worker,
            pid=pid,
            code_version=provenance.code_version(),
            package_versions=provenance.package_versions(),
            **fields,
        )

    def set_progress(self, **progress) -> None:
        merged = {**self.progress, **progress}
        if self.beat(progress=merged):
            self.progress = merged

    def cancel(self) -> str:
        """Cancel on behalf of a user: returns what happened ("cancelled", "stopping", "final").

        A queued run is cancelled at once and its message revoked. A running run is flagged;
        its worker sees the flag at the next heartbeat, terminates the job's process group and
        marks the run cancelled. The revoke broadcast is a second path to the same end.
        """
        if self._transition([RunState.QUEUED], RunState.CANCELLED, finished_at=timezone.now()):
            if self.celery_task_id:
                current_app.control.revoke(self.celery_task_id)
            return "cancelled"
        if (
            type(self)
            .objects.filter(pk=self.pk, state=RunState.RUNNING, cancel_requested_at__isnull=True)
            .update(cancel_requested_at=timezone.now())
        ):
            self.refresh_from_db()
            return "stopping"
        self.refresh_from_db()
        return "stopping" if self.state == RunState.RUNNING else "final"

    def resume(self) -> bool:
        """Failed or cancelled → queued again, as a new attempt of the same run (the job skips
        what earlier attempts persisted). Conditional, so two clicks enqueue it once."""
        return self._transition(
            [RunState.FAILED, RunState.CANCELLED],
            RunState.QUEUED,
            finished_at=None,
            heartbeat_at=None,
            cancel_requested_at=None,
            failure_reason="",
            failure_message="",
        )


class Queue(models.TextChoices):
    CPU = "cpu", "cpu"
    GPU = "gpu", "gpu"
    API = "api", "api"


class QueuedRun(Run):
    # Which worker pool executes it; a GPU machine's worker listens on "gpu" only.
    queue = models.CharField(max_length=8, choices=Queue.choices, default=Queue.CPU)

    class Meta(Run.Meta):
        abstract = True

    @classmethod
    def new(cls, *, queue: str = "", **fields):
        run = super().new(**fields)
        run.queue = queue or run.default_queue()
        return run

    def default_queue(self) -> str:
        """The queue a run goes to when its launcher names none: the one place a kind decides
        (the field's default here; kinds whose queue depends on the backend override it)."""
        return self._meta.get_field("queue").default

    @property
    def task_name(self) -> str:  # type: ignore[override]
        return f"workers.tasks.{self.queue}.execute_run"


# Every concrete kind of run by its ``kind``, in the order Django prepares the models.
RUN_KINDS: dict[str, type[Run]] = {}


def _register_kind(sender, **kwargs) -> None:
    # class_prepared is sent for concrete models only: abstract bases never register.
    if issubclass(sender, Run) and sender.kind:
        RUN_KINDS[sender.kind] = sender


class_prepared.connect(_register_kind)


def run_model(kind: str) -> type[Run]:
    try:
        return RUN_KINDS[kind]
    except KeyError:
        raise LookupError(f"unknown run kind {kind!r}") from None
