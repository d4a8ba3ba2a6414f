"""Bring your own traces, evaluation side (issue 15): SkyThought result JSON or JSONL of
problem id / prompt / response becomes an evaluation run scored by skyboard's verifiers against
a benchmark, shown as the run's samples, with where it came from recorded, and in Compare. A
malformed file or responses to unknown problems write nothing."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from distill.evaluation.imports import TraceFileError, parse
from experiments.models import BenchmarkResult, EvalSample, EvaluationRun, RunState
from tests.support.accounts import client_for
from tests.support.evaluation import make_benchmark
from workers.runner import execute

# make_benchmark's problems: external ids p0, p1, p2, "What is i+1?", answer i+1.
SKYTHOUGHT = {
    "p0": {"problem": "What is 0+1?", "answer": "1",
           "responses": [{"content": "So \\boxed{1}."}, {"content": "\\boxed{7}"}],
           "token_usages": [{"completion_tokens": 5}, {"completion_tokens": 3}]},
    "p1": {"problem": "What is 1+1?", "answer": "2",
           "responses": [{"content": "<b>two</b> \\boxed{2}"}, {"content": "\\boxed{2}"}]},
    # Named by another id, found by its exact problem text.
    "q-77": {"problem": "What is  2+1?", "responses": [{"content": "\\boxed{4}"},
                                                        {"content": "\\boxed{3}"}]},
}


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def test_parse_both_layouts_and_name_what_is_wrong():
    fmt, rows = parse(json.dumps(SKYTHOUGHT).encode())
    assert fmt == "skythought" and len(rows) == 6
    assert (rows[0].key, rows[0].sample_index, rows[0].completion_tokens) == ("p0", 0, 5)
    lines = b'{"problem_id": "p0", "prompt": "q", "response": "\\\\boxed{1}"}\n' \
            b'{"problem_id": "p0", "response": "\\\\boxed{2}"}\n'
    fmt, rows = parse(lines)
    assert fmt == "jsonl" and [r.sample_index for r in rows] == [0, 1]
    with pytest.raises(TraceFileError, match="line 2: not valid JSON"):
        parse(b'{"problem_id": "p0", "response": "a"}\n{"problem_id": \n', "jsonl")
    with pytest.raises(TraceFileError, match="line 1: no problem id"):
        parse(b'{"response": "a"}\n', "jsonl")
    with pytest.raises(TraceFileError, match="problem 'p0': no \"responses\" list"):
        parse(json.dumps({"p0": {"problem": "q"}}).encode(), "skythought")
    with pytest.raises(TraceFileError, match="empty"):
        parse(b"  \n")


@pytest.mark.django_db
def test_imported_skythought_results_are_scored_shown_and_compared(users, settings):
    bench = make_benchmark()
    client = client_for(users["operator"])
    data = json.dumps(SKYTHOUGHT).encode()
    resp = client.post(reverse("evaluation_import"), {
        "file": upload("results.json", data), "format": "auto", "benchmark": bench.pk,
        "model_name": "Sky-T1 (our rerun)"})
    run = EvaluationRun.objects.get()
    assert resp.status_code == 302 and resp["Location"] == run.get_absolute_url()
    assert run.source == "import" and run.queue == "cpu" and run.model_name == "Sky-T1 (our rerun)"
    origin = run.config["import"]
    assert origin == {"file": "results.json", "format": "skythought",
                      "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                      "responses": 6, "problems": 3, "benchmark_problems": 3,
                      "missing_problems": 0, "outside_subset": 0}
    assert EvalSample.objects.filter(run=run, reason="").count() == 6  # stored, not yet scored

    assert execute("evaluation", run.pk, hostname="test") == RunState.SUCCEEDED
    result = BenchmarkResult.objects.get(run=run)
    # p0: 1 of 2, p1: 2 of 2, p2: 1 of 2 → avg@2 = 4/6.
    assert (result.correct, result.samples, result.n) == (4, 6, 2)
    assert result.accuracy == pytest.approx(4 / 6)
    assert result.mean_completion_tokens == pytest.approx(4.0)  # only p0 reported tokens

    viewer = client_for(users["viewer"])
    detail = viewer.get(run.get_absolute_url()).content.decode()
    assert "<code>results.json</code> (skythought" in detail and "66.7%" in detail
    assert "imported, up to 2 per problem" in detail and "T=None" not in detail
    samples = viewer.get(result.get_absolute_url()).content.decode()
    assert "&lt;b&gt;two&lt;/b&gt;" in samples and "<b>two</b>" not in samples
    compare = viewer.get(reverse("evaluation_compare") + f"?runs={run.pk}").content.decode()
    chart = json.loads(compare.split('id="eval-chart-data" type="application/json">')[1]
                       .split("</script>")[0])
    assert chart["series"][0]["name"] == "Sky-T1 (our rerun)"
    assert chart["series"][0]["values"][0] == pytest.approx(200 / 3)


@pytest.mark.django_db
def test_jsonl_import_into_a_subset_skips_problems_the_subset_leaves_out(users):
    bench = make_benchmark(subset={"limit": 2})
    lines = "\n".join(json.dumps(r) for r in [
        {"problem_id": "p0", "prompt": "What is 0+1?", "response": "\\boxed{1}"},
        {"problem_id": "p2", "prompt": "What is 2+1?", "response": "\\boxed{3}"},  # outside
    ]).encode()
    resp = client_for(users["operator"]).post(reverse("evaluation_import"), {
        "file": upload("out.jsonl", lines), "format": "jsonl", "benchmark": bench.pk,
        "model_name": "mine"})
    assert resp.status_code == 302
    run = EvaluationRun.objects.get()
    assert run.config["import"]["outside_subset"] == 1
    assert run.config["import"]["missing_problems"] == 1
    assert execute("evaluation", run.pk, hostname="test") == RunState.SUCCEEDED
    assert BenchmarkResult.objects.get(run=run).accuracy == 1.0
    page = client_for(users["viewer"]).get(run.get_absolute_url()).content.decode()
    assert "1 problem(s) without a response" in page


@pytest.mark.django_db
def test_a_malformed_file_or_unknown_problems_write_nothing(users):
    bench = make_benchmark()
    client = client_for(users["operator"])
    bad = client.post(reverse("evaluation_import"), {
        "file": upload("out.jsonl", b'{"problem_id": "p0", "response": "x"}\nnot json\n'),
        "format": "auto", "benchmark": bench.pk, "model_name": "m"})
    assert bad.status_code == 400
    assert "out.jsonl: line 2: not valid JSON" in bad.content.decode()

    unknown = dict(SKYTHOUGHT, zz={"problem": "What is the airspeed of a swallow?",
                                   "responses": ["\\boxed{11}"]})
    resp = client.post(reverse("evaluation_import"), {
        "file": upload("r.json", json.dumps(unknown).encode()), "format": "skythought",
        "benchmark": bench.pk, "model_name": "m"})
    page = resp.content.decode()
    assert resp.status_code == 400 and "Nothing imported." in page
    assert "1 response(s) match no problem of benchmark MATH500" in page and "&#x27;zz&#x27;" in page
    assert EvaluationRun.objects.count() == 0 and EvalSample.objects.count() == 0
    assert BenchmarkResult.objects.count() == 0
    # Viewers cannot import.
    viewer = client_for(users["viewer"])
    assert viewer.get(reverse("evaluation_import")).status_code == 403
