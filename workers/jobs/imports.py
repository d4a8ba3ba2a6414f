"""The dataset import job: stream a file into a new Dataset, all or nothing.

One pass: batches are converted and committed as they come (progress is visible and memory
stays flat); the first bad row stops the inserting, the rest of the file is still read to
report every error, and then the half-built dataset is deleted. A dataset becomes visible
(``ready``) only once every row is in.
"""

from __future__ import annotations

from pathlib import Path

from django.db import transaction

from distill.datasets import DatasetError, iter_converted, resolve_layout
from experiments.errors import UserError
from experiments.models import Dataset, ImportRun, Problem, RunState
from workers.runner import job

MAX_ERRORS = 50


def describe_errors(errors: list[dict], total: int) -> str:
    lines = [
        f"{e['location']}" + (f", field {e['field']}" if e["field"] else "") + f": {e['message']}"
        for e in errors
    ]
    more = f"\n… and {total - len(errors)} more" if total > len(errors) else ""
    return (
        f"The file was rejected: {total} bad row{'s' if total != 1 else ''}; nothing was "
        "imported.\n" + "\n".join(lines) + more
    )


def claim_name(name: str) -> None:
    """A dataset left behind by a worker that died mid-import no longer holds its name."""
    for stale in Dataset.objects.filter(name=name, ready=False):
        if not stale.imports.filter(state__in=[RunState.QUEUED, RunState.RUNNING]).exists():
            stale.delete()
    if Dataset.objects.filter(name=name).exists():
        raise UserError(f"a dataset named {name!r} already exists")


@job("import")
def run_import(run: ImportRun, ctx) -> None:
    cfg = run.config
    path = Path(cfg["path"])
    if not path.is_file():
        raise UserError(f"no such file: {cfg.get('origin') or path}")
    claim_name(cfg["name"])
    dataset = Dataset.objects.create(
        name=cfg["name"],
        description=cfg.get("description", ""),
        layout=cfg.get("layout") or "auto",
        is_benchmark=bool(cfg.get("is_benchmark")),
        origin=cfg.get("origin") or str(path),
        created_by=run.launched_by,
    )
    ImportRun.objects.filter(pk=run.pk).update(dataset=dataset)
    errors: list[dict] = []
    error_count = rows_read = imported = 0
    try:
        try:
            mapping = cfg.get("mapping") or None
            layout = resolve_layout(path, cfg.get("layout") or "auto", mapping)[0].name
            batches = iter_converted(
                path,
                layout,
                mapping=mapping if layout == "mapped" else None,
                source_override=cfg.get("source_override") or None,
                domain_override=cfg.get("domain_override") or None,
            )
            for batch in batches:
                ctx.check_cancel()
                if batch.errors:
                    error_count += len(batch.errors)
                    errors.extend(batch.errors[: max(0, MAX_ERRORS - len(errors))])
                if not error_count and batch.problems:
                    with transaction.atomic():
                        imported += Problem.objects.insert_converted(
                            dataset, batch.problems, first_row=imported
                        )
                rows_read = batch.rows_read
                stage = "validating" if error_count else "importing"
                ctx.progress(stage=f"{stage}: {rows_read} rows read", done=imported, total=None)
        except DatasetError as exc:
            raise UserError(str(exc)) from None
        result = {
            "layout": layout,
            "rows_read": rows_read,
            "error_count": error_count,
            "errors": errors,
        }
        if error_count:
            ImportRun.objects.filter(pk=run.pk).update(result=result)
            raise UserError(describe_errors(errors, error_count))
        if rows_read == 0:
            raise UserError("the file has no rows")
        ctx.progress(stage="counting", done=imported, total=imported)
        dataset.layout = layout
        dataset.save(update_fields=["layout"])
        dataset.refresh_stats()
        dataset.ready = True
        dataset.save(update_fields=["ready"])
        result.update(imported=imported, duplicates=dataset.duplicates)
        ImportRun.objects.filter(pk=run.pk).update(result=result)
    except BaseException:
        dataset.delete()
        raise
