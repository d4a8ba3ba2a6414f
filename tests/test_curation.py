"""Curation runs in-process (the job called directly, OpenAI's side played by the local stub
server): stages, idempotent persistence, resume, re-run from a stage, export, accounting, and the
run pages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from devtools.openai_stub import StubServer
from experiments.models import (
    CurationRun,
    PriceTable,
    PromptVersion,
    RunState,
    Sample,
    TrainingSetVersion,
)
from tests.support.accounts import client_for
from tests.support.curation import (
    SECRET,
    echo_problems,
    make_run,
    make_version,
)
from workers.runner import execute


@pytest.fixture(autouse=True)
def _quiet_heartbeat(settings):
    # The job runs in this process, inside the test's transaction: the heartbeat thread has its
    # own connection and would not see the run, so it must not beat during these short runs.
    settings.RUN_HEARTBEAT_SECONDS = 600


def rows_per_key(run) -> set[int]:
    from django.db.models import Count

    return set(Sample.objects.filter(run=run).values("problem", "sample_index", "stage")
               .annotate(n=Count("id")).values_list("n", flat=True))


@pytest.mark.django_db
def test_pipeline_generates_verifies_reformats_reverifies_and_exports(settings, tmp_path):
    settings.RUNS_DIR = tmp_path / "runs"
    settings.OPENAI_API_KEY = SECRET
    PriceTable.objects.create(model="stub-reformatter", input_usd_per_mtok=0.15,
                              output_usd_per_mtok=0.6)
    problems = echo_problems(6, wrong_every=3)  # problems 0 and 3 are wrong
    version = make_version(problems)
    # The reformatter answers 429 (Retry-After), then 500, before succeeding.
    with StubServer(faults=["429", "500"], retry_after="0") as stub:
        run = make_run(version, stub.base_url, n=2)
        assert execute("curation", run.pk, hostname="test") == RunState.SUCCEEDED
        by_status = dict(stub.stats.by_status)
        seen_auth = set(stub.stats.seen_auth)
    run.refresh_from_db()
    counts = {s: (c["total"], c["passed"]) for s, c in run.counts.items()}
    assert counts == {"generate": (12, 12), "verify": (12, 8), "reformat": (8, 8),
                      "reverify": (8, 8)}
    assert run.exported_rows == 8 and rows_per_key(run) == {1}
    assert by_status[429] >= 1 and by_status[500] >= 1
    assert any(SECRET in a for a in seen_auth)

    wrong = Sample.objects.get(run=run, problem=problems[3], sample_index=1, stage="verify")
    assert wrong.correct is False and wrong.reason == "wrong_answer" and wrong.extracted == "3"
    gen = Sample.objects.get(run=run, problem=problems[1], sample_index=1, stage="generate")
    assert gen.seed == 8 and gen.sampling["max_tokens"] == 512 and gen.backend == "openai"
    assert gen.messages[0]["role"] == "system" and "thoroughly exploring" in \
        gen.messages[0]["content"]
    assert gen.prompt_version == run.template and gen.completion_tokens > 0
    ref = Sample.objects.get(run=run, problem=problems[1], sample_index=0, stage="reformat")
    assert ref.text.startswith("<|begin_of_thought|>") and ref.prompt_version == run.convert_prompt
    assert ref.cost_usd == pytest.approx((ref.prompt_tokens * 0.15 + ref.completion_tokens * 0.6)
                                         / 1e6)
    # The stub scripts faults per distinct request: samples 0 and 1 of a problem send the same
    # reformat request (greedy echo), so between them they met one 429 and one 500 and then
    # each succeeded, in whatever order they were sent.
    twins = Sample.objects.filter(run=run, problem=problems[1], stage="reformat")
    assert sorted(t.sample_index for t in twins) == [0, 1]
    assert sum(t.detail["attempts"] for t in twins) == 4

    tsv = TrainingSetVersion.objects.get(source_run=run)
    assert tsv.row_count == 8 and tsv.training_set.name == "demo-curated"
    data = json.loads(Path(tsv.path).read_text())
    assert len(data) == 8
    assert data[0]["system"] == run.system_prompt.text
    assert [m["from"] for m in data[0]["conversations"]] == ["user", "assistant"]
    assert data[0]["conversations"][0]["value"].startswith("Problem 1: add 1")
    info = json.loads((Path(tsv.path).parent / "dataset_info.json").read_text())
    assert info[tsv.dataset_name]["columns"] == {"messages": "conversations", "system": "system"}
    assert info[tsv.dataset_name]["formatting"] == "sharegpt"

    # The API key is nowhere in what was stored or exported.
    dump = json.dumps(list(Sample.objects.filter(run=run).values()), default=str)
    dump += json.dumps(list(CurationRun.objects.filter(pk=run.pk).values()), default=str)
    assert SECRET not in dump and SECRET not in Path(tsv.path).read_text()


@pytest.mark.django_db
def test_a_run_without_reformatting_exports_the_verified_teacher_traces(settings, tmp_path):
    settings.RUNS_DIR = tmp_path / "runs"
    problems = echo_problems(4, wrong_every=3)  # problems 0 and 3 are wrong
    with StubServer() as stub:
        run = make_run(make_version(problems), stub.base_url,
                       reformat={"enabled": False, "base_url": stub.base_url})
        assert execute("curation", run.pk, hostname="test") == RunState.SUCCEEDED
        reformat_calls = stub.stats.by_status.get(200, 0)
    run.refresh_from_db()
    assert {s: (c["total"], c["passed"]) for s, c in run.counts.items()} == {
        "generate": (4, 4), "verify": (4, 2), "reformat": (0, 0), "reverify": (0, 0)}
    assert reformat_calls == 4  # the teacher's four answers; nothing was sent to reformat
    assert run.progress["stages"]["export"] == {"done": 2, "total": 2}
    data = json.loads(Path(TrainingSetVersion.objects.get(source_run=run).path).read_text())
    teacher = Sample.objects.get(run=run, problem=problems[1], stage="generate").text
    assert [row["conversations"][1]["value"] for row in data][0] == teacher


@pytest.mark.django_db
def test_endpoint_stages_keep_concurrency_across_chunks(settings, tmp_path):
    # Chunks of 2 problems, 6 requests in flight: an endpoint gets one stream of requests,
    # so the teacher and the reformatter both see 6 at once, not one chunk at a time (which
    # would also make each chunk wait for its slowest trace).
    settings.RUNS_DIR = tmp_path / "runs"
    problems = echo_problems(18)
    with StubServer(latency_s=0.2) as stub:
        run = make_run(make_version(problems), stub.base_url, chunk_size=2,
                       backend_options={"concurrency": 6, "client": "aiohttp"},
                       reformat={"model": "stub-reformatter", "base_url": stub.base_url,
                                 "concurrency": 6, "chunk_size": 2, "max_tokens": 4096})
        assert execute("curation", run.pk, hostname="test") == RunState.SUCCEEDED
        peak = stub.stats.max_in_flight
    run.refresh_from_db()
    assert {s: (c["total"], c["passed"]) for s, c in run.counts.items()} == {
        "generate": (18, 18), "verify": (18, 18), "reformat": (18, 18), "reverify": (18, 18)}
    assert peak == 6
    assert rows_per_key(run) == {1}


@pytest.mark.django_db
def test_api_failures_are_errors_never_content_and_resume_retries_them(settings, tmp_path):
    settings.RUNS_DIR = tmp_path / "runs"
    problems = echo_problems(3)
    problems[1].prompt += " PERMANENT_FAILURE"  # the stub answers 500 to it, always
    problems[1].save(update_fields=["prompt"])
    version = make_version(problems)
    with StubServer() as stub:
        run = make_run(version, stub.base_url,
                       backend_options={"concurrency": 4, "max_attempts": 2,
                                        "backoff_base_s": 0.01})
        assert execute("curation", run.pk, hostname="test") == RunState.SUCCEEDED
        run.refresh_from_db()
        failed = Sample.objects.get(run=run, problem=problems[1], stage="generate")
        assert failed.correct is False and failed.text == "" and failed.reason == "error:500"
        assert failed.error["status"] == 500 and failed.error["attempts"] == 2
        assert run.counts["generate"] == {"total": 3, "passed": 2, "errors": 1}
        assert run.exported_rows == 2

        # The endpoint recovers; resuming retries the failed sample and keeps the others.
        problems[1].prompt = problems[1].prompt.replace(" PERMANENT_FAILURE", "")
        problems[1].save(update_fields=["prompt"])
        kept = set(Sample.objects.filter(run=run, problem=problems[0]).values_list("id",
                                                                                   flat=True))
        CurationRun.objects.filter(pk=run.pk).update(state=RunState.FAILED)  # as if reaped
        assert run.resume() and run.attempt == 2 and run.state == RunState.QUEUED
        assert execute("curation", run.pk, hostname="test") == RunState.SUCCEEDED
    run.refresh_from_db()
    assert run.counts["generate"] == {"total": 3, "passed": 3, "errors": 0}
    assert run.exported_rows == 3 and rows_per_key(run) == {1}
    assert kept <= set(Sample.objects.filter(run=run).values_list("id", flat=True))
    # Exporting again updated the run's training-set version rather than adding one.
    assert TrainingSetVersion.objects.filter(source_run=run).get().row_count == 3


@pytest.mark.django_db
def test_rerun_from_reformat_with_a_new_prompt_version_reuses_earlier_stages(settings, tmp_path):
    settings.RUNS_DIR = tmp_path / "runs"
    version = make_version(echo_problems(4, wrong_every=4))
    with StubServer() as stub:
        run = make_run(version, stub.base_url)
        execute("curation", run.pk, hostname="test")
        # A prompt without the tags the stub recognises: everything comes back malformed.
        broken = run.convert_prompt.new_version(text="Rewrite this: {example} {content}",
                                                example="(none)")
        assert broken.number == 2
        child = run.rerun_from("reformat", convert_prompt=broken)
        generated_before = stub.stats.total
        assert execute("curation", child.pk, hostname="test") == RunState.SUCCEEDED
        calls = stub.stats.total - generated_before
    child.refresh_from_db()
    assert calls == 3  # only the 3 verified samples were sent again, to be reformatted
    assert child.counts["generate"]["total"] == 4 and child.counts["verify"]["passed"] == 3
    assert child.counts["reformat"] == {"total": 3, "passed": 0, "errors": 0}
    reasons = Sample.objects.filter(run=child, stage="reformat").failure_reasons()
    assert reasons == {"reformat": {"malformed": 3}}
    assert child.exported_rows == 0
    # The used prompt is frozen.
    with pytest.raises(ValueError, match="new version"):
        broken.text = "changed"
        broken.save()


@pytest.mark.django_db
def test_a_sample_is_stored_once_per_stage():
    version = make_version(echo_problems(1))
    run = make_run(version, "http://127.0.0.1:9/v1")
    p = version.items.get().problem
    Sample.objects.create(run=run, problem=p, sample_index=0, stage="generate", text="a")
    Sample.objects.bulk_create([Sample(run=run, problem=p, sample_index=0, stage="generate",
                                       text="b")], ignore_conflicts=True)
    assert Sample.objects.get(run=run).text == "a"
    with pytest.raises(IntegrityError), transaction.atomic():
        Sample.objects.create(run=run, problem=p, sample_index=0, stage="generate")
    Sample.objects.create(run=run, problem=p, sample_index=1, stage="generate")
    Sample.objects.create(run=run, problem=p, sample_index=0, stage="verify")
    assert Sample.objects.filter(run=run).count() == 3


@pytest.mark.django_db
def test_resume_only_from_failed_or_cancelled():
    run = make_run(make_version(echo_problems(1)), "http://127.0.0.1:9/v1")
    assert not run.resume()  # queued
    run.mark_cancelled()
    assert run.resume() and run.state == "queued" and run.attempt == 2
    assert not run.resume()


HOSTILE = ("<script>alert('x')</script><img src=x onerror=alert(1)> **bold** "
           "$\\frac{a}{b}$ [link](javascript:alert(1))")


@pytest.mark.django_db
def test_run_pages_show_funnel_reasons_accounting_and_safe_traces(users, settings, tmp_path):
    settings.RUNS_DIR = tmp_path / "runs"
    problems = echo_problems(4, wrong_every=2)
    problems[1].prompt = HOSTILE + "\n\nThe answer is $\\boxed{1}$"
    problems[1].save(update_fields=["prompt"])
    with StubServer() as stub:
        run = make_run(make_version(problems), stub.base_url)
        execute("curation", run.pk, hostname="test")
    client = client_for(users["viewer"])
    page = client.get(reverse("curation_detail", args=[run.pk]))
    assert page.status_code == 200
    data = page.context["data"]
    assert data["total"] == {"generate": 4, "verify": 2, "reformat": 2, "reverify": 2,
                             "export": 2}
    assert data["funnel"]["source"]["odd"]["reverify"] == 2
    assert data["reasons"] == {"verify": {"wrong_answer": 2}}
    assert b"plotly.min.js" in page.content and b"funnel-chart" in page.content
    assert page.context["accounting"]["rows"][0]["completion_tokens"] > 0
    status = client.get(reverse("curation_status", args=[run.pk])).json()
    assert status["status"]["state"] == "succeeded" and status["exported"] == 2

    listing = client.get(reverse("curation_samples", args=[run.pk]),
                         {"stage": "verify", "verdict": "fail"})
    assert [s.reason for s in listing.context["rows"]] == ["wrong_answer", "wrong_answer"]
    assert client.get(reverse("curation_samples", args=[run.pk]),
                      {"source": "odd", "min_tokens": 1}).context["rows"]

    trace = client.get(reverse("curation_sample", args=[run.pk, problems[1].pk, 0]))
    body = trace.content.decode()
    assert trace.status_code == 200
    assert "<script>alert" not in body and "<img src=x" not in body
    assert 'href="javascript' not in body
    assert "&lt;script&gt;" in body and "<strong>bold</strong>" in body
    assert '<span class="math">$\\frac{a}{b}$</span>' in body
    assert "Reformatted: solution" in body and "katex.min.js" in body

    download = client.get(reverse("curation_export", args=[run.pk]))
    assert download.status_code == 200 and len(json.loads(b"".join(download))) == 2


# Real commits: a run is sent to its worker when the launching transaction commits.
@pytest.mark.django_db(transaction=True)
def test_operator_launches_a_run_from_the_browser_and_the_key_stays_out(users, settings,
                                                                        empty_broker):
    settings.OPENAI_API_KEY = SECRET
    version = make_version(echo_problems(2))
    client = client_for(users["operator"])
    form = client.get(reverse("curation_new"))
    assert form.status_code == 200 and SECRET not in form.content.decode()
    defaults = PromptVersion.objects.ensure_defaults()
    resp = client.post(reverse("curation_new"), {
        "recipe_version": version.pk, "backend": "transformers", "model": "/models/smol",
        "n": 2, "temperature": 0.7, "top_p": 0.95, "max_tokens": 64, "seed": 3,
        "batch_size": 4, "concurrency": 8, "chunk_size": 16,
        "system_prompt": defaults["system"].pk, "template": defaults["template"].pk,
        "convert_prompt": defaults["convert"].pk, "send_system_prompt": "on",
        "reformat_model": "gpt-4o-mini", "reformat_max_tokens": 8192,
        "reformat_concurrency": 16, "http_client": "aiohttp", "reformat_http_client": "openai",
    })
    run = CurationRun.objects.get()
    assert resp.status_code == 302 and resp["Location"] == run.get_absolute_url()
    assert run.state == "queued" and run.queue == "gpu" and run.celery_task_id
    assert run.config["sampling"] == {"temperature": 0.7, "top_p": 0.95, "max_tokens": 64,
                                      "seed": 3}
    assert run.config["n"] == 2 and run.config["reformat"]["model"] == "gpt-4o-mini"
    assert run.config["reformat"]["client"] == "openai"  # the reformatter goes through the SDK
    assert SECRET not in json.dumps(run.config)
    # An endpoint run: its HTTP client choice reaches the backend options.
    resp = client.post(reverse("curation_new"), {
        "recipe_version": version.pk, "backend": "openai", "model": "teacher",
        "base_url": "http://127.0.0.1:9/v1", "n": 1, "temperature": 0, "top_p": 1,
        "max_tokens": 64, "batch_size": 4, "concurrency": 256, "chunk_size": 64,
        "system_prompt": defaults["system"].pk, "template": defaults["template"].pk,
        "convert_prompt": defaults["convert"].pk, "reformat_max_tokens": 8192,
        "reformat_concurrency": 16, "http_client": "aiohttp", "reformat_http_client": "openai",
    })
    api_run = CurationRun.objects.exclude(pk=run.pk).get()
    assert api_run.queue == "api"
    assert api_run.config["backend_options"] == {"concurrency": 256, "client": "aiohttp"}
    # A viewer may look but not launch.
    assert client_for(users["viewer"]).post(reverse("curation_new"), {}).status_code == 403


@pytest.mark.django_db
def test_editing_a_prompt_adds_a_version_and_prices_are_editable(users):
    defaults = PromptVersion.objects.ensure_defaults()
    client = client_for(users["operator"])
    bad = client.post(reverse("curation_prompt_new"), {"base": defaults["convert"].pk,
                                                       "text": "no placeholders"})
    assert bad.status_code == 302 and PromptVersion.objects.filter(kind="convert").count() == 1
    client.post(reverse("curation_prompt_new"), {"base": defaults["convert"].pk,
                                                 "text": "Convert: {example} -- {content}",
                                                 "example": "ex", "note": "shorter"})
    v2 = PromptVersion.objects.get(kind="convert", number=2)
    assert v2.name == "skythought" and v2.created_by == users["operator"]
    defaults["convert"].refresh_from_db()
    assert "{content}" in defaults["convert"].text and defaults["convert"].example
    assert client.get(reverse("curation_prompts")).status_code == 200
    client.post(reverse("curation_price_save"), {"model": "gpt-4o-mini",
                                                 "input_usd_per_mtok": 0.15,
                                                 "output_usd_per_mtok": 0.6})
    client.post(reverse("curation_price_save"), {"model": "gpt-4o-mini",
                                                 "input_usd_per_mtok": 0.2,
                                                 "output_usd_per_mtok": 0.8})
    assert PriceTable.prices() == {"gpt-4o-mini": (0.2, 0.8)}
    assert PriceTable.cost(PriceTable.prices(), "gpt-4o-mini", 1_000_000, 500_000) == \
        pytest.approx(0.6)
    assert PriceTable.cost(PriceTable.prices(), "unknown", 10, 10) is None
    assert client_for(users["viewer"]).post(reverse("curation_price_save"), {}).status_code \
        == 403
