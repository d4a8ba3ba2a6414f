"""The one entry point: verify(problem, response, finish_reason) -> Verdict."""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from .code import BadProblem, verify_code
from .mathpool import get_pool
from .mathv import verify_math
from .mcq import extract_choice
from .reasons import Reason
from .sandbox import SandboxLimits, SandboxUnavailable

DOMAINS = ("math", "code", "mcq")


@dataclass(frozen=True)
class VerifyConfig:
    math_timeout_s: float = 5.0  # hard limit per symbolic check
    numeric_rel_tol: float = 1e-4
    math_workers: int = 2  # symbolic checker subprocesses
    sandbox: SandboxLimits = field(default_factory=SandboxLimits)
    stop_on_first_failure: bool = True
    # A response cut at max_tokens is rejected as `truncated` without looking further.
    reject_truncated: bool = True


@dataclass
class Verdict:
    correct: bool
    reason: str
    extracted: Any = None
    ms: float = 0.0
    detail: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["reason"] = str(self.reason)
        return data


class InvalidProblem(ValueError):
    """The problem cannot be verified at all (unknown domain, missing answer or tests)."""


def _domain(problem: dict) -> str:
    domain = problem.get("domain")
    if domain in DOMAINS:
        return domain
    # Normalised DB problems: MCQ are those with options; science/puzzle/other without
    # options are graded like math answers.
    if domain in ("science", "puzzle", "other"):
        return "mcq" if problem.get("options") else "math"
    raise InvalidProblem(f"unknown domain {domain!r}; expected one of math, code, mcq")


def check_problem(problem: Any) -> str:
    """Validate a verification problem and return its effective domain."""
    if not isinstance(problem, dict):
        raise InvalidProblem("problem must be an object")
    domain = _domain(problem)
    if domain in ("math", "mcq") and (
        problem.get("answer") is None or str(problem.get("answer")).strip() == ""
    ):
        raise InvalidProblem(f"{domain} problem has no reference answer")
    if domain == "code" and not problem.get("tests"):
        raise InvalidProblem("code problem has no tests")
    return domain


def verify(
    problem: dict,
    response: str,
    finish_reason: str | None = "stop",
    *,
    config: VerifyConfig | None = None,
) -> Verdict:
    """Verdict for one response. Raises InvalidProblem only for unusable problems; everything
    the response does (including hostile code) ends as a Verdict."""
    config = config or VerifyConfig()
    start = time.perf_counter()
    domain = check_problem(problem)
    verdict = _verify(
        domain, problem, response if isinstance(response, str) else "", finish_reason, config
    )
    verdict.ms = round((time.perf_counter() - start) * 1000, 3)
    return verdict


def _verify(
    domain: str, problem: dict, response: str, finish_reason: str | None, config: VerifyConfig
) -> Verdict:
    if finish_reason == "length" and config.reject_truncated:
        return Verdict(False, Reason.TRUNCATED, detail={"finish_reason": finish_reason})
    try:
        if domain == "math":
            out = verify_math(
                str(problem["answer"]),
                response,
                config.math_timeout_s,
                config.numeric_rel_tol,
                config.math_workers,
            )
            return Verdict(
                out.reason is Reason.CORRECT, out.reason, out.extracted, detail=out.detail
            )
        if domain == "mcq":
            letter, method = extract_choice(response, problem.get("options"))
            if letter is None:
                return Verdict(False, Reason.NO_ANSWER_FOUND, detail={"extraction": method})
            gold = str(problem["answer"]).strip().strip("()").upper()
            reason = Reason.CORRECT if letter == gold else Reason.WRONG_ANSWER
            return Verdict(letter == gold, reason, letter, detail={"extraction": method})
        reason, code, detail = verify_code(
            problem, response, config.sandbox, config.stop_on_first_failure
        )
        return Verdict(reason is Reason.CORRECT, reason, code, detail=detail)
    except BadProblem as exc:
        raise InvalidProblem(str(exc)) from exc
    except SandboxUnavailable:
        raise
    except Exception as exc:  # a verifier bug must not take the worker down with it
        return Verdict(
            False, Reason.VERIFIER_ERROR, detail={"error": f"{type(exc).__name__}: {exc}"[:500]}
        )


def verify_many(
    items: Iterable[tuple[dict, str, str | None]],
    *,
    max_workers: int,
    config: VerifyConfig | None = None,
) -> list[Verdict]:
    """Verdicts in input order. Threads only dispatch: code runs in parallel sandboxes and
    symbolic math in a pool of `max_workers` subprocesses, so this is safe in Celery prefork
    children and needs no signals in the calling thread. An unusable problem yields a
    verifier_error verdict for that item instead of aborting the batch."""
    config = config or VerifyConfig()
    items = list(items)
    workers = max(1, max_workers)
    get_pool(workers)

    def one(item: tuple[dict, str, str | None]) -> Verdict:
        problem, response, finish_reason = item
        try:
            return verify(problem, response, finish_reason, config=config)
        except InvalidProblem as exc:
            return Verdict(False, Reason.VERIFIER_ERROR, detail={"error": str(exc)})

    if workers == 1 or len(items) <= 1:
        return [one(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, items))
