"""Convert a dataset file into normalised problems, collecting row errors as it goes.

Two ways in:

- ``convert_file`` returns everything at once (problems plus the first ``max_errors``
  errors). With ``keep_problems=False`` it is a constant-memory validation pass.
- ``iter_converted`` yields ``Batch``es of problems and the errors found in the same rows,
  so a 100k-row file never sits in memory. All-or-nothing belongs to the caller: insert the
  batches inside one transaction and roll back as soon as a batch carries an error (or run
  a validation pass first and import only a clean file).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from .errors import DatasetError, RowError
from .layouts import DOMAINS, LAYOUTS, Layout, detect, get_layout
from .readers import detect_format, first_top_level_key, iter_rows

BATCH_SIZE = 1000
DETECT_SAMPLE_ROWS = 20


@dataclass
class Batch:
    problems: list[dict]
    errors: list[dict]
    rows_read: int  # rows read so far in the file, this batch included


@dataclass
class ImportResult:
    layout: str
    problems: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)  # at most max_errors of them
    rows_read: int = 0
    error_count: int = 0  # every error found, including those beyond max_errors

    @property
    def ok(self) -> bool:
        return self.error_count == 0


def error_entry(location: object, field_name: str | None, message: str) -> dict:
    return {"location": str(location), "field": field_name, "message": message}


def _json_root(path: str | Path) -> str | None:
    if detect_format(path) != "json":
        return None
    key = first_top_level_key(path)
    roots = {cls.json_root for cls in LAYOUTS.values() if cls.json_root}
    return key if key in roots else None


def resolve_layout(
    path: str | Path, layout: str = "auto", mapping: dict[str, str] | None = None
) -> tuple[Layout, str | None]:
    """The adapter for ``path`` ("auto" detects it from the first rows) and the JSON
    container its rows sit in. Raises ``DatasetError`` with a message for the user."""
    if layout != "auto":
        adapter = get_layout(layout, mapping)
        return adapter, adapter.json_root
    if mapping:
        return get_layout("mapped", mapping), None
    root = _json_root(path)
    sample: list[dict] = []
    rows = iter_rows(path, json_root=root)
    try:
        for _, row in islice(rows, DETECT_SAMPLE_ROWS):
            if isinstance(row, dict):
                sample.append(row)
    except DatasetError:
        # Damage after the first rows is reported by the conversion, with its location;
        # the rows before it still tell the layout.
        if not sample:
            raise
    return get_layout(detect(sample)), root


def _convert_row(adapter: Layout, location, row, source_override, domain_override) -> dict:
    if isinstance(row, RowError):
        raise row
    problem = adapter.convert(row)
    if problem["external_id"] is None and location.kind == "key":
        # SkyThought result files key rows by id: keep it when the row has none.
        problem["external_id"] = str(location.value)
    if source_override:
        problem["source"] = source_override
    if domain_override:
        problem["domain"] = domain_override
    return problem


def iter_converted(
    path: str | Path,
    layout: str = "auto",
    *,
    mapping: dict[str, str] | None = None,
    source_override: str | None = None,
    domain_override: str | None = None,
    batch_size: int = BATCH_SIZE,
) -> Iterator[Batch]:
    """Yield batches of converted problems with the errors of the same rows.

    Raises ``DatasetError`` before the first batch when the layout is unknown or cannot be
    detected; damage found later (a truncated file) arrives as an error located at "file"
    in the last batch.
    """
    if domain_override is not None and domain_override not in DOMAINS:
        raise DatasetError(f"domain must be one of {', '.join(DOMAINS)}")
    adapter, root = resolve_layout(path, layout, mapping)
    problems: list[dict] = []
    errors: list[dict] = []
    rows_read = 0
    rows = iter_rows(path, json_root=root)
    while True:
        try:
            location, row = next(rows)
        except StopIteration:
            break
        except DatasetError as exc:
            errors.append(error_entry("file", None, str(exc)))
            break
        rows_read += 1
        try:
            problems.append(
                _convert_row(adapter, location, row, source_override, domain_override)
            )
        except RowError as exc:
            errors.append(error_entry(location, exc.field, exc.message))
        except Exception as exc:  # an adapter bug must not lose the report of every row
            errors.append(
                error_entry(location, None, f"could not convert ({type(exc).__name__}: {exc})")
            )
        if len(problems) + len(errors) >= batch_size:
            yield Batch(problems, errors, rows_read)
            problems, errors = [], []
    if problems or errors or rows_read == 0:
        yield Batch(problems, errors, rows_read)


def convert_file(
    path: str | Path,
    layout: str = "auto",
    *,
    mapping: dict[str, str] | None = None,
    source_override: str | None = None,
    domain_override: str | None = None,
    max_errors: int = 50,
    keep_problems: bool = True,
) -> ImportResult:
    """Convert the whole file; see the module docstring for the streaming alternative."""
    adapter, _ = resolve_layout(path, layout, mapping)
    result = ImportResult(layout=adapter.name)
    for batch in iter_converted(
        path,
        adapter.name,
        mapping=mapping,
        source_override=source_override,
        domain_override=domain_override,
    ):
        if keep_problems:
            result.problems.extend(batch.problems)
        result.error_count += len(batch.errors)
        result.errors.extend(batch.errors[: max(0, max_errors - len(result.errors))])
        result.rows_read = batch.rows_read
    return result
