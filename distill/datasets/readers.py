"""Stream rows out of JSONL, JSON and Parquet files, gzip-compressed or not.

Everything streams: JSONL line by line, JSON documents with ijson (a C-backed incremental
parser, so a 1 GB results file never sits in memory as a whole), Parquet batch by batch.
Each row comes with a ``Location`` that error messages use to point at it.
"""

from __future__ import annotations

import gzip
import json
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, NamedTuple

import ijson
import pyarrow.parquet as pq

from .errors import DatasetError, RowError

GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
PARQUET_BATCH_ROWS = 1024

FORMATS = ("jsonl", "json", "parquet")


class Location(NamedTuple):
    """Where a row sits in its file.

    ``kind`` is "line" (JSONL, 1-based like an editor), "index" (JSON list, 0-based like
    ``jq .[3]``), "key" (JSON object keyed by id) or "row" (Parquet, 0-based like pandas).
    """

    kind: str
    value: int | str

    def __str__(self) -> str:
        if self.kind == "key":
            return f"key {self.value!r}"
        return f"{self.kind} {self.value}"


@contextmanager
def open_binary(path: str | Path) -> Iterator[IO[bytes]]:
    """Open ``path`` for reading, decompressing gzip when the magic bytes say so.

    The magic bytes decide, not the extension: files renamed by hand or served without
    ``.gz`` are common in dataset dumps.
    """
    path = Path(path)
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise DatasetError(f"cannot open {path}: {exc.strerror or exc}") from exc
    try:
        if raw.read(2) == GZIP_MAGIC:
            raw.seek(0)
            with gzip.GzipFile(fileobj=raw) as stream:
                yield stream
        else:
            raw.seek(0)
            yield raw
    finally:
        raw.close()


def detect_format(path: str | Path) -> str:
    """"jsonl", "json" or "parquet", from the extension (ignoring .gz), else the content."""
    path = Path(path)
    suffixes = [s.lower() for s in path.suffixes if s.lower() not in (".gz", ".gzip")]
    ext = suffixes[-1] if suffixes else ""
    if ext in (".jsonl", ".ndjson"):
        return "jsonl"
    if ext == ".json":
        return "json"
    if ext in (".parquet", ".pq"):
        return "parquet"
    with open_binary(path) as f:
        try:
            head = f.read(64 * 1024)
        except (OSError, EOFError, zlib.error) as exc:
            raise DatasetError(f"cannot read {path.name}: {exc}") from exc
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    text = head.lstrip()
    if text.startswith(b"["):
        return "json"
    if text.startswith(b"{"):
        # One object per line is JSONL; a single document spread over lines is JSON.
        first_line = text.split(b"\n", 1)[0]
        try:
            json.loads(first_line)
            return "jsonl"
        except ValueError:
            return "json"
    raise DatasetError(
        f"cannot tell the format of {path.name}: expected .jsonl, .json or .parquet "
        "(optionally gzip-compressed)"
    )


def iter_rows(
    path: str | Path, *, fmt: str | None = None, json_root: str | None = None
) -> Iterator[tuple[Location, dict | RowError]]:
    """Yield ``(location, row)`` for every row of the file.

    A row that cannot be parsed (a bad JSONL line, a line holding a number instead of an
    object) is yielded as a ``RowError`` in place of the dict, so the caller can report it
    and carry on. Damage that ends the stream (truncated gzip, a syntax error inside a JSON
    document, an unreadable Parquet file) raises ``DatasetError`` naming where it happened.

    ``json_root`` selects a nested container in a JSON document, e.g. "problems" for
    CHAMP's ``{"problems": {...}, "concepts": {...}}``.
    """
    fmt = fmt or detect_format(path)
    if fmt == "jsonl":
        yield from _iter_jsonl(path)
    elif fmt == "json":
        yield from _iter_json(path, json_root)
    elif fmt == "parquet":
        yield from _iter_parquet(path)
    else:
        raise DatasetError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def _iter_jsonl(path: str | Path) -> Iterator[tuple[Location, dict | RowError]]:
    with open_binary(path) as f:
        lineno = 0
        try:
            for lineno, line in enumerate(f, start=1):  # noqa: B007 - used after the loop
                if not line.strip():
                    continue
                loc = Location("line", lineno)
                try:
                    row = json.loads(line)
                except UnicodeDecodeError as exc:
                    yield loc, RowError(None, f"not UTF-8 text: {exc.reason}")
                    continue
                except json.JSONDecodeError as exc:
                    yield loc, RowError(None, f"invalid JSON at character {exc.pos + 1}: {exc.msg}")
                    continue
                if not isinstance(row, dict):
                    yield loc, RowError(
                        None, f"expected a JSON object, got {type(row).__name__}"
                    )
                    continue
                yield loc, row
        except (OSError, EOFError, zlib.error) as exc:
            raise DatasetError(f"file damaged after line {lineno}: {exc}") from exc


def _container_kind(path: str | Path, root: str) -> str:
    """"map" or "array": what sits at ``root`` (the empty string is the document)."""
    with open_binary(path) as f:
        for prefix, event, _ in ijson.parse(f):
            if prefix == root and event in ("start_map", "start_array"):
                return "map" if event == "start_map" else "array"
            if prefix == root:
                raise DatasetError(f"expected a list or an object at {root or 'the top'}")
    raise DatasetError(f"no {root!r} list or object in the file")


def _iter_json(
    path: str | Path, json_root: str | None
) -> Iterator[tuple[Location, dict | RowError]]:
    root = json_root or ""
    last: Location | None = None
    try:
        kind = _container_kind(path, root)
        with open_binary(path) as f:
            if kind == "array":
                items = ijson.items(f, f"{root}.item" if root else "item", use_float=True)
                pairs = ((Location("index", i), row) for i, row in enumerate(items))
            else:
                pairs = (
                    (Location("key", key), row)
                    for key, row in ijson.kvitems(f, root, use_float=True)
                )
            for loc, row in pairs:
                last = loc
                if isinstance(row, dict):
                    yield loc, row
                else:
                    yield loc, RowError(None, f"expected a JSON object, got {type(row).__name__}")
    except ijson.JSONError as exc:
        where = f"after {last}" if last is not None else "before the first row"
        # ijson's message draws a caret over several lines; the first one says it all.
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatasetError(f"invalid JSON {where}: {reason}") from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"file damaged after {last or 'the start'}: {exc}") from exc


@contextmanager
def _seekable(path: str | Path) -> Iterator[IO[bytes]]:
    # Parquet needs random access (the footer is at the end), which a gzip stream lacks:
    # spill the decompressed bytes to a temporary file rather than into memory.
    with open_binary(path) as f:
        if isinstance(f, gzip.GzipFile):
            with tempfile.TemporaryFile() as tmp:
                shutil.copyfileobj(f, tmp, 1024 * 1024)
                tmp.seek(0)
                yield tmp
        else:
            yield f


def _iter_parquet(path: str | Path) -> Iterator[tuple[Location, dict | RowError]]:
    with _seekable(path) as f:
        try:
            parquet = pq.ParquetFile(f)
        except Exception as exc:  # pyarrow raises ArrowInvalid and friends
            raise DatasetError(f"not a readable Parquet file: {exc}") from exc
        index = 0
        batches = parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except Exception as exc:
                raise DatasetError(f"Parquet file damaged at row {index}: {exc}") from exc
            for row in batch.to_pylist():
                yield Location("row", index), row
                index += 1


def first_top_level_key(path: str | Path) -> str | None:
    """The first key of a JSON document whose top level is an object, else None.

    Lets auto-detection spot container files like CHAMP's ``{"problems": {...}}`` without
    parsing the whole document.
    """
    try:
        with open_binary(path) as f:
            for prefix, event, value in ijson.parse(f):
                if prefix == "" and event == "map_key":
                    return value
                if prefix == "" and event in ("start_array", "end_map"):
                    return None
    except (ijson.JSONError, OSError, EOFError, zlib.error):
        return None
    return None
