"""In a real Chromium against a live server and a real Celery worker on the api queue: an operator
launches a curation run from the form against an OpenAI-protocol endpoint, watches it to the end,
and opens a hostile trace in the viewer."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group, User
from playwright.sync_api import expect, sync_playwright

from devtools.openai_stub import StubServer
from experiments.models import CurationRun, Sample
from tests.support.browser import open_browser
from tests.support.curation import echo_problems, make_problem, make_version
from tests.support.processes import celery_worker

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

HOSTILE = ('Problem h: <script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
           " what is 3 + 4?\n\nThe answer is $\\boxed{7}$")


def test_launch_watch_and_open_a_trace_in_the_browser(live_server, tmp_path):
    user = User.objects.create_user("browser-op", password="pw-for-browser")
    user.groups.add(Group.objects.get(name="operator"))
    problems = echo_problems(6, wrong_every=4)  # the stub echoes; problems 0 and 4 are wrong
    hostile = make_problem(problems[0].dataset, 99, prompt=HOSTILE, answer="7")
    version = make_version([*problems, hostile])

    with StubServer(faults=["429"], retry_after="0") as stub, \
            celery_worker(tmp_path, queues="api") as worker, sync_playwright() as pw:
        browser, page = open_browser(pw, live_server, "browser-op")

        page.goto(f"{live_server.url}/curation/new")
        page.select_option("#id_recipe_version", str(version.pk))
        page.select_option("#id_backend", "openai")
        page.fill("#id_model", "stub-teacher")
        page.fill("#id_base_url", stub.base_url)
        page.fill("#id_max_tokens", "256")
        page.fill("#id_concurrency", "4")
        page.fill("#id_chunk_size", "2")
        expect(page.locator("#id_http_client")).to_have_value("aiohttp")
        page.fill("#id_reformat_model", "stub-reformatter")
        page.fill("#id_reformat_base_url", stub.base_url)
        page.fill("#id_reformat_max_tokens", "1024")
        page.click("button.primary")

        # (No ORM calls in here: Playwright's sync API runs an event loop in this thread.)
        expect(page).to_have_url(re.compile(r"/curation/\d+/$"))
        run_pk = int(page.url.rstrip("/").rsplit("/", 1)[1])
        try:
            expect(page.locator('[data-field="state"]')).to_have_text("succeeded",
                                                                       timeout=120_000)
        except AssertionError:
            raise AssertionError(f"run did not succeed\n{worker.output()[-4000:]}") from None
        # The page followed the run live: per-stage boxes and the plotly funnel are drawn.
        expect(page.locator("#stage-boxes")).to_contain_text("export")
        expect(page.locator("#funnel-chart .main-svg").first).to_be_visible()
        rate_limited = stub.stats.by_status[429]

        page.click("text=Browse samples")
        page.click(f"#samples a[href$='/{hostile.pk}/0/']")
        expect(page.locator("summary", has_text="Reformatted: solution")).to_be_visible()
        expect(page.locator("#trace-root")).to_contain_text("The answer is")
        # The untrusted markup is shown as text, never run.
        page.click("summary:has-text('Raw teacher trace')")
        expect(page.locator("#trace-root")).to_contain_text("<script>window.__pwned = 1</script>")
        assert page.evaluate("window.__pwned") is None
        assert page.locator("#trace-root script, #trace-root img[onerror]").count() == 0
        browser.close()
    run = CurationRun.objects.get()
    assert run.pk == run_pk and run.exported_rows == 5  # 7 problems, 2 with a wrong answer
    assert run.config["backend_options"]["client"] == "aiohttp"
    assert rate_limited == 7 + 5  # every first attempt, of the teacher and the reformatter
    assert Sample.objects.get(run=run, problem=hostile, stage="reverify").correct
