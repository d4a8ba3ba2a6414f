"""Errors that run code raises and the lifecycle understands (models, jobs and the executor).

Django-free, so the Django-free library and the worker code can raise them without importing
the web app's models.
"""


class UserError(Exception):
    """A problem with what the user asked for: shown to them, never retried."""


class Cancelled(Exception):
    """Raised inside a job when its run was cancelled."""


class Failed(Exception):
    """Raised inside a job to fail its row with a reason of its own (e.g. ``node_timeout``)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
