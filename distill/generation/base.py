"""Backend interface shared by every generation engine.

A backend turns ``GenRequest``s into ``GenResult``s. Results are yielded as soon as each one
completes, possibly out of order, and each carries the caller's key so the caller can persist
it immediately and idempotently (a re-run simply skips keys it already has).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any, ClassVar, Literal

FinishReason = Literal["stop", "length", "error"]


@dataclass(frozen=True)
class Sampling:
    """Per-request sampling parameters. ``n`` is expanded by the caller (see ``expand``)."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 1024
    seed: int | None = None


@dataclass(frozen=True)
class GenRequest:
    key: str
    messages: list[dict[str, str]]
    sampling: Sampling = field(default_factory=Sampling)
    sample_index: int = 0


@dataclass
class GenResult:
    key: str
    completion: str
    finish_reason: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float = 0.0
    model: dict[str, Any] = field(default_factory=dict)  # {"name": ..., "revision": ...}
    backend: str = ""
    backend_version: str = ""
    prompt_text: str | None = None
    error: dict[str, Any] | None = None  # {"type", "message", "status", "attempts"}
    attempts: int = 1
    sample_index: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def expand(
    key: str, messages: list[dict[str, str]], sampling: Sampling, n: int = 1
) -> list[GenRequest]:
    """Expand ``n`` samples of one prompt into separate requests keyed ``"{key}:{i}"``.

    Each sample gets ``seed + i`` so that samples differ yet the whole run stays reproducible.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    out = []
    for i in range(n):
        s = sampling if sampling.seed is None else replace(sampling, seed=sampling.seed + i)
        out.append(GenRequest(key=f"{key}:{i}", messages=messages, sampling=s, sample_index=i))
    return out


def check_request(r: GenRequest, seen: set[str]) -> None:
    """Raise ``ValueError`` for a malformed request or a key already in ``seen`` (then add it)."""
    if not r.key:
        raise ValueError("every request needs a non-empty key")
    if r.key in seen:
        raise ValueError(f"duplicate request key {r.key!r}")
    seen.add(r.key)
    if not r.messages:
        raise ValueError(f"request {r.key!r} has no messages")
    for m in r.messages:
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise ValueError(f"request {r.key!r}: each message needs 'role' and 'content'")
    if r.sampling.max_tokens < 1:
        raise ValueError(f"request {r.key!r}: max_tokens must be >= 1")
    if r.sampling.temperature < 0 or not (0 < r.sampling.top_p <= 1):
        raise ValueError(f"request {r.key!r}: need temperature >= 0 and 0 < top_p <= 1")


def validate_requests(requests: Iterable[GenRequest]) -> list[GenRequest]:
    """Reject malformed input up front, before any (paid) call is made."""
    reqs = list(requests)
    seen: set[str] = set()
    for r in reqs:
        check_request(r, seen)
    return reqs


class Backend(ABC):
    """A generation engine. Subclasses implement ``generate``; ``close`` frees resources."""

    name: ClassVar[str] = ""

    @abstractmethod
    def generate(self, requests: list[GenRequest]) -> Iterator[GenResult]:
        """Yield one result per request as each completes (any order).

        Failures of single requests are yielded as results with ``finish_reason="error"`` and
        ``error`` set; only bad input or a broken configuration raises.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_REGISTRY: dict[str, str] = {
    "openai": "distill.generation.openai_backend:OpenAIBackend",
    "transformers": "distill.generation.transformers_backend:TransformersBackend",
    "vllm": "distill.generation.vllm_backend:VLLMBackend",
}


def backend_names() -> list[str]:
    return sorted(_REGISTRY)


def get_backend(name: str, config: dict[str, Any]) -> Backend:
    """Build a backend by name. Imports lazily so a CPU worker never imports torch for OpenAI."""
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown generation backend {name!r}; choose one of {backend_names()}"
        ) from None
    module_name, cls_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    return cls(config)
