"""In a real Chromium against a live server: the launch form's presets, effective batch and
file preview; the run page's plotly loss curve, redrawn live as metric points arrive."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth.models import Group, User
from playwright.sync_api import expect, sync_playwright

from experiments.models import RunState, TrainingRun
from tests.support.browser import open_browser
from tests.support.training import make_sharegpt_dataset, points

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
]


def test_launch_form_and_live_loss_curve(live_server):
    user = User.objects.create_user("browser-op", password="pw-for-browser")
    user.groups.add(Group.objects.get(name="operator"))
    dataset = make_sharegpt_dataset()
    run = TrainingRun.objects.create(
        name="live", state=RunState.RUNNING, config={"settings": {"gpus_per_node": 1}}
    )
    run.add_metrics(points([1, 2, 3]))
    with sync_playwright() as pw:
        browser, page = open_browser(pw, live_server, "browser-op")

        page.goto(f"{live_server.url}/runs/training/new")
        page.select_option("#id_sources", f"dataset:{dataset.pk}")
        page.click("a[data-preset=sky_t1]")
        expect(page.locator("#effective-batch")).to_have_text("96")
        expect(page.locator("#preview-config\\.yaml")).to_contain_text(
            "gradient_accumulation_steps: 12"
        )
        expect(page.locator("#preview-deepspeed\\.json")).to_contain_text('"offload_param"')
        page.fill("#id_gradient_accumulation_steps", "4")  # as you type
        expect(page.locator("#effective-batch")).to_have_text("32")

        page.goto(f"{live_server.url}/runs/training/{run.pk}/")
        chart = page.locator("#loss-chart")
        expect(chart.locator(".main-svg").first).to_be_visible()
        expect(chart).to_have_attribute("data-points", "3")
        # The worker reports more steps (from another thread: Playwright's loop runs in this one).
        writer = threading.Thread(target=run.add_metrics, args=(points([4, 5, 6, 7]),))
        writer.start()
        writer.join()
        expect(chart).to_have_attribute("data-points", "7", timeout=15_000)
        n = page.evaluate("document.getElementById('loss-chart').data[0].x.length")
        assert n == 7
        browser.close()
