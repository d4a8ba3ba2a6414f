"""Factories for dataset tests: JSONL files of math rows, imported through the import job."""

from __future__ import annotations

import json
from pathlib import Path

from experiments.models import ImportRun
from workers.runner import execute

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "datasets"


def import_file(path: Path, name: str, layout: str = "auto", **config) -> ImportRun:
    run = ImportRun.objects.create(
        name=f"import {name}",
        config={"path": str(path), "name": name, "layout": layout, **config},
    )
    execute("import", run.pk, hostname="test")
    run.refresh_from_db()
    return run


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def math_rows(n: int, prefix: str = "Compute") -> list[dict]:
    return [
        {
            "problem": f"{prefix} ${i} + {i}$ for case {i}.",
            "solution": f"It is $\\boxed{{{2 * i}}}$.",
            "answer": str(2 * i),
            "subject": "Algebra" if i % 2 else "Geometry",
            "level": 1 + i % 5,
        }
        for i in range(n)
    ]
