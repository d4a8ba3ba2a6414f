"""Layout adapters behind a registry, and auto-detection of a file's layout."""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import DatasetError
from . import maths, other, programs  # noqa: F401 - importing registers the adapters
from .base import DOMAINS, LAYOUTS, Layout
from .other import Mapped

__all__ = ["DOMAINS", "LAYOUTS", "Layout", "detect", "get_layout", "layout_names"]


def layout_names() -> list[str]:
    return sorted(LAYOUTS)


def get_layout(name: str, mapping: dict[str, str] | None = None) -> Layout:
    """An adapter instance; ``mapping`` is required by, and only allowed for, "mapped"."""
    if name not in LAYOUTS:
        raise DatasetError(f"unknown layout {name!r}; known layouts: {', '.join(layout_names())}")
    if name == Mapped.name:
        return Mapped(mapping or {})
    if mapping:
        raise DatasetError(f"a field mapping only applies to the mapped layout, not {name!r}")
    return LAYOUTS[name]()


def detect(rows_sample: Iterable[dict]) -> str:
    """The layout that fits the sampled rows, preferring the most specific column signature.

    A layout fits when at least half the rows carry all columns of one of its signatures,
    so one broken row in the sample does not hide the layout (its error is reported when
    the row is converted). Raises ``DatasetError`` when no layout fits (naming the columns
    seen, so the user can write a mapping) or when two layouts fit equally well.
    """
    rows = [row for row in rows_sample if isinstance(row, dict)]
    if not rows:
        raise DatasetError("cannot detect the layout: the file has no readable rows")
    scores: dict[str, tuple[int, float]] = {}
    for name, cls in LAYOUTS.items():
        sizes = [
            max((len(sig) for sig in cls.signatures if sig <= row.keys()), default=0)
            if cls.sniff(row)
            else 0
            for row in rows
        ]
        fitting = [size for size in sizes if size]
        if len(fitting) * 2 >= len(rows):
            scores[name] = (max(fitting), len(fitting) / len(rows))
    if not scores:
        columns = sorted(set().union(*(row.keys() for row in rows)))
        raise DatasetError(
            f"unknown layout: columns {', '.join(columns)} match no known layout; "
            "choose a layout or give a field mapping (layout 'mapped')"
        )
    best = max(scores.values())
    winners = sorted(name for name, score in scores.items() if score == best)
    if len(winners) > 1:
        raise DatasetError(f"ambiguous layout: the rows fit {' and '.join(winners)}; choose one")
    return winners[0]
