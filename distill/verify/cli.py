"""`python -m distill.verify IN.jsonl [-o OUT.jsonl]`: one JSON verdict per input line, in order.

Exit status: 0 when every line was verified (whatever the verdicts), 2 for unusable input
(unreadable file, a line that is not JSON, a problem without answer/tests or with an unknown
domain); nothing is verified in that case, so a typo does not cost a long run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace

from .core import InvalidProblem, VerifyConfig, check_problem, verify_many
from .sandbox import SandboxLimits, SandboxUnavailable


def _load(stream) -> list[tuple[dict, str, str | None]]:
    items = []
    for number, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise InvalidProblem(f"line {number}: not JSON ({exc})") from None
        if not isinstance(row, dict) or "problem" not in row or "response" not in row:
            raise InvalidProblem(f"line {number}: needs 'problem' and 'response'")
        if not isinstance(row["response"], str):
            raise InvalidProblem(f"line {number}: 'response' must be a string")
        try:
            check_problem(row["problem"])
        except InvalidProblem as exc:
            raise InvalidProblem(f"line {number}: {exc}") from None
        items.append((row["problem"], row["response"], row.get("finish_reason", "stop")))
    return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m distill.verify", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "input", help="JSONL file of {problem, response, finish_reason}; '-' for stdin"
    )
    parser.add_argument("-o", "--output", help="write verdicts here instead of stdout")
    parser.add_argument(
        "-j",
        "--workers",
        type=int,
        default=os.cpu_count() or 2,
        help="parallel sandboxes / math checkers",
    )
    parser.add_argument(
        "--math-timeout", type=float, default=5.0, help="seconds per symbolic check"
    )
    parser.add_argument(
        "--test-timeout", type=float, default=6.0, help="default seconds per code test"
    )
    parser.add_argument(
        "--memory-mb", type=int, default=1024, help="address-space limit per sandboxed process"
    )
    parser.add_argument(
        "--detail", action="store_true", help="include the detail object in each verdict"
    )
    args = parser.parse_args(argv)
    try:
        if args.input == "-":
            items = _load(sys.stdin)
        else:
            with open(args.input, encoding="utf-8") as fh:
                items = _load(fh)
    except (OSError, UnicodeDecodeError, InvalidProblem) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    config = VerifyConfig(math_timeout_s=args.math_timeout)
    config = replace(
        config, sandbox=SandboxLimits(time_limit_s=args.test_timeout, memory_mb=args.memory_mb)
    )
    try:
        verdicts = verify_many(items, max_workers=args.workers, config=config)
    except SandboxUnavailable as exc:
        print(f"error: code sandbox unavailable: {exc}", file=sys.stderr)
        return 3
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        for verdict in verdicts:
            row = verdict.to_dict()
            if not args.detail:
                row.pop("detail")
            out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    return 0
