"""Training runs: launch form with presets and a live preview, the run page, live JSON, compare."""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from experiments.forms import TrainingCompareForm, TrainingRunForm
from experiments.forms.training import RUN_ID_PLACEHOLDER, overlap_messages
from experiments.models import TrainingMetric, TrainingRun
from experiments.models.training import RUN_FILES, presets
from experiments.roles import Role

from .access import get_run, require_role


def _get_training_run(pk: int) -> TrainingRun:
    return get_run("training", pk)


def _form_initial(request: HttpRequest) -> dict:
    """Start from a preset (?preset=sky_t1) or from an earlier run's settings (?from=<id>)."""
    initial: dict = {}
    source = request.GET.get("from", "")
    if source.isdigit():
        run = TrainingRun.objects.filter(pk=int(source)).first()
        if run is not None:
            initial.update(run.settings_data)
            initial["sources"] = run.config.get("sources", [])
            initial["name"] = f"{run} (again)"
            overrides = initial.pop("deepspeed_overrides", None)
            if overrides:
                initial["deepspeed_json"] = json.dumps(overrides, indent=2)
    preset = presets().get(request.GET.get("preset", ""))
    if preset:
        initial.update({k: v for k, v in preset.items() if k != "label"})
        initial["preset"] = request.GET["preset"]
    return initial


@require_role(Role.OPERATOR)
def training_new(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = TrainingRunForm(request.POST)
        sources = request.POST.getlist("sources")
        if form.is_valid():
            run = TrainingRun.launch(user=request.user, **form.run_fields())
            messages.success(request, "Training run queued on the gpu queue.")
            for warning in overlap_messages(sources):
                messages.warning(request, warning)
            return redirect(run)
    else:
        # Unbound, even with a preset or an earlier run's settings: nothing was typed yet, so
        # nothing is flagged as missing.
        initial = _form_initial(request)
        form = TrainingRunForm(initial=initial)
        sources = initial.get("sources", [])
    return render(
        request,
        "experiments/training/new.html",
        {
            "form": form,
            "presets": presets(),
            "price": settings.GPU_HOUR_PRICE_USD,
            "overlap": overlap_messages(sources),
            "run_id_placeholder": RUN_ID_PLACEHOLDER,
        },
    )


@require_POST
@require_role(Role.OPERATOR)
def training_preview(request: HttpRequest) -> JsonResponse:
    """The files a launch would write, and the effective batch, for the form as it stands."""
    form = TrainingRunForm(request.POST, for_launch=False)
    sources = request.POST.getlist("sources")
    # Reading every chosen set costs more than rendering the files: the page asks again only
    # when the chosen sets change (overlap=1), and keeps the last answer otherwise.
    warnings = overlap_messages(sources) if request.POST.get("overlap", "1") == "1" else None
    if not form.is_valid():
        errors = form.errors.get_json_data()
        hint = ""
        if not sources:
            # Not an error yet: the page asks for the one thing the files cannot do without.
            errors.pop("sources", None)
            hint = "Choose a training set to see the generated files."
        return JsonResponse({"ok": False, "errors": errors, "hint": hint, "warnings": warnings})
    return JsonResponse({"ok": True, "effective_batch": form.effective_batch, "files": form.files,
                         "warnings": warnings})


@require_GET
@require_role(Role.VIEWER)
def training_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = _get_training_run(pk)
    return render(
        request,
        "experiments/training/detail.html",
        {
            "run": run,
            "title": "Training",
            "files": [(name, run.files[name]) for name in RUN_FILES if name in run.files],
            "config_json": json.dumps(run.config, indent=2, sort_keys=True),
            "checkpoints": run.checkpoints.order_by("step", "is_final"),
            "sources": run.source_labels(),
            "nodes": run.node_rows(),
            "price": settings.GPU_HOUR_PRICE_USD,
        },
    )


@require_GET
@require_role(Role.VIEWER)
def training_live(request: HttpRequest, pk: int) -> JsonResponse:
    """What the run page polls: state, progress, log tail, checkpoints, GPU-hours and cost."""
    return JsonResponse(_get_training_run(pk).live_dict())


@require_GET
@require_role(Role.VIEWER)
def training_metrics(request: HttpRequest, pk: int) -> JsonResponse:
    run = _get_training_run(pk)
    return JsonResponse({"id": run.pk, "name": str(run), "state": run.state, **run.chart()})


@require_GET
@require_role(Role.VIEWER)
def training_file(request: HttpRequest, pk: int, name: str) -> HttpResponse:
    run = _get_training_run(pk)
    if name not in RUN_FILES or name not in run.files:
        raise Http404("No such file for this run.")
    content_type = "application/yaml" if name.endswith(".yaml") else "application/json"
    response = HttpResponse(run.files[name], content_type=f"{content_type}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="training-{run.pk}-{name}"'
    return response


@require_POST
@require_role(Role.OPERATOR)
def training_resume(request: HttpRequest, pk: int) -> HttpResponse:
    run = _get_training_run(pk)
    if run.relaunch():
        messages.success(request, "Run queued again: it resumes from its latest checkpoint.")
    else:
        messages.info(
            request, f"Only a failed or cancelled run can be resumed; this one is {run.state}."
        )
    return redirect(run)


@require_GET
@require_role(Role.VIEWER)
def training_compare(request: HttpRequest) -> HttpResponse:
    form = TrainingCompareForm(request.GET or None)
    ids = form.cleaned_data["runs"] if form.is_valid() else []
    metric = (form.cleaned_data.get("metric") if form.is_valid() else "") or "loss"
    curves = []
    for run in TrainingRun.objects.filter(pk__in=ids).order_by("pk"):
        chart = TrainingMetric.objects.chart(run.pk)
        curves.append(
            {"id": run.pk, "name": f"#{run.pk} {run}", "step": chart["train"]["step"],
             "value": chart["train"][metric]}
        )  # fmt: skip
    return render(
        request,
        "experiments/training/compare.html",
        {"form": form, "curves": curves, "metric": metric},
    )
