"""Generations made elsewhere ("bring your own traces"), read into one shape for a curation run
that starts at verification.

Three layouts:

- ``skythought``: SkyThought's result JSON, ``{problem id: {<problem fields>, "responses": ...}}``.
  ``responses`` is a list (of ``{"content": ...}`` objects or strings) or, in older releases,
  ``{temperature: {"content": ...} | [{"content": ...}, ...]}``; ``token_usages`` (a list
  parallel to the responses) gives token counts when present. The problem text is the first of
  ``prompt``, ``problem``, ``question``, ``Problem``, ``question_content``; the answer the first
  of ``answer``, ``Answer``, ``expected_answer``.
- ``openai_batch``: the output file of OpenAI's Batch API, one JSON object a line:
  ``custom_id``, ``response`` (``status_code``, ``body`` = a chat completion) and ``error``.
  A line whose request failed becomes a failed generation (its error recorded), like an API
  error of a run. It carries no prompt: its ``custom_id`` must name the problem.
- ``jsonl``: one JSON object a line with ``prompt`` and ``response`` (``completion`` and
  ``output`` are accepted for ``response``), and optionally ``id``, ``model``, ``answer``,
  ``finish_reason``.

Every problem is reported with the line it starts on (1-based; for the JSON layout, the line of
its key), and the first problem in a file stops the read: nothing of a bad file is imported.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from distill.datasets.hashing import normalise_prompt

FORMATS = {
    "skythought": "SkyThought result JSON",
    "openai_batch": "OpenAI batch output JSONL",
    "jsonl": "JSONL of prompt/response",
}
PROMPT_KEYS = ("prompt", "problem", "question", "Problem", "question_content")
ANSWER_KEYS = ("answer", "Answer", "expected_answer")
RESPONSE_KEYS = ("response", "completion", "output")
MAX_TRACES = 200_000


class TraceFormatError(ValueError):
    """A file that is not what its layout says, at ``line``."""

    def __init__(self, line: int | None, message: str) -> None:
        self.line, self.message = line, message
        super().__init__(f"line {line}: {message}" if line else message)


@dataclass
class Trace:
    line: int
    id: str = ""
    prompt: str = ""
    response: str = ""
    model: str = ""
    finish_reason: str = "stop"
    error: dict[str, Any] | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    answer: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


def prompt_key(prompt: str) -> str:
    """What matching by prompt compares: SHA-256 of the normalised prompt."""
    return hashlib.sha256(normalise_prompt(prompt).encode("utf-8")).hexdigest()


def detect_format(data: bytes) -> str:
    """``skythought`` for a JSON object, ``openai_batch`` when the first line has a
    ``custom_id`` and a ``response``, else ``jsonl``."""
    head = data.lstrip()[:1]
    if head == b"{":
        first = data.lstrip().split(b"\n", 1)[0]
        try:
            row = json.loads(first)
        except ValueError:
            return "skythought"  # a pretty-printed JSON object spans lines
        if isinstance(row, dict) and "custom_id" in row and "response" in row:
            return "openai_batch"
        if isinstance(row, dict) and any(k in row for k in RESPONSE_KEYS):
            return "jsonl"
        return "skythought"
    return "jsonl"


def parse_traces(data: bytes, fmt: str = "auto") -> tuple[str, list[Trace]]:
    """The format read and its traces, in file order; ``TraceFormatError`` on the first
    problem."""
    if fmt == "auto":
        fmt = detect_format(data)
    if fmt not in FORMATS:
        raise TraceFormatError(None, f"unknown format {fmt!r}; use one of {sorted(FORMATS)}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise TraceFormatError(line, "the file is not UTF-8 text") from e
    traces = _skythought(text) if fmt == "skythought" else list(_jsonl(text, fmt))
    if not traces:
        raise TraceFormatError(None, f"no generations in the file ({FORMATS[fmt]})")
    if len(traces) > MAX_TRACES:
        raise TraceFormatError(None, f"{len(traces)} generations; at most {MAX_TRACES} a file")
    return fmt, traces


def _text(value: Any, line: int, what: str, *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise TraceFormatError(line, f"{what} must be a string, not {type(value).__name__}")
    return value


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _jsonl(text: str, fmt: str):
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except ValueError as e:
            raise TraceFormatError(number, f"not JSON ({e.msg} at column {e.colno})") from e
        if not isinstance(row, dict):
            raise TraceFormatError(number, f"expected a JSON object, got {type(row).__name__}")
        yield _batch_line(row, number) if fmt == "openai_batch" else _plain_line(row, number)


def _plain_line(row: dict, line: int) -> Trace:
    if "custom_id" in row and "response" in row and isinstance(row["response"], dict | None):
        raise TraceFormatError(line, "this is an OpenAI batch output line; choose that format")
    key = next((k for k in RESPONSE_KEYS if k in row), None)
    if key is None:
        raise TraceFormatError(line, f"no response: expected one of {list(RESPONSE_KEYS)} "
                                     f"(keys found: {sorted(row)[:8]})")
    prompt = row.get("prompt")
    if prompt is None and not row.get("id"):
        raise TraceFormatError(line, "neither a 'prompt' nor an 'id' to match a problem by")
    ident = row.get("id")
    return Trace(
        line=line, id="" if ident is None else str(ident),
        prompt=_text(prompt, line, "'prompt'", required=False),
        response=_text(row[key], line, f"{key!r}"),
        model=_text(row.get("model"), line, "'model'", required=False),
        finish_reason=_text(row.get("finish_reason"), line, "'finish_reason'",
                            required=False) or "stop",
        answer=_scalar(row.get("answer")),
        prompt_tokens=_int(row.get("prompt_tokens")),
        completion_tokens=_int(row.get("completion_tokens")))


def _batch_line(row: dict, line: int) -> Trace:
    if "custom_id" not in row:
        raise TraceFormatError(line, "no 'custom_id': not an OpenAI batch output line")
    custom_id = str(row["custom_id"])
    response, error = row.get("response"), row.get("error")
    if response is not None and not isinstance(response, dict):
        raise TraceFormatError(line, "'response' must be an object or null")
    status = _int((response or {}).get("status_code"))
    body = (response or {}).get("body")
    if error or response is None or status is None or status >= 400:
        detail = error if isinstance(error, dict) else (
            body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), dict)
            else {})
        message = str(detail.get("message") or error or f"status {status}")[:2000]
        return Trace(line=line, id=custom_id, finish_reason="error", error={
            "type": str(detail.get("code") or detail.get("type") or "BatchError"),
            "message": message, "status": status, "attempts": 1})
    if not isinstance(body, dict):
        raise TraceFormatError(line, "'response.body' must be a chat completion object")
    choices = body.get("choices")
    if not (isinstance(choices, list) and choices and isinstance(choices[0], dict)
            and isinstance(choices[0].get("message"), dict)):
        raise TraceFormatError(line, "'response.body.choices[0].message' is missing")
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    return Trace(
        line=line, id=custom_id,
        response=_text(choices[0]["message"].get("content"), line,
                       "'response.body.choices[0].message.content'"),
        model=str(body.get("model") or ""),
        finish_reason=str(choices[0].get("finish_reason") or "stop"),
        prompt_tokens=_int(usage.get("prompt_tokens")),
        completion_tokens=_int(usage.get("completion_tokens")),
        extra={"request_id": (response or {}).get("request_id") or ""})


def _scalar(value: Any) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value)


def _key_lines(text: str, keys: list[str]) -> dict[str, int]:
    """The line each top-level key of a JSON object is written on (best effort)."""
    out, pos = {}, 0
    for key in keys:
        found = text.find(json.dumps(key, ensure_ascii=False) + ":", pos)
        if found < 0:
            found = text.find(json.dumps(key), pos)
        if found >= 0:
            out[key], pos = text.count("\n", 0, found) + 1, found
    return out


def _skythought(text: str) -> list[Trace]:
    try:
        data = json.loads(text)
    except ValueError as e:
        raise TraceFormatError(getattr(e, "lineno", None), f"not JSON ({getattr(e, 'msg', e)})") \
            from e
    if not isinstance(data, dict):
        raise TraceFormatError(1, "a SkyThought result file is a JSON object keyed by problem id")
    lines = _key_lines(text, list(data))
    out: list[Trace] = []
    for key, entry in data.items():
        line = lines.get(key, 1)
        if not isinstance(entry, dict):
            raise TraceFormatError(line, f"{key!r}: expected an object")
        if "responses" not in entry:
            raise TraceFormatError(line, f"{key!r}: no 'responses' (is this a dataset rather "
                                         "than SkyThought's results?)")
        prompt = next((entry[k] for k in PROMPT_KEYS if isinstance(entry.get(k), str)), "")
        answer = next((_scalar(entry[k]) for k in ANSWER_KEYS if k in entry), "")
        usages = entry.get("token_usages")
        for i, response in enumerate(_responses(entry["responses"], line, key)):
            if isinstance(response, str):
                content, meta = response, {}
            elif isinstance(response, dict) and isinstance(response.get("content"), str):
                content, meta = response["content"], response
            else:
                raise TraceFormatError(line, f"{key!r}: response {i} has no text 'content'")
            usage = usages[i] if isinstance(usages, list) and i < len(usages) and \
                isinstance(usages[i], dict) else {}
            extra = {k: meta[k] for k in ("correctness", "reason") if k in meta}
            out.append(Trace(line=line, id=str(key), prompt=prompt, response=content,
                             model=str(entry.get("model") or ""), answer=answer,
                             finish_reason=str(meta.get("finish_reason") or "stop"),
                             prompt_tokens=_int(usage.get("prompt_tokens")),
                             completion_tokens=_int(usage.get("completion_tokens")),
                             extra=extra))
    return out


def _responses(value: Any, line: int, key: str) -> list:
    if isinstance(value, list):
        return value
    if isinstance(value, dict):  # {temperature: response or [responses]}
        flat: list = []
        for per_temperature in value.values():
            flat.extend(per_temperature if isinstance(per_temperature, list) else
                        [per_temperature])
        return flat
    raise TraceFormatError(line, f"{key!r}: 'responses' must be a list or an object")


@dataclass
class Candidate:
    """A problem the traces may belong to."""

    id: int
    external_id: str
    prompt: str




def match_traces(traces: list[Trace], candidates: list[Candidate], *,
                 allow_new: bool = False) -> list[int | None]:
    """For each trace, the id of its problem: by the source's id (a problem's external id),
    else by prompt (normalised, hashed). ``None`` where nothing matched and ``allow_new`` (the
    trace's prompt becomes a new problem); otherwise an unmatched trace is an error at its
    line."""
    by_id = {c.external_id: c.id for c in candidates if c.external_id}
    by_prompt: dict[str, int] = {}
    for c in candidates:
        by_prompt.setdefault(prompt_key(c.prompt), c.id)
    out: list[int | None] = []
    for t in traces:
        pid = by_id.get(t.id) if t.id else None
        if pid is None and t.prompt:
            pid = by_prompt.get(prompt_key(t.prompt))
        if pid is None and not allow_new:
            what = f"id {t.id!r}" if t.id else "no id"
            raise TraceFormatError(t.line, f"{what} and its prompt match no problem of the "
                                           "recipe version")
        if pid is None and not t.prompt.strip():
            raise TraceFormatError(t.line, f"id {t.id!r} matches no problem, and the line has "
                                           "no prompt to import it as a new one")
        out.append(pid)
    return out
