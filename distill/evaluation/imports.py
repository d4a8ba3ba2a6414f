"""Existing evaluation outputs, read into responses to score ("bring your own traces").

Two layouts:

- **SkyThought's result JSON**: an object keyed by problem id, each value the problem's row
  (``problem``/``question``/``prompt``, ...) plus ``responses``: a list of ``{"content": ...}``
  (or plain strings), or the older ``{"<temperature>": {"content": ...}}``; ``token_usages``
  (``completion_tokens`` per response) when present. A list of such rows with an ``id`` (or
  ``unique_id``) is read the same way.
- **JSONL**: one response per line, ``{"problem_id": ..., "prompt": ..., "response": ...}``
  (``id``/``unique_id``/``question_id`` name the problem too; ``responses`` may hold a list).

Django-free: the web tier matches the keys to a benchmark's problems and stores the samples.
Errors name the line or key at fault; nothing is partially read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

FORMATS = ("skythought", "jsonl")
ID_KEYS = ("problem_id", "id", "unique_id", "question_id", "task_id")
PROMPT_KEYS = ("prompt", "problem", "question")
RESPONSE_KEYS = ("response", "completion", "output", "content")
MAX_ERRORS = 5


class TraceFileError(ValueError):
    """The file cannot be read as evaluation outputs; the message says where and why."""


@dataclass(frozen=True)
class ImportedResponse:
    key: str  # the problem id as the file names it
    prompt: str  # the problem text the file carries ("" when none)
    response: str
    sample_index: int  # per problem, in file order
    completion_tokens: int | None = None
    finish_reason: str = ""


def detect(data: bytes) -> str:
    """``skythought`` for one JSON document, ``jsonl`` for one object per line."""
    text = data.lstrip()
    if not text:
        raise TraceFileError("the file is empty")
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "jsonl"
    # One JSON object per line whose single line parses as a whole: a JSONL of one row.
    if isinstance(doc, dict) and any(k in doc for k in RESPONSE_KEYS + ("responses",)) \
            and any(k in doc for k in ID_KEYS):
        return "jsonl"
    return "skythought"


def parse(data: bytes, fmt: str = "auto") -> tuple[str, list[ImportedResponse]]:
    """(format, responses) of an uploaded file; ``fmt`` is ``auto``, ``skythought`` or
    ``jsonl``. Raises :class:`TraceFileError`."""
    if fmt == "auto":
        fmt = detect(data)
    if fmt not in FORMATS:
        raise TraceFileError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TraceFileError(f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})"
                             ) from None
    out = _skythought(text) if fmt == "skythought" else _jsonl(text)
    if not out:
        raise TraceFileError("the file holds no responses")
    return fmt, out


def _text(value, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for k in RESPONSE_KEYS:
            if isinstance(value.get(k), str):
                return value[k]
    raise TraceFileError(f"{where}: a response must be text or an object with \"content\"")


def _first(row: dict, keys: tuple[str, ...]):
    return next((row[k] for k in keys if row.get(k) not in (None, "")), None)


def _response(key: str, row: dict, value, index: int, where: str, usage: dict) -> ImportedResponse:
    prompt = _first(row, PROMPT_KEYS)
    tokens = usage.get("completion_tokens")
    finish = (value.get("finish_reason") if isinstance(value, dict) else None) \
        or row.get("finish_reason") or ""
    return ImportedResponse(
        key=key, prompt=prompt if isinstance(prompt, str) else "",
        response=_text(value, where), sample_index=index,
        completion_tokens=tokens if isinstance(tokens, int) else None,
        finish_reason=str(finish)[:16])


def _collect(items, one) -> list[ImportedResponse]:
    """``one(item)`` for every item; the first few errors reported together."""
    out: list[ImportedResponse] = []
    errors: list[str] = []
    for item in items:
        try:
            out.extend(one(item))
        except TraceFileError as exc:
            errors.append(str(exc))
            if len(errors) >= MAX_ERRORS:
                break
    if errors:
        raise TraceFileError("; ".join(errors))
    return out


def _skythought(text: str) -> list[ImportedResponse]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TraceFileError(f"not valid JSON: {exc.msg} at line {exc.lineno}, column "
                             f"{exc.colno}") from None
    if isinstance(doc, list):
        items = [(str(_first(row, ID_KEYS) if isinstance(row, dict) and _first(row, ID_KEYS)
                      is not None else i), row) for i, row in enumerate(doc)]
    elif isinstance(doc, dict):
        items = [(str(k), v) for k, v in doc.items()]
    else:
        raise TraceFileError("expected SkyThought's results: an object keyed by problem id")

    def one(item) -> list[ImportedResponse]:
        key, row = item
        where = f"problem {key!r}"
        if not isinstance(row, dict):
            raise TraceFileError(f"{where}: expected an object")
        responses = row.get("responses")
        if isinstance(responses, dict):  # older layout: {temperature: {"content": ...}}
            responses = list(responses.values())
        if not isinstance(responses, list) or not responses:
            raise TraceFileError(f"{where}: no \"responses\" list")
        usages = row.get("token_usages") if isinstance(row.get("token_usages"), list) else []
        return [_response(key, row, r, i, f"{where}, response {i}",
                          usages[i] if i < len(usages) and isinstance(usages[i], dict) else {})
                for i, r in enumerate(responses)]

    return _collect(items, one)


def _jsonl(text: str) -> list[ImportedResponse]:
    counts: dict[str, int] = {}

    def one(item) -> list[ImportedResponse]:
        lineno, line = item
        where = f"line {lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TraceFileError(f"{where}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise TraceFileError(f"{where}: expected an object")
        if _first(row, ID_KEYS) is None:
            raise TraceFileError(f"{where}: no problem id (one of {', '.join(ID_KEYS)})")
        key = str(_first(row, ID_KEYS))
        responses = row["responses"] if isinstance(row.get("responses"), list) \
            else [_first(row, RESPONSE_KEYS)]
        if responses == [None]:
            raise TraceFileError(f"{where}: no response (one of {', '.join(RESPONSE_KEYS)})")
        out = []
        for r in responses:
            out.append(_response(key, row, r, counts.get(key, 0), where, row))
            counts[key] = counts.get(key, 0) + 1
        return out

    return _collect(((n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()),
                    one)
