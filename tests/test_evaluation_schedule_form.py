"""Issue 15, item 7: schedule errors say which field is wrong and what it expects, instead of
bare bullets such as "0-23"."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.support.accounts import client_for
from tests.support.evaluation import make_benchmark

pytestmark = pytest.mark.django_db


def test_schedule_errors_name_the_field_and_what_is_expected(users):
    bench = make_benchmark()
    client = client_for(users["operator"])
    form = {"name": "nightly", "enabled": "on", "hour": "25", "minute": "75",
            "tz": "Mars/Olympus", "benchmarks": [bench.pk], "backend": "transformers"}
    resp = client.post(reverse("evaluation_schedule_new"), form)
    assert resp.status_code == 400
    page = resp.content.decode()
    assert "Schedule not saved." in page
    assert "Hour: expected a whole number 0-23 (24-hour clock" in page and "got 25" in page
    assert "Minute: expected a whole number 0-59; got 75." in page
    assert "Time zone: Unknown time zone &#x27;Mars/Olympus&#x27;; expected an IANA name" in page
    assert "<li>0-23</li>" not in page and "<li>0-59</li>" not in page

    blank = client.post(reverse("evaluation_schedule_new"),
                        {**form, "hour": "-1", "minute": "", "tz": "UTC", "benchmarks": []})
    page = blank.content.decode()
    assert "Hour: expected a whole number 0-23" in page and "Minute: expected" in page
    assert "Benchmarks: choose at least one benchmark to evaluate." in page
    assert "<li>This field is required.</li>" not in page
