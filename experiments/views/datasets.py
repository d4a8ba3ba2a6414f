"""Dataset pages. Imports run on workers; these views create
the run row, enqueue it and show its state."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.text import get_valid_filename
from django.views.decorators.http import require_GET, require_POST

from experiments.forms import (
    DatasetImportForm,
    ProblemFilterForm,
)
from experiments.models import (
    Dataset,
    ImportRun,
    Problem,
)
from experiments.roles import Role, role_of

from .access import require_role

PAGE_SIZE = 50


def _save_upload(upload) -> Path:
    """Stream an upload to MEDIA_ROOT, which web and workers share."""
    folder = Path(settings.MEDIA_ROOT) / "uploads" / uuid.uuid4().hex
    folder.mkdir(parents=True)
    path = folder / (get_valid_filename(upload.name) or "upload")
    with open(path, "wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    return path


# --- datasets ------------------------------------------------------------------------------


@require_GET
@require_role(Role.VIEWER)
def dataset_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "experiments/datasets/list.html",
        {
            "datasets": Dataset.objects.ready(),
            "imports": ImportRun.objects.recent(10),
            "form": DatasetImportForm(),
        },
    )


@require_POST
@require_role(Role.OPERATOR)
def dataset_import(request: HttpRequest) -> HttpResponse:
    is_admin = (role_of(request.user) or 0) >= Role.ADMIN
    form = DatasetImportForm(request.POST, request.FILES, allow_server_path=is_admin)
    if not form.is_valid():
        return render(
            request,
            "experiments/datasets/list.html",
            {
                "datasets": Dataset.objects.ready(),
                "imports": ImportRun.objects.recent(10),
                "form": form,
            },
        )
    data = form.cleaned_data
    if data["file"]:
        path, origin = _save_upload(data["file"]), data["file"].name
    else:
        path = origin = data["server_path"]
    run = ImportRun.launch(
        user=request.user,
        name=f"import {data['name']}",
        config={
            "path": str(path),
            "origin": str(origin),
            "name": data["name"],
            "layout": data["layout"],
            "mapping": data["mapping"],
            "is_benchmark": data["is_benchmark"],
            "description": data["description"],
            "source_override": data["source_override"],
            "domain_override": data["domain_override"],
        },
    )
    messages.success(request, f"Import of {data['name']} queued; this page follows its progress.")
    return redirect(run)


def _problem_page(problems, form: ProblemFilterForm) -> tuple[list, int | None]:
    after = form.cleaned_data.get("after") if form.is_valid() else None
    rows = problems.page_after(after, PAGE_SIZE)
    next_after = rows[PAGE_SIZE - 1].pk if len(rows) > PAGE_SIZE else None
    return rows[:PAGE_SIZE], next_after


def _search_page(problems, form: ProblemFilterForm, search: str, dataset: Dataset) -> dict:
    """A page of a bounded search (ProblemQuerySet.search_after). When its row budget ran out
    before the page filled, ``search_scan`` says which rows were read (1-based positions in
    the dataset) and which problems have the search as their exact id further on, so the page
    can say how far it got and offer to search further."""
    page = problems.search_after(form.cleaned_data.get("after"), search, PAGE_SIZE)
    context = {"problems": page.rows, "next_after": page.next_after, "search_scan": None}
    if page.scanned:
        first, last = page.scanned
        rows = dict(Problem.objects.filter(pk__in=page.scanned).values_list("pk", "row"))
        context["search_scan"] = {
            "first_row": rows[first] + 1,
            "last_row": rows[last] + 1,
            "total": dataset.problem_count,
            # The exact-id arm of the search, answered at once from (dataset, external_id).
            "id_matches": list(
                problems.filter(id__gt=last, external_id=search).order_by("id")[:5]
            ),
        }
    return context


@require_GET
@require_role(Role.VIEWER)
def dataset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = get_object_or_404(Dataset.objects.ready(), pk=pk)
    form = ProblemFilterForm(request.GET or None)
    filters = form.filters() if form.is_valid() else {}
    search = filters.pop("search", "")
    problems = Problem.objects.filtered(dataset=dataset, **filters)
    if search:
        page = _search_page(problems, form, search, dataset)
    else:
        rows, next_after = _problem_page(problems, form)
        page = {"problems": rows, "next_after": next_after}
    query = request.GET.copy()
    query.pop("after", None)
    charts = {
        key: {"x": list(dataset.stats.get(key, {})), "y": list(dataset.stats.get(key, {}).values())}
        for key in ("domain", "source", "difficulty")
    }
    return render(
        request,
        "experiments/datasets/detail.html",
        {
            "dataset": dataset,
            "form": form,
            **page,
            "query": query.urlencode(),
            "filtered": bool(request.GET.get("after"))
            or bool(search)
            or any(v not in ("", None) for v in filters.values()),
            "charts": charts,
            "imports": dataset.imports.order_by("-created_at")[:5],
        },
    )


@require_GET
@require_role(Role.VIEWER)
def problem_detail(request: HttpRequest, pk: int, problem: int) -> HttpResponse:
    item = get_object_or_404(Problem.objects.select_related("dataset"), pk=problem, dataset_id=pk)
    twins = (
        Problem.objects.filter(content_hash=item.content_hash)
        .exclude(pk=item.pk)
        .select_related("dataset")[:20]
    )
    return render(
        request,
        "experiments/datasets/problem.html",
        {
            "problem": item,
            "dataset": item.dataset,
            "twins": twins,
            "tests_cases": (item.tests or {}).get("cases") or [],
            "tests_json": json.dumps(item.tests, indent=2, ensure_ascii=False)
            if item.tests
            else "",
            "meta_json": json.dumps(item.meta, indent=2, ensure_ascii=False),
            "raw_json": json.dumps(item.raw, indent=2, ensure_ascii=False)[:200_000],
        },
    )
