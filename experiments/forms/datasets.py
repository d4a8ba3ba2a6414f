"""Dataset import and problem filters."""

from __future__ import annotations

from pathlib import Path

from django import forms

from distill.datasets import DOMAINS, layout_names
from distill.datasets.layouts.other import MAPPABLE
from experiments.models import Dataset

# The fields a hand mapping may fill: the mapped layout's own list.
MAPPABLE_FIELDS = MAPPABLE


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

    def __init__(self, *args, allow_server_path: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        # Only admins see (and may use) the server path: the others' errors must not ask for it.
        self.allow_server_path = allow_server_path
        if not allow_server_path:
            del self.fields["server_path"]
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
        if not self.allow_server_path:
            data["server_path"] = ""
            if not has_file:
                raise forms.ValidationError(
                    "Only admins may import files from the server; upload the file."
                    if str(self.data.get("server_path", "")).strip()
                    else "Choose a file to upload."
                )
        elif has_file == has_path:
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
