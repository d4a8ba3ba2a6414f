"""Curation runs: launch and re-run, sample filters, prompt versions and prices."""

from __future__ import annotations

import copy
from collections import Counter

from django import forms
from django.conf import settings
from django.utils import timezone

from distill.curation.traces import FORMATS as TRACE_FORMATS
from distill.curation.traces import Candidate, TraceFormatError, match_traces, parse_traces
from experiments.models import Dataset, PriceTable, Problem, PromptVersion, RecipeVersion
from experiments.models.curation import LOCAL_BACKENDS

from .core import FieldsetsMixin

HTTP_CLIENTS = [("aiohttp", "aiohttp (direct)"), ("openai", "openai SDK")]

# Sky-T1's limits (QwQ-32B traces of up to 16384 tokens, reformatted by gpt-4o-mini at up to
# 16384): the defaults for real teachers and endpoints.
SKYT1_REFORMAT_MAX_TOKENS = 16384
# The demo's limits, when the teacher or the reformatter is the local demo model (SmolLM2-135M
# on the CPU, behind `transformers serve` for reformatting). A model that small rarely stops by
# itself: it decodes ~13 tokens/s on a loaded 2-core machine (measured through `transformers
# serve`), so 16384 tokens is ~20 minutes per request. Its traces are about 128 tokens; a
# rewrite into thought + solution sections fits in 384, at most ~30 s of decoding after the
# ~13 s prefill of the 1.7k-token convert prompt, so the default path finishes in minutes.
DEMO_MAX_TOKENS = 128
DEMO_REFORMAT_MAX_TOKENS = 384
DEFAULT_MAX_TOKENS = 1024


def is_demo_model(model: str) -> bool:
    """True for the local demo model (``DEMO_MODEL_DIR``), by path."""
    return bool(model) and model.rstrip("/") == str(settings.DEMO_MODEL_DIR).rstrip("/")


def demo_reformat_limits(field: forms.IntegerField) -> None:
    """The reformat max tokens field starts at the demo's limit, and says why, when the
    reformatter is the local demo model (OPENAI_MODEL, as scripts/demo.sh sets it)."""
    if is_demo_model(settings.OPENAI_MODEL):
        field.initial = DEMO_REFORMAT_MAX_TOKENS
        field.help_text = (
            f"Default {DEMO_REFORMAT_MAX_TOKENS}: the reformatter is the local demo model "
            f"(transformers serve on the CPU, ~13 tokens/s), which may not stop by itself: "
            f"at 16384 one sample took over 15 minutes; {DEMO_REFORMAT_MAX_TOKENS} fits "
            f"its ~128-token traces, so the run finishes in a few minutes. With a real "
            f"reformatter use Sky-T1's {SKYT1_REFORMAT_MAX_TOKENS}.")


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
    max_tokens = forms.IntegerField(min_value=1, max_value=131072, initial=DEFAULT_MAX_TOKENS,
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
    reformat_max_tokens = forms.IntegerField(
        min_value=1, max_value=131072, initial=SKYT1_REFORMAT_MAX_TOKENS,
        help_text=f"Default {SKYT1_REFORMAT_MAX_TOKENS}, Sky-T1's limit for gpt-4o-mini.")
    reformat_concurrency = forms.IntegerField(min_value=1, max_value=4096, initial=16)
    reformat_http_client = forms.ChoiceField(choices=HTTP_CLIENTS, initial="openai",
                                             label="Reformat HTTP client")
    requests_per_minute = forms.FloatField(required=False, min_value=1)
    tokens_per_minute = forms.FloatField(required=False, min_value=1)
    training_set = forms.CharField(max_length=200, required=False,
                                   help_text="Name of the training set the export adds a "
                                   "version to; blank: <recipe>-curated.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        defaults = PromptVersion.objects.ensure_defaults()
        self.fields["recipe_version"].queryset = RecipeVersion.objects.select_related(
            "recipe").order_by("-created_at")
        self.fields["recipe_version"].initial = self.fields["recipe_version"].queryset.first()
        self.fields["model"].initial = str(settings.DEMO_MODEL_DIR)
        self.demo_limits()
        for field, kind in (("system_prompt", "system"), ("template", "template"),
                            ("convert_prompt", "convert")):
            self.fields[field].queryset = PromptVersion.objects.of_kind(kind)
            self.fields[field].initial = PromptVersion.objects.latest_of(kind) or defaults[kind]

    def demo_limits(self) -> None:
        """Limits that let the demo's default path finish in minutes on a CPU: the teacher
        field starts at the demo model, and without an OpenAI key the demo serves the demo
        model as the reformatter too (OPENAI_MODEL, see scripts/demo.sh). Real teachers and
        endpoints keep Sky-T1's limits; the page's script switches back when the model is
        changed."""
        f = self.fields
        for name in ("model", "reformat_model"):
            f[name].widget.attrs["data-demo-model"] = str(settings.DEMO_MODEL_DIR)
        # Blank reformat model: the configured OPENAI_MODEL (a model name, not a secret).
        f["reformat_model"].widget.attrs["data-configured"] = settings.OPENAI_MODEL
        f["max_tokens"].widget.attrs.update(
            {"data-demo": DEMO_MAX_TOKENS, "data-default": DEFAULT_MAX_TOKENS})
        f["reformat_max_tokens"].widget.attrs.update(
            {"data-demo": DEMO_REFORMAT_MAX_TOKENS, "data-default": SKYT1_REFORMAT_MAX_TOKENS})
        if is_demo_model(str(f["model"].initial)):
            f["max_tokens"].initial = DEMO_MAX_TOKENS
            f["max_tokens"].help_text = (
                f"Default {DEMO_MAX_TOKENS} for the demo model (SmolLM2-135M on the CPU: its "
                f"traces are short, and longer limits only make it ramble); "
                f"{DEFAULT_MAX_TOKENS} for other models. Sky-T1 used 16384 with QwQ-32B.")
        demo_reformat_limits(f["reformat_max_tokens"])

    def config(self) -> dict:
        d = self.cleaned_data
        local = d["backend"] in LOCAL_BACKENDS
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

    def run_fields(self) -> dict:
        """The run's fields, for ``CurationRun.launch`` (the queue follows the backend)."""
        d = self.cleaned_data
        return {
            "name": d.get("name") or f"curate {d['recipe_version']}",
            "recipe_version": d["recipe_version"],
            "system_prompt": d["system_prompt"],
            "template": d["template"],
            "convert_prompt": d["convert_prompt"],
            "config": self.config(),
        }


class CurationImportForm(FieldsetsMixin, forms.Form):
    """Bring your own traces: generations made elsewhere (SkyThought's result JSON, an OpenAI
    batch output file, JSONL of prompt/response) become a curation run that starts at
    verification. The file is read and matched here, whole: a malformed line or a generation
    that matches no problem is an error naming its line, and nothing is written."""

    FIELDSETS = (
        ("Generations", ("file", "format", "model_name")),
        ("Problems", ("recipe_version", "new_dataset", "domain")),
        ("Run", ("name", "training_set", "system_prompt", "convert_prompt")),
        ("Reformatter (OpenAI-compatible)", ("reformat_enabled", "reformat_model",
                                             "reformat_base_url", "reformat_max_tokens",
                                             "reformat_concurrency")),
    )

    file = forms.FileField(help_text="SkyThought results JSON, OpenAI batch output JSONL, or "
                           "JSONL with prompt and response per line.")
    format = forms.ChoiceField(choices=[("auto", "detect from the file")] + [
        (k, v) for k, v in TRACE_FORMATS.items()], initial="auto")
    model_name = forms.CharField(
        max_length=300, required=False, label="Model that generated them",
        help_text="Recorded on every sample whose line names no model.")
    recipe_version = forms.ModelChoiceField(
        queryset=None, required=False, label="Match to a recipe version",
        help_text="Each generation is matched to the version's problems by id (a problem's "
        "external id) or by prompt.")
    new_dataset = forms.CharField(
        max_length=200, required=False, label="…or import as a new dataset",
        help_text="Name of a new dataset made of the generations' prompts (and answers, when "
        "the file carries them).")
    domain = forms.ChoiceField(choices=[("math", "math"), ("code", "code"),
                                        ("science", "science"), ("puzzle", "puzzle")],
                               initial="math", help_text="The new dataset's domain.")
    name = forms.CharField(max_length=200, required=False)
    training_set = forms.CharField(max_length=200, required=False,
                                   help_text="Blank: <recipe>-curated.")
    system_prompt = forms.ModelChoiceField(queryset=None, help_text="Written into the export.")
    convert_prompt = forms.ModelChoiceField(queryset=None, label="Reformat prompt")
    MAX_BYTES = 512 * 1024 * 1024

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        defaults = PromptVersion.objects.ensure_defaults()
        self.fields["recipe_version"].queryset = RecipeVersion.objects.select_related(
            "recipe").order_by("-created_at")
        for field, kind in (("system_prompt", "system"), ("convert_prompt", "convert")):
            self.fields[field].queryset = PromptVersion.objects.of_kind(kind)
            self.fields[field].initial = PromptVersion.objects.latest_of(kind) or defaults[kind]
        # The reformatter's fields and demo limits are the launch form's.
        for name in self.FIELDSETS[-1][1]:
            self.fields[name] = copy.deepcopy(CurationRunForm.base_fields[name])
        demo_reformat_limits(self.fields["reformat_max_tokens"])
        self.traces: list = []
        self.problem_ids: list = []
        self.fmt = ""

    def clean_new_dataset(self):
        name = (self.cleaned_data.get("new_dataset") or "").strip()
        if name and Dataset.objects.filter(name=name).exists():
            raise forms.ValidationError(f"A dataset named {name!r} exists already.")
        return name

    def clean(self):
        d = super().clean()
        version, new = d.get("recipe_version"), d.get("new_dataset")
        if bool(version) == bool(new):
            raise forms.ValidationError("Choose a recipe version to match the generations to, "
                                        "or name a new dataset (one of the two).")
        upload = d.get("file")
        if upload is None or self.errors:
            return d
        if upload.size > self.MAX_BYTES:
            self.add_error("file", f"The file is {upload.size} bytes; at most {self.MAX_BYTES}.")
            return d
        try:
            self.fmt, self.traces, self.problem_ids = read_traces(
                upload.read(), d.get("format") or "auto", version=version)
        except TraceFormatError as e:
            self.add_error("file", f"{upload.name}: {e}")
        return d

    def run_fields(self) -> dict:
        """The run's fields for ``CurationRun.launch``: it starts at verify, with the file's
        generations as its generate rows."""
        d = self.cleaned_data
        return imported_run_fields(
            self.traces, self.problem_ids, fmt=self.fmt, file_name=d["file"].name,
            version=d.get("recipe_version"),
            new_dataset={"name": d["new_dataset"], "domain": d["domain"]}
            if d.get("new_dataset") else None,
            model=d.get("model_name") or "", name=d.get("name") or "",
            system_prompt=d["system_prompt"], convert_prompt=d["convert_prompt"],
            training_set=d.get("training_set") or "",
            reformat={"enabled": d["reformat_enabled"], "model": d.get("reformat_model") or "",
                      "base_url": d.get("reformat_base_url") or "",
                      "max_tokens": d["reformat_max_tokens"],
                      "concurrency": d["reformat_concurrency"], "client": "openai"})


def read_traces(data: bytes, fmt: str = "auto", *, version=None) -> tuple[str, list, list]:
    """Parse a file of generations and match it to ``version``'s problems (or, without a
    version, to new problems): (format, traces, problem id or None per trace). Raises
    ``TraceFormatError`` naming the line of the first problem."""
    fmt, traces = parse_traces(data, fmt)
    candidates = [] if version is None else [
        Candidate(pk, ext or "", prompt) for pk, ext, prompt in Problem.objects.filter(
            pk__in=version.items.values("problem_id")).values_list(
            "pk", "external_id", "prompt")]
    return fmt, traces, match_traces(traces, candidates, allow_new=version is None)


def imported_run_fields(traces: list, problem_ids: list, *, fmt: str, file_name: str,
                        version=None, new_dataset: dict | None = None, model: str = "",
                        name: str = "", system_prompt=None, convert_prompt=None,
                        training_set: str = "", reformat: dict | None = None) -> dict:
    """``CurationRun.launch`` fields of a run over imported generations (the upload form and
    ``manage.py import_champ_traces`` both launch through this)."""
    defaults = PromptVersion.objects.ensure_defaults()
    models_seen = Counter(t.model or model for t in traces)
    top_model = models_seen.most_common(1)[0][0] if models_seen else model
    return {
        "name": name or f"import {file_name}",
        "recipe_version": version,
        "start_stage": "verify",
        "system_prompt": system_prompt or PromptVersion.objects.latest_of("system")
        or defaults["system"],
        "template": PromptVersion.objects.latest_of("template") or defaults["template"],
        "convert_prompt": convert_prompt or PromptVersion.objects.latest_of("convert")
        or defaults["convert"],
        "config": {
            "backend": "import", "model": top_model, "base_url": "", "n": 1,
            "sampling": {}, "chunk_size": 64,
            "reformat": reformat or {"enabled": False},
            "training_set": training_set,
            "imported": {"file": file_name, "format": fmt, "rows": len(traces),
                         "model": model, "models": dict(models_seen.most_common(20)),
                         "matched": sum(pid is not None for pid in problem_ids)},
        },
        "traces": traces,
        "problem_ids": problem_ids,
        "new_dataset": new_dataset and {**new_dataset, "origin": file_name},
    }


class CurationRerunForm(forms.Form):
    stage = forms.ChoiceField(choices=[("verify", "verify"), ("reformat", "reformat"),
                                       ("reverify", "re-verify"), ("export", "export")])
    convert_prompt = forms.ModelChoiceField(queryset=None, required=False,
                                            label="Reformat prompt (blank: the same)")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["convert_prompt"].queryset = PromptVersion.objects.of_kind("convert")


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
        d = self.cleaned_data
        price, _ = PriceTable.objects.update_or_create(
            model=d["model"], defaults={"input_usd_per_mtok": d["input_usd_per_mtok"],
                                        "output_usd_per_mtok": d["output_usd_per_mtok"],
                                        "note": d.get("note") or "",
                                        "updated_at": timezone.now()})
        return price
