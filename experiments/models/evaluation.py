"""Evaluations: benchmarks, per-sample results, metrics, published figures, nightly schedules.

A benchmark is a ``Dataset`` flagged ``is_benchmark`` plus a ``Benchmark`` row: its prompt
template (a versioned ``PromptVersion``), verifier domain, default sampling and subset filter.
An ``EvaluationRun`` evaluates one model, model
path or checkpoint on one or more benchmarks; it owns one ``BenchmarkResult`` per benchmark,
created at launch with the exact configuration and its fingerprint (what nightly schedules
compare to skip work already done), and filled with metrics when its samples are in.
``EvalSample`` holds one row per (run, benchmark, problem, sample index): inserted with
``ignore_conflicts`` so a retried or resumed run neither loses nor duplicates a sample.

Metric formulas are in ``distill/evaluation/metrics.py`` (Django-free, tested by hand).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models import Avg, Count, Q
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from distill.evaluation import BY_SLUG, metrics
from distill.generation.transformers_backend import model_revision
from experiments.errors import UserError

from .curation import PromptVersion
from .runs import QueuedRun, RunState
from .training import TrainingCheckpoint

DOMAINS = (("math", "math"), ("code", "code"), ("mcq", "multiple choice"))


def fingerprint(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


# --- benchmarks ---------------------------------------------------------------------------------


class BenchmarkQuerySet(models.QuerySet):
    def usable(self):
        return self.filter(dataset__ready=True).select_related("dataset", "template")

    def register(self, slug: str, dataset, **fields) -> Benchmark:
        """The registry entry ``slug`` over ``dataset``: its template versions become prompt
        versions, the newest one current; idempotent (an existing benchmark keeps its edits)."""
        spec = BY_SLUG[slug]
        template = None
        for t in spec.templates:
            template, _ = PromptVersion.objects.get_or_create(
                kind=PromptVersion.Kind.TEMPLATE, name=f"benchmark-{slug}", number=t.number,
                defaults={"text": t.text, "note": t.note})
        if not dataset.is_benchmark:
            dataset.is_benchmark = True
            dataset.save(update_fields=["is_benchmark"])
        defaults = {
            "name": spec.name, "dataset": dataset, "template": template, "domain": spec.domain,
            "reference": spec.reference, "n": spec.n, "temperature": spec.temperature,
            "top_p": spec.top_p, "max_tokens": spec.max_tokens, "subset": dict(spec.subset),
            **fields,
        }
        bench, _ = self.get_or_create(slug=slug, defaults=defaults)
        return bench


class Benchmark(models.Model):
    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    dataset = models.ForeignKey(
        "experiments.Dataset", on_delete=models.PROTECT, related_name="benchmarks"
    )
    # The current template; every result records the version it was run with.
    template = models.ForeignKey(
        "experiments.PromptVersion", on_delete=models.PROTECT, related_name="+"
    )
    domain = models.CharField(max_length=8, choices=DOMAINS)
    # Key of the published figures (SPEC.md rows) this benchmark is compared with.
    reference = models.CharField(max_length=60, blank=True)
    n = models.PositiveIntegerField(default=1)
    temperature = models.FloatField(default=0.0)
    top_p = models.FloatField(default=1.0)
    max_tokens = models.PositiveIntegerField(default=32768)
    # {"difficulty": "easy", "released_after": "2024-05-01", "released_before": "...",
    #  "year": 2024, "limit": 50}
    subset = models.JSONField(default=dict, blank=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = BenchmarkQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("evaluation_compare") + f"?benchmark={self.slug}"

    def problems(self):
        """The dataset's problems this benchmark is made of, by its subset filter."""
        qs = self.dataset.problems.all()
        s = self.subset or {}
        if s.get("difficulty"):
            qs = qs.filter(difficulty__iexact=s["difficulty"])
        if s.get("released_after"):
            qs = qs.filter(meta__release_date__gte=str(s["released_after"]))
        if s.get("released_before"):
            qs = qs.filter(meta__release_date__lt=str(s["released_before"]))
        if s.get("year"):
            qs = qs.filter(meta__year=int(s["year"]))
        qs = qs.order_by("id")
        if s.get("limit"):
            qs = qs[: int(s["limit"])]
        return qs

    def sampling(self, overrides: dict | None = None) -> dict[str, Any]:
        out = {"n": self.n, "temperature": self.temperature, "top_p": self.top_p,
               "max_tokens": self.max_tokens}
        for key, value in (overrides or {}).items():
            if key in out and value not in (None, ""):
                out[key] = type(out[key])(value)
        return out

    def run_config(self, overrides: dict | None = None) -> dict[str, Any]:
        """What a result records about this benchmark: template version and text, sampling,
        subset, verifier. Two results with equal configs ran the same evaluation."""
        t = self.template
        return {
            "benchmark": self.slug,
            "dataset": {"id": self.dataset_id, "name": self.dataset.name},
            "domain": self.domain,
            "subset": self.subset,
            "template": {"id": t.pk, "name": t.name, "number": t.number, "text": t.text},
            "sampling": self.sampling(overrides),
        }


class PublishedResult(models.Model):
    """A published figure (SPEC.md, Sky-T1 report), drawn as a labelled reference."""

    model_name = models.CharField(max_length=120)
    benchmark = models.CharField(max_length=60)  # Benchmark.reference
    value = models.FloatField()  # accuracy in percent
    note = models.CharField(max_length=120, blank=True)  # e.g. "first release"
    source = models.CharField(max_length=200, default="Sky-T1 report (SPEC.md)")

    class Meta:
        ordering = ["benchmark", "model_name", "note"]
        constraints = [
            models.UniqueConstraint(fields=["model_name", "benchmark", "note"],
                                    name="published_result_once")
        ]

    def __str__(self) -> str:
        note = f" ({self.note})" if self.note else ""
        return f"{self.model_name} {self.benchmark}{note}: {self.value}"

    @property
    def label(self) -> str:
        return f"{self.model_name} (published{', ' + self.note if self.note else ''})"


# --- runs ---------------------------------------------------------------------------------------


def checkpoint_identity(checkpoint) -> dict[str, Any]:
    """What a checkpoint evaluation records about the model it evaluates: the training run,
    step and folder, and the folder's content revision (``model_revision``: names, sizes and
    first MiB of its weight and config files) when the folder is readable here; otherwise the
    worker records the revision it loads (``EvaluationRun.model_revision``)."""
    path = Path(checkpoint.path)
    try:
        revision = model_revision(path) if (path / "config.json").is_file() else None
    except OSError:
        revision = None
    return {**checkpoint.as_dict(), "id": checkpoint.pk, "training_run": checkpoint.run_id,
            "training_run_name": checkpoint.run.name, "revision": revision}


class Source(models.TextChoices):
    CHECKPOINT = "checkpoint", "training checkpoint"
    MODEL = "model", "model path"
    ENDPOINT = "endpoint", "OpenAI-compatible endpoint"
    IMPORT = "import", "imported responses"


class EvaluationRun(QueuedRun):
    """A model, model path or checkpoint × benchmarks.

    ``config``: {"source", "backend", "model", "model_name", "base_url", "engine": {dtype,
    tensor_parallel_size, batch_size, seed, ...}, "benchmarks": {slug: run_config}}.
    """

    kind = "evaluation"
    title = "Evaluation"

    source = models.CharField(max_length=12, choices=Source.choices, default=Source.MODEL)
    backend = models.CharField(max_length=16, default="transformers")
    model_name = models.CharField(max_length=300, blank=True)  # what charts call it
    model_path = models.CharField(max_length=1000, blank=True)  # folder, hub id or API model
    base_url = models.CharField(max_length=500, blank=True)
    checkpoint = models.ForeignKey(
        "experiments.TrainingCheckpoint", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="evaluations",
    )
    schedule = models.ForeignKey(
        "experiments.EvaluationSchedule", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="runs",
    )
    # Filled by the worker: the engine and its version as it reported them.
    engine_version = models.CharField(max_length=200, blank=True)
    model_revision = models.CharField(max_length=200, blank=True)

    class Meta(QueuedRun.Meta):
        pass

    def get_absolute_url(self) -> str:
        return reverse("evaluation_detail", args=[self.pk])

    # --- launching -------------------------------------------------------------------------

    @classmethod
    def new(
        cls,
        *,
        benchmarks,
        source: str = Source.MODEL,
        backend: str = "transformers",
        model_path: str = "",
        model_name: str = "",
        base_url: str = "",
        checkpoint=None,
        engine: dict | None = None,
        overrides: dict | None = None,
        imported: dict | None = None,
        **fields,
    ):
        """An evaluation of a model path, endpoint model or ``checkpoint`` on ``benchmarks``;
        ``config`` records each benchmark's exact configuration (with sampling ``overrides``)
        and the ``engine`` options. Launching creates one ``BenchmarkResult`` per benchmark.

        ``imported`` (``{"responses": [ImportedResponse], "format", "file", "sha256",
        "bytes"}``): responses generated elsewhere, for one benchmark; launching stores them
        as the run's samples and the job (cpu queue) scores them with skyboard's verifiers.
        Responses naming no problem of the benchmark's dataset are refused (nothing written).
        """
        if imported is not None:
            return cls._new_import(benchmarks, imported, model_name=model_name, **fields)
        checkpoint_config = None
        if source == Source.CHECKPOINT and checkpoint is None:
            raise UserError("a checkpoint evaluation needs a checkpoint")
        if checkpoint is not None:
            # The source decides the model: a checkpoint evaluation evaluates the checkpoint's
            # folder, never a path typed (or pre-filled) beside it.
            if model_path and model_path.rstrip("/") != checkpoint.path.rstrip("/"):
                raise UserError(
                    f"a checkpoint evaluation evaluates the checkpoint's folder "
                    f"{checkpoint.path!r}; the model path {model_path!r} was also given. "
                    "Clear the model path, or choose the source 'model path' to evaluate it.")
            source = Source.CHECKPOINT
            model_path = checkpoint.path
            model_name = model_name or (checkpoint.run.name or f"training run {checkpoint.run_id}")
            checkpoint_config = checkpoint_identity(checkpoint)
        engine = {k: v for k, v in (engine or {}).items() if v not in (None, "")}
        config = {
            "source": source, "backend": backend, "model": model_path, "model_name": model_name,
            "base_url": base_url, "checkpoint": checkpoint_config,
            "engine": engine,
            "benchmarks": {b.slug: b.run_config(overrides) for b in benchmarks},
        }
        fields.setdefault("model_revision", (checkpoint_config or {}).get("revision") or "")
        return super().new(
            source=source, backend=backend, model_path=model_path, model_name=model_name,
            base_url=base_url, checkpoint=checkpoint, config=config, **fields,
        )

    @classmethod
    def _new_import(cls, benchmarks, imported: dict, *, model_name: str = "", **fields):
        benchmarks = list(benchmarks)
        if len(benchmarks) != 1:
            raise UserError("imported responses are scored against exactly one benchmark")
        bench = benchmarks[0]
        rows, summary = match_imported(bench, imported["responses"])
        origin = {k: imported.get(k) for k in ("file", "format", "sha256", "bytes")}
        bconfig = bench.run_config()
        # Sampling happened elsewhere: only the number of responses per problem is known.
        bconfig["sampling"] = {"n": summary["max_per_problem"], "temperature": None,
                               "top_p": None, "max_tokens": None}
        bconfig["imported"] = True
        name = model_name or f"imported {imported.get('file') or 'responses'}"
        config = {
            "source": Source.IMPORT, "backend": "import", "model": "", "model_name": name,
            "base_url": "", "checkpoint": None, "engine": {},
            "import": {**origin, **{k: v for k, v in summary.items() if k != "max_per_problem"}},
            "benchmarks": {bench.slug: bconfig},
        }
        run = super().new(source=Source.IMPORT, backend="import", model_name=name,
                          config=config, **fields)
        run._imported_rows = rows
        return run

    def on_launch(self) -> None:
        configs = self.config["benchmarks"]
        by_slug = {b.slug: b for b in Benchmark.objects.filter(slug__in=configs)}
        BenchmarkResult.objects.bulk_create([
            BenchmarkResult.for_run(self, by_slug[slug], bconfig)
            for slug, bconfig in configs.items()
        ])
        rows = getattr(self, "_imported_rows", None)
        if rows:
            bench = by_slug[next(iter(configs))]
            # Unscored until the job verifies them (reason "" marks a sample not yet scored).
            EvalSample.objects.bulk_create([
                EvalSample(run=self, benchmark=bench, problem=problem,
                           sample_index=r.sample_index, prompt_text=r.prompt or problem.prompt,
                           response=r.response, completion_tokens=r.completion_tokens,
                           finish_reason=r.finish_reason, reason="",
                           detail={"imported_key": r.key})
                for problem, r in rows
            ], batch_size=500)

    def default_queue(self) -> str:
        if self.backend == "import":
            return "cpu"  # scoring only: verifiers and sandboxes, no model
        return "api" if self.backend == "openai" else "gpu"

    @property
    def label(self) -> str:
        if self.checkpoint_id and self.checkpoint:
            return f"{self.model_name or 'training run ' + str(self.checkpoint.run_id)} · " \
                   f"step {self.checkpoint.step}"
        return self.model_name or self.model_path or f"evaluation #{self.pk}"

    def model_identity(self) -> dict[str, Any]:
        """Who is evaluated, for fingerprints: the checkpoint, folder or endpoint model."""
        if self.source == Source.IMPORT:
            return {"import": (self.config.get("import") or {}).get("sha256"),
                    "name": self.model_name}
        if self.source == Source.CHECKPOINT:
            return {"checkpoint": self.checkpoint_id, "path": self.model_path}
        if self.source == Source.ENDPOINT:
            return {"base_url": self.base_url, "model": self.model_path}
        return {"path": self.model_path}

    def backend_config(self) -> dict[str, Any]:
        engine = dict(self.config.get("engine") or {})
        engine.pop("seed", None)
        if self.backend == "openai":
            return {"model": self.model_path, "base_url": self.base_url or None,
                    "api_key": settings.OPENAI_API_KEY,
                    **{k: v for k, v in engine.items() if k in ("concurrency",)}}
        if self.backend == "vllm":
            keep = ("tensor_parallel_size", "dtype", "max_model_len", "gpu_memory_utilization")
            return {"model": self.model_path, "venv": str(settings.GENERATION_VENV),
                    "model_name": self.model_name or self.model_path,
                    **{k: v for k, v in engine.items() if k in keep}}
        keep = ("batch_size", "dtype", "device", "num_threads")
        return {"model": self.model_path, "model_name": self.model_name or self.model_path,
                **{k: v for k, v in engine.items() if k in keep}}

    @property
    def seed(self) -> int | None:
        seed = (self.config.get("engine") or {}).get("seed")
        return None if seed in (None, "") else int(seed)


def _norm(text: str) -> str:
    return " ".join((text or "").split())


def match_imported(bench: Benchmark, responses: list) -> tuple[list, dict[str, Any]]:
    """Each imported response's problem: by id (the problem's external id, as MATH500's
    ``unique_id`` or a SkyThought result key), else by its exact problem text (whitespace
    aside). Responses to problems of the dataset that the benchmark's subset leaves out are
    skipped and counted; a response matching no problem of the dataset refuses the whole
    file (UserError naming the first few keys)."""
    dataset_problems = list(bench.dataset.problems.all().only("id", "external_id", "prompt"))
    by_id = {p.external_id: p for p in dataset_problems if p.external_id}
    by_text: dict[str, Any] = {}
    for p in dataset_problems:
        by_text.setdefault(_norm(p.prompt), p)
    in_subset = set(bench.problems().values_list("id", flat=True))
    rows, unmatched, outside, seen = [], [], 0, set()
    for r in responses:
        problem = by_id.get(r.key) or (by_text.get(_norm(r.prompt)) if r.prompt else None)
        if problem is None:
            unmatched.append(r.key)
        elif problem.pk not in in_subset:
            outside += 1
        elif (problem.pk, r.sample_index) in seen:
            raise UserError(f"problem {r.key!r} has response {r.sample_index} twice")
        else:
            seen.add((problem.pk, r.sample_index))
            rows.append((problem, r))
    if unmatched:
        keys = sorted(set(unmatched))
        shown = ", ".join(repr(k) for k in keys[:5]) + (" ..." if len(keys) > 5 else "")
        raise UserError(
            f"{len(unmatched)} response(s) match no problem of benchmark {bench.name} "
            f"(dataset {bench.dataset.name}): {shown}. Problems are matched by id (the "
            "problem's external id) or by their exact text; nothing was imported.")
    if not rows:
        raise UserError(f"none of the responses is for a problem of {bench.name}'s subset "
                        f"({outside} are for problems its subset leaves out)")
    covered = {p.pk for p, _ in rows}
    per_problem: dict[int, int] = defaultdict(int)
    for p, _ in rows:
        per_problem[p.pk] += 1
    return rows, {"responses": len(rows), "problems": len(covered),
                  "benchmark_problems": len(in_subset),
                  "missing_problems": len(in_subset - covered), "outside_subset": outside,
                  "max_per_problem": max(per_problem.values())}


# --- results ------------------------------------------------------------------------------------


class BenchmarkResultQuerySet(models.QuerySet):
    def done(self):
        return self.filter(accuracy__isnull=False, run__state=RunState.SUCCEEDED)

    def regressions(self):
        return self.done().filter(regression=True).select_related(
            "run", "benchmark", "previous__run").order_by("-finished_at")

    def live(self):
        """Results of runs that succeeded or may still: what a schedule must not repeat."""
        return self.exclude(run__state__in=[RunState.FAILED, RunState.CANCELLED])


class BenchmarkResult(models.Model):
    """One benchmark of one evaluation run: its configuration at launch, metrics at the end."""

    run = models.ForeignKey("experiments.EvaluationRun", on_delete=models.CASCADE,
                            related_name="results")
    benchmark = models.ForeignKey(Benchmark, on_delete=models.PROTECT, related_name="results")
    template = models.ForeignKey("experiments.PromptVersion", on_delete=models.PROTECT,
                                 related_name="+")
    config = models.JSONField(default=dict)
    # sha256 of (model identity, benchmark config, engine): equal means already evaluated.
    # Indexed for the schedule's "already evaluated?" lookup.
    fingerprint = models.CharField(max_length=64, db_index=True)
    # sha256 of (benchmark config, engine) without the model: results comparable across
    # checkpoints (the regression check's "previous checkpoint, same configuration").
    config_key = models.CharField(max_length=64)

    problems = models.PositiveIntegerField(default=0)
    samples = models.PositiveIntegerField(default=0)
    correct = models.PositiveIntegerField(default=0)
    n = models.PositiveIntegerField(default=0)
    accuracy = models.FloatField(null=True, blank=True)  # avg@n, 0..1
    stderr = models.FloatField(null=True, blank=True)
    pass_at_k = models.JSONField(default=dict, blank=True)  # {"1": p, "4": p}
    mean_completion_tokens = models.FloatField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    previous = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+")
    # Below the previous checkpoint by more than the combined standard error. Indexed for
    # the overview's and the feed's WHERE regression.
    regression = models.BooleanField(default=False, db_index=True)

    objects = BenchmarkResultQuerySet.as_manager()

    class Meta:
        ordering = ["run", "benchmark__name"]
        constraints = [
            models.UniqueConstraint(fields=["run", "benchmark"], name="benchmark_result_once")
        ]

    def __str__(self) -> str:
        return f"{self.benchmark} · {self.run.label}"

    def get_absolute_url(self) -> str:
        return reverse("evaluation_samples", args=[self.run_id, self.benchmark.slug])

    @classmethod
    def for_run(cls, run, benchmark: Benchmark, bconfig: dict) -> BenchmarkResult:
        engine = run.config.get("engine") or {}
        comparable = {"benchmark": bconfig, "engine": engine, "backend": run.backend}
        return cls(
            run=run, benchmark=benchmark, template_id=bconfig["template"]["id"], config=bconfig,
            fingerprint=fingerprint({"model": run.model_identity(), **comparable}),
            config_key=fingerprint(comparable),
        )

    @property
    def percent(self) -> float | None:
        return None if self.accuracy is None else 100 * self.accuracy

    @property
    def stderr_percent(self) -> float | None:
        return None if self.stderr is None else 100 * self.stderr

    @property
    def drop_percent(self) -> float | None:
        if self.previous is None or self.accuracy is None or self.previous.accuracy is None:
            return None
        return 100 * (self.previous.accuracy - self.accuracy)

    def pass_at_k_items(self) -> list[tuple[int, float]]:
        return sorted((int(k), 100 * v) for k, v in (self.pass_at_k or {}).items())

    def sample_rows(self):
        return EvalSample.objects.filter(run_id=self.run_id, benchmark_id=self.benchmark_id)

    def finish(self) -> None:
        """Compute the metrics from the stored samples, then compare with the previous
        checkpoint of the same training run under the same configuration."""
        per_problem: dict[int, list[bool]] = defaultdict(list)
        rows = self.sample_rows().order_by("problem_id", "sample_index")
        for pid, correct in rows.values_list("problem_id", "correct"):
            per_problem[pid].append(correct)
        s = metrics.score(per_problem.values())
        self.problems, self.samples, self.correct, self.n = s.problems, s.samples, s.correct, s.n
        self.accuracy, self.stderr = s.accuracy, s.stderr
        self.pass_at_k = {str(k): v for k, v in s.pass_at_k.items()}
        self.mean_completion_tokens = rows.aggregate(m=Avg("completion_tokens"))["m"]
        self.finished_at = timezone.now()
        self.previous = self.find_previous()
        self.regression = bool(self.previous) and metrics.is_regression(
            self.previous.accuracy, self.previous.stderr, self.accuracy, self.stderr)
        self.save(update_fields=[
            "problems", "samples", "correct", "n", "accuracy", "stderr", "pass_at_k",
            "mean_completion_tokens", "finished_at", "previous", "regression"])

    def find_previous(self) -> BenchmarkResult | None:
        ckpt = self.run.checkpoint
        if ckpt is None:
            return None
        return (
            BenchmarkResult.objects.filter(
                benchmark_id=self.benchmark_id, config_key=self.config_key,
                run__checkpoint__run_id=ckpt.run_id, run__checkpoint__step__lt=ckpt.step,
                accuracy__isnull=False,
            )
            .exclude(run__state__in=[RunState.FAILED, RunState.CANCELLED])
            .order_by("-run__checkpoint__step", "-finished_at")
            .first()
        )


class EvalSample(models.Model):
    run = models.ForeignKey("experiments.EvaluationRun", on_delete=models.CASCADE,
                            related_name="samples")
    benchmark = models.ForeignKey(Benchmark, on_delete=models.CASCADE, related_name="+")
    problem = models.ForeignKey("experiments.Problem", on_delete=models.CASCADE, related_name="+")
    sample_index = models.PositiveIntegerField(default=0)
    prompt_text = models.TextField(blank=True)
    response = models.TextField(blank=True)
    extracted = models.TextField(blank=True)
    correct = models.BooleanField(default=False)
    reason = models.CharField(max_length=40, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    finish_reason = models.CharField(max_length=16, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    latency_s = models.FloatField(null=True, blank=True)
    seed = models.BigIntegerField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["run", "benchmark", "problem", "sample_index"]
        constraints = [
            # The idempotence guard (bulk_create ignore_conflicts) and the index of every
            # per-result query: WHERE run_id=? AND benchmark_id=? [AND problem_id=?].
            models.UniqueConstraint(fields=["run", "benchmark", "problem", "sample_index"],
                                    name="eval_sample_once")
        ]

    def __str__(self) -> str:
        return f"run {self.run_id} {self.benchmark_id}:{self.problem_id}#{self.sample_index}"


def solved_matrix(runs: list, benchmark: Benchmark, limit: int = 500) -> dict[str, Any]:
    """Per problem, per run: correct samples / samples. ``changes`` marks problems that some
    run solves (majority of samples) and another does not."""
    ids = [r.pk for r in runs]
    cells: dict[int, dict[int, tuple[int, int]]] = defaultdict(dict)
    rows = (EvalSample.objects.filter(run_id__in=ids, benchmark=benchmark)
            .values("problem_id", "run_id")
            .annotate(c=Count("id", filter=Q(correct=True)), t=Count("id")))
    for row in rows:
        cells[row["problem_id"]][row["run_id"]] = (row["c"], row["t"])
    problems = dict(benchmark.dataset.problems.filter(pk__in=list(cells)).values_list(
        "pk", "external_id"))
    out = []
    for pid in sorted(cells)[:limit]:
        solved = [cells[pid][r][0] * 2 > cells[pid][r][1] for r in ids if r in cells[pid]]
        out.append({
            "problem_id": pid,
            "label": problems.get(pid) or str(pid),
            "cells": [cells[pid].get(r) for r in ids],
            "pairs": [(run, cells[pid].get(run.pk)) for run in runs],
            "changed": len(set(solved)) > 1,
        })
    return {"runs": runs, "rows": out}


# --- nightly schedules --------------------------------------------------------------------------

SCHEDULE_TASK = "workers.tasks.cpu.run_evaluation_schedule"


class EvaluationSchedule(models.Model):
    """Evaluate the newest checkpoint of watched training runs (and listed models) on chosen
    benchmarks, on a django-celery-beat crontab. Work already done with the same
    configuration (same fingerprint) is skipped."""

    name = models.CharField(max_length=200, unique=True)
    enabled = models.BooleanField(default=True)
    hour = models.PositiveSmallIntegerField(default=2)
    minute = models.PositiveSmallIntegerField(default=0)
    tz = models.CharField("time zone", max_length=64, default="UTC")
    benchmarks = models.ManyToManyField(Benchmark, related_name="schedules")
    training_runs = models.ManyToManyField("experiments.TrainingRun", blank=True,
                                           related_name="evaluation_schedules")
    model_paths = models.TextField(blank=True, help_text="one model folder per line")
    backend = models.CharField(max_length=16, default="transformers")
    engine = models.JSONField(default=dict, blank=True)
    overrides = models.JSONField(default=dict, blank=True)  # n, max_tokens, temperature
    periodic_task = models.OneToOneField("django_celery_beat.PeriodicTask", null=True,
                                         blank=True, on_delete=models.SET_NULL, related_name="+")
    last_run_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("evaluation_schedule_edit", args=[self.pk])

    def paths(self) -> list[str]:
        return [p.strip() for p in self.model_paths.splitlines() if p.strip()]

    def sync_periodic_task(self) -> None:
        """Create or update the beat entry; beat's DatabaseScheduler picks it up."""
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=str(self.minute), hour=str(self.hour), day_of_week="*", day_of_month="*",
            month_of_year="*", timezone=self.tz)
        values = {"crontab": crontab, "task": SCHEDULE_TASK, "args": json.dumps([self.pk]),
                  "enabled": self.enabled, "description": f"nightly evaluation: {self.name}"}
        if self.periodic_task_id:
            PeriodicTask.objects.filter(pk=self.periodic_task_id).update(**values)
            PeriodicTask.objects.get(pk=self.periodic_task_id).save()  # bumps beat's change mark
        else:
            task = PeriodicTask.objects.create(name=f"evaluation schedule {self.pk}", **values)
            self.periodic_task = task
            self.save(update_fields=["periodic_task"])

    def targets(self) -> list[dict[str, Any]]:
        """What to evaluate now: the newest checkpoint of each watched run, each model path."""
        out = []
        for tr in self.training_runs.all():
            ckpt = (TrainingCheckpoint.objects.filter(run=tr).select_related("run")
                    .order_by("-step", "-is_final", "-created_at").first())
            if ckpt is not None:
                out.append({"checkpoint": ckpt})
        for path in self.paths():
            out.append({"model_path": path, "model_name": path.rstrip("/").rsplit("/", 1)[-1]})
        return out

    def run_now(self) -> list:
        """Create and enqueue evaluations for what is not evaluated yet; returns the new runs.

        The schedule row is locked for the duration, so two deliveries of the same beat tick
        (or a tick and a click) cannot both create the same evaluation.
        """
        created = []
        with transaction.atomic():
            EvaluationSchedule.objects.select_for_update().filter(pk=self.pk).first()
            benchmarks = list(self.benchmarks.usable())
            for target in self.targets():
                probe = EvaluationRun(
                    source=Source.CHECKPOINT if "checkpoint" in target else Source.MODEL,
                    backend=self.backend, checkpoint=target.get("checkpoint"),
                    model_path=target.get("model_path") or target["checkpoint"].path,
                    config={"engine": {k: v for k, v in self.engine.items()
                                       if v not in (None, "")}},
                )
                todo = []
                for b in benchmarks:
                    fp = BenchmarkResult.for_run(probe, b, b.run_config(self.overrides))
                    if not BenchmarkResult.objects.live().filter(
                            fingerprint=fp.fingerprint).exists():
                        todo.append(b)
                if not todo:
                    continue
                created.append(EvaluationRun.launch(
                    benchmarks=todo, backend=self.backend, engine=self.engine,
                    overrides=self.overrides, schedule=self, name=f"{self.name} (scheduled)",
                    **target,
                ))
            EvaluationSchedule.objects.filter(pk=self.pk).update(last_run_at=timezone.now())
        return created


def score_series(training_run_id: int) -> dict[str, list[dict]]:
    """Benchmark scores over the training steps of one training run, per benchmark."""
    out: dict[str, list[dict]] = defaultdict(list)
    rows = (BenchmarkResult.objects.done()
            .filter(run__checkpoint__run_id=training_run_id)
            .select_related("benchmark", "run__checkpoint")
            .order_by("benchmark__name", "run__checkpoint__step"))
    for r in rows:
        out[r.benchmark.name].append({
            "step": r.run.checkpoint.step, "value": r.percent, "se": r.stderr_percent,
            "url": r.get_absolute_url(), "config": r.config_key[:8],
        })
    return dict(out)
