"""Periodic housekeeping, scheduled by beat."""

from __future__ import annotations

import logging

from celery import shared_task

from experiments.models import RUN_KINDS, FailureReason

from .base import SkyboardTask

log = logging.getLogger(__name__)


@shared_task(base=SkyboardTask, soft_time_limit=120, time_limit=180)
def reap_stale_runs() -> int:
    """Fail running runs whose worker stopped heart-beating (killed, crashed, machine lost)."""
    reaped = 0
    for model in RUN_KINDS.values():
        for run in model.objects.stale():
            message = (
                f"Worker lost: {run.worker or 'the worker'} stopped sending heartbeats "
                f"(last at {run.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC). The process was killed "
                "or its machine went away; relaunch or resume the run."
            )
            if run.fail(FailureReason.WORKER_LOST, message):
                reaped += 1
                log.warning("reaped %s run %s: %s", run.kind, run.pk, message)
    return reaped
