"""Forms shared by every page: fieldsets for long forms, the worker check, confirmations."""

from __future__ import annotations

from django import forms

from experiments.models import Queue


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


class ConfirmForm(forms.Form):
    """A POST with nothing to fill in (resume): the form still checks it is a real POST."""
