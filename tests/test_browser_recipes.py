"""In a real Chromium against a live server and a real Celery worker: upload a dataset, watch it
import, build a recipe with the live preview, materialise it and look at the version."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from playwright.sync_api import expect, sync_playwright

from experiments.models import Dataset, Recipe, RecipeVersion
from tests.support.browser import open_browser
from tests.support.processes import celery_worker

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

FIXTURES = Path(__file__).parent / "fixtures" / "datasets"


def test_build_a_recipe_in_the_browser(live_server, tmp_path):
    user = User.objects.create_user("browser-op", password="pw-for-browser")
    user.groups.add(Group.objects.get_or_create(name="operator")[0])
    shots = Path(settings.VAR_DIR) / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    rows = "".join(
        f'{{"problem": "What is ${i}^2$? Case {i}.", "answer": "{i * i}", '
        f'"subject": "{"Algebra" if i % 2 else "Number Theory"}", "level": {1 + i % 5}}}\n'
        for i in range(40)
    )
    upload = tmp_path / "squares.jsonl"
    upload.write_text(rows)

    with celery_worker(tmp_path, queues="cpu") as worker, sync_playwright() as pw:
        browser, page = open_browser(pw, live_server, "browser-op")

        # Upload: the request queues an import run; the worker does it, the page follows.
        page.click("nav.main >> text=Datasets")
        page.fill("#id_name", "squares")
        page.set_input_files("#id_file", str(upload))
        page.click("#import-form button[type=submit]")
        try:
            expect(page.locator('[data-field="state"]')).to_have_text("succeeded", timeout=60_000)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nworker:\n{worker.output()}") from None
        page.click("nav.main >> text=Datasets")
        page.click("#datasets >> text=squares")
        expect(page.locator("#problem-count")).to_have_text("40")

        # A recipe, previewed live as the form is filled in.
        page.goto(f"{live_server.url}/recipes/")
        page.click("#new-recipe")
        page.fill("#id_name", "squares mix")
        page.select_option("#id_components-0-dataset", label="squares")
        page.fill("#id_components-0-count", "12")
        page.fill("#id_components-0-seed", "3")
        expect(page.locator("#preview-total")).to_have_text("12")
        page.click("#add-component")
        page.select_option("#id_components-1-dataset", label="squares")
        page.fill("#id_components-1-fraction", "0.5")
        page.fill("#id_components-1-source", "math500")
        expect(page.locator("#preview-total")).to_have_text("32")
        page.screenshot(path=str(shots / "recipe-editor.png"), full_page=True)
        page.click("#save-recipe")

        # Materialise on the worker; the page reloads when the build finishes.
        page.click("#materialise")
        expect(page.locator("#versions a")).to_have_text("v1", timeout=60_000)
        page.click("#versions a")
        expect(page.locator("#version-count")).to_be_visible()
        page.wait_for_selector("#chart-source .main-svg")
        page.screenshot(path=str(shots / "recipe-version.png"), full_page=True)
        browser.close()

    # (The ORM stays outside playwright's block: it runs an event loop in this thread.)
    assert Dataset.objects.get(name="squares").problem_count == 40
    version = RecipeVersion.objects.get(recipe=Recipe.objects.get(name="squares mix"))
    # 12 from the first component, then half of the 40, skipping those already chosen.
    assert [c["taken"] for c in version.components] == [12, 20]
    assert version.problem_count == 32
    assert (shots / "recipe-version.png").stat().st_size > 10_000
