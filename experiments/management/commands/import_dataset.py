"""Import a dataset file from the command line: the same job a worker runs, in this process."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from distill.datasets import DOMAINS, layout_names
from experiments.models import ImportRun, RunState
from workers.runner import execute


class Command(BaseCommand):
    help = "Import a JSONL/JSON/Parquet file (optionally gzipped) as a dataset, all or nothing."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--name", required=True)
        parser.add_argument("--layout", default="auto", choices=["auto", *layout_names()])
        parser.add_argument("--mapping", help='JSON field mapping, e.g. {"prompt": "q"}')
        parser.add_argument("--benchmark", action="store_true", help="register as a benchmark set")
        parser.add_argument("--description", default="")
        parser.add_argument("--source", dest="source_override", default="")
        parser.add_argument("--domain", dest="domain_override", default="", choices=["", *DOMAINS])

    def handle(self, *args, path: str, name: str, layout: str, mapping: str | None, **opts):
        file = Path(path).resolve()
        if not file.is_file():
            raise CommandError(f"no such file: {path}")
        try:
            mapping_dict = json.loads(mapping) if mapping else None
        except json.JSONDecodeError as exc:
            raise CommandError(f"--mapping is not valid JSON: {exc}") from None
        run = ImportRun.create_queued(
            name=f"import {name}",
            config={
                "path": str(file),
                "origin": str(file),
                "name": name,
                "layout": layout,
                "mapping": mapping_dict,
                "is_benchmark": opts["benchmark"],
                "description": opts["description"],
                "source_override": opts["source_override"],
                "domain_override": opts["domain_override"],
            },
        )
        execute("import", run.pk)
        run.refresh_from_db()
        result = run.result
        if run.state != RunState.SUCCEEDED:
            raise CommandError(run.failure_message or f"import {run.state}")
        dataset = run.dataset
        dup = result.get("duplicates", {})
        self.stdout.write(
            f"imported {result['imported']} problems from {result['rows_read']} rows "
            f"as {dataset.name!r} (layout {result['layout']}, id {dataset.pk})"
        )
        for key in ("domain", "source"):
            counts = ", ".join(f"{k} {v}" for k, v in dataset.stats.get(key, {}).items())
            self.stdout.write(f"  by {key}: {counts}")
        across = ", ".join(f"{k} {v}" for k, v in dup.get("across", {}).items()) or "none"
        self.stdout.write(f"  duplicates: {dup.get('within', 0)} within, across datasets: {across}")
