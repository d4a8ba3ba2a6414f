"""The run page's numbers and labels: stage cards and funnel from the same numbers, skipped
stages shown as skipped, and no reformatter named on a run that did not reformat."""

from __future__ import annotations

import pytest
from django.urls import reverse

from devtools.openai_stub import StubServer
from experiments.models import RunState
from tests.support.accounts import client_for
from tests.support.curation import SECRET, echo_problems, make_run, make_version
from workers.runner import execute


@pytest.fixture(autouse=True)
def _quiet_heartbeat(settings):
    settings.RUN_HEARTBEAT_SECONDS = 600


def _run(settings, tmp_path, *, reformat: bool):
    settings.RUNS_DIR = tmp_path / "runs"
    settings.OPENAI_API_KEY = SECRET
    version = make_version(echo_problems(4, wrong_every=3))  # problems 0 and 3 are wrong
    with StubServer() as stub:
        run = make_run(version, stub.base_url)
        if not reformat:
            run.config["reformat"] = {"enabled": False}
            run.save(update_fields=["config"])
        assert execute("curation", run.pk, hostname="test") == RunState.SUCCEEDED
    run.refresh_from_db()
    return run


@pytest.mark.django_db
def test_without_reformat_cards_and_funnel_agree_and_skipped_stages_say_so(users, settings,
                                                                           tmp_path):
    run = _run(settings, tmp_path, reformat=False)
    assert run.exported_rows == 2
    client = client_for(users["viewer"])
    data = client.get(reverse("curation_status", args=[run.pk])).json()
    cards = {c["stage"]: c for c in data["stages"]}
    # The funnel's exported bar (per group and in total) is what the export card says: before,
    # the card said "exported 2 / 2" and the funnel drew 0 (it read the re-verify stage).
    assert data["total"]["export"] == 2 == cards["export"]["done"] == cards["export"]["total"]
    for by in ("source", "domain", "difficulty"):
        assert sum(g["export"] for g in data["funnel"][by].values()) == 2
    assert data["funnel"]["source"] == {
        "even": {"generate": 2, "verify": 1, "reformat": 0, "reverify": 0, "export": 1},
        "odd": {"generate": 2, "verify": 1, "reformat": 0, "reverify": 0, "export": 1}}
    assert cards["verify"] == {"stage": "verify", "label": "verified", "skipped": False,
                               "passed": 2, "done": 4, "total": 4}
    # Stages the run did not run are skipped, not "0 / 0".
    assert cards["reformat"]["skipped"] and cards["reverify"]["skipped"]
    assert not cards["generate"]["skipped"] and not cards["export"]["skipped"]
    assert data["skipped"] == ["reformat", "reverify"]
    page = client.get(reverse("curation_detail", args=[run.pk])).content.decode()
    assert "OPENAI_MODEL" not in page and "OPENAI_BASE_URL" not in page
    assert "this run did not reformat" in page


@pytest.mark.django_db
def test_with_reformat_the_export_card_and_funnel_count_the_exported_rows(users, settings,
                                                                          tmp_path):
    run = _run(settings, tmp_path, reformat=True)
    data = client_for(users["viewer"]).get(reverse("curation_status", args=[run.pk])).json()
    cards = {c["stage"]: c for c in data["stages"]}
    assert run.exported_rows == 2 == data["total"]["export"] == cards["export"]["done"]
    assert data["total"]["reverify"] == 2 and data["skipped"] == []
    assert not any(c["skipped"] for c in cards.values())
    page = client_for(users["viewer"]).get(reverse("curation_detail", args=[run.pk]))
    assert b"stub-reformatter" in page.content and b"did not reformat" not in page.content
