"""What a curation run produces: samples per stage, the prompts and prices they were made with,
and the training-set versions its export registers.

One ``Sample`` row per (run, problem, sample index, stage). Why rows per stage rather than one
row with per-stage columns: every stage's write is then a plain INSERT guarded by one unique
constraint (``bulk_create(ignore_conflicts=True)``), so a worker killed mid-chunk and a retried
chunk can neither lose nor duplicate anything, and "what is left to do in stage S" is one
anti-join. Every stage row sets ``correct`` to "passed this stage" (generated without error,
verified correct, reformatted well formed, re-verified correct), so the whole acceptance funnel
is one GROUP BY over (stage, correct) and the failure breakdown one over (stage, reason).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import Count, Q, Sum
from django.urls import reverse
from django.utils import timezone

from distill.curation.traces import prompt_key
from distill.datasets.hashing import content_hash
from distill.generation import prompts

from .datasets import Dataset, Problem
from .recipes import Recipe, RecipeItem, RecipeVersion
from .runs import QueuedRun


class Stage(models.TextChoices):
    GENERATE = "generate", "generate"
    VERIFY = "verify", "verify"
    REFORMAT = "reformat", "reformat"
    REVERIFY = "reverify", "re-verify"


# The verdict reason of a sample kept without verification (its recipe component has
# ``verify`` off), and the policy its verdict row's ``detail`` records.
UNVERIFIED = "unverified"
KEEP_WITHOUT_VERIFICATION = "keep_without_verification"

# Export is a step of the pipeline but stores no per-sample rows.
PIPELINE = ("generate", "verify", "reformat", "reverify", "export")
FUNNEL_LABELS = {"generate": "generated", "verify": "verified", "reformat": "reformatted",
                 "reverify": "re-verified", "export": "exported"}


def accounting_table(run, usage: dict[str, dict]) -> dict:
    """Tokens, dollars and GPU-seconds per stage, and dollars per exported sample."""
    rows = []
    for stage in PIPELINE:
        u = usage.get(stage, {})
        wall = ((run.accounting or {}).get(stage) or {}).get("wall_s", 0.0)
        gpu_s = u.get("gpu_s") or 0.0
        rows.append({"stage": stage, "prompt_tokens": u.get("prompt_tokens") or 0,
                     "completion_tokens": u.get("completion_tokens") or 0,
                     "cost_usd": u.get("cost_usd") or 0.0, "gpu_s": gpu_s, "wall_s": wall,
                     "unpriced": u.get("unpriced") or 0})
    total = sum(r["cost_usd"] for r in rows)
    exported = run.exported_rows or 0
    return {"rows": rows, "total_usd": total,
            "gpu_s": sum(r["gpu_s"] for r in rows),
            "tokens": sum(r["prompt_tokens"] + r["completion_tokens"] for r in rows),
            "per_accepted_usd": total / exported if exported else None,
            "unpriced": sum(r["unpriced"] for r in rows)}


# Teachers that run on the worker's own accelerators (gpu queue); the others are endpoints (api).
LOCAL_BACKENDS = ("transformers", "vllm")


class CurationRun(QueuedRun):
    """generate → verify → reformat → re-verify → export over a recipe version.

    ``config`` holds the backend, model, sampling, n, chunk size and the reformat endpoint
    (see docs/curation.md); never an API key, which workers read from settings.
    """

    kind = "curation"
    title = "Curation"

    recipe_version = models.ForeignKey(
        "experiments.RecipeVersion", null=True, on_delete=models.PROTECT, related_name="+"
    )
    # A re-run from a stage copies its parent's rows for the stages before ``start_stage``.
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns"
    )
    start_stage = models.CharField(max_length=16, default="generate")
    attempt = models.PositiveIntegerField(default=1)
    system_prompt = models.ForeignKey(
        "experiments.PromptVersion", null=True, on_delete=models.PROTECT, related_name="+"
    )
    template = models.ForeignKey(
        "experiments.PromptVersion", null=True, on_delete=models.PROTECT, related_name="+"
    )
    convert_prompt = models.ForeignKey(
        "experiments.PromptVersion", null=True, on_delete=models.PROTECT, related_name="+"
    )
    # {stage: {"total", "passed", "errors"}}, refreshed by the worker after every chunk.
    counts = models.JSONField(default=dict, blank=True)
    # {stage: {"wall_s": s}}: time each stage held its worker (GPU-seconds on a GPU worker).
    accounting = models.JSONField(default=dict, blank=True)
    exported_rows = models.PositiveIntegerField(null=True, blank=True)

    class Meta(QueuedRun.Meta):
        pass

    def get_absolute_url(self) -> str:
        return reverse("curation_detail", args=[self.pk])

    @classmethod
    def new(cls, *, traces=None, problem_ids=None, new_dataset=None, **fields):
        """An imported run ("bring your own traces") is launched like any other, with its
        generations: ``traces`` (``distill.curation.traces.Trace``), the problem each belongs
        to (``problem_ids``, None for a new problem) and, for problems not in the database,
        ``new_dataset`` ({"name", "domain", "origin"}). ``on_launch`` stores them as the run's
        ``generate`` rows in the launch transaction; the run starts at ``verify``."""
        run = super().new(**fields)
        run._import = (traces, problem_ids, new_dataset) if traces else None
        return run

    def on_launch(self) -> None:
        pending = getattr(self, "_import", None)
        if pending:
            self._import = None
            store_imported(self, *pending)

    def default_queue(self) -> str:
        return "gpu" if self.config.get("backend") in LOCAL_BACKENDS else "api"

    def resume(self) -> bool:
        """A new attempt: the job skips every sample earlier attempts persisted, and retries
        those that ended in an API/engine error."""
        if not super().resume():
            return False
        type(self).objects.filter(pk=self.pk).update(attempt=models.F("attempt") + 1)
        self.refresh_from_db()
        return True

    def accounting_table(self, usage: dict) -> dict:
        return accounting_table(self, usage)

    @property
    def reformats(self) -> bool:
        """False when the run exports the verified teacher traces as they are (a teacher that
        already writes the target format, or a quick local run with no API model)."""
        return (self.config.get("reformat") or {}).get("enabled", True)

    @property
    def imports(self) -> dict:
        """Where an imported run's generations came from (``config["imported"]``: file, format,
        rows); empty for a run that generated its own."""
        return (self.config or {}).get("imported") or {}

    @property
    def final_stage(self) -> str:
        """The verify stage whose passed samples export writes."""
        return "reverify" if self.reformats else "verify"

    def skipped_stages(self) -> list[str]:
        """Stages of the pipeline this run does not run at all (reformat off)."""
        return [] if self.reformats else ["reformat", "reverify"]

    def export_keys(self) -> list[tuple[int, int]]:
        """(problem, sample index) of the samples export writes, sorted: those that passed the
        final verify stage, less those a reviewer rejected, plus those reviewers accepted
        against the verifier when they have a text to export. The export stage writes these,
        and the run page's funnel and stage cards count them, so both show one number."""
        samples = Sample.objects.filter(run=self)
        text_stage = "reformat" if self.reformats else "generate"
        # review.py imports this module (Sample, Stage): its model is looked up, not imported.
        overrides = apps.get_model("experiments", "HumanVerdict").objects.export_overrides(self)
        verified = set(samples.filter(stage=self.final_stage, correct=True).values_list(
            "problem_id", "sample_index"))
        usable = set(samples.filter(stage=text_stage, correct=True).values_list(
            "problem_id", "sample_index")) if any(overrides.values()) else set()
        return sorted(k for k in verified | usable if overrides.get(k, k in verified))

    def stages_to_run(self) -> list[str]:
        stages = list(PIPELINE[PIPELINE.index(self.start_stage):])
        if not self.reformats:
            stages = [s for s in stages if s not in ("reformat", "reverify")]
        return stages

    def rerun_from(self, stage: str, *, user=None, convert_prompt=None, config=None):
        """Launch a new run that reuses this run's samples up to ``stage`` and redoes the rest
        (e.g. reformat again with a new convert prompt version)."""
        if stage not in PIPELINE or stage == "generate":
            raise ValueError(f"cannot re-run from {stage!r}")
        return type(self).launch(
            user=user,
            name=f"{self.name or self} · from {stage}",
            queue=self.queue,
            recipe_version=self.recipe_version,
            parent=self,
            start_stage=stage,
            system_prompt=self.system_prompt,
            template=self.template,
            convert_prompt=convert_prompt or self.convert_prompt,
            config=config or dict(self.config),
        )


# --- prompts ------------------------------------------------------------------------------------


class PromptVersionQuerySet(models.QuerySet):
    def of_kind(self, kind: str):
        return self.filter(kind=kind).order_by("name", "-number")

    def latest_of(self, kind: str, name: str | None = None) -> PromptVersion | None:
        qs = self.filter(kind=kind)
        if name:
            qs = qs.filter(name=name)
        return qs.order_by("-created_at", "-number").first()

    def ensure_defaults(self) -> dict[str, PromptVersion]:
        """Version 1 of the published prompts (SkyThought's convert prompt and its one-shot
        example, STILL-2's system prompt, a plain template); idempotent."""
        defaults = {
            PromptVersion.Kind.SYSTEM: ("still2", prompts.SYSTEM_PROMPT, ""),
            PromptVersion.Kind.CONVERT: (
                "skythought", prompts.CONVERT_PROMPT, prompts.CONVERT_PROMPT_EXAMPLE),
            PromptVersion.Kind.TEMPLATE: ("plain", "{prompt}", ""),
        }
        out = {}
        for kind, (name, text, example) in defaults.items():
            out[kind], _ = self.get_or_create(
                kind=kind, name=name, number=1,
                defaults={"text": text, "example": example,
                          "note": "published original, reproduced exactly"})
        return out


class PromptVersion(models.Model):
    """An editable prompt: editing creates a new version; a version is never changed once a
    run used it, so every sample's recorded version says exactly what the model was sent."""

    class Kind(models.TextChoices):
        SYSTEM = "system", "system prompt"
        CONVERT = "convert", "reformat (convert) prompt"
        TEMPLATE = "template", "generation template"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=100)
    number = models.PositiveIntegerField(default=1)
    # A template holds {prompt}; a convert prompt {example} and {content}.
    text = models.TextField()
    example = models.TextField(blank=True)  # the convert prompt's one-shot example
    note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = PromptVersionQuerySet.as_manager()

    class Meta:
        ordering = ["kind", "name", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "name", "number"], name="prompt_version_once")
        ]

    def __str__(self) -> str:
        return f"{self.kind}/{self.name} v{self.number}"

    def save(self, *args, **kwargs):
        if self.pk and self.is_used():
            raise ValueError(f"{self} was used by a run; create a new version instead")
        super().save(*args, **kwargs)

    def is_used(self) -> bool:
        return CurationRun.objects.filter(
            Q(system_prompt=self) | Q(template=self) | Q(convert_prompt=self)
        ).exists()

    def new_version(self, *, text: str, example: str = "", note: str = "", user=None):
        last = PromptVersion.objects.filter(kind=self.kind, name=self.name).order_by(
            "-number").first()
        return PromptVersion.objects.create(
            kind=self.kind, name=self.name, number=(last.number if last else 0) + 1,
            text=text, example=example, note=note, created_by=user)

    def render(self, prompt: str) -> str:
        """Fill a template's {prompt} (plain replacement: prompts are full of LaTeX braces)."""
        return self.text.replace("{prompt}", prompt) if "{prompt}" in self.text else (
            f"{self.text}\n\n{prompt}" if self.text.strip() else prompt)


# --- prices -------------------------------------------------------------------------------------


class PriceTable(models.Model):
    """Dollars per million tokens for a model name (editable in the admin and on a page)."""

    model = models.CharField(max_length=200, unique=True)
    input_usd_per_mtok = models.FloatField(default=0)
    output_usd_per_mtok = models.FloatField(default=0)
    note = models.CharField(max_length=300, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["model"]
        verbose_name = "price"

    def __str__(self) -> str:
        return f"{self.model}: ${self.input_usd_per_mtok}/M in, ${self.output_usd_per_mtok}/M out"

    @classmethod
    def prices(cls) -> dict[str, tuple[float, float]]:
        return {p.model: (p.input_usd_per_mtok, p.output_usd_per_mtok) for p in cls.objects.all()}

    @staticmethod
    def cost(prices: dict[str, tuple[float, float]], model: str, prompt_tokens: int | None,
             completion_tokens: int | None) -> float | None:
        """Cost in USD, or None when the model has no price (unknown is not free)."""
        if model not in prices:
            return None
        pin, pout = prices[model]
        return ((prompt_tokens or 0) * pin + (completion_tokens or 0) * pout) / 1e6


# --- samples ------------------------------------------------------------------------------------


class SampleQuerySet(models.QuerySet):
    def stage_counts(self) -> dict[str, dict[str, int]]:
        """{stage: {"total": rows, "passed": passed, "errors": API/engine errors}}."""
        rows = self.order_by().values("stage").annotate(
            total=Count("id"),
            passed=Count("id", filter=Q(correct=True)),
            errors=Count("id", filter=Q(error__isnull=False)),
        )
        out = {s: {"total": 0, "passed": 0, "errors": 0} for s in Stage.values}
        for r in rows:
            out[r["stage"]] = {"total": r["total"], "passed": r["passed"], "errors": r["errors"]}
        return out

    def funnel(self, by: str = "") -> dict[str, dict[str, int]]:
        """Samples that passed each stage, per group (``by``: source, domain, difficulty)."""
        group = f"problem__{by}" if by else None
        fields = ["stage", group] if group else ["stage"]
        rows = self.filter(correct=True).order_by().values(*fields).annotate(n=Count("id"))
        out: dict[str, dict[str, int]] = {}
        for r in rows:
            key = (r[group] or "unlabelled") if group else "all"
            out.setdefault(key, {s: 0 for s in Stage.values})[r["stage"]] = r["n"]
        return dict(sorted(out.items()))

    def failure_reasons(self) -> dict[str, dict[str, int]]:
        """{stage: {reason: n}} for the samples that did not pass the stage."""
        rows = self.filter(correct=False).order_by().values("stage", "reason").annotate(n=Count("id"))
        out: dict[str, dict[str, int]] = {}
        for r in rows.order_by("stage", "-n"):
            out.setdefault(r["stage"], {})[r["reason"] or "unknown"] = r["n"]
        return out

    def kept_unverified(self) -> dict[str, int]:
        """{stage: n} of the samples that passed a verify stage without being verified (their
        recipe component has verification off)."""
        rows = self.filter(correct=True, reason=UNVERIFIED).order_by().values("stage").annotate(
            n=Count("id"))
        return {r["stage"]: r["n"] for r in rows}

    def usage(self) -> dict[str, dict[str, float]]:
        """Tokens, cost and GPU-seconds per stage."""
        rows = self.order_by().values("stage").annotate(
            sum_prompt=Sum("prompt_tokens"),
            sum_completion=Sum("completion_tokens"),
            sum_cost=Sum("cost_usd"),
            sum_gpu=Sum("gpu_s"),
            unpriced=Count("id", filter=Q(cost_usd__isnull=True, completion_tokens__isnull=False)),
        )
        return {r["stage"]: {"prompt_tokens": r["sum_prompt"] or 0,
                             "completion_tokens": r["sum_completion"] or 0,
                             "cost_usd": r["sum_cost"] or 0.0, "gpu_s": r["sum_gpu"] or 0.0,
                             "unpriced": r["unpriced"]} for r in rows}

    def browse(self, *, stage: str = "", verdict: str = "", reason: str = "", source: str = "",
               domain: str = "", min_tokens: int | None = None, max_tokens: int | None = None):
        qs = self
        if stage:
            qs = qs.filter(stage=stage)
        if verdict == "pass":
            qs = qs.filter(correct=True)
        elif verdict == "fail":
            qs = qs.filter(correct=False)
        elif verdict == "error":
            qs = qs.filter(error__isnull=False)
        if reason:
            qs = qs.filter(reason=reason)
        if source:
            qs = qs.filter(problem__source=source)
        if domain:
            qs = qs.filter(problem__domain=domain)
        if min_tokens is not None:
            qs = qs.filter(completion_tokens__gte=min_tokens)
        if max_tokens is not None:
            qs = qs.filter(completion_tokens__lte=max_tokens)
        return qs


class Sample(models.Model):
    run = models.ForeignKey("experiments.CurationRun", on_delete=models.CASCADE,
                            related_name="samples")
    problem = models.ForeignKey("experiments.Problem", on_delete=models.PROTECT, related_name="+")
    sample_index = models.PositiveIntegerField(default=0)
    stage = models.CharField(max_length=16, choices=Stage.choices)
    attempt = models.PositiveIntegerField(default=1)  # the run attempt that wrote it

    # generate: the teacher's completion; reformat: the API model's rewrite; verify/reverify:
    # empty (the verdict is about the previous stage's text).
    text = models.TextField(blank=True)
    # generate: the chat messages sent (system prompt + templated problem) and, for local
    # engines, the exact string after the chat template.
    messages = models.JSONField(null=True, blank=True)
    prompt_text = models.TextField(blank=True)
    prompt_version = models.ForeignKey(
        PromptVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    finish_reason = models.CharField(max_length=20, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    latency_s = models.FloatField(null=True, blank=True)
    backend = models.CharField(max_length=40, blank=True)
    backend_version = models.CharField(max_length=200, blank=True)
    model_name = models.CharField(max_length=300, blank=True)
    model_revision = models.CharField(max_length=200, blank=True)
    sampling = models.JSONField(default=dict, blank=True)
    seed = models.BigIntegerField(null=True, blank=True)

    # Passed this stage (see the module docstring); reason is machine-readable.
    correct = models.BooleanField(null=True)
    reason = models.CharField(max_length=60, blank=True)
    extracted = models.TextField(blank=True)
    detail = models.JSONField(default=dict, blank=True)
    # {"type", "message", "status", "attempts"}: failures never go into ``text``.
    error = models.JSONField(null=True, blank=True)

    cost_usd = models.FloatField(null=True, blank=True)
    gpu_s = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = SampleQuerySet.as_manager()

    class Meta:
        ordering = ["problem_id", "sample_index", "id"]
        constraints = [
            # The idempotency key: a re-delivered or resumed chunk inserts nothing twice.
            models.UniqueConstraint(fields=["run", "problem", "sample_index", "stage"],
                                    name="sample_once_per_stage"),
        ]
        indexes = [
            # Funnel and progress: WHERE run_id=? GROUP BY stage, correct; "what is pending
            # in stage S" anti-joins on (run, stage).
            models.Index(fields=["run", "stage", "correct"], name="sample_run_stage"),
            # Failure breakdown and the browser's reason filter: WHERE run_id=? AND stage=? AND
            # reason=?.
            models.Index(fields=["run", "stage", "reason"], name="sample_run_reason"),
        ]

    def __str__(self) -> str:
        return f"run {self.run_id} · problem {self.problem_id} #{self.sample_index} · {self.stage}"


# --- training sets ------------------------------------------------------------------------------


class TrainingSet(models.Model):
    """A named training set; each export of a curation run adds a version."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TrainingSetVersion(models.Model):
    """One ShareGPT file plus its LLaMA-Factory ``dataset_info.json`` entry (in the same
    folder), what training runs consume: ``dataset_dir`` = the folder, ``dataset`` =
    ``dataset_name``."""

    training_set = models.ForeignKey(TrainingSet, on_delete=models.CASCADE,
                                     related_name="versions")
    number = models.PositiveIntegerField()
    path = models.CharField(max_length=1000)  # the ShareGPT JSON file
    dataset_name = models.CharField(max_length=200)
    dataset_info = models.JSONField(default=dict)  # {dataset_name: {...}}
    row_count = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    source_run = models.OneToOneField(
        "experiments.CurationRun", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="training_set_version",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["training_set", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["training_set", "number"], name="training_set_number")
        ]

    def __str__(self) -> str:
        return f"{self.training_set} v{self.number}"

    @classmethod
    def register(cls, *, training_set: TrainingSet, source_run, **fields) -> TrainingSetVersion:
        """The version an export of ``source_run`` registers; exporting again (a resumed run)
        updates that version instead of adding another."""
        existing = cls.objects.filter(source_run=source_run).first()
        if existing:
            for name, value in fields.items():
                setattr(existing, name, value)
            existing.save(update_fields=list(fields))
            return existing
        for _ in range(5):  # two exports into one set may race for the next number
            last = cls.objects.filter(training_set=training_set).order_by("-number").first()
            try:
                with transaction.atomic():
                    return cls.objects.create(
                        training_set=training_set, source_run=source_run,
                        number=(last.number if last else 0) + 1, **fields)
            except IntegrityError:
                existing = cls.objects.filter(source_run=source_run).first()
                if existing:
                    return existing
        raise RuntimeError(f"could not register a version of {training_set}")

    @property
    def dataset_dir(self) -> str:
        return str(Path(self.path).parent)


# --- imported generations ("bring your own traces") ----------------------------------------------


def store_imported(run: CurationRun, traces: list, problem_ids: list, new_dataset: dict | None):
    """The run's ``generate`` rows from generations made elsewhere (inside the launch
    transaction): each records its file, line, format and the source's model name. Traces
    without a problem (``problem_ids`` None) become the problems of ``new_dataset``, with a
    one-component recipe version over them that the run then uses."""
    info = run.imports
    ids = list(problem_ids)
    if new_dataset is not None:
        domain = new_dataset.get("domain") or "math"
        dataset = Dataset.objects.create(
            name=new_dataset["name"], layout="traces", ready=True, created_by=run.launched_by,
            origin=new_dataset.get("origin") or info.get("file", ""),
            description=f"Problems of the generations imported by curation run {run.pk}.")
        made: dict[str, Problem] = {}
        for i, t in enumerate(traces):
            if ids[i] is not None:
                continue
            key = f"id:{t.id}" if t.id else f"prompt:{prompt_key(t.prompt)}"
            if key not in made:
                made[key] = Problem.objects.create(
                    dataset=dataset, row=len(made), domain=domain, source=dataset.name,
                    prompt=t.prompt, answer=t.answer, external_id=t.id[:200],
                    content_hash=content_hash({"domain": domain, "prompt": t.prompt}),
                    raw={"imported_from": info.get("file", ""), "line": t.line})
            ids[i] = made[key].pk
        dataset.problem_count = len(made)
        dataset.save(update_fields=["problem_count"])
        if run.recipe_version_id is None:
            recipe = Recipe.objects.create(
                name=f"{dataset.name} (imported)"[:200], created_by=run.launched_by,
                description=f"The problems of {info.get('file', 'an imported file')}.")
            order = list(dict.fromkeys(ids))
            version = RecipeVersion.objects.create(
                recipe=recipe, number=1, problem_count=len(order), created_by=run.launched_by,
                spec={"components": [{"dataset": dataset.pk, "title": dataset.name,
                                      "imported": True}]},
                fingerprint=hashlib.sha256(json.dumps(order).encode()).hexdigest(),
                composition={"source": {dataset.name: len(order)}, "domain": {domain: len(order)}})
            RecipeItem.objects.bulk_create([RecipeItem(version=version, problem_id=pid,
                                                       component=0, position=i)
                                            for i, pid in enumerate(order)])
            run.recipe_version = version
            type(run).objects.filter(pk=run.pk).update(recipe_version=version)
    prompts = dict(Problem.objects.filter(pk__in=set(ids)).values_list("pk", "prompt"))
    per_problem: dict[int, int] = {}
    rows = []
    for t, pid in zip(traces, ids, strict=True):
        index = per_problem.get(pid, 0)
        per_problem[pid] = index + 1
        rows.append(Sample(
            run=run, problem_id=pid, sample_index=index, stage=Stage.GENERATE,
            attempt=run.attempt, text=t.response if t.ok else "",
            messages=[{"role": "user", "content": t.prompt or prompts[pid]}],
            finish_reason=t.finish_reason, prompt_tokens=t.prompt_tokens,
            completion_tokens=t.completion_tokens, backend=f"import:{info.get('format', '')}",
            model_name=(t.model or info.get("model") or "")[:300], correct=t.ok,
            reason="" if t.ok else f"error:{(t.error or {}).get('status') or 'batch'}"[:60],
            error=t.error,
            detail={"imported": {"file": info.get("file", ""), "line": t.line,
                                 "format": info.get("format", ""), "id": t.id,
                                 "model": t.model, **t.extra}}))
    for start in range(0, len(rows), 1000):
        Sample.objects.bulk_create(rows[start:start + 1000])
    n = max(per_problem.values(), default=1)
    if run.config.get("n") != n:
        run.config = {**run.config, "n": n}
        type(run).objects.filter(pk=run.pk).update(config=run.config)
