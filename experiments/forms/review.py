"""Review queues: building, assigning, verdicts, comments and tags."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q

from experiments.models import CurationRun, HumanVerdict, ReviewQueue
from experiments.roles import GROUP_NAMES, Role

from .curation import SampleFilterForm


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
        super().__init__(*args, **kwargs)
        self.fields["run"].queryset = CurationRun.objects.order_by("-created_at")

    def save(self, user):
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
        super().__init__(*args, **kwargs)
        self.fields["verdict"].choices = HumanVerdict.Verdict.choices


class CommentForm(forms.Form):
    body = forms.CharField(max_length=10_000, widget=forms.Textarea(attrs={"rows": 3}),
                           help_text="@name mentions a teammate.")


class TagForm(forms.Form):
    name = forms.RegexField(regex=r"^[a-z0-9][a-z0-9_.-]{0,39}$", max_length=40,
                            error_messages={"invalid": "Lowercase letters, digits, - _ ."})
    remove = forms.BooleanField(required=False)
