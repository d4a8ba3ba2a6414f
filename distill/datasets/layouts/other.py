"""GPQA, STILL-2, ShareGPT conversations, and the user-mapped layout."""

from __future__ import annotations

import hashlib
import random
from typing import Any

from ..errors import DatasetError, RowError
from ..latex import last_boxed
from .base import (
    DOMAINS,
    Layout,
    level_number,
    make_problem,
    register,
    scalar_text,
    text,
)

LETTERS = "ABCD"


def _gpqa_key(key: str) -> str:
    # "Correct Answer", "correct answer" and "correct_answer" all occur in GPQA copies.
    return key.strip().lower().replace("_", " ")


def gpqa_seed(question: str, correct: str) -> int:
    """A shuffle seed derived from the row itself, so re-importing gives the same order."""
    digest = hashlib.sha256(f"{question}\x00{correct}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


@register
class Gpqa(Layout):
    name = "gpqa"
    signatures = (
        frozenset({"Question", "Correct Answer", "Incorrect Answer 1"}),
        frozenset({"question", "correct answer", "incorrect answer 1"}),
        frozenset({"question", "correct_answer", "incorrect_answer_1"}),
    )

    def convert(self, row: dict) -> dict:
        fields = {_gpqa_key(k): v for k, v in row.items()}
        question = text(fields, "question").strip()
        names = ["correct answer"] + [f"incorrect answer {i}" for i in (1, 2, 3)]
        choices = [scalar_text(fields, name) for name in names]
        seed = gpqa_seed(question, choices[0])
        order = list(range(len(choices)))
        random.Random(seed).shuffle(order)
        options = [choices[i] for i in order]
        rendered = "\n".join(f"{LETTERS[i]}) {option}" for i, option in enumerate(options))
        return make_problem(
            domain="science",
            source="gpqa",
            prompt=f"{question}\n\n{rendered}",
            raw=row,
            # Shuffling positions, not values, keeps the letter right even if two options
            # happen to read the same.
            answer=LETTERS[order.index(0)],
            solution=text(fields, "explanation", required=False),
            options=options,
            external_id=scalar_text(fields, "record id", required=False),
            meta={
                "options_seed": seed,
                "subdomain": fields.get("subdomain"),
                "high_level_domain": fields.get("high-level domain"),
            },
        )


# STILL-2 (RUC-AIBOX/long_form_thought_data_5k) domains; Sky-T1 took the science and
# puzzle rows from it.
STILL2_DOMAINS = {
    "math": "math",
    "code": "code",
    "puzzle": "puzzle",
    "physics": "science",
    "chemistry": "science",
    "biology": "science",
}


@register
class Still2(Layout):
    name = "still2"
    signatures = (frozenset({"question", "combined_text"}),)

    def convert(self, row: dict) -> dict:
        label = scalar_text(row, "domain", required=False)
        domain = STILL2_DOMAINS.get((label or "").lower(), "other")
        combined = text(row, "combined_text")
        return make_problem(
            domain=domain,
            source="still2",
            prompt=text(row, "question"),
            raw=row,
            answer=last_boxed(combined) if domain == "math" else None,
            solution=combined,
            meta={"still2_domain": label},
        )


USER_ROLES = {"user", "human"}
ASSISTANT_ROLES = {"assistant", "gpt", "model", "bot"}


@register
class ShareGpt(Layout):
    """{"conversations": [{"from", "value"}]} or {"messages": [{"role", "content"}]}."""

    name = "sharegpt"
    signatures = (frozenset({"conversations"}), frozenset({"messages"}))

    @classmethod
    def sniff(cls, row: dict) -> bool:
        return isinstance(row.get("conversations", row.get("messages")), list)

    def convert(self, row: dict) -> dict:
        field = "conversations" if "conversations" in row else "messages"
        turns = row.get(field)
        if not isinstance(turns, list):
            raise RowError(field, "expected a list of turns")
        system = text(row, "system", required=False)
        prompt = solution = None
        for i, turn in enumerate(turns):
            if not isinstance(turn, dict):
                raise RowError(field, f"turn {i} is not an object")
            role = str(turn.get("from", turn.get("role", ""))).lower()
            content = turn.get("value", turn.get("content"))
            if not isinstance(content, str):
                raise RowError(field, f"turn {i} has no text")
            if role == "system" and system is None:
                system = content
            elif role in USER_ROLES and prompt is None:
                prompt = content
            elif role in ASSISTANT_ROLES and prompt is not None and solution is None:
                solution = content
        if not prompt or not prompt.strip():
            raise RowError(field, "no user turn")
        return make_problem(
            domain="other",
            source="sharegpt",
            prompt=prompt,
            raw=row,
            solution=solution,
            meta={"system": system},
        )


MAPPABLE = (
    "prompt",
    "answer",
    "solution",
    "domain",
    "source",
    "difficulty",
    "difficulty_level",
    "external_id",
    "options",
)
CONST = "const:"


@register
class Mapped(Layout):
    """A user-given mapping from schema fields to columns, for layouts we do not know.

    ``{"prompt": "question_col", "answer": "ans_col", "domain": "const:math"}``: a value is
    a column name, or ``const:`` followed by a literal. Only ``prompt`` is required. Tests
    cannot be mapped (their structure differs per dataset); write an adapter for those.
    """

    name = "mapped"

    def __init__(self, mapping: dict[str, str]) -> None:
        if not isinstance(mapping, dict) or "prompt" not in mapping:
            raise DatasetError("a mapping must name at least the prompt column")
        unknown = sorted(set(mapping) - set(MAPPABLE))
        if unknown:
            raise DatasetError(
                f"cannot map {', '.join(unknown)}; mappable fields are {', '.join(MAPPABLE)}"
            )
        for target, spec in mapping.items():
            if not isinstance(spec, str) or not spec:
                raise DatasetError(f"mapping for {target} must be a column name or const:VALUE")
        domain = mapping.get("domain", "")
        if domain.startswith(CONST) and domain[len(CONST) :] not in DOMAINS:
            raise DatasetError(f"domain must be one of {', '.join(DOMAINS)}")
        self.mapping = mapping

    def _get(self, row: dict, target: str) -> tuple[str | None, Any]:
        spec = self.mapping.get(target)
        if spec is None:
            return None, None
        if spec.startswith(CONST):
            return None, spec[len(CONST) :]
        return spec, row.get(spec)

    def convert(self, row: dict) -> dict:
        column = self.mapping["prompt"]
        if column.startswith(CONST):
            raise RowError("prompt", "the prompt must come from a column")
        values: dict[str, Any] = {"prompt": text(row, column)}
        for target in ("answer", "solution", "source", "difficulty", "external_id"):
            col, value = self._get(row, target)
            values[target] = scalar_text({col or target: value}, col or target, required=False)
        col, domain = self._get(row, "domain")
        domain = domain if domain is not None else "other"
        if domain not in DOMAINS:
            raise RowError(col, f"domain {domain!r} is not one of {', '.join(DOMAINS)}")
        col, level = self._get(row, "difficulty_level")
        level_value = level_number(level)
        if level is not None and level_value is None:
            raise RowError(col, f"difficulty level {level!r} is not a number")
        col, options = self._get(row, "options")
        if options is not None and (
            not isinstance(options, list) or not all(isinstance(o, str) for o in options)
        ):
            raise RowError(col, "options must be a list of strings")
        return make_problem(
            domain=domain,
            source=values["source"] or "custom",
            prompt=values["prompt"],
            raw=row,
            difficulty=values["difficulty"],
            difficulty_level=level_value,
            answer=values["answer"],
            solution=values["solution"],
            options=options,
            external_id=values["external_id"],
            meta={"mapping": self.mapping},
        )
