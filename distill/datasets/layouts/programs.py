"""Programming datasets: APPs, TACO, LiveCodeBench, HumanEval, MBPP."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import io
import json
import pickle
import re
import zlib
from typing import Any

from ..errors import RowError
from .base import (
    Layout,
    json_value,
    label_text,
    make_problem,
    make_tests,
    register,
    scalar_text,
    text,
)

# Numeric difficulty per source, each on its own scale (documented in docs/datasets.md).
APPS_LEVELS = {"introductory": 1.0, "interview": 2.0, "competition": 3.0}
TACO_LEVELS = {"EASY": 1.0, "MEDIUM": 2.0, "MEDIUM_HARD": 3.0, "HARD": 4.0, "VERY_HARD": 5.0}
LCB_LEVELS = {"easy": 1.0, "medium": 2.0, "hard": 3.0}

# LiveCodeBench private tests run to tens of MB once inflated; anything far beyond that
# is a decompression bomb, not a test suite.
MAX_PRIVATE_TESTS_BYTES = 512 * 1024 * 1024


def _join_lines(value: Any, field: str, what: str) -> str:
    # APPs/TACO store some stdin inputs and outputs as lists of lines.
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    raise RowError(field, f"{what} must be text for a stdin problem, got {type(value).__name__}")


def io_tests(row: dict, field: str, *, time_limit_s: float | None = None) -> dict | None:
    """Tests from an APPs/TACO ``input_output`` column: {"inputs", "outputs", "fn_name"?}.

    With ``fn_name`` the problem is call-based and each input is the list of positional
    arguments. Outputs are kept as stored: APPs and TACO often wrap a call's return value
    in a one-element list, which their own checker also accepts, so the verifier must too.
    """
    spec = json_value(row, field, required=False)
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise RowError(field, f"expected an object with inputs and outputs, got {type(spec).__name__}")
    inputs, outputs = spec.get("inputs"), spec.get("outputs")
    if not isinstance(inputs, list) or not isinstance(outputs, list):
        raise RowError(field, "inputs and outputs must both be lists")
    if len(inputs) != len(outputs):
        raise RowError(field, f"{len(inputs)} inputs but {len(outputs)} outputs")
    fn_name = spec.get("fn_name")
    if fn_name:
        if not isinstance(fn_name, str):
            raise RowError(field, "fn_name must be text")
        for i, args in enumerate(inputs):
            if not isinstance(args, list):
                raise RowError(field, f"input {i} of a call-based problem must be a list of arguments")
        cases = [{"input": a, "output": o} for a, o in zip(inputs, outputs, strict=True)]
        return make_tests("call", cases, fn_name=fn_name, time_limit_s=time_limit_s)
    cases = [
        {"input": _join_lines(a, field, f"input {i}"), "output": _join_lines(o, field, f"output {i}")}
        for i, (a, o) in enumerate(zip(inputs, outputs, strict=True))
    ]
    return make_tests("stdin", cases, time_limit_s=time_limit_s)


def first_solution(row: dict, field: str = "solutions") -> tuple[str | None, int]:
    solutions = json_value(row, field, required=False)
    if solutions is None:
        return None, 0
    if not isinstance(solutions, list) or not all(isinstance(s, str) for s in solutions):
        raise RowError(field, "expected a list of code strings")
    return (solutions[0] if solutions else None), len(solutions)


def _seconds(limit: Any) -> float | None:
    # TACO writes "1 second", "2.5 seconds", occasionally "None".
    if isinstance(limit, int | float) and not isinstance(limit, bool):
        return float(limit)
    if isinstance(limit, str):
        match = re.match(r"\s*(\d+(?:\.\d+)?)\s*s", limit)
        if match:
            return float(match.group(1))
    return None


@register
class Apps(Layout):
    name = "apps"
    signatures = (frozenset({"problem_id", "question", "solutions", "input_output"}),)
    levels = APPS_LEVELS
    id_field = "problem_id"

    def extra_meta(self, row: dict) -> dict:
        return {}

    def convert(self, row: dict) -> dict:
        solution, n_solutions = first_solution(row)
        difficulty = label_text(row.get("difficulty"))
        tests = io_tests(row, "input_output", time_limit_s=_seconds(row.get("time_limit")))
        return make_problem(
            domain="code",
            source=self.name,
            prompt=text(row, "question"),
            raw=row,
            difficulty=difficulty,
            difficulty_level=self.levels.get(difficulty or ""),
            solution=solution,
            tests=tests,
            external_id=scalar_text(row, self.id_field, required=False),
            meta={
                "url": row.get("url"),
                "starter_code": row.get("starter_code") or None,
                "n_solutions": n_solutions,
                **self.extra_meta(row),
            },
        )


@register
class Taco(Apps):
    """TACO shares APPs' columns and adds tags, a time limit and the original platform."""

    name = "taco"
    signatures = (
        frozenset({"question", "solutions", "input_output", "skill_types"}),
        frozenset({"question", "solutions", "input_output", "raw_tags"}),
    )
    levels = TACO_LEVELS
    id_field = "name"

    def extra_meta(self, row: dict) -> dict:
        return {"platform": row.get("source"), "tags": row.get("tags") or None}


class _Refused(pickle.UnpicklingError):
    pass


class _StringsOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain data only.

    Every way a pickle can run code goes through ``find_class`` (GLOBAL, STACK_GLOBAL,
    INST, OBJ and the extension registry), so refusing it leaves only strings, numbers and
    containers. LiveCodeBench's pickles hold one JSON string and need nothing more.
    """

    def find_class(self, module: str, name: str) -> Any:
        raise _Refused(f"refers to {module}.{name}")


def decode_private_tests(value: Any, field: str = "private_test_cases") -> list:
    """LiveCodeBench private tests: plain JSON, or base64(zlib(pickle(json string)))."""
    if isinstance(value, list):
        return value
    if not isinstance(value, str | bytes):
        raise RowError(field, f"expected text, got {type(value).__name__}")
    stripped = value.strip()
    if stripped[:1] in ("[", b"["):
        try:
            return json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise RowError(field, f"invalid JSON: {exc.msg}") from None
    try:
        compressed = base64.b64decode(stripped, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RowError(field, f"neither JSON nor valid base64 ({exc})") from None
    inflater = zlib.decompressobj()
    try:
        pickled = inflater.decompress(compressed, MAX_PRIVATE_TESTS_BYTES)
    except zlib.error as exc:
        raise RowError(field, f"base64 payload is not zlib-compressed ({exc})") from None
    if inflater.unconsumed_tail:
        raise RowError(field, f"inflates to more than {MAX_PRIVATE_TESTS_BYTES} bytes")
    try:
        payload = _StringsOnlyUnpickler(io.BytesIO(pickled)).load()
    except _Refused as exc:
        raise RowError(
            field, f"refused an unsafe pickle ({exc}); only a pickled JSON string is accepted"
        ) from None
    except Exception as exc:  # truncated or garbled pickles raise assorted errors
        raise RowError(field, f"not a readable pickle ({type(exc).__name__}: {exc})") from None
    if isinstance(payload, bytes):
        payload = payload.decode("utf-8", errors="replace")
    if not isinstance(payload, str):
        raise RowError(field, f"pickle holds {type(payload).__name__}, expected a JSON string")
    try:
        cases = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise RowError(field, f"decoded payload is not JSON: {exc.msg}") from None
    if not isinstance(cases, list):
        raise RowError(field, "decoded payload is not a list of test cases")
    return cases


def _lcb_call_case(case: dict, field: str, i: int) -> dict:
    # Functional inputs are one JSON value per line, one line per positional argument.
    try:
        args = [json.loads(line) for line in case["input"].split("\n") if line.strip()]
        output = json.loads(case["output"])
    except (json.JSONDecodeError, AttributeError) as exc:
        raise RowError(field, f"test {i}: functional input/output is not JSON ({exc})") from None
    return {"input": args, "output": output}


def lcb_tests(row: dict, fn_name: str | None) -> dict:
    cases: list[tuple[str, int, dict]] = []
    public = json_value(row, "public_test_cases")
    if not isinstance(public, list):
        raise RowError("public_test_cases", "expected a list of test cases")
    cases += [("public_test_cases", i, c) for i, c in enumerate(public)]
    private = row.get("private_test_cases")
    if private not in (None, ""):
        decoded = decode_private_tests(private)
        cases += [("private_test_cases", i, c) for i, c in enumerate(decoded)]
    for field, i, case in cases:
        if not isinstance(case, dict) or not {"input", "output", "testtype"} <= case.keys():
            raise RowError(field, f"test {i} lacks input, output or testtype")
    kinds = {case["testtype"] for _, _, case in cases}
    if len(kinds) > 1:
        raise RowError("public_test_cases", f"mixes test types {sorted(kinds)}")
    if kinds == {"functional"}:
        if not fn_name:
            raise RowError("metadata", "functional tests need metadata.func_name")
        return make_tests(
            "call", [_lcb_call_case(c, f, i) for f, i, c in cases], fn_name=fn_name
        )
    if kinds and kinds != {"stdin"}:
        raise RowError("public_test_cases", f"unknown testtype {kinds.pop()!r}")
    for field, i, case in cases:
        if not isinstance(case["input"], str) or not isinstance(case["output"], str):
            raise RowError(field, f"test {i}: stdin input and output must be text")
    return make_tests("stdin", [{"input": c["input"], "output": c["output"]} for _, _, c in cases])


@register
class LiveCodeBench(Layout):
    name = "livecodebench"
    signatures = (frozenset({"question_content", "public_test_cases"}),)

    def convert(self, row: dict) -> dict:
        metadata = json_value(row, "metadata", required=False) or {}
        if not isinstance(metadata, dict):
            raise RowError("metadata", "expected an object")
        difficulty = label_text(row.get("difficulty"))
        released = row.get("contest_date")
        if isinstance(released, dt.datetime | dt.date):
            released = released.isoformat()
        return make_problem(
            domain="code",
            source="livecodebench",
            prompt=text(row, "question_content"),
            raw=row,
            difficulty=difficulty,
            difficulty_level=LCB_LEVELS.get((difficulty or "").lower()),
            tests=lcb_tests(row, metadata.get("func_name")),
            external_id=scalar_text(row, "question_id", required=False),
            meta={
                "title": row.get("question_title"),
                "platform": row.get("platform"),
                "contest_id": row.get("contest_id"),
                "release_date": str(released)[:10] if released else None,
                "starter_code": row.get("starter_code") or None,
            },
        )


@register
class HumanEval(Layout):
    name = "humaneval"
    signatures = (frozenset({"task_id", "prompt", "canonical_solution", "test", "entry_point"}),)

    def convert(self, row: dict) -> dict:
        prompt = text(row, "prompt")
        entry_point = text(row, "entry_point")
        return make_problem(
            domain="code",
            source="humaneval",
            prompt=prompt,
            raw=row,
            # The canonical solution is only the body; with the prompt it is a whole function.
            solution=prompt + text(row, "canonical_solution"),
            tests=make_tests("assert", code=text(row, "test"), entry_point=entry_point),
            external_id=scalar_text(row, "task_id"),
        )


def _string_list(row: dict, field: str) -> list[str]:
    value = json_value(row, field, required=False)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RowError(field, "expected a list of strings")
    return value


@register
class Mbpp(Layout):
    """Original MBPP (text, test_setup_code) and sanitized MBPP (prompt, test_imports)."""

    name = "mbpp"
    signatures = (
        frozenset({"text", "code", "test_list"}),
        frozenset({"prompt", "code", "test_list"}),
    )

    def convert(self, row: dict) -> dict:
        description = text(row, "prompt", "text")
        asserts = _string_list(row, "test_list")
        if not asserts:
            raise RowError("test_list", "no tests")
        setup = [*_string_list(row, "test_imports"), row.get("test_setup_code") or ""]
        called = re.match(r"\s*assert\s+(?:not\s+)?\(?\s*(?:set\()?([A-Za-z_]\w*)\s*\(", asserts[0])
        return make_problem(
            domain="code",
            source="mbpp",
            # MBPP's own prompt shows the tests: without them the function name is unknown.
            prompt=f"{description.strip()}\nYour code should pass these tests:\n\n" + "\n".join(asserts),
            raw=row,
            solution=text(row, "code"),
            tests=make_tests(
                "assert",
                code="\n".join([s for s in setup if s.strip()] + asserts),
                entry_point=called.group(1) if called else None,
            ),
            external_id=scalar_text(row, "task_id", required=False),
        )
