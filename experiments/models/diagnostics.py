"""Worker checks: which worker on a queue answered, with what hardware and packages."""

from __future__ import annotations

from django.db import models

from .runs import QueuedRun


class DiagnosticRun(QueuedRun):
    """A worker check: which worker on a queue answered, with what hardware and packages.

    ``config["hold_seconds"]`` keeps the slot busy (heart-beating) for that long, which is
    how operators check that heartbeats, cancel and the stale-run reaper work on a new machine.
    """

    kind = "diagnostic"
    title = "Worker checks"
    result = models.JSONField(default=dict, blank=True)

    class Meta(QueuedRun.Meta):
        pass
