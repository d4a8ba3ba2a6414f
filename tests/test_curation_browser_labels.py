"""In Chromium: a run without reformatting shows its skipped stages as skipped, the export card
and the funnel's exported bar agree, and the launch form's max-token defaults follow the model."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from playwright.sync_api import expect, sync_playwright

from devtools.openai_stub import StubServer
from tests.support.browser import open_browser
from tests.support.curation import echo_problems, make_run, make_version
from workers.runner import execute

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_cards_funnel_and_demo_limits_in_the_browser(live_server, settings, tmp_path):
    settings.RUNS_DIR = tmp_path / "runs"
    settings.RUN_HEARTBEAT_SECONDS = 600
    settings.DEMO_MODEL_DIR = tmp_path / "demo-model"
    settings.OPENAI_MODEL = str(settings.DEMO_MODEL_DIR)
    user = User.objects.create_user("labels-op", password="pw-for-browser")
    user.groups.add(Group.objects.get(name="operator"))
    with StubServer() as stub:
        run = make_run(make_version(echo_problems(4, wrong_every=3)), stub.base_url,
                       reformat={"enabled": False})
        assert execute("curation", run.pk, hostname="test") == "succeeded"
    with sync_playwright() as pw:
        browser, page = open_browser(pw, live_server, "labels-op")
        page.goto(f"{live_server.url}/curation/{run.pk}/")
        boxes = page.locator("#stage-boxes")
        expect(boxes.locator('[data-stage="reformat"]')).to_contain_text("skipped")
        expect(boxes.locator('[data-stage="reverify"]')).to_contain_text("skipped")
        expect(boxes.locator('[data-stage="export"]')).to_contain_text("2 / 2")
        expect(page.locator("#funnel-chart .main-svg").first).to_be_visible()
        # The funnel's bars, summed over groups per stage: exported is 2, as the card says,
        # and the skipped stages are not drawn.
        bars = page.evaluate("""() => { const out = {};
            document.getElementById('funnel-chart').data.forEach(t => t.x.forEach((x, i) => {
                out[x] = (out[x] || 0) + t.y[i]; })); return out; }""")
        assert bars == {"generated": 4, "verified": 2, "exported": 2}
        expect(page.locator("text=this run did not reformat")).to_be_visible()

        # New run: the demo model's limits, Sky-T1's once another model is typed.
        page.goto(f"{live_server.url}/curation/new")
        expect(page.locator("#id_max_tokens")).to_have_value("128")
        expect(page.locator("#id_reformat_max_tokens")).to_have_value("384")
        page.fill("#id_reformat_model", "gpt-4o-mini")
        expect(page.locator("#id_reformat_max_tokens")).to_have_value("16384")
        page.fill("#id_model", "Qwen/QwQ-32B-Preview")
        expect(page.locator("#id_max_tokens")).to_have_value("1024")
        page.fill("#id_reformat_model", "")
        expect(page.locator("#id_reformat_max_tokens")).to_have_value("384")
        browser.close()
