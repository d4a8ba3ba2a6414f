"""Django-free pieces of a curation run: what the verifier is given, what the teacher is asked,
and the ShareGPT export LLaMA-Factory reads."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def verification_problem(domain: str, answer: str, tests: Any, options: Any) -> dict[str, Any]:
    """A stored problem as ``distill.verify`` takes it (science/puzzle with options are MCQ)."""
    problem: dict[str, Any] = {"domain": domain, "answer": answer, "tests": tests,
                               "options": options}
    if isinstance(tests, dict) and tests.get("fn_name"):
        problem["fn_name"] = tests["fn_name"]
    return problem


def user_prompt(prompt: str, options: list | dict | None) -> str:
    """The problem as the teacher sees it; multiple choice gets its options as ``A) ...``
    unless the prompt already lists them."""
    if not options:
        return prompt
    items = list(options.items()) if isinstance(options, dict) else list(
        zip(LETTERS, options, strict=False))
    if any(f"{letter}) " in prompt for letter, _ in items[:2]):
        return prompt
    rendered = "\n".join(f"{letter}) {text}" for letter, text in items)
    return f"{prompt}\n\n{rendered}"


def sharegpt_row(system: str, user: str, assistant: str) -> dict[str, Any]:
    return {"system": system, "conversations": [{"from": "user", "value": user},
                                                {"from": "assistant", "value": assistant}]}


def dataset_info_entry(file_name: str) -> dict[str, Any]:
    """LLaMA-Factory's ``dataset_info.json`` entry for a ShareGPT file with a system column."""
    return {
        "file_name": file_name,
        "formatting": "sharegpt",
        "columns": {"messages": "conversations", "system": "system"},
        "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "user",
                 "assistant_tag": "assistant"},
    }


def write_export(directory: Path, dataset_name: str, rows: Iterable[dict]) -> dict[str, Any]:
    """Write ``<name>.json`` (a JSON array, as LLaMA-Factory expects) and ``dataset_info.json``
    atomically; returns {"path", "rows", "sha256", "dataset_info"}."""
    directory.mkdir(parents=True, exist_ok=True)
    file_name = f"{dataset_name}.json"
    digest = hashlib.sha256()
    count = 0
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".export.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write("[\n")
            for row in rows:
                line = json.dumps(row, ensure_ascii=False)
                out.write((",\n" if count else "") + line)
                digest.update(line.encode())
                count += 1
            out.write("\n]\n")
        os.replace(tmp, directory / file_name)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    info = {dataset_name: dataset_info_entry(file_name)}
    (directory / "dataset_info.json").write_text(json.dumps(info, indent=2))
    return {"path": str(directory / file_name), "rows": count, "sha256": digest.hexdigest(),
            "dataset_info": info}
