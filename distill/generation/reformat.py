"""The reformat stage: ask an API model to restructure an accepted trace, then split its answer.

Messages follow SkyThought's convert_format.py: a short system message, then the convert prompt
with the one-shot example and the trace substituted in.
"""

from __future__ import annotations

import re
from typing import TypedDict

from .prompts import CONVERT_SYSTEM_PROMPT

BEGIN_THOUGHT, END_THOUGHT = "<|begin_of_thought|>", "<|end_of_thought|>"
BEGIN_SOLUTION, END_SOLUTION = "<|begin_of_solution|>", "<|end_of_solution|>"

_THOUGHT_RE = re.compile(re.escape(BEGIN_THOUGHT) + r"(.*?)" + re.escape(END_THOUGHT), re.S)
_SOLUTION_RE = re.compile(re.escape(BEGIN_SOLUTION) + r"(.*?)" + re.escape(END_SOLUTION), re.S)


class Reformatted(TypedDict):
    thought: str | None
    solution: str | None
    well_formed: bool


def build_convert_messages(
    prompt_version_text: str, example_text: str, response_text: str
) -> list[dict[str, str]]:
    """Fill the convert prompt's ``{example}`` and ``{content}`` placeholders.

    Plain replacement rather than ``str.format``: traces and edited prompts are full of LaTeX
    braces (``\\boxed{12}``) that ``format`` would treat as fields.
    """
    for placeholder in ("{example}", "{content}"):
        if placeholder not in prompt_version_text:
            raise ValueError(f"convert prompt lacks the {placeholder} placeholder")
    if not response_text.strip():
        raise ValueError("nothing to reformat: the response text is empty")
    # Substitute {content} last and only in the template part, so a trace or example that
    # happens to contain "{content}" is never expanded.
    head, tail = prompt_version_text.split("{content}", 1)
    head = head.replace("{example}", example_text)
    tail = tail.replace("{example}", example_text)
    user = head + response_text + tail
    return [
        {"role": "system", "content": CONVERT_SYSTEM_PROMPT},
        {"role": "user", "content": user},
    ]


def parse_reformatted(text: str | None) -> Reformatted:
    """Split a reformatted answer into its thought and solution sections.

    ``well_formed`` is true only when each section appears exactly once, thought before
    solution, with non-empty content; a truncated or duplicated answer is not well formed, but
    whatever sections could be read are still returned for review.
    """
    text = text or ""
    thoughts = _THOUGHT_RE.findall(text)
    solutions = _SOLUTION_RE.findall(text)
    thought = (thoughts[0].strip() or None) if thoughts else None
    solution = (solutions[0].strip() or None) if solutions else None
    counts_ok = all(
        text.count(tag) == 1 for tag in (BEGIN_THOUGHT, END_THOUGHT, BEGIN_SOLUTION, END_SOLUTION)
    )
    ordered = counts_ok and text.index(END_THOUGHT) < text.index(BEGIN_SOLUTION)
    well_formed = bool(ordered and thought and solution)
    return {"thought": thought, "solution": solution, "well_formed": well_formed}
