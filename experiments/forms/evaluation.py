"""Evaluation runs and nightly schedules."""

from __future__ import annotations

import hashlib
import zoneinfo

from django import forms
from django.conf import settings

from distill.evaluation.imports import TraceFileError
from distill.evaluation.imports import parse as parse_outputs
from experiments.models import Benchmark, EvaluationSchedule, TrainingCheckpoint

DEMO_MODEL_NAME = "SmolLM2-135M-Instruct"


class EvaluationForm(forms.Form):
    """Launch an evaluation: what is evaluated, on which benchmarks, with which engine."""

    SOURCES = [("model", "model path"), ("checkpoint", "training checkpoint"),
               ("endpoint", "OpenAI-compatible endpoint")]
    BACKENDS = [("transformers", "transformers (CPU/GPU)"), ("vllm", "vLLM (GPU worker)")]

    name = forms.CharField(max_length=200, required=False)
    source = forms.ChoiceField(choices=SOURCES, initial="model")
    backend = forms.ChoiceField(choices=BACKENDS, initial="transformers", required=False,
                                help_text="for model paths and checkpoints")
    model_path = forms.CharField(
        max_length=1000, required=False,
        help_text="model folder on the workers, or the endpoint's model (a checkpoint "
                  "evaluation always evaluates the checkpoint's own folder)")
    model_name = forms.CharField(max_length=300, required=False, help_text="label on charts")
    checkpoint = forms.ModelChoiceField(queryset=None, required=False)
    base_url = forms.URLField(max_length=500, required=False, assume_scheme="http")
    benchmarks = forms.ModelMultipleChoiceField(queryset=None)
    n = forms.IntegerField(min_value=1, max_value=1024, required=False,
                           help_text="samples per problem (blank: benchmark default)")
    temperature = forms.FloatField(min_value=0, max_value=2, required=False)
    top_p = forms.FloatField(min_value=0.01, max_value=1, required=False)
    max_tokens = forms.IntegerField(min_value=1, max_value=131072, required=False)
    dtype = forms.ChoiceField(choices=[("", "default"), ("bfloat16", "bfloat16"),
                                       ("float16", "float16"), ("float32", "float32")],
                              required=False)
    tensor_parallel_size = forms.IntegerField(min_value=1, max_value=64, required=False)
    batch_size = forms.IntegerField(min_value=1, max_value=4096, required=False)
    seed = forms.IntegerField(min_value=0, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["benchmarks"].queryset = Benchmark.objects.usable()
        self.fields["checkpoint"].queryset = TrainingCheckpoint.objects.select_related(
            "run").order_by("-created_at")
        # The demo model (make prepare-model) is what a new installation can evaluate at once.
        self.fields["model_path"].initial = str(settings.DEMO_MODEL_DIR)
        self.fields["model_name"].initial = DEMO_MODEL_NAME

    @classmethod
    def from_query(cls, query) -> EvaluationForm:
        """The unbound form pre-filled from a link: ``?source=checkpoint&checkpoint=<id>``
        (the training run page's "Evaluate this checkpoint"), ``?benchmarks=<id>``; a
        checkpoint source leaves the demo model out of the model path."""
        initial: dict = {}
        if query.get("source") in dict(cls.SOURCES):
            initial["source"] = query["source"]
        ckpt = query.get("checkpoint", "")
        if ckpt.isdigit():
            initial["checkpoint"] = int(ckpt)
            initial.setdefault("source", "checkpoint")
        benchmarks = [int(b) for b in query.getlist("benchmarks") if b.isdigit()]
        if benchmarks:
            initial["benchmarks"] = benchmarks
        if initial.get("source") in ("checkpoint", "endpoint"):
            initial.update(model_path="", model_name="")
        return cls(initial=initial)

    def clean(self):
        data = super().clean()
        source = data.get("source")
        if source == "checkpoint" and not data.get("checkpoint"):
            self.add_error("checkpoint", "Choose a checkpoint.")
        if source == "checkpoint":
            # The checkpoint decides the model: the pre-filled demo model (or any typed path)
            # is not evaluated in its place, and its name does not label the checkpoint.
            data["model_path"] = ""
            if data.get("model_name") == DEMO_MODEL_NAME:
                data["model_name"] = ""
        if source == "model" and not data.get("model_path"):
            self.add_error("model_path", "Give the model folder.")
        if source == "endpoint":
            if not data.get("base_url"):
                self.add_error("base_url", "Give the endpoint's base URL.")
            if not data.get("model_path"):
                self.add_error("model_path", "Give the endpoint's model name.")
        return data

    def run_fields(self) -> dict:
        """What ``EvaluationRun.launch`` takes (the queue follows the backend)."""
        d = self.cleaned_data
        endpoint = d["source"] == "endpoint"
        return {
            "benchmarks": d["benchmarks"], "source": d["source"],
            "backend": "openai" if endpoint else (d.get("backend") or "transformers"),
            "model_path": d.get("model_path") or "", "model_name": d.get("model_name") or "",
            "base_url": d.get("base_url") or "" if endpoint else "",
            "checkpoint": d.get("checkpoint") if d["source"] == "checkpoint" else None,
            "engine": {k: d.get(k) for k in ("dtype", "tensor_parallel_size", "batch_size",
                                             "seed")},
            "overrides": {k: d.get(k) for k in ("n", "temperature", "top_p", "max_tokens")},
            "name": d.get("name") or "",
        }


class EvaluationImportForm(forms.Form):
    """Bring your own traces: evaluation outputs generated elsewhere (SkyThought's result JSON,
    or JSONL of problem id / prompt / response), scored by skyboard against a benchmark."""

    MAX_BYTES = 64 * 1024 * 1024
    FORMATS = [("auto", "detect"), ("skythought", "SkyThought result JSON"),
               ("jsonl", "JSONL: problem_id, prompt, response")]

    file = forms.FileField(help_text="SkyThought's results JSON, or JSONL with one response "
                                     "per line (problem_id, prompt, response)")
    format = forms.ChoiceField(choices=FORMATS, initial="auto")
    benchmark = forms.ModelChoiceField(
        queryset=None, help_text="problems are matched by id (the problem's external id) or by "
                                 "their exact text")
    model_name = forms.CharField(max_length=300, help_text="label on charts and in Compare")
    name = forms.CharField(max_length=200, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["benchmark"].queryset = Benchmark.objects.usable()

    def clean(self):
        data = super().clean()
        upload = data.get("file")
        if upload is None:
            return data
        if upload.size > self.MAX_BYTES:
            self.add_error("file", f"File: {upload.size:,} bytes; at most "
                                   f"{self.MAX_BYTES:,} are imported at once.")
            return data
        raw = upload.read()
        try:
            fmt, responses = parse_outputs(raw, data.get("format") or "auto")
        except TraceFileError as exc:
            self.add_error("file", f"{upload.name}: {exc}. Nothing was imported.")
            return data
        data["imported"] = {"responses": responses, "format": fmt, "file": upload.name,
                            "sha256": hashlib.sha256(raw).hexdigest(), "bytes": len(raw)}
        return data

    def run_fields(self) -> dict:
        """What ``EvaluationRun.launch`` takes: one benchmark and the parsed responses."""
        d = self.cleaned_data
        return {"benchmarks": [d["benchmark"]], "imported": d["imported"],
                "model_name": d["model_name"], "name": d.get("name") or ""}


class EvaluationScheduleForm(forms.ModelForm):
    engine_batch_size = forms.IntegerField(min_value=1, required=False, label="batch size")
    engine_dtype = forms.ChoiceField(choices=[("", "default"), ("bfloat16", "bfloat16"),
                                              ("float32", "float32")], required=False,
                                     label="dtype")
    n = forms.IntegerField(min_value=1, max_value=1024, required=False)
    max_tokens = forms.IntegerField(min_value=1, max_value=131072, required=False)
    temperature = forms.FloatField(min_value=0, max_value=2, required=False)

    class Meta:
        model = EvaluationSchedule
        fields = ["name", "enabled", "hour", "minute", "tz", "benchmarks", "training_runs",
                  "model_paths", "backend"]
        widgets = {"model_paths": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            label = field.label or name.replace("_", " ").capitalize()
            field.error_messages["required"] = f"{label}: this field is required."
        self.fields["benchmarks"].error_messages["required"] = (
            "Benchmarks: choose at least one benchmark to evaluate.")
        for name, text in (("hour", self.HOUR_ERROR), ("minute", self.MINUTE_ERROR)):
            # Field-level checks (blank, not a number, negative) say the same as clean_<name>.
            self.fields[name].error_messages.update(
                required=f"{text}.", invalid=f"{text}.", min_value=f"{text}.")
            self.fields[name].widget.attrs.update(min=0, max=23 if name == "hour" else 59)
        self.fields["backend"].widget = forms.Select(choices=EvaluationForm.BACKENDS)
        self.fields["benchmarks"].queryset = Benchmark.objects.usable()
        if self.instance.pk:
            engine, over = self.instance.engine or {}, self.instance.overrides or {}
            self.initial.update(engine_batch_size=engine.get("batch_size"),
                                engine_dtype=engine.get("dtype", ""), n=over.get("n"),
                                max_tokens=over.get("max_tokens"),
                                temperature=over.get("temperature"))

    # Every error names its field and what it expects: the form shows them as bullets.
    HOUR_ERROR = "Hour: expected a whole number 0-23 (24-hour clock, in the schedule's time zone)"
    MINUTE_ERROR = "Minute: expected a whole number 0-59"

    def clean_hour(self):
        hour = self.cleaned_data["hour"]
        if hour is None or not 0 <= hour <= 23:
            raise forms.ValidationError(f"{self.HOUR_ERROR}; got {hour}.")
        return hour

    def clean_minute(self):
        minute = self.cleaned_data["minute"]
        if minute is None or not 0 <= minute <= 59:
            raise forms.ValidationError(f"{self.MINUTE_ERROR}; got {minute}.")
        return minute

    def clean_tz(self):
        tz = self.cleaned_data["tz"]
        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise forms.ValidationError(
                f"Time zone: Unknown time zone {tz!r}; expected an IANA name such as UTC, "
                "Europe/Paris or America/New_York.") from None
        return tz

    def save(self, commit: bool = True):
        d = self.cleaned_data
        schedule = super().save(commit=False)
        schedule.engine = {k: v for k, v in {"batch_size": d.get("engine_batch_size"),
                                             "dtype": d.get("engine_dtype")}.items() if v}
        schedule.overrides = {k: d[k] for k in ("n", "max_tokens", "temperature")
                              if d.get(k) is not None}
        schedule.save()
        self.save_m2m()
        schedule.sync_periodic_task()
        return schedule
