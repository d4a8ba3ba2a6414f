"""The retry policy, in one place."""

from __future__ import annotations

from celery import Task
from django.db import InterfaceError, OperationalError

from experiments.errors import UserError
from workers.runner import execute


class SkyboardTask(Task):
    acks_late = True
    # Only transient infrastructure errors are retried; a user's mistake is not.
    autoretry_for = (OperationalError, InterfaceError, ConnectionError)
    dont_autoretry_for = (UserError,)
    max_retries = 3
    retry_backoff = 5
    retry_backoff_max = 300
    retry_jitter = True


def execute_run_task(task: Task, kind: str, pk: int) -> str:
    return execute(kind, pk, hostname=task.request.hostname)
