"""Follow LLaMA-Factory's `trainer_log.jsonl` and stdout while a run is writing them.

`trainer_log.jsonl` (written by LLaMA-Factory's LogCallback, one JSON object per logging step)
carries step, loss, lr, epoch and throughput, but not the gradient norm; the HF Trainer prints
that in its own log dict on stdout (`{'loss': '6.3', 'grad_norm': '2.6', ...}`), emitted by the
same `on_log` event, so the two are paired in order.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class MetricPoint:
    """One logging step of a training run."""

    step: int
    total_steps: int | None = None
    loss: float | None = None
    eval_loss: float | None = None
    lr: float | None = None
    grad_norm: float | None = None
    epoch: float | None = None
    throughput_tokens_per_s: float | None = None
    total_tokens: int | None = None
    reward: float | None = None
    accuracy: float | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def is_train_step(self) -> bool:
        return self.loss is not None


def _num(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def parse_trainer_log_line(line: str) -> MetricPoint | None:
    """A MetricPoint from one trainer_log.jsonl line; None for blank, malformed or step-less lines.

    The last line of a run repeats the final step without a loss (the end-of-training summary);
    it is returned too, with loss None, so callers can tell it apart via `is_train_step`.
    """
    line = line.strip()
    if not line:
        return None
    try:
        data = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or "current_steps" not in data:
        return None
    step = data["current_steps"]
    if not isinstance(step, int):
        return None
    total = data.get("total_steps")
    tokens = data.get("total_tokens")
    return MetricPoint(
        step=step,
        total_steps=total if isinstance(total, int) else None,
        loss=_num(data.get("loss")),
        eval_loss=_num(data.get("eval_loss")),
        lr=_num(data.get("lr")),
        epoch=_num(data.get("epoch")),
        throughput_tokens_per_s=_num(data.get("throughput")),
        total_tokens=int(tokens) if isinstance(tokens, (int, float)) else None,
        reward=_num(data.get("reward")),
        accuracy=_num(data.get("accuracy")),
        raw=data,
    )


class JsonlFollower:
    """Reads the lines appended to a file since the last call, like `tail -f` by byte offset.

    A last line without its newline is still being written: it is kept back until complete, so
    a half-written JSON object is never parsed. A file that shrinks (rewritten from scratch, as
    LLaMA-Factory does when a run restarts without resuming) is read again from the start.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.offset = 0
        self._partial = b""

    def read_new_lines(self) -> list[str]:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return []
        if size < self.offset:
            self.offset, self._partial = 0, b""
        if size == self.offset:
            return []
        with self.path.open("rb") as fh:
            fh.seek(self.offset)
            chunk = fh.read(size - self.offset)
        self.offset += len(chunk)
        data = self._partial + chunk
        *complete, self._partial = data.split(b"\n")
        return [raw.decode("utf-8", errors="replace") for raw in complete]

    def flush_partial(self) -> list[str]:
        """At the end of a run, a final line without newline is as complete as it will get."""
        rest, self._partial = self._partial, b""
        return [rest.decode("utf-8", errors="replace")] if rest.strip() else []


class TrainerLogFollower:
    """Metric points from a growing trainer_log.jsonl."""

    def __init__(self, path: Path) -> None:
        self._lines = JsonlFollower(path)

    def skip_existing(self) -> None:
        """Start after what the file holds now (complete lines only)."""
        self._lines.read_new_lines()

    def poll(self, *, final: bool = False) -> list[MetricPoint]:
        lines = self._lines.read_new_lines()
        if final:
            lines += self._lines.flush_partial()
        return [p for p in map(parse_trainer_log_line, lines) if p is not None]


# The HF Trainer's per-step log dict as printed to stdout (values may be quoted strings in v5).
_TRAINER_DICT = re.compile(r"\{'loss': [^{}]*\}")
_GRAD_NORM = re.compile(r"'grad_norm': '?([^,'}]+)")


def grad_norms_in_output(text: str) -> list[float | None]:
    """Gradient norms of the training-step log dicts in a chunk of stdout, in order
    (None for a step whose dict has no grad_norm, so pairing with trainer_log stays aligned)."""
    found: list[float | None] = []
    for match in _TRAINER_DICT.finditer(text):
        norm = _GRAD_NORM.search(match.group(0))
        found.append(_num(norm.group(1).strip()) if norm else None)
    return found
