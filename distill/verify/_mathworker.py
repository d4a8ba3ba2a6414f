"""Symbolic math checker process: `python -m distill.verify._mathworker`.

Reads one JSON request per line on stdin ({"gold": str, "pred": str, "timeout": int}) and
answers one JSON line ({"equal": bool} | {"timeout": true} | {"error": str}). It runs
math-verify in its own main thread, where math-verify's signal.alarm timeouts work; the parent
additionally enforces a hard deadline by killing this process (sympy can hang in C code).
"""

from __future__ import annotations

import json
import logging
import sys


def _wrap(text: str) -> str:
    """Bare LaTeX gets math delimiters; text that already has some is math-verify's to read."""
    text = text.strip()
    if any(mark in text for mark in ("$", "\\boxed", "\\(", "\\[")):
        return text
    return f"${text}$"


_GOLD_CACHE_SIZE = 2048


def main() -> None:
    logging.disable(logging.CRITICAL)  # math-verify logs every parse failure
    from math_verify import parse, verify
    from math_verify.errors import TimeoutException

    golds: dict[str, list] = {}  # parsed references: one problem is checked many times
    out = sys.stdout
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        try:
            req = json.loads(line)
            timeout = max(1, int(req.get("timeout", 5)))
            gold = golds.get(req["gold"])
            if gold is None:
                gold = parse(_wrap(req["gold"]), parsing_timeout=timeout, raise_on_error=True)
                if len(golds) >= _GOLD_CACHE_SIZE:
                    golds.pop(next(iter(golds)))
                golds[req["gold"]] = gold
            # raw: the whole response, where math-verify's own extraction looks for the answer.
            pred_text = req["pred"] if req.get("raw") else _wrap(req["pred"])
            pred = parse(pred_text, parsing_timeout=timeout, raise_on_error=True)
            if not gold or not pred:
                reply = {"equal": False, "parsed": bool(gold), "pred_parsed": bool(pred)}
            else:
                equal = verify(gold, pred, timeout_seconds=timeout, raise_on_error=True)
                reply = {"equal": bool(equal)}
        except TimeoutException:
            reply = {"timeout": True}
        except Exception as exc:  # a parse/verify bug on odd input must not kill the worker
            reply = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
