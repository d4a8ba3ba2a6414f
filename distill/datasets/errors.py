"""Errors raised while reading and converting dataset files.

Two kinds: a ``RowError`` belongs to one row (the import goes on and reports it with the
row's location), a ``DatasetError`` stops the whole file (unknown layout, unreadable file).
"""

from __future__ import annotations


class DatasetError(Exception):
    """The file as a whole cannot be imported; the message says why, for the user."""


class RowError(Exception):
    """One row is bad. ``field`` names the column at fault (None when it is the row itself)."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message
