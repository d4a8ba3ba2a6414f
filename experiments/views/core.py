"""Overview, run pages and the run lifecycle actions shared by every kind of run."""

from __future__ import annotations

import json

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from experiments.forms import DiagnosticForm
from experiments.models import RUN_KINDS, DiagnosticRun, RunState
from experiments.roles import Role

from .access import get_run, require_role


def _recent_runs(limit: int = 20) -> list:
    runs = []
    for model in RUN_KINDS.values():
        runs.extend(model.objects.recent(limit))
    runs.sort(key=lambda r: r.created_at, reverse=True)
    return runs[:limit]


@require_GET
@require_role(Role.VIEWER)
def overview(request: HttpRequest) -> HttpResponse:
    counts = {
        kind: {
            "title": model.title,
            "active": model.objects.active().count(),
            "failed": model.objects.filter(state=RunState.FAILED).count(),
            "total": model.objects.count(),
        }
        for kind, model in RUN_KINDS.items()
    }
    return render(
        request,
        "experiments/overview.html",
        {"runs": _recent_runs(), "counts": counts, "diagnostic_form": DiagnosticForm()},
    )


@require_GET
@require_role(Role.VIEWER)
def runs_status(request: HttpRequest) -> JsonResponse:
    """What the overview polls: the state of the most recent runs of every kind."""
    return JsonResponse({"runs": [r.status_dict() for r in _recent_runs()]})


@require_GET
@require_role(Role.VIEWER)
def run_list(request: HttpRequest, kind: str) -> HttpResponse:
    if kind not in RUN_KINDS:
        raise Http404("No such kind of run.")
    model = RUN_KINDS[kind]
    state = request.GET.get("state", "")
    runs = model.objects.select_related("launched_by").order_by("-created_at")
    if state in RunState.values:
        runs = runs.filter(state=state)
    return render(
        request,
        "experiments/run_list.html",
        {
            "kind": kind,
            "title": model.title,
            "runs": runs[:200],
            "state": state,
            "states": RunState.choices,
            "diagnostic_form": DiagnosticForm() if kind == "diagnostic" else None,
        },
    )


@require_GET
@require_role(Role.VIEWER)
def run_detail(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    run = get_run(kind, pk)
    return render(
        request,
        "experiments/run_detail.html",
        {
            "run": run,
            "title": run.title,
            "config_json": json.dumps(run.config, indent=2, sort_keys=True),
            "result_json": json.dumps(getattr(run, "result", None), indent=2, sort_keys=True)
            if getattr(run, "result", None)
            else "",
        },
    )


@require_GET
@require_role(Role.VIEWER)
def run_status(request: HttpRequest, kind: str, pk: int) -> JsonResponse:
    return JsonResponse(get_run(kind, pk).status_dict())


@require_POST
@require_role(Role.OPERATOR)
def run_cancel(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    run = get_run(kind, pk)
    outcome = run.cancel()
    text = {
        "cancelled": "Run cancelled.",
        "stopping": "Cancel requested: the worker is stopping the run.",
        "final": f"The run had already {run.state}.",
    }[outcome]
    messages.info(request, text)
    return redirect(run)


@require_POST
@require_role(Role.OPERATOR)
def diagnostic_new(request: HttpRequest) -> HttpResponse:
    form = DiagnosticForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Worker check not started: {form.errors.as_text()}")
        return redirect("run_list", kind="diagnostic")
    queue = form.cleaned_data["queue"]
    hold = form.cleaned_data.get("hold_seconds") or 0
    run = DiagnosticRun.launch(
        user=request.user,
        name=f"worker check on {queue}",
        queue=queue,
        config={"queue": queue, "hold_seconds": hold},
    )
    messages.success(request, f"Worker check queued on the {queue} queue.")
    return redirect(run)
