"""Periodic housekeeping, scheduled by beat."""

from __future__ import annotations

from celery import shared_task

from experiments.models.runs import lifecycle_models

from .base import SkyboardTask


@shared_task(base=SkyboardTask, soft_time_limit=120, time_limit=180)
def reap_stale_runs() -> int:
    """Fail running rows (runs of every kind, training nodes) whose worker stopped
    heart-beating (killed, crashed, machine lost): one queryset, ``stale()``, for all."""
    return sum(model.objects.reap_stale() for model in lifecycle_models())
