"""Issue 15 ("Done when"): the README's "What to try in the demo", followed as written in a real
Chromium against a live server, after `create_demo`, with one real Celery worker on every queue
and, as scripts/demo.sh starts it, a real `transformers serve` with the demo model as the
reformatter. At each step the test asserts what a user sees; every same-origin link of every page
visited is requested afterwards, and none answers 404 or 500.

1. Curation -> New curation run with the defaults (demo model, demo-curation recipe, reformat
   ticked, the demo's limits): it succeeds, and the funnel's bars match the stage cards.
2. Training -> New training run -> "SmolLM2-135M on CPU", the CHAMP export and the ShareGPT
   set: it succeeds and lists its checkpoints.
3. Evaluation of the demo model on MATH500 (demo subset), then "Evaluate this checkpoint" from
   the training run: each page shows the path and revision it evaluated; Compare has the MATH500
   column with skyboard's scores and the published Sky-T1 figure.
4. Nightly schedules: a schedule made through the form is listed.
5. Review -> New queue from the curation run; one item accepted with `a`.

Slow by nature (real generation, training and evaluation on the CPU): several minutes.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from io import StringIO
from pathlib import Path
from urllib.parse import urldefrag, urlsplit

import httpx
import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from playwright.sync_api import expect, sync_playwright

from distill.generation.models import is_complete, prepare_smollm2
from tests.support.browser import open_browser
from tests.support.processes import ROOT, background, celery_worker, purge_broker, worker_env

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
]

FINAL = ("succeeded", "failed", "cancelled")
# Generous but bounded, per step: a run that has not finished by then has hung. Measured on two
# cores at load 5-6 (other test runs sharing them): curation 298-482 s, training 203-236 s,
# both evaluations 565 s; a quiet machine takes about half.
CURATION_S = 1200
TRAINING_S = 900
EVALUATION_S = 900


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Links:
    """Same-origin ``a[href]`` of every page visited, each with the first page it was on."""

    SKIP = ("/logout",)

    def __init__(self, origin: str):
        self.origin = origin
        self.found: dict[str, str] = {}

    def collect(self, page) -> None:
        for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
            url = urldefrag(href).url
            if not url.startswith(self.origin + "/"):
                continue
            if urlsplit(url).path.startswith(self.SKIP):
                continue
            self.found.setdefault(url, page.url)

    def broken(self, page) -> list[str]:
        out = []
        for url, on in sorted(self.found.items()):
            response = page.request.get(url, max_redirects=5, timeout=60_000)
            if response.status in (404, 500) or response.status > 500:
                out.append(f"{response.status} {url} (linked from {on})")
        return out


def wait_final(page, links: Links, what: str, timeout_s: float, worker) -> None:
    """Reload the run's page until its state is final; it must be "succeeded"."""
    state = page.locator('[data-field="state"]').first
    deadline = time.monotonic() + timeout_s
    while True:
        text = state.text_content().strip()
        if text in FINAL or time.monotonic() > deadline:
            break
        page.wait_for_timeout(3000)
        page.reload()
    links.collect(page)
    if text != "succeeded":
        failure = page.locator('[data-field^="failure"]').all_text_contents()
        raise AssertionError(f"{what} ended {text!r} ({' '.join(failure).strip()}) at "
                             f"{page.url}\nworker log:\n{worker.output()[-6000:]}")


def visit(page, links: Links, url: str) -> None:
    page.goto(url)
    links.collect(page)


def stage_cards(page) -> dict[str, dict]:
    """The stage cards as a user reads them: {stage: {"text", "done", "total", "passed"}}."""
    cards = {}
    for card in page.locator("#stage-boxes .stage").all():
        text = card.inner_text()
        stage = card.get_attribute("data-stage")
        m = re.search(r"(\d+) / (\d+)(?: · passed (\d+))?", text)
        cards[stage] = {"text": text, "label": card.locator("b").inner_text().strip(),
                        "skipped": "skipped" in text,
                        "done": int(m[1]) if m else None, "total": int(m[2]) if m else None,
                        "passed": int(m[3]) if m and m[3] else None}
    return cards


FUNNEL_JS = """() => { const out = {};
    document.getElementById('funnel-chart').data.forEach(t => t.x.forEach((x, i) => {
        out[x] = (out[x] || 0) + t.y[i]; })); return out; }"""


@pytest.fixture
def demo_model() -> Path:
    path = prepare_smollm2(Path(django_settings.DEMO_MODEL_DIR))
    assert is_complete(path)
    return path


@pytest.fixture
def reformatter(demo_model, tmp_path):
    """`transformers serve` with the demo model, as scripts/demo.sh starts it without an
    OPENAI_API_KEY: the (base_url, model) the worker's OPENAI_* settings name."""
    port = free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    cli = ROOT / ".venv" / "bin" / "transformers"
    args = [str(cli), "serve", "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
            str(demo_model)]
    with background(args, tmp_path / "transformers-serve.log", env) as proc:
        yield proc, f"http://127.0.0.1:{port}", str(demo_model)


def wait_healthy(proc, base: str, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        assert proc.popen.poll() is None, f"transformers serve died:\n{proc.output()[-3000:]}"
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"transformers serve not up:\n{proc.output()[-3000:]}"
        time.sleep(0.5)


def test_the_readme_demo_walk(live_server, settings, tmp_path, reformatter, train_venv,
                              published_results):
    started = time.monotonic()
    serve, serve_url, serve_model = reformatter
    # The worker and this process (the live server) share the demo's files and settings.
    media, runs = tmp_path / "media", tmp_path / "runs"
    settings.MEDIA_ROOT, settings.RUNS_DIR = media, runs
    openai = {"OPENAI_BASE_URL": f"{serve_url}/v1", "OPENAI_MODEL": serve_model,
              "OPENAI_API_KEY": "local-demo-no-key"}
    for key, value in openai.items():
        setattr(settings, key, value)
    call_command("create_demo", stdout=StringIO())
    purge_broker()
    wait_healthy(serve, serve_url)
    env = {**openai, "MEDIA_ROOT": str(media), "SKYBOARD_RUNS_DIR": str(runs),
           "HF_HUB_OFFLINE": "1", "SKYBOARD_TRAINING_VENV": str(train_venv)}
    assert worker_env(**env)["DATABASE_URL"]
    timings: dict[str, float] = {}

    with celery_worker(tmp_path, queues="cpu,gpu,api", **env) as worker, \
            sync_playwright() as pw:
        browser, page = open_browser(pw, live_server, "demo", "demo-skyboard")
        base = live_server.url
        links = Links(base)
        expect(page.locator("body")).to_contain_text("demo")
        links.collect(page)

        # --- 1. Curation -> New curation run, the defaults --------------------------------
        t0 = time.monotonic()
        visit(page, links, f"{base}/runs/curation/")
        page.get_by_role("link", name=re.compile("New curation run", re.I)).first.click()
        expect(page).to_have_url(re.compile(r"/curation/new"))
        links.collect(page)
        expect(page.locator("#id_model")).to_have_value(serve_model)  # the demo model
        expect(page.locator("#id_max_tokens")).to_have_value("128")
        expect(page.locator("#id_reformat_enabled")).to_be_checked()
        expect(page.locator("#id_reformat_max_tokens")).to_have_value("384")
        # The README says to keep the demo-curation recipe: the form preselects it.
        chosen = page.eval_on_selector(
            "#id_recipe_version", "s => s.options[s.selectedIndex].textContent")
        assert chosen.startswith("demo-curation "), chosen
        page.click("button.primary")
        expect(page).to_have_url(re.compile(r"/curation/\d+/$"))
        curation_url = page.url
        curation_pk = int(curation_url.rstrip("/").rsplit("/", 1)[1])
        links.collect(page)
        wait_final(page, links, "the curation run", CURATION_S, worker)
        timings["curation"] = time.monotonic() - t0
        # The stages filled in; the funnel's bars (summed over groups) are the cards' numbers.
        expect(page.locator("#funnel-chart .main-svg").first).to_be_visible()
        cards = stage_cards(page)
        assert set(cards) == {"generate", "verify", "reformat", "reverify", "export"}, cards
        assert not any(c["skipped"] for c in cards.values()), cards
        bars = page.evaluate(FUNNEL_JS)
        for stage, card in cards.items():
            shown = card["done"] if stage == "export" else card["passed"]
            assert bars.get(card["label"], 0) == shown, (stage, card, bars)
        assert cards["generate"]["done"] == cards["generate"]["total"] > 0, cards
        assert cards["export"]["done"] == cards["reverify"]["passed"], cards
        data = json.loads(page.locator("#curation-data").text_content())
        assert data["exported"] == cards["export"]["done"]
        expect(page.locator("dl.facts")).to_contain_text(serve_model)  # the reformatter
        # The failure reasons and a trace open.
        expect(page.locator("#reasons-chart .main-svg").first).to_be_visible()
        page.click("text=Browse samples")
        links.collect(page)
        page.locator("#samples a[href*='/samples/']").first.click()
        expect(page.locator("#trace-root")).not_to_be_empty()
        links.collect(page)

        # --- 2. Training -> New training run -> "SmolLM2-135M on CPU" ---------------------
        t0 = time.monotonic()
        visit(page, links, f"{base}/runs/training/")
        page.get_by_role("link", name=re.compile("New training run", re.I)).first.click()
        expect(page).to_have_url(re.compile(r"/runs/training/new"))
        page.get_by_role("link", name=re.compile("SmolLM2-135M on CPU")).click()
        expect(page.locator("#id_model_name_or_path")).to_have_value(serve_model)
        links.collect(page)
        options = page.eval_on_selector_all(
            "#id_sources option", "os => os.map(o => [o.value, o.textContent])")
        champ = [v for v, label in options
                 if "champ" in label.lower() and "curation export" in label]
        sharegpt = [v for v, label in options if label.startswith("demo-math-sharegpt")]
        assert champ and sharegpt, options
        page.select_option("#id_sources", [champ[0], sharegpt[0]])
        expect(page.locator("#overlap-warnings")).to_be_hidden()  # decontaminated sets
        page.click("#training-form button.primary")
        expect(page).to_have_url(re.compile(r"/runs/training/\d+/$"))
        training_url = page.url
        training_pk = int(training_url.rstrip("/").rsplit("/", 1)[1])
        wait_final(page, links, "the training run", TRAINING_S, worker)
        timings["training"] = time.monotonic() - t0
        expect(page.locator("#loss-chart .main-svg").first).to_be_visible()
        evaluate = page.locator("#checkpoints a.evaluate-checkpoint")
        assert evaluate.count() >= 1
        checkpoint_path = evaluate.first.locator(
            "xpath=ancestor::tr").locator("code").inner_text().strip()
        assert checkpoint_path.startswith(str(runs)), checkpoint_path

        # --- 3. Evaluation: the demo model on MATH500, then the checkpoint ----------------
        t0 = time.monotonic()
        visit(page, links, f"{base}/evaluation/")

        def math500() -> str:
            values = page.eval_on_selector_all(
                "#id_benchmarks option",
                "os => os.filter(o => o.textContent.includes('MATH500 (demo subset)'))"
                ".map(o => o.value)")
            assert len(values) == 1, values
            return values[0]

        expect(page.locator("#id_source")).to_have_value("model")
        expect(page.locator("#id_model_path")).to_have_value(serve_model)
        page.select_option("#id_benchmarks", [math500()])
        page.click(".eval-form button[type=submit]")
        expect(page).to_have_url(re.compile(r"/evaluation/\d+/$"))
        model_eval_url = page.url
        links.collect(page)

        visit(page, links, training_url)
        page.locator("#checkpoints a.evaluate-checkpoint").first.click()
        expect(page).to_have_url(re.compile(r"/evaluation/\?source=checkpoint&checkpoint=\d+"))
        links.collect(page)
        expect(page.locator("#id_source")).to_have_value("checkpoint")
        expect(page.locator("#id_model_path")).to_be_hidden()
        page.select_option("#id_benchmarks", [math500()])
        page.click(".eval-form button[type=submit]")
        expect(page).to_have_url(re.compile(r"/evaluation/\d+/$"))
        checkpoint_eval_url = page.url

        visit(page, links, model_eval_url)
        wait_final(page, links, "the demo model's evaluation", EVALUATION_S, worker)
        expect(page.locator('[data-field="evaluated-path"]')).to_have_text(serve_model)
        revision = page.locator('[data-field="model-revision"]').inner_text().strip()
        assert revision and revision != "—", revision
        expect(page.locator('[data-field="score"]')).to_contain_text("MATH500 (demo subset)")

        visit(page, links, checkpoint_eval_url)
        wait_final(page, links, "the checkpoint's evaluation", EVALUATION_S, worker)
        expect(page.locator('[data-field="evaluated-path"]')).to_have_text(checkpoint_path)
        ck_revision = page.locator('[data-field="model-revision"]').inner_text().strip()
        assert ck_revision and ck_revision != "—", ck_revision
        assert ck_revision != revision  # the checkpoint's weights, not the demo model's
        expect(page.locator("dl.facts")).to_contain_text(f"training run {training_pk}")
        expect(page.locator('[data-field="score"]')).to_contain_text("MATH500 (demo subset)")
        timings["evaluations"] = time.monotonic() - t0

        # Compare: the MATH500 column holds both runs' scores and the published Sky-T1 figure.
        visit(page, links, f"{base}/evaluation/")
        page.click("text=Compare & solved matrix")
        expect(page).to_have_url(re.compile(r"/evaluation/compare"))
        links.collect(page)
        table = page.locator("table.eval-table")
        # (text_content, not inner_text: the latter is as CSS draws it, e.g. upper-cased.)
        headers = [" ".join(h.split()) for h in table.locator("thead th").all_text_contents()]
        assert "MATH500 (demo subset)" in headers, headers
        column = headers.index("MATH500 (demo subset)")
        rows = {}
        for row in table.locator("tbody tr").all():
            cells = [" ".join(c.split()) for c in row.locator("td").all_text_contents()]
            rows[cells[0]] = cells[column]
        runs_in_column = [v for k, v in rows.items() if "#" in k]
        assert len(runs_in_column) == 2, rows
        assert all(re.match(r"\d+\.\d", v) for v in runs_in_column), rows
        assert rows.get("Sky-T1-32B-Preview (published)") == "86.4", rows
        expect(page.locator("#eval-chart .main-svg").first).to_be_visible()

        # --- 4. Nightly schedules ----------------------------------------------------------
        visit(page, links, f"{base}/evaluation/")
        page.click("text=Nightly schedules")
        expect(page).to_have_url(re.compile(r"/evaluation/schedules/"))
        links.collect(page)
        page.click("a[href$='/evaluation/schedules/new']")
        links.collect(page)
        page.fill("#id_name", "nightly demo model on MATH500")
        page.fill("#id_hour", "2")
        page.fill("#id_minute", "30")
        page.select_option("#id_benchmarks", [math500()])
        page.fill("#id_model_paths", serve_model)
        page.click("button:has-text(\"Save schedule\")")
        expect(page).to_have_url(re.compile(r"/evaluation/schedules/$"))
        expect(page.locator("body")).to_contain_text("nightly demo model on MATH500")
        links.collect(page)

        # --- 5. Review -> New queue from a curation run, accept with the keyboard --------
        visit(page, links, f"{base}/review/")
        page.select_option("#id_run", str(curation_pk))
        page.click("#queue-form button[type=submit]")
        expect(page).to_have_url(re.compile(r"/review/queues/\d+/$"))
        queue_url = page.url
        links.collect(page)
        page.click("#start")
        expect(page).to_have_url(queue_url + "items/0/")
        links.collect(page)
        page.keyboard.press("a")
        expect(page).not_to_have_url(queue_url + "items/0/")
        links.collect(page)
        visit(page, links, queue_url + "items/0/")
        expect(page.locator("#my-verdict")).to_have_text("correct")

        # --- every link of every page visited ------------------------------------------------
        walk_s = time.monotonic() - started
        assert len(links.found) > 40, links.found
        broken = links.broken(page)
        browser.close()
    print(f"\nREADME walk: {walk_s:.0f} s; steps {timings}; links checked {len(links.found)}")
    assert broken == [], "\n".join(broken)
