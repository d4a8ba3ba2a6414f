"""Curation run pages: launch, live progress and funnel, sample browser, trace viewer, export,
resume and re-run, prompt versions and the price table."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from distill.curation.render import render_markdown
from distill.generation.reformat import parse_reformatted
from experiments.forms import (
    ConfirmForm,
    CurationRerunForm,
    CurationRunForm,
    PriceForm,
    PromptVersionForm,
    SampleFilterForm,
)
from experiments.forms.curation import CurationImportForm
from experiments.models import (
    FUNNEL_LABELS,
    PIPELINE,
    UNVERIFIED,
    CurationRun,
    PriceTable,
    Problem,
    PromptVersion,
    Sample,
    TrainingSetVersion,
)
from experiments.models.recipes import component_verifies
from experiments.roles import Role

from .access import require_role

PAGE = 50


def _get_run(pk: int) -> CurationRun:
    return get_object_or_404(
        CurationRun.objects.select_related("recipe_version__recipe", "launched_by", "parent",
                                           "system_prompt", "template", "convert_prompt"),
        pk=pk)


@require_http_methods(["GET", "POST"])
@require_role(Role.OPERATOR)
def curation_import(request: HttpRequest) -> HttpResponse:
    """Bring your own traces: a file of generations becomes a run that starts at verify."""
    form = CurationImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        run = CurationRun.launch(user=request.user, **form.run_fields())
        messages.success(request, f"Imported {len(form.traces)} generations from "
                                  f"{form.cleaned_data['file'].name}; the run starts at "
                                  f"verification on the {run.queue} queue.")
        return redirect(run)
    return render(request, "experiments/curation/import.html", {"form": form})


@require_http_methods(["GET", "POST"])
@require_role(Role.OPERATOR)
def curation_new(request: HttpRequest) -> HttpResponse:
    initial = {}
    if request.method == "GET" and request.GET.get("version"):
        initial["recipe_version"] = request.GET["version"]
    form = CurationRunForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        run = CurationRun.launch(user=request.user, **form.run_fields())
        messages.success(request, f"Curation run queued on the {run.queue} queue.")
        return redirect(run)
    return render(request, "experiments/curation/new.html", {"form": form})


FUNNEL_BY = ("source", "domain", "difficulty")


def _funnels(run: CurationRun, samples) -> tuple[dict, dict]:
    """The funnel per grouping and in total, export included: the samples export wrote
    (``run.export_keys()``, once the run has exported), counted per group like every other
    stage. The stage cards show the same totals."""
    keys = run.export_keys() if run.exported_rows is not None else []
    per_problem = Counter(pid for pid, _ in keys)
    zero = {s: 0 for s in PIPELINE}
    funnels = {}
    for by in FUNNEL_BY:
        groups = {g: {**zero, **row} for g, row in samples.funnel(by).items()}
        labels = dict(Problem.objects.filter(pk__in=per_problem).values_list("pk", by)) \
            if per_problem else {}
        for pid, n in per_problem.items():
            groups.setdefault(labels.get(pid) or "unlabelled", dict(zero))["export"] += n
        funnels[by] = dict(sorted(groups.items()))
    total = {**zero, **samples.funnel().get("all", {}), "export": len(keys)}
    return funnels, total


def _stage_cards(run: CurationRun, counts: dict, total: dict) -> list[dict]:
    """One card per pipeline stage, from the funnel's numbers: rows done of rows expected, and
    how many passed (for export: the samples written, the funnel's export bar). A stage the run
    does not run says so instead of "0 / 0"."""
    skipped = run.skipped_stages()
    progress = ((run.progress or {}).get("stages") or {})
    cards = []
    for stage in PIPELINE:
        card = {"stage": stage, "label": FUNNEL_LABELS[stage], "skipped": stage in skipped,
                "passed": total.get(stage, 0)}
        if stage == "export":
            card["done"] = total["export"] if run.exported_rows is not None else 0
            card["total"] = total.get(run.final_stage, 0)
        else:
            card["done"] = (counts.get(stage) or {}).get("total", 0)
            card["total"] = max(card["done"], (progress.get(stage) or {}).get("total", 0))
        if stage == "generate" and run.imports:
            card["note"] = "imported"
        cards.append(card)
    return cards


def _page_data(run: CurationRun) -> dict:
    samples = Sample.objects.filter(run=run)
    unverified = samples.kept_unverified()
    funnels, total = _funnels(run, samples)
    counts = samples.stage_counts() if run.is_final else (run.counts or {})
    return {
        "status": run.status_dict(),
        "counts": counts,
        "exported": run.exported_rows,
        "stages": _stage_cards(run, counts, total),
        "skipped": run.skipped_stages(),
        "funnel": funnels,
        "total": total,
        "reasons": samples.failure_reasons(),
        # Passed per verify stage without a verifier (components with verification off), and
        # of the accepted samples (those that passed the last verify stage).
        "unverified": unverified,
        "accepted_unverified": unverified.get("reverify" if run.reformats else "verify", 0),
        "labels": FUNNEL_LABELS,
    }


def _unverified_components(run: CurationRun) -> list[str]:
    """Titles of the run's recipe components frozen with verification off."""
    spec = run.recipe_version.spec if run.recipe_version else {}
    return [c.get("title") or c.get("dataset_name") or f"component {i + 1}"
            for i, c in enumerate(spec.get("components") or []) if not component_verifies(c)]


@require_GET
@require_role(Role.VIEWER)
def curation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = _get_run(pk)
    usage = Sample.objects.filter(run=run).usage()
    return render(request, "experiments/curation/detail.html", {
        "run": run,
        "data": _page_data(run),
        "unverified_components": _unverified_components(run),
        "accounting": run.accounting_table(usage),
        "export": TrainingSetVersion.objects.filter(source_run=run).select_related(
            "training_set").first(),
        "rerun_form": CurationRerunForm(),
        "confirm_form": ConfirmForm(),
        "reruns": run.reruns.order_by("-created_at")[:20],
    })


@require_GET
@require_role(Role.VIEWER)
def curation_status(request: HttpRequest, pk: int) -> JsonResponse:
    return JsonResponse(_page_data(_get_run(pk)))


@require_POST
@require_role(Role.OPERATOR)
def curation_resume(request: HttpRequest, pk: int) -> HttpResponse:
    run = _get_run(pk)
    form = ConfirmForm(request.POST)
    if form.is_valid() and run.relaunch():
        messages.success(request, f"Run resumed as attempt {run.attempt}: it continues from "
                                  "what earlier attempts stored.")
    else:
        messages.error(request, f"Only a failed or cancelled run can be resumed; this one is "
                                f"{run.state}.")
    return redirect(run)


@require_POST
@require_role(Role.OPERATOR)
def curation_rerun(request: HttpRequest, pk: int) -> HttpResponse:
    run = _get_run(pk)
    form = CurationRerunForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Not re-run: {form.errors.as_text()}")
        return redirect(run)
    child = run.rerun_from(form.cleaned_data["stage"], user=request.user,
                           convert_prompt=form.cleaned_data.get("convert_prompt"))
    messages.success(request, f"Re-running from {child.start_stage}, reusing this run's "
                              "earlier stages.")
    return redirect(child)


@require_GET
@require_role(Role.VIEWER)
def curation_samples(request: HttpRequest, pk: int) -> HttpResponse:
    run = _get_run(pk)
    form = SampleFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    qs = Sample.objects.filter(run=run).browse(
        **{k: v for k, v in filters.items() if k != "after" and v not in (None, "")})
    after = filters.get("after")
    if after:
        qs = qs.filter(id__gt=after)
    # Keyset pages by id: as cheap on page 2,000 as on page 1.
    rows = list(qs.select_related("problem").order_by("id").defer(
        "text", "messages", "prompt_text", "detail")[: PAGE + 1])
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    query = request.GET.copy()
    if more:
        query["after"] = rows[-1].id
    return render(request, "experiments/curation/samples.html", {
        "run": run, "form": form, "rows": rows, "next_query": query.urlencode() if more else "",
        "reasons": sorted(set(Sample.objects.filter(run=run).exclude(reason="").values_list(
            "reason", flat=True)) | ({UNVERIFIED} if _unverified_components(run) else set())),
    })


@require_GET
@require_role(Role.VIEWER)
def curation_sample(request: HttpRequest, pk: int, problem: int, index: int) -> HttpResponse:
    run = _get_run(pk)
    prob = get_object_or_404(Problem.objects.select_related("dataset"), pk=problem)
    stages = {s.stage: s for s in Sample.objects.filter(run=run, problem=prob,
                                                        sample_index=index)}
    if not stages:
        raise Http404("No such sample in this run.")
    gen, ref = stages.get("generate"), stages.get("reformat")
    sections = None
    if ref and ref.text:
        parsed = parse_reformatted(ref.text)
        sections = {"thought": render_markdown(parsed["thought"] or ""),
                    "solution": render_markdown(parsed["solution"] or ""),
                    "well_formed": parsed["well_formed"]}
    return render(request, "experiments/curation/sample.html", {
        "run": run, "problem": prob, "index": index, "stages": stages,
        "order": [stages[s] for s in ("generate", "verify", "reformat", "reverify")
                  if s in stages],
        "prompt_html": render_markdown(prob.prompt),
        "solution_html": render_markdown(prob.solution) if prob.solution else None,
        "trace_html": render_markdown(gen.text) if gen and gen.text else None,
        "sections": sections,
        "reformat_raw": ref.text if ref else "",
    })


@require_GET
@require_role(Role.VIEWER)
def curation_export(request: HttpRequest, pk: int) -> FileResponse:
    version = get_object_or_404(TrainingSetVersion, source_run_id=pk)
    what = request.GET.get("file", "data")
    path = Path(version.path) if what != "info" else Path(version.dataset_dir) / "dataset_info.json"
    if not path.is_file():
        raise Http404("The export file is missing on this server.")
    return FileResponse(path.open("rb"), as_attachment=True, filename=path.name,
                        content_type="application/json")


@require_GET
@require_role(Role.VIEWER)
def curation_prompts(request: HttpRequest) -> HttpResponse:
    PromptVersion.objects.ensure_defaults()
    form = PromptVersionForm(initial={"base": request.GET.get("base")})
    return render(request, "experiments/curation/prompts.html", {
        "form": form, "prompts": PromptVersion.objects.select_related("created_by")})


@require_POST
@require_role(Role.OPERATOR)
def curation_prompt_new(request: HttpRequest) -> HttpResponse:
    form = PromptVersionForm(request.POST)
    if form.is_valid():
        messages.success(request, f"Saved {form.save(request.user)}.")
    else:
        messages.error(request, f"Not saved: {form.errors.as_text()}")
    return redirect("curation_prompts")


@require_GET
@require_role(Role.VIEWER)
def curation_prices(request: HttpRequest) -> HttpResponse:
    return render(request, "experiments/curation/prices.html",
                  {"form": PriceForm(), "prices": PriceTable.objects.all()})


@require_POST
@require_role(Role.OPERATOR)
def curation_price_save(request: HttpRequest) -> HttpResponse:
    form = PriceForm(request.POST)
    if form.is_valid():
        messages.success(request, f"Saved {form.save()}.")
    else:
        messages.error(request, f"Not saved: {form.errors.as_text()}")
    return redirect("curation_prices")
