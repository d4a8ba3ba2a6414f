"""The review item's "raw vs reformatted" link is offered only where there is a reformatted
text to compare: on a run without reformatting every item linked to a 404."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from experiments.models import ReviewQueue, Sample
from tests.support.accounts import client_for
from tests.support.review import make_reviewed_run


def _item_page(client, run) -> str:
    queue = ReviewQueue.build(run, user=None, stage="generate")
    return client.get(reverse("review_item", args=[queue.pk, 0])).content.decode()


def _links(page: str) -> list[str]:
    return re.findall(r'href="([^"]+)"', page)


@pytest.mark.django_db
def test_no_diff_link_on_a_run_that_did_not_reformat(users):
    run, gens = make_reviewed_run([(True, True)], name="noreformat")
    Sample.objects.filter(run=run, stage__in=["reformat", "reverify"]).delete()
    run.config["reformat"] = {"enabled": False}
    run.save(update_fields=["config"])
    client = client_for(users["reviewer"])
    page = _item_page(client, run)
    diff = reverse("review_diff", args=[gens[0].pk])
    assert diff not in page and "raw vs reformatted" not in page
    assert "this run did not reformat" in page
    # Every link on the item page that points into the app answers.
    for href in _links(page):
        if href.startswith("/") and not href.startswith("/static/"):
            assert client.get(href).status_code in (200, 302), href
    resp = client.get(diff)
    assert resp.status_code == 404


@pytest.mark.django_db
def test_the_diff_link_is_offered_and_works_when_the_sample_was_reformatted(users):
    run, gens = make_reviewed_run([(True, True)], name="reformatted")
    client = client_for(users["reviewer"])
    page = _item_page(client, run)
    diff = reverse("review_diff", args=[gens[0].pk])
    assert diff in page
    assert client.get(diff).status_code == 200
