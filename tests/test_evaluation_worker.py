"""Evaluations through real Celery worker processes, end to end: benchmark fixtures imported by
``load_benchmarks``, runs on the real SmolLM2-135M demo model (gpu queue, transformers backend)
and on an OpenAI-compatible server (api queue), metrics checked against a hand computation."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
from django.core.management import call_command

from devtools.openai_stub import StubServer
from distill.generation.models import prepare_smollm2
from experiments.models import (
    Benchmark,
    BenchmarkResult,
    EvalSample,
    EvaluationRun,
    RunState,
)
from tests.support.processes import celery_worker, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("empty_broker"),
]

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "evaluation"
MODEL_CACHE = Path(os.environ.get("SKYBOARD_MODEL_CACHE", ROOT / "var" / "models"))


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    return prepare_smollm2(MODEL_CACHE / "smollm2-135m-instruct")


def load_math500(**subset) -> Benchmark:
    args = [str(FIXTURES), "--only", "math500"]
    if subset:
        import json

        args += ["--subset", json.dumps(subset)]
    call_command("load_benchmarks", *args)
    return Benchmark.objects.get(slug="math500")


def state_of(run) -> str:
    return type(run).objects.values_list("state", flat=True).get(pk=run.pk)


def hand_pass_at_k(rows: list[list[bool]], k: int) -> float:
    return sum(1 - math.comb(len(r) - sum(r), k) / math.comb(len(r), k) for r in rows) / len(rows)


def test_smollm2_evaluation_end_to_end_on_a_gpu_worker(tmp_path, smollm2_dir):
    bench = load_math500()
    assert bench.problems().count() == 3 and bench.dataset.is_benchmark
    assert bench.template.number == 2 and "\\boxed{}" in bench.template.text
    run = EvaluationRun.create_queued(
        benchmarks=[bench], backend="transformers", model_path=str(smollm2_dir),
        model_name="SmolLM2-135M-Instruct", engine={"batch_size": 6, "dtype": "float32",
                                                   "seed": 7},
        overrides={"n": 3, "temperature": 0.9, "max_tokens": 16},
    )
    assert run.queue == "gpu"
    run.enqueue()
    with celery_worker(tmp_path, queues="gpu") as worker:
        wait_for(lambda: state_of(run) in (RunState.SUCCEEDED, RunState.FAILED), timeout=240,
                 interval=0.5, what=f"the evaluation\n{worker.output()}")
    run.refresh_from_db()
    assert run.state == RunState.SUCCEEDED, run.failure_message
    assert "transformers" in run.engine_version and run.model_revision.startswith("sha256:")
    samples = list(EvalSample.objects.filter(run=run).order_by("problem_id", "sample_index"))
    assert len(samples) == 3 * 3
    for s in samples:
        assert s.prompt_text.startswith("<|im_start|>") and "Return your final response" in \
            s.prompt_text
        assert s.response and 0 < s.completion_tokens <= 16 and s.prompt_tokens > 10
        assert s.reason and s.seed in (7, 8, 9)
        if s.finish_reason == "length":
            assert not s.correct and s.reason == "truncated"
    # Sampling at temperature 0.9 with per-sample seeds: the samples of a problem differ.
    first = [s.response for s in samples if s.problem_id == samples[0].problem_id]
    assert len(set(first)) > 1

    result = BenchmarkResult.objects.get(run=run)
    rows: dict[int, list[bool]] = {}
    for s in samples:
        rows.setdefault(s.problem_id, []).append(s.correct)
    per = [sum(r) / 3 for r in rows.values()]
    mean = sum(per) / 3
    se = math.sqrt(sum((p - mean) ** 2 for p in per) / 2 / 3)
    assert result.samples == 9 and result.problems == 3 and result.n == 3
    assert result.correct == sum(s.correct for s in samples)
    assert result.accuracy == pytest.approx(mean)
    assert result.stderr == pytest.approx(se)
    assert set(result.pass_at_k) == {"1", "2", "3"}
    for k in (1, 2, 3):
        assert result.pass_at_k[str(k)] == pytest.approx(hand_pass_at_k(list(rows.values()), k))
    assert result.mean_completion_tokens == pytest.approx(
        sum(s.completion_tokens for s in samples) / 9)
    assert result.config["sampling"] == {"n": 3, "temperature": 0.9, "top_p": 1.0,
                                         "max_tokens": 16}
    assert run.config["engine"] == {"batch_size": 6, "dtype": "float32", "seed": 7}
    assert result.config["template"]["number"] == 2


def test_endpoint_evaluation_on_an_api_worker_scores_known_answers(tmp_path):
    """The stub server echoes the prompt, so the last \\boxed{} it returns is the one in the
    problem: right for two fixtures (5, 2), wrong for the third (6, not 9)."""
    bench = load_math500()
    with StubServer() as stub:
        run = EvaluationRun.create_queued(
            benchmarks=[bench], source="endpoint", backend="openai", model_path="stub-model",
            base_url=stub.base_url, model_name="stub", overrides={"n": 2, "max_tokens": 200},
        )
        assert run.queue == "api"
        run.enqueue()
        with celery_worker(tmp_path, queues="api") as worker:
            wait_for(lambda: state_of(run) in (RunState.SUCCEEDED, RunState.FAILED),
                     timeout=90, what=f"the evaluation\n{worker.output()}")
    run.refresh_from_db()
    assert run.state == RunState.SUCCEEDED, run.failure_message
    result = BenchmarkResult.objects.get(run=run)
    # Per problem: 1, 1, 0 → avg 2/3; SE = stdev(1, 1, 0) / sqrt(3) = sqrt(1/3) / sqrt(3) = 1/3.
    assert result.accuracy == pytest.approx(2 / 3)
    assert result.stderr == pytest.approx(1 / 3)
    assert result.pass_at_k == {"1": pytest.approx(2 / 3), "2": pytest.approx(2 / 3)}
    wrong = EvalSample.objects.filter(run=run, correct=False)
    assert wrong.count() == 2
    assert {s.extracted for s in wrong} == {"6"} and {s.reason for s in wrong} == {"wrong_answer"}
    # Resuming a finished benchmark stores nothing twice.
    assert EvalSample.objects.filter(run=run).count() == 6
