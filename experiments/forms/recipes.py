"""Recipes: components, presets, materialising and comparing versions."""

from __future__ import annotations

from django import forms
from django.forms import inlineformset_factory

from experiments.models import Dataset, Recipe, RecipeComponent


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
