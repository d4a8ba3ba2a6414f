"""Bring your own traces: SkyThought result JSON, OpenAI batch output JSONL and JSONL of
prompt/response become a curation run that starts at verification (verify → reformat →
re-verify → export), matched to a recipe version's problems by id or prompt, or imported as a
new dataset; a malformed file is refused with its line number and writes nothing."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from devtools.openai_stub import StubServer
from distill.curation.traces import TraceFormatError, parse_traces
from experiments.models import CurationRun, Dataset, Problem, RunState, Sample
from tests.support.accounts import client_for
from tests.support.curation import SECRET, echo_problems, make_version
from workers.runner import execute


@pytest.fixture(autouse=True)
def _quiet_heartbeat(settings):
    settings.RUN_HEARTBEAT_SECONDS = 600


def _version_with_ids(n: int = 3):
    problems = echo_problems(n, wrong_every=0)
    for p in problems:
        p.external_id = f"q-{p.row}"
        p.save(update_fields=["external_id"])
    return problems, make_version(problems, name="byot")


def _upload(client, data: bytes, name: str, **fields):
    post = {"file": SimpleUploadedFile(name, data), "format": "auto", "domain": "math",
            "reformat_max_tokens": 4096, "reformat_concurrency": 4, **fields}
    from experiments.models import PromptVersion

    defaults = PromptVersion.objects.ensure_defaults()
    post.setdefault("system_prompt", defaults["system"].pk)
    post.setdefault("convert_prompt", defaults["convert"].pk)
    return client.post(reverse("curation_import"), post)


def _skythought(problems) -> bytes:
    out = {}
    for p in problems:
        out[p.external_id] = {
            "problem": p.prompt, "answer": p.answer, "level": 1,
            # Two responses: the right answer, then a wrong one.
            "responses": [{"content": f"Adding gives $\\boxed{{{p.answer}}}$.",
                           "correctness": True},
                          {"content": "I think it is $\\boxed{999}$.", "correctness": False}],
            "token_usages": [{"prompt_tokens": 20, "completion_tokens": 7},
                             {"prompt_tokens": 20, "completion_tokens": 8}]}
    return json.dumps(out, indent=2).encode()


@pytest.mark.django_db(transaction=True)
def test_skythought_results_become_a_run_that_starts_at_verify_and_exports(
        users, settings, tmp_path, empty_broker):
    settings.RUNS_DIR = tmp_path / "runs"
    settings.OPENAI_API_KEY = SECRET
    problems, version = _version_with_ids(3)
    client = client_for(users["operator"])
    with StubServer() as stub:
        resp = _upload(client, _skythought(problems), "results.json",
                       recipe_version=version.pk, model_name="QwQ-32B-Preview",
                       reformat_enabled="on", reformat_model="stub-reformatter",
                       reformat_base_url=stub.base_url)
        run = CurationRun.objects.get()
        assert resp.status_code == 302 and resp["Location"] == run.get_absolute_url()
        assert run.start_stage == "verify" and run.state == "queued" and run.queue == "api"
        assert run.celery_task_id  # launched through the normal verb: sent to its worker
        gen = Sample.objects.filter(run=run, stage="generate").order_by("problem_id",
                                                                       "sample_index")
        assert gen.count() == 6 and run.config["n"] == 2
        first = gen.first()
        assert first.model_name == "QwQ-32B-Preview" and first.backend == "import:skythought"
        assert first.detail["imported"]["file"] == "results.json"
        assert first.detail["imported"]["line"] == 2 and first.detail["imported"]["id"] == "q-0"
        assert first.completion_tokens == 7 and first.messages[0]["content"] == problems[0].prompt
        assert execute("curation", run.pk, hostname="test") == RunState.SUCCEEDED
    run.refresh_from_db()
    counts = {s: (c["total"], c["passed"]) for s, c in run.counts.items()}
    assert counts == {"generate": (6, 6), "verify": (6, 3), "reformat": (3, 3),
                      "reverify": (3, 3)}
    assert run.exported_rows == 3
    page = client.get(run.get_absolute_url()).content.decode()
    assert "imported from <code>results.json</code>" in page
    status = client.get(reverse("curation_status", args=[run.pk])).json()
    assert status["stages"][0]["note"] == "imported" and status["total"]["export"] == 3


@pytest.mark.django_db
def test_openai_batch_output_matches_by_custom_id_and_records_failed_requests(users):
    problems, version = _version_with_ids(2)
    lines = [
        {"id": "batch_req_1", "custom_id": "q-1", "error": None, "response": {
            "status_code": 200, "request_id": "req_1", "body": {
                "model": "gpt-4o-2024-08-06", "choices": [{"index": 0, "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "So $\\boxed{1}$"}}],
                "usage": {"prompt_tokens": 11, "completion_tokens": 5}}}},
        {"id": "batch_req_2", "custom_id": "q-0", "response": None,
         "error": {"code": "batch_expired", "message": "This request could not be executed"}},
    ]
    data = "\n".join(json.dumps(x) for x in lines).encode()
    resp = _upload(client_for(users["operator"]), data, "batch_output.jsonl",
                   recipe_version=version.pk)
    assert resp.status_code == 302
    run = CurationRun.objects.get()
    ok = Sample.objects.get(run=run, problem=problems[1])
    assert ok.text == "So $\\boxed{1}$" and ok.model_name == "gpt-4o-2024-08-06"
    assert ok.correct and ok.detail["imported"]["line"] == 1
    assert ok.detail["imported"]["format"] == "openai_batch" and ok.prompt_tokens == 11
    failed = Sample.objects.get(run=run, problem=problems[0])
    assert not failed.correct and failed.text == "" and failed.error["type"] == "batch_expired"
    assert failed.detail["imported"]["line"] == 2


@pytest.mark.django_db
def test_plain_jsonl_matches_by_prompt_or_becomes_a_new_dataset(users, settings, tmp_path):
    settings.RUNS_DIR = tmp_path / "runs"
    problems, version = _version_with_ids(2)
    client = client_for(users["operator"])
    # By prompt: whitespace and case differ, no id.
    data = json.dumps({"prompt": "  " + problems[1].prompt.upper().replace(" ", "  "),
                       "response": "It is $\\boxed{1}$", "model": "my-vllm"}).encode()
    assert _upload(client, data, "mine.jsonl", recipe_version=version.pk).status_code == 302
    run = CurationRun.objects.get()
    assert Sample.objects.get(run=run).problem_id == problems[1].pk
    # As a new dataset: the prompts (and answers) become problems, with a recipe version.
    rows = [{"id": "a", "prompt": "What is 2+2?", "answer": "4", "response": "$\\boxed{4}$"},
            {"id": "a", "prompt": "What is 2+2?", "answer": "4", "response": "$\\boxed{5}$"},
            {"prompt": "What is 3+3?", "answer": "6", "response": "$\\boxed{6}$"}]
    data = "\n".join(json.dumps(r) for r in rows).encode()
    resp = _upload(client, data, "new.jsonl", new_dataset="my traces", model_name="m")
    assert resp.status_code == 302
    new_run = CurationRun.objects.exclude(pk=run.pk).get()
    dataset = Dataset.objects.get(name="my traces")
    assert dataset.problems.count() == 2 and new_run.recipe_version.problem_count == 2
    assert sorted(Problem.objects.filter(dataset=dataset).values_list("answer", flat=True)) \
        == ["4", "6"]
    assert sorted(Sample.objects.filter(run=new_run).values_list("sample_index", flat=True)) \
        == [0, 0, 1]
    assert execute("curation", new_run.pk, hostname="test") == RunState.SUCCEEDED
    new_run.refresh_from_db()
    assert new_run.counts["verify"]["passed"] == 2 and new_run.exported_rows == 2


@pytest.mark.django_db
@pytest.mark.parametrize(("data", "fmt", "expected"), [
    (b'{"prompt": "a", "response": "b"}\n\n{"prompt": "c", "response": "d"}\n{"prompt": ',
     "auto", "line 4: not JSON"),
    (b'{"prompt": "a", "response": "b"}\n{"prompt": "c", "answer": "d"}\n', "jsonl",
     "line 2: no response"),
    (b'{"custom_id": "q-0", "response": {"status_code": 200, "body": {"choices": []}}}\n',
     "openai_batch", "line 1: 'response.body.choices[0].message' is missing"),
    (b'{\n  "q-0": {"problem": "x", "answer": "1"}\n}', "skythought",
     "line 2: 'q-0': no 'responses'"),
    (b'{"id": "nope", "response": "x"}\n', "jsonl", "line 1: id 'nope' and its prompt match no"),
])
def test_a_bad_file_is_refused_with_its_line_and_writes_nothing(users, data, fmt, expected):
    _, version = _version_with_ids(1)
    before = (Dataset.objects.count(), Problem.objects.count())
    resp = _upload(client_for(users["operator"]), data, "bad.jsonl", recipe_version=version.pk,
                   format=fmt)
    assert resp.status_code == 200
    assert expected in resp.context["form"].errors["file"][0], resp.context["form"].errors
    assert not CurationRun.objects.exists() and not Sample.objects.exists()
    assert (Dataset.objects.count(), Problem.objects.count()) == before


def test_the_dataset_fixture_is_not_a_results_file_and_formats_are_detected():
    from pathlib import Path

    fixture = Path(__file__).parent / "fixtures" / "datasets" / "skythought_results.json"
    with pytest.raises(TraceFormatError, match=r"line 2: 'q-17': no 'responses'"):
        parse_traces(fixture.read_bytes())
    assert parse_traces(b'{"custom_id": "x", "response": null, "error": {"message": "m"}}')[0] \
        == "openai_batch"
    assert parse_traces(b'{"prompt": "p", "response": "r"}')[0] == "jsonl"
    fmt, traces = parse_traces(json.dumps({"k": {"question": "q", "responses": {
        "0.7": [{"content": "a"}, {"content": "b"}]}}}).encode())
    assert fmt == "skythought" and [t.response for t in traces] == ["a", "b"]


@pytest.mark.django_db
def test_only_operators_import(users):
    assert client_for(users["viewer"]).get(reverse("curation_import")).status_code == 403
    page = client_for(users["operator"]).get(reverse("curation_import"))
    assert page.status_code == 200 and b'enctype="multipart/form-data"' in page.content
    assert reverse("curation_import").encode() in client_for(users["operator"]).get(
        reverse("curation_new")).content
