"""The launch form's limits when the teacher or the reformatter is the local demo model: short
enough that the demo's default path (reformat on) finishes in minutes on two cores; real
teachers and endpoints keep Sky-T1's limits."""

from __future__ import annotations

import pytest
from django.urls import reverse

from experiments.forms import CurationRunForm
from experiments.forms.curation import (
    DEMO_MAX_TOKENS,
    DEMO_REFORMAT_MAX_TOKENS,
    SKYT1_REFORMAT_MAX_TOKENS,
)
from tests.support.accounts import client_for


@pytest.mark.django_db
def test_demo_reformatter_gets_demo_limits_and_the_form_says_why(settings, tmp_path, users):
    settings.DEMO_MODEL_DIR = tmp_path / "smollm2"
    settings.OPENAI_MODEL = str(settings.DEMO_MODEL_DIR)  # what scripts/demo.sh sets
    form = CurationRunForm()
    assert form["reformat_max_tokens"].initial == DEMO_REFORMAT_MAX_TOKENS <= 1024
    assert form["max_tokens"].initial == DEMO_MAX_TOKENS
    page = client_for(users["operator"]).get(reverse("curation_new")).content.decode()
    assert f'value="{DEMO_REFORMAT_MAX_TOKENS}"' in page
    assert f"Default {DEMO_REFORMAT_MAX_TOKENS}: the reformatter is the local demo model" in page
    assert "15 minutes" in page and "js/curation_new.js" in page


@pytest.mark.django_db
def test_real_reformatter_keeps_sky_t1_limits(settings, tmp_path):
    settings.DEMO_MODEL_DIR = tmp_path / "smollm2"
    settings.OPENAI_MODEL = "gpt-4o-mini"
    form = CurationRunForm()
    assert form["reformat_max_tokens"].initial == SKYT1_REFORMAT_MAX_TOKENS == 16384
    assert f"Default {SKYT1_REFORMAT_MAX_TOKENS}" in form.fields["reformat_max_tokens"].help_text
    # The teacher field starts at the demo model, so its limit is the demo's; the page's
    # script switches both back when another model is typed (data attributes carry both).
    attrs = form.fields["reformat_max_tokens"].widget.attrs
    assert attrs["data-demo"] == DEMO_REFORMAT_MAX_TOKENS
    assert attrs["data-default"] == SKYT1_REFORMAT_MAX_TOKENS
