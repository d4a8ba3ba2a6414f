"""Multiple-choice (GPQA style) answer letters.

Order: the last \\boxed{} (a letter, "(B)", "\\text{B}", "B) text", or an option's own text),
then "answer is (B)" / "Answer: B" / "**Answer:** (B)" phrases. Bare lowercase letters are
never read, and an uppercase "A" that starts an English phrase ("Answer: A good choice ...")
is not taken for option A.
"""

from __future__ import annotations

import re

from .mathv import last_boxed, normalise

_PHRASE = re.compile(
    r"(?:answer|correct option|correct choice|option)\s*(?:is|:)?\s*[:\-]?\s*\**\s*"
    r"(\(([A-Z])\)|\[([A-Z])\]|\b([A-Z])\b(?!\s+[a-z]))",
    re.IGNORECASE,
)


def _letters(options: list | None) -> str:
    n = len(options) if options else 4
    return "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[: max(n, 2)]


def _letter_from_box(content: str, letters: str, options: list | None) -> str | None:
    text = (
        re.sub(r"\\(?:text|textbf|mathrm|mathbf)\{([^{}]*)\}", r"\1", content)
        .strip()
        .strip("$")
        .strip()
    )
    m = re.fullmatch(r"\(?\s*([A-Za-z])\s*\)?(?:[.:)]\s*.*)?", text, re.DOTALL)
    if m and m.group(1).upper() in letters:
        # A lowercase single letter inside a box is still an explicit choice.
        return m.group(1).upper()
    if options:
        want = normalise(text)
        for letter, option in zip(letters, options, strict=False):
            if normalise(str(option)) == want:
                return letter
    return None


def extract_choice(response: str, options: list | None = None) -> tuple[str | None, str]:
    letters = _letters(options)
    boxed = last_boxed(response)
    if boxed is not None:
        letter = _letter_from_box(boxed, letters, options)
        if letter:
            return letter, "boxed"
    for match in reversed(list(_PHRASE.finditer(response))):
        paren = match.group(2) or match.group(3)
        bare = match.group(4)
        if paren and paren in letters:
            return paren, "answer_phrase"
        # Bare letters must be uppercase in the text itself (IGNORECASE only eases the phrase).
        if bare and bare.isupper() and bare in letters:
            return bare, "answer_phrase"
    return None, "none"
