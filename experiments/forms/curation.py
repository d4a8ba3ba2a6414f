"""Curation runs: launch and re-run, sample filters, prompt versions and prices."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils import timezone

from experiments.models import PriceTable, PromptVersion, RecipeVersion
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
        if is_demo_model(settings.OPENAI_MODEL):
            f["reformat_max_tokens"].initial = DEMO_REFORMAT_MAX_TOKENS
            f["reformat_max_tokens"].help_text = (
                f"Default {DEMO_REFORMAT_MAX_TOKENS}: the reformatter is the local demo model "
                f"(transformers serve on the CPU, ~13 tokens/s), which may not stop by itself: "
                f"at 16384 one sample took over 15 minutes; {DEMO_REFORMAT_MAX_TOKENS} fits "
                f"its ~128-token traces, so the run finishes in a few minutes. With a real "
                f"reformatter use Sky-T1's {SKYT1_REFORMAT_MAX_TOKENS}.")

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
