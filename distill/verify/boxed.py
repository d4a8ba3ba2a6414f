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

_BRACE_TOKEN = re.compile(r"\\.|[{}]", re.DOTALL)
# \fbox is what some AoPS-derived solutions use instead of \boxed. Not \boxedfoo.
_BOX_COMMAND = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")


def braced(text: str, start: int) -> tuple[str, int] | None:
    """Content of the brace group opening at ``text[start] == '{'`` and the index after it,
    or None when it never closes. Escaped braces (``\\{`` ``\\}``) are literals. Only braces
    and backslashes are visited (a regular expression skips the rest)."""
    depth = 0
    for token in _BRACE_TOKEN.finditer(text, start):
        ch = token.group()
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : token.start()], token.end()
    return None


@dataclass(frozen=True)
class Box:
    start: int  # index of the backslash of \boxed
    end: int  # index after the closing brace (or the brace-less token)
    content: str | None  # None when the box is unbalanced


def _closers(text: str, start: int) -> dict[int, int]:
    """Index of the matching close brace for every open brace from `start` on that closes
    (one pass; the same matching as `braced`)."""
    found: dict[int, int] = {}
    stack: list[int] = []
    for token in _BRACE_TOKEN.finditer(text, start):
        ch = token.group()
        if ch == "{":
            stack.append(token.start())
        elif ch == "}" and stack:
            found[stack.pop()] = token.start()
    return found


def _box_at(text: str, match: re.Match, closers: dict[int, int] | None = None) -> Box:
    pos = match.end()
    while pos < len(text) and text[pos] == " ":
        pos += 1
    if pos >= len(text):
        return Box(match.start(), len(text), None)
    if text[pos] == "{":
        if closers is not None:
            close = closers.get(pos)
            group = None if close is None else (text[pos + 1 : close], close + 1)
        else:
            group = braced(text, pos)
        if group is None:
            return Box(match.start(), len(text), None)
        return Box(match.start(), group[1], group[0].strip())
    # "\boxed 5" (seen in MATH): the argument runs to the next space or dollar.
    token = _TOKEN.match(text, pos)
    if token is None:
        return Box(match.start(), pos, None)
    value = token.group(0).rstrip(".")
    return Box(match.start(), token.end(), value or None)


_TOKEN = re.compile(r"[^\s$]+")


def all_boxes(text: str | None, last: int | None = 64) -> list[Box]:
    """The last `last` \\boxed / \\fbox in ``text`` (all with None), in order of their start.

    Linear time: each box scanning its own group would be quadratic with many boxes (nested,
    or unclosed ones that each scan to the end), so every brace is matched once instead."""
    if not text or "box" not in text:
        return []
    if last is None:
        matches = list(_BOX_COMMAND.finditer(text))
    else:
        matches, end = [], len(text)
        while len(matches) < last:
            idx = max(text.rfind("\\boxed", 0, end), text.rfind("\\fbox", 0, end))
            if idx < 0:
                break
            match = _BOX_COMMAND.match(text, idx)
            if match is not None:
                matches.append(match)
            end = idx
        matches.reverse()
    closers = _closers(text, matches[0].start()) if len(matches) > 2 else None
    return [_box_at(text, m, closers) for m in matches]


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
        boxes = all_boxes(text, last=1)
        return boxes[-1].content if boxes else None
    return _box_at(text, last).content
