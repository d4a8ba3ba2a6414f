"""In a real Chromium against a live server (issue 15, item 4): the comparison chart's legend
does not overlap the benchmark names under its x axis, and an evaluation without samples says
there is nothing to draw instead of plotly's bare -1…6 axes."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from playwright.sync_api import expect, sync_playwright

from experiments.models import EvaluationRun
from tests.support.browser import open_browser
from tests.support.evaluation import make_benchmark, make_checkpoint, make_scored_run

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
]

T, F = True, False


def overlaps(a: dict, b: dict) -> bool:
    return not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])


def test_compare_legend_clear_of_axis_labels_and_empty_chart_in_words(live_server,
                                                                      published_results):
    user = User.objects.create_user("browser-viewer", password="pw-for-browser")
    user.groups.add(Group.objects.get(name="viewer"))
    bench = make_benchmark(problems=3)
    run1, _ = make_scored_run(bench, [[T], [F], [T]])
    run2, _ = make_scored_run(bench, [[T], [T], [F]])
    empty = EvaluationRun.create_queued(benchmarks=[bench], model_path="/models/none")
    with sync_playwright() as pw:
        browser, page = open_browser(pw, live_server, "browser-viewer")
        page.goto(f"{live_server.url}/evaluation/compare?runs={run1.pk},{run2.pk}")
        chart = page.locator("#eval-chart")
        expect(chart.locator(".main-svg").first).to_be_visible()
        legend = chart.locator(".legend").bounding_box()
        ticks = chart.locator(".xtick text")
        assert ticks.count() >= 6  # MATH500 and the published-only columns
        for i in range(ticks.count()):
            box = ticks.nth(i).bounding_box()
            assert not overlaps(legend, box), (ticks.nth(i).text_content(), legend, box)

        page.goto(f"{live_server.url}/evaluation/{empty.pk}/")
        expect(page.locator(".chart-empty")).to_contain_text("nothing to draw")
        assert page.locator(".main-svg").count() == 0
        browser.close()


def test_the_form_opened_on_a_checkpoint_hides_the_model_path(live_server):
    user = User.objects.create_user("browser-op", password="pw-for-browser")
    user.groups.add(Group.objects.get(name="operator"))
    make_benchmark(problems=1)
    ckpt = make_checkpoint(step=6)
    with sync_playwright() as pw:
        browser, page = open_browser(pw, live_server, "browser-op")
        page.goto(f"{live_server.url}/evaluation/new?source=checkpoint&checkpoint={ckpt.pk}")
        expect(page.locator("#id_checkpoint")).to_have_value(str(ckpt.pk))
        expect(page.locator("#id_model_path")).to_be_hidden()
        expect(page.locator("#id_model_path")).to_have_value("")
        page.select_option("#id_source", "model")
        expect(page.locator("#id_model_path")).to_be_visible()
        expect(page.locator("#id_checkpoint")).to_be_hidden()
        browser.close()
