"""Evaluation pages: launch, run results, samples, comparisons, solved matrix, schedules,
regressions. Every number links to the samples behind it."""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.syndication.views import Feed
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.feedgenerator import Atom1Feed
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from distill.evaluation import length_histogram
from experiments.errors import UserError
from experiments.forms import EvaluationForm, EvaluationScheduleForm
from experiments.forms.evaluation import EvaluationImportForm
from experiments.models import (
    Benchmark,
    BenchmarkResult,
    EvaluationRun,
    EvaluationSchedule,
    PublishedResult,
    TrainingRun,
)
from experiments.models.evaluation import score_series, solved_matrix
from experiments.roles import Role

from .access import require_role

SAMPLES_PAGE = 50


def _run(pk: int) -> EvaluationRun:
    return get_object_or_404(EvaluationRun.objects.select_related("checkpoint__run"), pk=pk)


def _ids(raw: str) -> list[int]:
    return [int(x) for x in raw.split(",") if x.strip().isdigit()][:20]


@dataclass(frozen=True)
class ReferenceColumn:
    """A benchmark known only from published figures (no dataset loaded here)."""

    reference: str
    pk: None = None

    @property
    def name(self) -> str:
        return f"{self.reference} (published only)"


def comparison(runs: list, benchmarks: list) -> dict:
    """Table and chart data of runs × benchmarks, plus published figures."""
    results = {(r.run_id, r.benchmark_id): r for r in BenchmarkResult.objects.done().filter(
        run__in=runs, benchmark__in=benchmarks)}
    # Published figures for benchmarks this installation has no data for are still shown, as
    # reference-only columns: the comparison is what tells a team where its numbers stand.
    covered = {b.reference for b in benchmarks if b.reference}
    published = list(PublishedResult.objects.all())
    extra = sorted({p.benchmark for p in published} - covered)
    benchmarks = [*benchmarks, *(ReferenceColumn(name) for name in extra)]
    rows = [{"run": run, "cells": [results.get((run.pk, b.pk)) for b in benchmarks]}
            for run in runs]
    pub_rows: dict[str, dict] = {}
    for p in published:
        row = pub_rows.setdefault(p.label, {"label": p.label, "values": {}})
        row["values"][p.benchmark] = p
    pub_table = [{"label": r["label"], "cells": [r["values"].get(b.reference) for b in benchmarks]}
                 for r in pub_rows.values()]
    chart = {
        "benchmarks": [b.name for b in benchmarks],
        "series": [{
            "name": run.label,
            "values": [c.percent if c else None for c in row["cells"]],
            "errors": [c.stderr_percent if c else None for c in row["cells"]],
            "urls": [c.get_absolute_url() if c else None for c in row["cells"]],
        } for run, row in zip(runs, rows, strict=True)],
        "published": [{"name": r["label"], "values": [c.value if c else None for c in r["cells"]]}
                      for r in pub_table],
    }
    return {"rows": rows, "published": pub_table, "chart": chart, "columns": benchmarks}


@require_GET
@require_role(Role.VIEWER)
def evaluation_home(request: HttpRequest) -> HttpResponse:
    runs = list(EvaluationRun.objects.select_related("checkpoint__run", "launched_by")
                .order_by("-created_at")[:50])
    benchmarks = list(Benchmark.objects.usable())
    data = comparison([r for r in runs if r.state == "succeeded"][:15], benchmarks)
    return render(request, "experiments/evaluation/home.html", {
        "runs": runs, "benchmarks": benchmarks, "form": EvaluationForm.from_query(request.GET),
        "schedules": EvaluationSchedule.objects.all(),
        "regressions": BenchmarkResult.objects.regressions()[:10], **data,
        "chart_json": data["chart"],
    })


@require_http_methods(["GET", "POST"])
@require_role(Role.OPERATOR)
def evaluation_new(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        # A link to the form (``?source=checkpoint&checkpoint=<id>``): the form lives on the
        # overview, pre-filled from the same parameters.
        query = request.GET.urlencode()
        return redirect(reverse("evaluation_home") + (f"?{query}" if query else "")
                        + "#new-evaluation")
    form = EvaluationForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Evaluation not queued: {form.errors.as_text()}")
        return redirect("evaluation_home")
    try:
        run = EvaluationRun.launch(user=request.user, **form.run_fields())
    except UserError as exc:
        messages.error(request, f"Evaluation not queued: {exc}")
        return redirect("evaluation_home")
    messages.success(request, f"Evaluation queued on the {run.queue} queue.")
    return redirect(run)


@require_http_methods(["GET", "POST"])
@require_role(Role.OPERATOR)
def evaluation_import(request: HttpRequest) -> HttpResponse:
    """Bring your own traces: upload evaluation outputs, scored against a benchmark on the cpu
    queue; a malformed file or responses to unknown problems write nothing."""
    form = EvaluationImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            run = EvaluationRun.launch(user=request.user, **form.run_fields())
        except UserError as exc:
            form.add_error(None, f"{exc}")
        else:
            info = run.config["import"]
            messages.success(request, f"{info['responses']} imported responses to "
                                      f"{info['problems']} problems; scoring on the "
                                      f"{run.queue} queue.")
            return redirect(run)
    return render(request, "experiments/evaluation/import.html", {"form": form},
                  status=400 if request.method == "POST" else 200)


@require_GET
@require_role(Role.VIEWER)
def evaluation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = _run(pk)
    results = list(run.results.select_related("benchmark", "template", "previous__run"))
    lengths = {}
    for r in results:
        values = r.sample_rows().values_list("completion_tokens", flat=True)
        lengths[r.benchmark.name] = {**length_histogram(v for v in values if v is not None),
                                     "url": r.get_absolute_url()}
    return render(request, "experiments/evaluation/detail.html", {
        "run": run, "results": results,
        "config_json": json.dumps(run.config, indent=2, sort_keys=True),
        "lengths_json": lengths,
        # An empty histogram is said in words, not drawn as bare -1…6 axes.
        "has_lengths": any(sum(h["counts"]) for h in lengths.values()),
    })


@require_GET
@require_role(Role.VIEWER)
def evaluation_samples(request: HttpRequest, pk: int, slug: str) -> HttpResponse:
    run = _run(pk)
    result = get_object_or_404(run.results.select_related("benchmark"), benchmark__slug=slug)
    qs = result.sample_rows().select_related("problem").order_by("id")
    problem = request.GET.get("problem", "")
    if problem.isdigit():
        qs = qs.filter(problem_id=int(problem))
    correct = request.GET.get("correct", "")
    if correct in ("0", "1"):
        qs = qs.filter(correct=correct == "1")
    reason = request.GET.get("reason", "")
    if reason:
        qs = qs.filter(reason=reason)
    after = request.GET.get("after", "")
    if after.isdigit():
        qs = qs.filter(id__gt=int(after))
    page = list(qs[: SAMPLES_PAGE + 1])
    more = len(page) > SAMPLES_PAGE
    page = page[:SAMPLES_PAGE]
    return render(request, "experiments/evaluation/samples.html", {
        "run": run, "result": result, "samples": page, "more": more,
        "next_after": page[-1].pk if more and page else None,
        "problem": problem, "correct": correct, "reason": reason,
        "reasons": sorted(set(result.sample_rows().values_list("reason", flat=True))),
    })


@require_GET
@require_role(Role.VIEWER)
def evaluation_compare(request: HttpRequest) -> HttpResponse:
    benchmarks = list(Benchmark.objects.usable())
    ids = _ids(request.GET.get("runs", ""))
    runs_qs = EvaluationRun.objects.select_related("checkpoint__run").filter(state="succeeded")
    runs = list(runs_qs.filter(pk__in=ids)) if ids else list(runs_qs.order_by("-created_at")[:10])
    runs.sort(key=lambda r: (r.checkpoint.run_id if r.checkpoint else 0,
                             r.checkpoint.step if r.checkpoint else 0, r.pk))
    data = comparison(runs, benchmarks)
    slug = request.GET.get("benchmark", "")
    matrix_bench = next((b for b in benchmarks if b.slug == slug), None)
    matrix = solved_matrix(runs, matrix_bench) if matrix_bench and runs else None
    return render(request, "experiments/evaluation/compare.html", {
        "runs": runs, "benchmarks": benchmarks, **data, "chart_json": data["chart"],
        "matrix": matrix, "matrix_bench": matrix_bench,
        "all_runs": runs_qs.order_by("-created_at")[:100], "selected": {r.pk for r in runs},
        "run_ids": ",".join(str(r.pk) for r in runs),
    })


@require_GET
@require_role(Role.VIEWER)
def evaluation_training(request: HttpRequest, pk: int) -> HttpResponse:
    training = get_object_or_404(TrainingRun, pk=pk)
    series = score_series(training.pk)
    return render(request, "experiments/evaluation/training.html", {
        "training": training, "series": series, "series_json": series,
        "checkpoints": training.checkpoints.order_by("step"),
    })


@require_GET
@require_role(Role.VIEWER)
def schedule_list(request: HttpRequest) -> HttpResponse:
    return render(request, "experiments/evaluation/schedules.html", {
        "schedules": EvaluationSchedule.objects.prefetch_related("benchmarks", "training_runs")
        .select_related("periodic_task"),
        "form": EvaluationScheduleForm(),
    })


@require_http_methods(["GET", "POST"])
@require_role(Role.OPERATOR)
def schedule_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    schedule = get_object_or_404(EvaluationSchedule, pk=pk) if pk else None
    form = EvaluationScheduleForm(request.POST or None, instance=schedule)
    if request.method == "POST" and form.is_valid():
        if schedule is None:
            form.instance.created_by = request.user
        schedule = form.save()
        messages.success(request, f"Schedule saved: every day at {schedule.hour:02d}:"
                                  f"{schedule.minute:02d} {schedule.tz}.")
        return redirect("evaluation_schedules")
    return render(request, "experiments/evaluation/schedule_form.html",
                  {"form": form, "schedule": schedule},
                  status=400 if request.method == "POST" else 200)


@require_POST
@require_role(Role.OPERATOR)
def schedule_run(request: HttpRequest, pk: int) -> HttpResponse:
    schedule = get_object_or_404(EvaluationSchedule, pk=pk)
    created = schedule.run_now()
    messages.info(request, f"{len(created)} evaluation(s) queued; everything else was already "
                           "evaluated with the same configuration.")
    return redirect("evaluation_schedules")


@require_GET
@require_role(Role.VIEWER)
def regression_list(request: HttpRequest) -> HttpResponse:
    return render(request, "experiments/evaluation/regressions.html",
                  {"regressions": BenchmarkResult.objects.regressions()[:200]})


class RegressionFeed(Feed):
    feed_type = Atom1Feed
    title = "skyboard: evaluation regressions"
    subtitle = "Checkpoints scoring below the previous checkpoint by more than the combined SE"

    def link(self):
        return reverse("evaluation_regressions")

    def items(self):
        return BenchmarkResult.objects.regressions()[:50]

    def item_title(self, item: BenchmarkResult) -> str:
        return (f"{item.benchmark.name}: {item.run.label} {item.percent:.1f}% "
                f"(was {item.previous.percent:.1f}% at {item.previous.run.label})")

    def item_description(self, item: BenchmarkResult) -> str:
        return (f"avg@{item.n} {item.percent:.2f} ± {item.stderr_percent or 0:.2f} vs "
                f"{item.previous.percent:.2f} ± {item.previous.stderr_percent or 0:.2f}")

    def item_link(self, item: BenchmarkResult) -> str:
        return item.get_absolute_url()

    def item_pubdate(self, item: BenchmarkResult):
        return item.finished_at


regression_feed = require_GET(require_role(Role.VIEWER)(RegressionFeed()))
