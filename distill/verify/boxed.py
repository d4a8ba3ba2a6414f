"""`\\boxed{...}` extraction, the one implementation (stdlib only).

Used by the verifiers (distill.verify.mathv / mcq) and re-exported by
distill.datasets.latex for the dataset adapters.

Behaviour for a broken final box: when the *last* `\\boxed` / `\\fbox` is unbalanced (no closing
brace, typically a response cut off mid-answer), `last_boxed` returns None. An earlier box is
not a safe substitute: it is usually an intermediate result, and taking it would turn a
truncated answer into a confident (and often wrong) one. The verifier then falls back to its
other extraction paths, which are never decisive on their own (see mathv.verify_math).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# \fbox is what some AoPS-derived solutions use instead of \boxed. Not \boxedfoo.
_BOX_COMMAND = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")


def braced(text: str, start: int) -> tuple[str, int] | None:
    """Content of the brace group opening at ``text[start] == '{'`` and the index after it,
    or None when it never closes. Escaped braces (``\\{`` ``\\}``) are literals."""
    depth = 0
    i = start
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i], i + 1
        i += 1
    return None


@dataclass(frozen=True)
class Box:
    start: int  # index of the backslash of \boxed
    end: int  # index after the closing brace (or the brace-less token)
    content: str | None  # None when the box is unbalanced


def _box_at(text: str, match: re.Match) -> Box:
    pos = match.end()
    while pos < len(text) and text[pos] == " ":
        pos += 1
    if pos >= len(text):
        return Box(match.start(), len(text), None)
    if text[pos] == "{":
        group = braced(text, pos)
        if group is None:
            return Box(match.start(), len(text), None)
        return Box(match.start(), group[1], group[0].strip())
    # "\boxed 5" (seen in MATH): the argument runs to the next space or dollar.
    token = re.match(r"[^\s$]+", text[pos:])
    if token is None:
        return Box(match.start(), pos, None)
    value = token.group(0).rstrip(".")
    return Box(match.start(), pos + token.end(), value or None)


def all_boxes(text: str | None) -> list[Box]:
    """Every \\boxed / \\fbox in ``text``, in order of their start."""
    if not text or "box" not in text:
        return []
    return [_box_at(text, m) for m in _BOX_COMMAND.finditer(text)]


def last_boxed(text: str | None) -> str | None:
    """Content of the last ``\\boxed{...}`` / ``\\fbox{...}`` (brace matched), or ``\\boxed 5``.

    ``\\boxed{\\frac{1}{2}}`` gives ``\\frac{1}{2}``. None when there is no box or when the last
    one is unbalanced (see the module docstring for why no earlier box is substituted).
    """
    if not text:
        return None
    idx = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if idx < 0:
        return None
    last = None
    for match in _BOX_COMMAND.finditer(text, idx):
        last = match
    if last is None:  # e.g. only "\boxedx": look at the whole text
        boxes = all_boxes(text)
        return boxes[-1].content if boxes else None
    return _box_at(text, last).content
