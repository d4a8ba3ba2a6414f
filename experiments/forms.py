from __future__ import annotations

from pathlib import Path

from django import forms
from django.forms import inlineformset_factory

from experiments.models import Dataset, Recipe, RecipeComponent
from experiments.models.kinds import Queue
from workers.datasets import DOMAINS, layout_names


class FieldsetsMixin:
    """Named groups of fields, in order, for templates: ``{% for legend, fields in form.fieldsets %}``."""

    FIELDSETS: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def fieldsets(self) -> list[tuple[str, list]]:
        return [(legend, [self[name] for name in names]) for legend, names in self.FIELDSETS]


class DiagnosticForm(forms.Form):
    queue = forms.ChoiceField(choices=Queue.choices, initial=Queue.CPU)
    hold_seconds = forms.FloatField(
        min_value=0,
        max_value=24 * 3600,
        initial=0,
        required=False,
        help_text="Keep the worker slot busy, heart-beating, for this long.",
    )


# --- datasets and recipes ---------------------------------------------------------------------

MAPPABLE_FIELDS = (
    "prompt",
    "answer",
    "solution",
    "domain",
    "source",
    "difficulty",
    "difficulty_level",
    "external_id",
    "options",
)


def _layout_choices():
    return [("auto", "auto-detect")] + [(n, n) for n in layout_names()]


class DatasetImportForm(forms.Form):
    """Upload a file, or (admins) name a file on the server; optionally map fields by hand."""

    name = forms.SlugField(max_length=200, help_text="Letters, digits, - and _.")
    file = forms.FileField(required=False, help_text="JSONL, JSON or Parquet, gzipped or not.")
    server_path = forms.CharField(
        required=False, max_length=1000, help_text="A file on the workers' filesystem (admins)."
    )
    layout = forms.ChoiceField(choices=_layout_choices, initial="auto")
    is_benchmark = forms.BooleanField(
        required=False, label="Benchmark set (recipes are decontaminated against it)"
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    source_override = forms.CharField(required=False, max_length=200, label="Source (override)")
    domain_override = forms.ChoiceField(
        required=False,
        label="Domain (override)",
        choices=[("", "from the file")] + [(d, d) for d in DOMAINS],
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in MAPPABLE_FIELDS:
            self.fields[f"map_{name}"] = forms.CharField(
                required=False,
                max_length=200,
                label=name,
                help_text="a column name, or const:VALUE",
            )

    def mapping_fields(self):
        return [self[f"map_{name}"] for name in MAPPABLE_FIELDS]

    def clean_name(self):
        name = self.cleaned_data["name"]
        if Dataset.objects.filter(name=name, ready=True).exists():
            raise forms.ValidationError("A dataset with this name exists.")
        return name

    def clean(self):
        data = super().clean()
        has_file, has_path = bool(data.get("file")), bool(data.get("server_path"))
        if has_file == has_path:
            raise forms.ValidationError("Upload a file or give a server path (one of the two).")
        path = data.get("server_path")
        if path:
            if not Path(path).is_absolute() or not Path(path).is_file():
                self.add_error("server_path", "No such file on the server (give an absolute path).")
        mapping = {
            name: data[f"map_{name}"].strip()
            for name in MAPPABLE_FIELDS
            if data.get(f"map_{name}", "").strip()
        }
        if mapping:
            if data.get("layout") not in ("auto", "mapped"):
                self.add_error("layout", "A field mapping needs the layout 'mapped' (or auto).")
            if "prompt" not in mapping:
                self.add_error("map_prompt", "A mapping must name the prompt column.")
            data["layout"] = "mapped"
        elif data.get("layout") == "mapped":
            self.add_error("map_prompt", "The mapped layout needs a field mapping.")
        data["mapping"] = mapping or None
        return data


class ProblemFilterForm(forms.Form):
    """The problem table's filters (GET)."""

    q = forms.CharField(required=False, max_length=200, label="Search")
    domain = forms.ChoiceField(
        required=False, choices=[("", "any domain")] + [(d, d) for d in DOMAINS]
    )
    source = forms.CharField(required=False, max_length=200)
    difficulty_min = forms.FloatField(required=False, label="Difficulty ≥")
    difficulty_max = forms.FloatField(required=False, label="Difficulty ≤")
    has_tests = forms.TypedChoiceField(
        required=False,
        choices=[("", "tests: any"), ("yes", "with tests"), ("no", "without tests")],
        coerce=lambda v: {"yes": True, "no": False}.get(v),
        empty_value=None,
    )
    after = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)

    def filters(self) -> dict:
        d = self.cleaned_data
        return {
            "domain": d.get("domain") or "",
            "source": d.get("source") or "",
            "difficulty_min": d.get("difficulty_min"),
            "difficulty_max": d.get("difficulty_max"),
            "has_tests": d.get("has_tests"),
            "search": d.get("q") or "",
        }


class RecipeForm(forms.ModelForm):
    class Meta:
        model = Recipe
        fields = ["name", "description", "contamination_threshold", "exclude_contaminated"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}
        labels = {"contamination_threshold": "Contamination threshold (share of 13-grams)"}

    def clean_contamination_threshold(self):
        value = self.cleaned_data["contamination_threshold"]
        if not 0 < value <= 1:
            raise forms.ValidationError("Between 0 (exclusive) and 1.")
        return value


class RecipeComponentForm(forms.ModelForm):
    has_tests = forms.NullBooleanField(
        required=False,
        widget=forms.Select(
            choices=[("unknown", "any"), ("true", "with tests"), ("false", "without")]
        ),
    )

    class Meta:
        model = RecipeComponent
        fields = [
            "title",
            "dataset",
            "domain",
            "source",
            "difficulty_min",
            "difficulty_max",
            "has_tests",
            "search",
            "count",
            "fraction",
            "seed",
            "verify",
        ]
        # One explanation below the components table serves every row's checkbox.
        widgets = {"verify": forms.CheckboxInput(attrs={"aria-describedby": "verify-help"})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["dataset"].queryset = Dataset.objects.ready()

    def clean(self):
        data = super().clean()
        count, fraction = data.get("count"), data.get("fraction")
        if (count is None) == (fraction is None):
            raise forms.ValidationError("Give a count or a fraction (one of the two).")
        if fraction is not None and not 0 < fraction <= 1:
            self.add_error("fraction", "Between 0 (exclusive) and 1.")
        lo, hi = data.get("difficulty_min"), data.get("difficulty_max")
        if lo is not None and hi is not None and lo > hi:
            self.add_error("difficulty_max", "Below the minimum.")
        return data


def component_formset(*args, **kwargs):
    factory = inlineformset_factory(
        Recipe,
        RecipeComponent,
        form=RecipeComponentForm,
        extra=0,
        can_delete=True,
        min_num=1,
        validate_min=True,
    )
    return factory(*args, prefix="components", **kwargs)


class PresetForm(forms.Form):
    name = forms.CharField(max_length=200, initial="Sky-T1 mixture")

    def clean_name(self):
        name = self.cleaned_data["name"]
        if Recipe.objects.filter(name=name).exists():
            raise forms.ValidationError("A recipe with this name exists.")
        return name


class MaterialiseForm(forms.Form):
    exclude_contaminated = forms.BooleanField(
        required=False, help_text="Turn on the recipe's exclusion of contaminated problems first."
    )


class CompareForm(forms.Form):
    a = forms.IntegerField(min_value=1, label="Version")
    b = forms.IntegerField(min_value=1, label="against")


# --- training runs ----------------------------------------------------------------------------


class TrainingRunForm(FieldsetsMixin, forms.Form):
    """Launch a training run. Field names are LLaMA-Factory's (``TrainingSettings``)."""

    FIELDSETS = (
        ("Model and data", ("name", "model_name_or_path", "sources", "mix_strategy",
                            "interleave_probs", "stage", "finetuning_type", "lora_rank",
                            "template", "cutoff_len", "max_samples",
                            "preprocessing_num_workers")),
        ("Optimisation", ("learning_rate", "num_train_epochs", "max_steps", "lr_scheduler_type",
                          "warmup_ratio", "precision", "logging_steps", "save_steps",
                          "report_to")),
        ("Batch and hardware", ("per_device_train_batch_size", "gradient_accumulation_steps",
                                "gpus_per_node", "nodes", "deepspeed")),
    )

    from workers.training import config as _tc

    name = forms.CharField(max_length=200, required=False)
    preset = forms.CharField(max_length=40, required=False, widget=forms.HiddenInput)
    model_name_or_path = forms.CharField(
        max_length=500, label="Base model", help_text="A local folder or a hub id."
    )
    sources = forms.MultipleChoiceField(
        label="Training sets",
        choices=(),
        help_text="Curation exports and imported ShareGPT datasets; several are mixed.",
    )
    mix_strategy = forms.ChoiceField(choices=[(m, m) for m in _tc.MIX_STRATEGIES], initial="concat")
    interleave_probs = forms.CharField(
        required=False, max_length=200, help_text="Comma-separated, one per set, summing to 1."
    )
    stage = forms.ChoiceField(choices=[(s, s) for s in _tc.STAGES], initial="sft")
    finetuning_type = forms.ChoiceField(
        choices=[(f, f) for f in _tc.FINETUNING_TYPES], initial="full"
    )
    lora_rank = forms.IntegerField(min_value=1, initial=8)
    template = forms.CharField(max_length=60, initial="qwen")
    cutoff_len = forms.IntegerField(min_value=1, initial=2048)
    max_samples = forms.IntegerField(min_value=1, required=False)
    preprocessing_num_workers = forms.IntegerField(
        min_value=1, max_value=256, required=False, label="Preprocessing workers"
    )
    learning_rate = forms.FloatField(min_value=0, initial=1e-5)
    num_train_epochs = forms.FloatField(min_value=0, initial=3.0)
    max_steps = forms.IntegerField(min_value=1, required=False, help_text="Wins over epochs.")
    lr_scheduler_type = forms.ChoiceField(
        choices=[(s, s) for s in _tc.LR_SCHEDULERS], initial="cosine"
    )
    warmup_ratio = forms.FloatField(min_value=0, max_value=0.99, initial=0.0)
    per_device_train_batch_size = forms.IntegerField(
        min_value=1, initial=1, label="Per-device batch"
    )
    gradient_accumulation_steps = forms.IntegerField(
        min_value=1, initial=1, label="Gradient accumulation"
    )
    gpus_per_node = forms.IntegerField(min_value=1, max_value=64, initial=1, label="GPUs per node")
    nodes = forms.IntegerField(min_value=1, max_value=1024, initial=1)
    deepspeed = forms.ChoiceField(
        choices=[
            ("none", "none"),
            ("z2", "ZeRO-2"),
            ("z3", "ZeRO-3"),
            ("z3_offload", "ZeRO-3 + CPU offload"),
        ],
        initial="none",
        label="DeepSpeed",
    )
    deepspeed_json = forms.CharField(
        required=False,
        label="DeepSpeed JSON",
        widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "false"}),
        help_text="Edit to change the preset; keys you set here win.",
    )
    precision = forms.ChoiceField(choices=[(p, p) for p in _tc.PRECISIONS], initial="bf16")
    logging_steps = forms.IntegerField(min_value=1, initial=1)
    save_steps = forms.IntegerField(min_value=1, initial=500)
    report_to = forms.ChoiceField(choices=[(r, r) for r in _tc.REPORT_TO], initial="none")

    SETTINGS_FIELDS = (
        "model_name_or_path", "mix_strategy", "stage", "finetuning_type", "lora_rank", "template",
        "cutoff_len", "max_samples", "preprocessing_num_workers", "learning_rate", "num_train_epochs", "max_steps",
        "lr_scheduler_type", "warmup_ratio", "per_device_train_batch_size",
        "gradient_accumulation_steps", "gpus_per_node", "nodes", "deepspeed", "precision",
        "logging_steps", "save_steps", "report_to",
    )  # fmt: skip

    def __init__(self, *args, for_launch: bool = True, **kwargs):
        from experiments.models.training import training_sources

        super().__init__(*args, **kwargs)
        self.for_launch = for_launch
        self.fields["sources"].choices = training_sources()

    def clean_interleave_probs(self):
        raw = self.cleaned_data["interleave_probs"].strip()
        if not raw:
            return None
        try:
            return [float(p) for p in raw.split(",")]
        except ValueError:
            raise forms.ValidationError("Numbers separated by commas, e.g. 0.7,0.3.") from None

    def clean_deepspeed_json(self):
        import json

        raw = self.cleaned_data["deepspeed_json"].strip()
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("The DeepSpeed config must be a JSON object.")
        return value

    def clean(self):
        from experiments.models import TrainingRun
        from workers.training.config import ConfigError

        data = super().clean()
        if self.errors:
            return data
        run = TrainingRun(config={"settings": self.settings_data(), "sources": data["sources"]})
        try:
            self.files = run.render_files()
        except (ConfigError, LookupError, ValueError) as exc:
            raise forms.ValidationError(str(exc)) from None
        return data

    def settings_data(self) -> dict:
        data = self.cleaned_data
        out = {name: data[name] for name in self.SETTINGS_FIELDS if data.get(name) is not None}
        if data.get("interleave_probs"):
            out["interleave_probs"] = data["interleave_probs"]
        if data.get("deepspeed_json") and data["deepspeed"] != "none":
            out["deepspeed_overrides"] = data["deepspeed_json"]
        if data.get("name"):
            out["run_name"] = data["name"]
        return out

    @property
    def effective_batch(self) -> int:
        d = self.cleaned_data
        return (
            d["per_device_train_batch_size"]
            * d["gradient_accumulation_steps"]
            * d["gpus_per_node"]
            * d["nodes"]
        )


class TrainingCompareForm(forms.Form):
    runs = forms.TypedMultipleChoiceField(coerce=int, choices=(), required=False)
    metric = forms.ChoiceField(
        choices=[("loss", "loss"), ("lr", "learning rate"), ("grad_norm", "grad norm"),
                 ("tokens_per_s", "tokens/s")],
        initial="loss", required=False,
    )  # fmt: skip

    def __init__(self, *args, **kwargs):
        from experiments.models import TrainingRun

        super().__init__(*args, **kwargs)
        self.fields["runs"].choices = [
            (r.pk, f"#{r.pk} {r}") for r in TrainingRun.objects.order_by("-created_at")[:200]
        ]


# --- evaluation ---------------------------------------------------------------------------------


class EvaluationForm(forms.Form):
    """Launch an evaluation: what is evaluated, on which benchmarks, with which engine."""

    SOURCES = [("model", "model path"), ("checkpoint", "training checkpoint"),
               ("endpoint", "OpenAI-compatible endpoint")]
    BACKENDS = [("transformers", "transformers (CPU/GPU)"), ("vllm", "vLLM (GPU worker)")]

    name = forms.CharField(max_length=200, required=False)
    source = forms.ChoiceField(choices=SOURCES, initial="model")
    backend = forms.ChoiceField(choices=BACKENDS, initial="transformers", required=False,
                                help_text="for model paths and checkpoints")
    model_path = forms.CharField(max_length=1000, required=False,
                                 help_text="model folder on the workers, or the endpoint's model")
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
        from django.conf import settings

        from experiments.models import Benchmark, TrainingCheckpoint

        super().__init__(*args, **kwargs)
        self.fields["benchmarks"].queryset = Benchmark.objects.usable()
        self.fields["checkpoint"].queryset = TrainingCheckpoint.objects.select_related(
            "run").order_by("-created_at")
        # The demo model (make prepare-model) is what a new installation can evaluate at once.
        self.fields["model_path"].initial = str(settings.DEMO_MODEL_DIR)
        self.fields["model_name"].initial = "SmolLM2-135M-Instruct"

    def clean(self):
        data = super().clean()
        source = data.get("source")
        if source == "checkpoint" and not data.get("checkpoint"):
            self.add_error("checkpoint", "Choose a checkpoint.")
        if source == "model" and not data.get("model_path"):
            self.add_error("model_path", "Give the model folder.")
        if source == "endpoint":
            if not data.get("base_url"):
                self.add_error("base_url", "Give the endpoint's base URL.")
            if not data.get("model_path"):
                self.add_error("model_path", "Give the endpoint's model name.")
        return data

    def launch(self, user):
        from experiments.models import create_evaluation

        d = self.cleaned_data
        endpoint = d["source"] == "endpoint"
        run = create_evaluation(
            benchmarks=d["benchmarks"], source=d["source"],
            backend="openai" if endpoint else (d.get("backend") or "transformers"),
            model_path=d.get("model_path") or "", model_name=d.get("model_name") or "",
            base_url=d.get("base_url") or "" if endpoint else "",
            checkpoint=d.get("checkpoint") if d["source"] == "checkpoint" else None,
            engine={k: d.get(k) for k in ("dtype", "tensor_parallel_size", "batch_size", "seed")},
            overrides={k: d.get(k) for k in ("n", "temperature", "top_p", "max_tokens")},
            user=user, name=d.get("name") or "",
        )
        run.enqueue()
        return run


class EvaluationScheduleForm(forms.ModelForm):
    engine_batch_size = forms.IntegerField(min_value=1, required=False, label="batch size")
    engine_dtype = forms.ChoiceField(choices=[("", "default"), ("bfloat16", "bfloat16"),
                                              ("float32", "float32")], required=False,
                                     label="dtype")
    n = forms.IntegerField(min_value=1, max_value=1024, required=False)
    max_tokens = forms.IntegerField(min_value=1, max_value=131072, required=False)
    temperature = forms.FloatField(min_value=0, max_value=2, required=False)

    class Meta:
        from experiments.models import EvaluationSchedule

        model = EvaluationSchedule
        fields = ["name", "enabled", "hour", "minute", "tz", "benchmarks", "training_runs",
                  "model_paths", "backend"]
        widgets = {"model_paths": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["hour"].max_value = 23
        self.fields["backend"].widget = forms.Select(choices=EvaluationForm.BACKENDS)
        from experiments.models import Benchmark

        self.fields["benchmarks"].queryset = Benchmark.objects.usable()
        if self.instance.pk:
            engine, over = self.instance.engine or {}, self.instance.overrides or {}
            self.initial.update(engine_batch_size=engine.get("batch_size"),
                                engine_dtype=engine.get("dtype", ""), n=over.get("n"),
                                max_tokens=over.get("max_tokens"),
                                temperature=over.get("temperature"))

    def clean_hour(self):
        hour = self.cleaned_data["hour"]
        if hour > 23:
            raise forms.ValidationError("0-23")
        return hour

    def clean_minute(self):
        minute = self.cleaned_data["minute"]
        if minute > 59:
            raise forms.ValidationError("0-59")
        return minute

    def clean_tz(self):
        import zoneinfo

        tz = self.cleaned_data["tz"]
        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise forms.ValidationError("Unknown time zone.") from None
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


# --- curation -------------------------------------------------------------------------------------


HTTP_CLIENTS = [("aiohttp", "aiohttp (direct)"), ("openai", "openai SDK")]


class CurationRunForm(FieldsetsMixin, forms.Form):
    """Launch a curation run over a recipe version. API keys are never asked for here: workers
    read OPENAI_API_KEY from their settings."""

    FIELDSETS = (
        ("What", ("name", "recipe_version", "training_set")),
        ("Teacher", ("backend", "model", "base_url", "n", "temperature", "top_p", "max_tokens",
                     "seed", "batch_size", "concurrency", "http_client", "chunk_size",
                     "requests_per_minute", "tokens_per_minute")),
        ("Prompts", ("system_prompt", "template", "convert_prompt", "send_system_prompt")),
        ("Reformatter (OpenAI-compatible)", ("reformat_enabled", "reformat_model",
                                             "reformat_base_url", "reformat_max_tokens",
                                             "reformat_concurrency", "reformat_http_client")),
    )

    name = forms.CharField(max_length=200, required=False)
    recipe_version = forms.ModelChoiceField(queryset=None)
    backend = forms.ChoiceField(choices=[("transformers", "transformers (local, gpu queue)"),
                                         ("vllm", "vLLM offline (gpu queue)"),
                                         ("openai", "OpenAI-compatible endpoint (api queue)")])
    model = forms.CharField(max_length=500, help_text="A model folder on the worker, or the "
                            "endpoint's model name.")
    base_url = forms.URLField(required=False, max_length=500, assume_scheme="http", label="Endpoint URL",
                              help_text="For an OpenAI-compatible endpoint; blank: the "
                              "configured OPENAI_BASE_URL.")
    n = forms.IntegerField(min_value=1, max_value=64, initial=1, label="Samples per problem")
    temperature = forms.FloatField(min_value=0, max_value=2, initial=0.0)
    top_p = forms.FloatField(min_value=0.01, max_value=1, initial=1.0)
    max_tokens = forms.IntegerField(min_value=1, max_value=131072, initial=1024,
                                    help_text="Sky-T1 used 16384 with QwQ-32B.")
    seed = forms.IntegerField(required=False, initial=0)
    batch_size = forms.IntegerField(min_value=1, max_value=1024, initial=8,
                                    help_text="Local engines: requests per batch.")
    concurrency = forms.IntegerField(min_value=1, max_value=4096, initial=64,
                                     help_text="Endpoints: requests in flight.")
    http_client = forms.ChoiceField(
        choices=HTTP_CLIENTS, initial="aiohttp", label="HTTP client",
        help_text="Endpoints: aiohttp sends the same request with about a quarter of the "
        "openai SDK's CPU per request, for fast self-hosted servers (docs/generation.md).")
    chunk_size = forms.IntegerField(
        min_value=1, max_value=10000, initial=64,
        help_text="Problems read from the database at a time; for local engines also the "
        "requests per engine call.")
    system_prompt = forms.ModelChoiceField(queryset=None)
    template = forms.ModelChoiceField(queryset=None, label="Generation template")
    convert_prompt = forms.ModelChoiceField(queryset=None, label="Reformat prompt")
    send_system_prompt = forms.BooleanField(required=False, initial=True,
                                            label="Send the system prompt to the teacher")
    reformat_enabled = forms.BooleanField(
        required=False, initial=True, label="Reformat and re-verify",
        help_text="Off: export the verified teacher traces as they are.")
    reformat_model = forms.CharField(max_length=200, required=False,
                                     help_text="Blank: the configured OPENAI_MODEL.")
    reformat_base_url = forms.URLField(required=False, max_length=500, assume_scheme="http",
                                       help_text="Blank: the configured OPENAI_BASE_URL.")
    reformat_max_tokens = forms.IntegerField(min_value=1, max_value=131072, initial=16384)
    reformat_concurrency = forms.IntegerField(min_value=1, max_value=4096, initial=16)
    reformat_http_client = forms.ChoiceField(choices=HTTP_CLIENTS, initial="openai",
                                             label="Reformat HTTP client")
    requests_per_minute = forms.FloatField(required=False, min_value=1)
    tokens_per_minute = forms.FloatField(required=False, min_value=1)
    training_set = forms.CharField(max_length=200, required=False,
                                   help_text="Name of the training set the export adds a "
                                   "version to; blank: <recipe>-curated.")

    def __init__(self, *args, **kwargs):
        from experiments.models import PromptVersion, RecipeVersion

        super().__init__(*args, **kwargs)
        defaults = PromptVersion.objects.ensure_defaults()
        self.fields["recipe_version"].queryset = RecipeVersion.objects.select_related(
            "recipe").order_by("-created_at")
        self.fields["recipe_version"].initial = self.fields["recipe_version"].queryset.first()
        from django.conf import settings

        self.fields["model"].initial = str(settings.DEMO_MODEL_DIR)
        for field, kind in (("system_prompt", "system"), ("template", "template"),
                            ("convert_prompt", "convert")):
            self.fields[field].queryset = PromptVersion.objects.of_kind(kind)
            self.fields[field].initial = PromptVersion.objects.latest_of(kind) or defaults[kind]

    def config(self) -> dict:
        d = self.cleaned_data
        local = d["backend"] in ("transformers", "vllm")
        rate = {k: d[k] for k in ("requests_per_minute", "tokens_per_minute") if d.get(k)}
        return {
            "backend": d["backend"],
            "model": d["model"],
            "base_url": "" if local else d.get("base_url") or "",
            "n": d["n"],
            "sampling": {"temperature": d["temperature"], "top_p": d["top_p"],
                         "max_tokens": d["max_tokens"], "seed": d.get("seed")},
            "backend_options": {"batch_size": d["batch_size"]} if local else
            {"concurrency": d["concurrency"], "client": d["http_client"], **rate},
            "chunk_size": d["chunk_size"],
            "send_system_prompt": d["send_system_prompt"],
            "reformat": {"enabled": d["reformat_enabled"],
                         "model": d.get("reformat_model") or "",
                         "base_url": d.get("reformat_base_url") or "",
                         "max_tokens": d["reformat_max_tokens"],
                         "concurrency": d["reformat_concurrency"],
                         "client": d["reformat_http_client"], **rate},
            "training_set": d.get("training_set") or "",
        }

    def save(self, user):
        from experiments.models import CurationRun

        d = self.cleaned_data
        return CurationRun.objects.create(
            name=d.get("name") or f"curate {d['recipe_version']}",
            queue="gpu" if d["backend"] in ("transformers", "vllm") else "api",
            launched_by=user,
            recipe_version=d["recipe_version"],
            system_prompt=d["system_prompt"],
            template=d["template"],
            convert_prompt=d["convert_prompt"],
            config=self.config(),
        )


class CurationRerunForm(forms.Form):
    stage = forms.ChoiceField(choices=[("verify", "verify"), ("reformat", "reformat"),
                                       ("reverify", "re-verify"), ("export", "export")])
    convert_prompt = forms.ModelChoiceField(queryset=None, required=False,
                                            label="Reformat prompt (blank: the same)")

    def __init__(self, *args, **kwargs):
        from experiments.models import PromptVersion

        super().__init__(*args, **kwargs)
        self.fields["convert_prompt"].queryset = PromptVersion.objects.of_kind("convert")


class ConfirmForm(forms.Form):
    """A POST with nothing to fill in (resume): the form still checks it is a real POST."""


class SampleFilterForm(forms.Form):
    stage = forms.ChoiceField(required=False, choices=[("", "any stage"), ("generate", "generate"),
                                                       ("verify", "verify"),
                                                       ("reformat", "reformat"),
                                                       ("reverify", "re-verify")])
    verdict = forms.ChoiceField(required=False, choices=[("", "any verdict"), ("pass", "passed"),
                                                         ("fail", "failed"),
                                                         ("error", "API error")])
    reason = forms.CharField(required=False, max_length=60)
    source = forms.CharField(required=False, max_length=200)
    domain = forms.CharField(required=False, max_length=16)
    min_tokens = forms.IntegerField(required=False, min_value=0)
    max_tokens = forms.IntegerField(required=False, min_value=0)
    after = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)


class PromptVersionForm(forms.Form):
    """Editing a prompt creates its next version; the old one stays as it was."""

    base = forms.ModelChoiceField(queryset=None, label="Prompt")
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 10}))
    example = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 6}))
    note = forms.CharField(required=False, max_length=300)

    def __init__(self, *args, **kwargs):
        from experiments.models import PromptVersion

        super().__init__(*args, **kwargs)
        self.fields["base"].queryset = PromptVersion.objects.all()

    def clean(self):
        d = super().clean()
        base, text = d.get("base"), d.get("text") or ""
        if base is not None:
            needed = {"convert": ("{example}", "{content}"), "template": ("{prompt}",)}.get(
                base.kind, ())
            missing = [p for p in needed if p not in text]
            if missing:
                raise forms.ValidationError(f"The text needs the placeholder(s) {missing}.")
        return d

    def save(self, user):
        d = self.cleaned_data
        return d["base"].new_version(text=d["text"], example=d.get("example") or "",
                                     note=d.get("note") or "", user=user)


class PriceForm(forms.Form):
    model = forms.CharField(max_length=200)
    input_usd_per_mtok = forms.FloatField(min_value=0, label="$ / 1M input tokens")
    output_usd_per_mtok = forms.FloatField(min_value=0, label="$ / 1M output tokens")
    note = forms.CharField(required=False, max_length=300)

    def save(self):
        from django.utils import timezone

        from experiments.models import PriceTable

        d = self.cleaned_data
        price, _ = PriceTable.objects.update_or_create(
            model=d["model"], defaults={"input_usd_per_mtok": d["input_usd_per_mtok"],
                                        "output_usd_per_mtok": d["output_usd_per_mtok"],
                                        "note": d.get("note") or "",
                                        "updated_at": timezone.now()})
        return price


# --- review -------------------------------------------------------------------------------------


class ReviewQueueForm(forms.Form):
    """A queue from a filter over one curation run's samples (optionally a random draw)."""

    run = forms.ModelChoiceField(queryset=None)
    name = forms.CharField(required=False, max_length=200)
    stage = SampleFilterForm.base_fields["stage"]
    verdict = SampleFilterForm.base_fields["verdict"]
    reason = forms.CharField(required=False, max_length=60)
    source = forms.CharField(required=False, max_length=200)
    sample_n = forms.IntegerField(required=False, min_value=1, max_value=100_000,
                                  label="Random sample of N")
    seed = forms.IntegerField(required=False, min_value=0, max_value=2**31 - 1,
                              help_text="Blank: a fresh one (it is recorded either way).")

    def __init__(self, *args, **kwargs):
        from experiments.models import CurationRun

        super().__init__(*args, **kwargs)
        self.fields["run"].queryset = CurationRun.objects.order_by("-created_at")

    def save(self, user):
        from experiments.models import ReviewQueue

        d = self.cleaned_data
        return ReviewQueue.build(
            d["run"], user=user, name=d.get("name") or "", stage=d.get("stage") or "",
            verdict=d.get("verdict") or "", reason=d.get("reason") or "",
            source=d.get("source") or "", sample_n=d.get("sample_n"), seed=d.get("seed"))


class AssignForm(forms.Form):
    reviewers = forms.ModelMultipleChoiceField(queryset=None,
                                               widget=forms.CheckboxSelectMultiple)
    overlap = forms.IntegerField(min_value=1, max_value=10, initial=1,
                                 help_text="How many reviewers see each sample.")

    def __init__(self, *args, **kwargs):
        from django.contrib.auth import get_user_model
        from django.db.models import Q

        from experiments.roles import GROUP_NAMES, Role

        super().__init__(*args, **kwargs)
        groups = [n for r, n in GROUP_NAMES.items() if r >= Role.REVIEWER]
        self.fields["reviewers"].queryset = get_user_model().objects.filter(
            Q(groups__name__in=groups) | Q(is_superuser=True), is_active=True).distinct(
        ).order_by("username")

    def clean(self):
        d = super().clean()
        if d.get("reviewers") and d.get("overlap") and d["overlap"] > len(d["reviewers"]):
            raise forms.ValidationError("Overlap cannot exceed the number of reviewers.")
        return d


class VerdictForm(forms.Form):
    verdict = forms.ChoiceField(choices=[])
    note = forms.CharField(required=False, max_length=4000,
                           widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, **kwargs):
        from experiments.models import HumanVerdict

        super().__init__(*args, **kwargs)
        self.fields["verdict"].choices = HumanVerdict.Verdict.choices


class CommentForm(forms.Form):
    body = forms.CharField(max_length=10_000, widget=forms.Textarea(attrs={"rows": 3}),
                           help_text="@name mentions a teammate.")


class TagForm(forms.Form):
    name = forms.RegexField(regex=r"^[a-z0-9][a-z0-9_.-]{0,39}$", max_length=40,
                            error_messages={"invalid": "Lowercase letters, digits, - _ ."})
    remove = forms.BooleanField(required=False)
