"""Code verification: extract the program from a response and run the problem's tests in the
sandbox (stdin/stdout, call-based incl. LeetCode `class Solution`, and assert-style tests)."""

from __future__ import annotations

import re
from typing import Any

from .reasons import Reason
from .sandbox import SandboxLimits, run_job

_LANG = re.compile(r"[ \t]*([A-Za-z0-9_+.-]*)")
_NON_PYTHON = {
    "text",
    "txt",
    "bash",
    "sh",
    "shell",
    "console",
    "json",
    "plaintext",
    "output",
    "input",
}


class BadProblem(ValueError):
    """The problem itself is unusable (no tests, unknown style): not the response's fault."""


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language tag, body) of every ```-fenced block, in order, in linear time.

    A fence opens at ``` and its info line runs to the first newline; the body runs to the next
    ```. (The regular expression this replaces, ```...\\n(.*?)```, retried from every
    backtick of an unclosed run: 10 s on 160k backticks.)"""
    blocks = []
    pos = 0
    while True:
        start = text.find("```", pos)
        if start < 0:
            break
        newline = text.find("\n", start + 3)
        if newline < 0:
            break
        close = text.find("```", newline + 1)
        if close < 0:
            break
        lang = _LANG.match(text, start + 3, newline).group(1)
        blocks.append((lang, text[newline + 1 : close]))
        pos = close + 3
    return blocks


def extract_code(response: str) -> str | None:
    """The last fenced Python block (or untagged block) of the response.

    When the response has a `<|begin_of_solution|>` section, blocks there win, because the
    thought section is full of drafts.
    """
    marker = response.rfind("<|begin_of_solution|>")
    for text in (response[marker:], response) if marker >= 0 else (response,):
        blocks = [(lang.lower(), body) for lang, body in fenced_blocks(text)]
        code_blocks = [body for lang, body in blocks if lang not in _NON_PYTHON and body.strip()]
        if code_blocks:
            return code_blocks[-1]
    return None


def _as_text(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    return "" if value is None else str(value)


def normalise_tests(problem: dict) -> dict:
    """Both accepted test forms -> {"mode", "cases", "fn_name", "test_code", "entry_point",
    "time_limit_s"} for the sandbox runner."""
    tests = problem.get("tests")
    fn_name = problem.get("fn_name")
    if isinstance(tests, list):
        style = "call" if fn_name else "stdin"
        tests = {"style": style, "fn_name": fn_name, "cases": tests}
    if not isinstance(tests, dict):
        raise BadProblem("code problem has no tests (expected a list of cases or a tests dict)")
    style = tests.get("style") or ("call" if (tests.get("fn_name") or fn_name) else "stdin")
    fn_name = tests.get("fn_name") or fn_name
    cases = tests.get("cases") or []
    if style not in ("stdin", "call", "assert"):
        raise BadProblem(f"unknown test style {style!r}")
    for case in cases:
        if not isinstance(case, dict) or "input" not in case:
            raise BadProblem("every test case needs an 'input' (and an 'output')")
    job: dict[str, Any] = {"mode": style, "time_limit_s": tests.get("time_limit_s")}
    if style == "stdin":
        if not cases:
            raise BadProblem("stdin-style problem has no test cases")
        job["cases"] = [
            {"input": _as_text(c["input"]), "output": _as_text(c.get("output"))} for c in cases
        ]
    elif style == "call":
        if not fn_name:
            raise BadProblem("call-style tests need fn_name")
        if not cases:
            raise BadProblem("call-style problem has no test cases")
        job["fn_name"] = fn_name
        job["cases"] = [{"input": c["input"], "output": c.get("output")} for c in cases]
    else:
        if not tests.get("code"):
            raise BadProblem("assert-style tests need 'code'")
        job["test_code"] = tests["code"]
        job["entry_point"] = tests.get("entry_point")
        job["cases"] = []
    return job


_STATUS_REASON = {
    "wrong": Reason.TEST_FAILED,
    "error": Reason.RUNTIME_ERROR,
    "timeout": Reason.TIMEOUT,
    "memory": Reason.MEMORY_LIMIT,
    "output_limit": Reason.OUTPUT_LIMIT,
    "violation": Reason.SANDBOX_VIOLATION,
    "early_exit": Reason.EARLY_EXIT,
}


def verify_code(
    problem: dict, response: str, limits: SandboxLimits, stop_on_first_failure: bool = True
) -> tuple[Reason, Any, dict]:
    job = normalise_tests(problem)
    code = extract_code(response)
    if code is None:
        return Reason.NO_CODE_BLOCK, None, {}
    job["code"] = code
    job["stop_on_first_failure"] = stop_on_first_failure
    summary = run_job(job, limits)
    detail: dict[str, Any] = {
        "sandbox_ms": summary.get("sandbox_ms"),
        "tests_total": summary.get("total"),
    }
    if summary["status"] == "compile_error":
        detail["error"] = summary.get("error")
        return Reason.COMPILE_ERROR, code, detail
    results = summary.get("results", [])
    detail["tests_run"] = len(results)
    detail["tests_passed"] = sum(r["status"] == "passed" for r in results)
    if summary["status"] == "passed":
        if "asserts_run" in results[0]:
            detail["asserts_run"] = results[0]["asserts_run"]
        return Reason.CORRECT, code, detail
    for index, result in enumerate(results):
        if result["status"] != "passed":
            reason = _STATUS_REASON.get(result["status"], Reason.RUNTIME_ERROR)
            detail["failed_test"] = index
            for key in ("expected", "got", "failed_test", "signal", "exit_code", "note",
                        "asserts_run", "asserts_total"):  # fmt: skip
                if key in result:
                    detail["assert" if key == "failed_test" else key] = result[key]
            if result.get("stderr") and reason is not Reason.TEST_FAILED:
                detail["stderr"] = result["stderr"][-1000:]
            return reason, code, detail
    return Reason.VERIFIER_ERROR, code, detail
