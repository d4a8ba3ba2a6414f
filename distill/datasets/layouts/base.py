"""The adapter base class, the registry, and field helpers every adapter uses."""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from ..errors import RowError

DOMAINS = ("math", "code", "science", "puzzle", "other")

LAYOUTS: dict[str, type[Layout]] = {}


class Layout:
    """One dataset layout: turns a raw row into a problem in the normalised schema.

    Subclasses set ``name``, the column sets that identify the layout (``signatures``, used
    by auto-detection: a layout matches when every sampled row has all columns of one set,
    and the most specific match wins) and implement ``convert``.
    """

    name: ClassVar[str]
    signatures: ClassVar[tuple[frozenset[str], ...]] = ()
    # A nested container to read rows from in JSON documents (CHAMP keeps its rows under
    # "problems"); None means the top level.
    json_root: ClassVar[str | None] = None

    @classmethod
    def sniff(cls, row: dict) -> bool:
        """Content check for layouts whose columns alone are too generic."""
        return True

    def convert(self, row: dict) -> dict:
        """The problem for ``row``; raises ``RowError`` when the row is bad."""
        raise NotImplementedError


def register(cls: type[Layout]) -> type[Layout]:
    LAYOUTS[cls.name] = cls
    return cls


def make_problem(
    *,
    domain: str,
    source: str,
    prompt: str,
    raw: dict,
    difficulty: str | None = None,
    difficulty_level: float | None = None,
    answer: str | None = None,
    solution: str | None = None,
    tests: dict | None = None,
    options: list[str] | None = None,
    external_id: str | None = None,
    meta: dict | None = None,
) -> dict:
    return {
        "domain": domain,
        "source": source,
        "difficulty": difficulty,
        "difficulty_level": None if difficulty_level is None else float(difficulty_level),
        "prompt": prompt,
        "answer": answer,
        "solution": solution,
        "tests": tests,
        "options": options,
        "external_id": external_id,
        "meta": {k: v for k, v in (meta or {}).items() if v is not None},
        "raw": raw,
    }


def make_tests(
    style: str,
    cases: list[dict] | None = None,
    *,
    fn_name: str | None = None,
    code: str | None = None,
    entry_point: str | None = None,
    time_limit_s: float | None = None,
) -> dict:
    return {
        "style": style,
        "fn_name": fn_name,
        "cases": cases or [],
        "code": code,
        "entry_point": entry_point,
        "time_limit_s": time_limit_s,
    }


def text(row: dict, *names: str, required: bool = True) -> str | None:
    """The first of ``names`` present (and not null) in ``row``, checked to be text.

    A required field that is missing or blank raises ``RowError`` naming the first name.
    """
    for name in names:
        value = row.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise RowError(name, f"expected text, got {type(value).__name__}")
        if required and not value.strip():
            raise RowError(name, "is empty")
        return value
    if required:
        raise RowError(names[0], "missing")
    return None


def scalar_text(row: dict, *names: str, required: bool = True) -> str | None:
    """Like ``text`` but accepts numbers too (ids, integer answers), returned as text."""
    for name in names:
        value = row.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise RowError(name, f"expected text or a number, got {type(value).__name__}")
        value = str(value).strip()
        if required and not value:
            raise RowError(name, "is empty")
        return value
    if required:
        raise RowError(names[0], "missing")
    return None


def json_value(row: dict, name: str, *, required: bool = True) -> Any:
    """A column that holds JSON, either as an encoded string (APPs, TACO, LCB) or already
    decoded (the same datasets exported to Parquet or JSON). Blank strings count as missing.
    """
    value = row.get(name)
    if isinstance(value, str):
        if not value.strip():
            value = None
        else:
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise RowError(name, f"invalid JSON: {exc.msg} at column {exc.colno}") from None
    if value is None and required:
        raise RowError(name, "missing")
    return value


def level_number(label: Any) -> float | None:
    """5.0 from "Level 5", 5 or "5"; None for "Level ?" and other non-numeric labels."""
    if isinstance(label, bool):
        return None
    if isinstance(label, int | float):
        return float(label)
    if isinstance(label, str):
        match = re.fullmatch(r"\s*(?:level\s*)?(\d+(?:\.\d+)?)\s*", label, re.IGNORECASE)
        if match:
            return float(match.group(1))
    return None


def label_text(label: Any) -> str | None:
    """The raw difficulty label as text (numbers kept as written)."""
    if label is None or (isinstance(label, str) and not label.strip()):
        return None
    return str(label)
