"""Training runs: the launch form and the run comparison."""

from __future__ import annotations

import json

from django import forms

from distill.training import config as _tc
from distill.training.config import ConfigError
from experiments.models import Benchmark, Dataset, Problem, RecipeItem, TrainingRun
from experiments.models.recipes import benchmark_index
from experiments.models.training import SourceKind, _training_set_version_model, training_sources

from .core import FieldsetsMixin

# The preview renders the files before the run exists: its folder is named after the run id,
# which the launch assigns.
RUN_ID_PLACEHOLDER = "<id assigned at launch>"
# As a recipe's default: a problem whose 13-grams are at least this share benchmark text.
OVERLAP_THRESHOLD = 0.2


def _source_prompts(value: str) -> tuple[str, list[str]]:
    """(label, prompts) of a training source: an imported dataset's problems, or the problems
    of the recipe version a curation export was made from (what its rows answer)."""
    kind, _, pk = value.partition(":")
    if not pk.isdigit():
        return value, []
    if kind == SourceKind.DATASET:
        name = Dataset.objects.filter(pk=int(pk)).values_list("name", flat=True).first()
        prompts = Problem.objects.filter(dataset_id=int(pk)).values_list("prompt", flat=True)
        return (name or value), list(prompts)
    model = _training_set_version_model()
    if kind == SourceKind.TRAINING_SET and model is not None:
        version = model.objects.select_related("training_set", "source_run").filter(pk=int(pk)).first()
        if version is None or version.source_run is None:
            return value, []
        items = RecipeItem.objects.filter(version_id=version.source_run.recipe_version_id)
        return str(version), list(items.values_list("problem__prompt", flat=True))
    return value, []


def benchmark_overlap(sources: list[str]) -> list[dict]:
    """Which chosen training sets share problems with a benchmark registered in skyboard: one
    {"source", "benchmark", "count", "total"} per (set, benchmark) with an overlap, by the
    decontamination recipes use (word 13-grams against every benchmark set)."""
    if not sources:
        return []
    index = benchmark_index()
    if index is None:
        return []
    names: dict[str, list[str]] = {}
    for dataset_name, bench_name in Benchmark.objects.values_list("dataset__name", "name"):
        names.setdefault(dataset_name, []).append(bench_name)
    out = []
    for value in sources:
        for dataset_name, count, total, label in _overlap_of(value, index):
            benchmark = ", ".join(sorted(names.get(dataset_name, []))) or dataset_name
            out.append({"source": label, "benchmark": benchmark, "count": count, "total": total})
    return out


def _overlap_of(value: str, index) -> list[tuple[str, int, int, str]]:
    """(benchmark set, overlapping problems, problems, source label) for one training source."""
    label, prompts = _source_prompts(value)
    counts: dict[str, int] = {}
    for prompt in prompts if index is not None else ():
        overlap = index.check(prompt)
        if not overlap.contaminated or overlap.fraction < OVERLAP_THRESHOLD:
            continue
        for dataset_name in {item.rsplit(":", 1)[0] for item in overlap.item_ids}:
            counts[dataset_name] = counts.get(dataset_name, 0) + 1
    return [(name, count, len(prompts), label) for name, count in sorted(counts.items())]


def overlap_messages(sources: list[str]) -> list[str]:
    return [
        f"{w['source']}: {w['count']} of its {w['total']} problems overlap the evaluation "
        f"benchmark {w['benchmark']}. A model trained on them scores higher on {w['benchmark']} "
        "than it should; build the set from a recipe that excludes contaminated problems."
        for w in benchmark_overlap(sources)
    ]


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
        data = super().clean()
        if self.errors:
            return data
        run = TrainingRun(config={"settings": self.settings_data(), "sources": data["sources"]})
        try:
            files = run.render_files()
        except (ConfigError, LookupError, ValueError) as exc:
            raise forms.ValidationError(str(exc)) from None
        # The run has no id yet: name its folder (and wandb run) by a placeholder, not "None".
        self.files = {
            name: text.replace("training-None", f"training-{RUN_ID_PLACEHOLDER}")
            for name, text in files.items()
        }
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

    def run_fields(self) -> dict:
        """What ``TrainingRun.launch`` takes."""
        d = self.cleaned_data
        return {
            "name": d["name"],
            "settings_data": self.settings_data(),
            "sources": d["sources"],
            "preset": d["preset"],
        }

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
        super().__init__(*args, **kwargs)
        self.fields["runs"].choices = [
            (r.pk, f"#{r.pk} {r}") for r in TrainingRun.objects.order_by("-created_at")[:200]
        ]
