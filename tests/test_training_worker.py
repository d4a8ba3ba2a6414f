"""Training runs through a real Celery worker and a real LLaMA-Factory (tiny model, CPU).

Launched the way an operator launches them (the form), trained by `llamafactory-cli` from the
training virtualenv, watched through the run page's JSON endpoints.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from django.urls import reverse

from experiments.models import RunState
from tests.support.accounts import client_for
from tests.support.processes import celery_worker, wait_for
from tests.support.training import (
    FIXTURES,
    launch,
    make_export,
    make_sharegpt_dataset,
    state_of,
    trainer_processes,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("empty_broker", "train_venv"),
]


@pytest.fixture
def runs_dir(tmp_path, settings) -> Path:
    """The web side and the worker agree on where run folders live."""
    settings.RUNS_DIR = tmp_path / "runs"
    return settings.RUNS_DIR


def test_sft_on_an_export_and_a_dataset_streams_metrics_and_checkpoints(
    tmp_path, users, tiny_model, runs_dir
):
    export = make_export(FIXTURES / "sharegpt_tiny.jsonl")
    dataset = make_sharegpt_dataset()
    run = launch(
        users,
        model_name_or_path=str(tiny_model),
        sources=[f"trainingset:{export.pk}", f"dataset:{dataset.pk}"],
        mix_strategy="interleave_under",
        interleave_probs="0.5,0.5",
        max_steps="4",
        save_steps="2",
    )
    assert run.state == RunState.QUEUED and run.queue == "gpu"
    with celery_worker(tmp_path, queues="gpu", SKYBOARD_RUNS_DIR=str(runs_dir)) as worker:
        wait_for(
            lambda: state_of(run) in (RunState.SUCCEEDED, RunState.FAILED),
            timeout=240,
            interval=0.5,
            what=f"the training run to finish\n{worker.output()[-3000:]}",
        )
    run.refresh_from_db()
    assert run.state == RunState.SUCCEEDED, f"{run.failure_reason}: {run.failure_message}"
    # Metric points in the database ...
    train = list(run.metrics.filter(kind="train").order_by("step"))
    assert [m.step for m in train] == [1, 2, 3, 4]
    assert all(math.isfinite(m.loss) and m.loss > 0 for m in train)
    assert all(m.grad_norm and m.grad_norm > 0 for m in train)
    assert all(m.tokens_per_s and m.tokens_per_s > 0 for m in train)
    assert train[0].lr > train[-1].lr
    assert run.last_step == 4 and run.total_steps == 4
    # ... and in what the chart draws.
    chart = client_for(users["viewer"]).get(reverse("training_metrics", args=[run.pk])).json()
    assert chart["train"]["step"] == [1, 2, 3, 4]
    assert chart["train"]["loss"] == [m.loss for m in train]
    # Checkpoints registered as they appeared, then the final model.
    ckpts = list(run.checkpoints.order_by("step", "is_final"))
    assert [(c.step, c.is_final) for c in ckpts] == [(2, False), (4, False), (4, True)]
    assert all(c.size_bytes > 0 and Path(c.path).is_dir() for c in ckpts)
    assert ckpts[-1].size_bytes < ckpts[0].size_bytes + ckpts[1].size_bytes  # not the checkpoints
    assert run.final_model == str((run.run_dir / "output").resolve())
    # The files the page shows are the ones the trainer read.
    for name, content in run.files.items():
        assert (run.run_dir / name).read_text() == content
    assert "interleave_under" in run.files["config.yaml"]
    info = run.files["dataset_info.json"]
    assert f"ts{export.pk}_" in info and f"ds{dataset.pk}_" in info
    assert (run.run_dir / "data" / f"ds{dataset.pk}_{dataset.name}.jsonl").is_file()
    live = client_for(users["viewer"]).get(reverse("training_live", args=[run.pk])).json()
    assert "train_loss" in live["log_tail"] or "'loss'" in live["log_tail"]
    assert live["gpu_hours"] > 0 and live["cost_usd"] >= 0
    assert run.gpu_seconds > 0 and run.attempts == 1
    assert trainer_processes(run.run_dir) == []


def test_cancel_kills_every_process_and_resume_continues_from_the_checkpoint(
    tmp_path, users, tiny_model, runs_dir
):
    export = make_export(FIXTURES / "sharegpt_tiny.jsonl")
    run = launch(
        users,
        model_name_or_path=str(tiny_model),
        sources=[f"trainingset:{export.pk}"],
        max_steps="5000",
        save_steps="3",
    )
    operator = client_for(users["operator"])
    with celery_worker(
        tmp_path, queues="gpu", SKYBOARD_RUNS_DIR=str(runs_dir), RUN_HEARTBEAT_SECONDS="0.5"
    ) as worker:
        wait_for(
            lambda: run.checkpoints.filter(step__gte=3).exists(),
            timeout=180,
            interval=0.5,
            what=f"a first checkpoint\n{worker.output()[-3000:]}",
        )
        assert trainer_processes(run.run_dir), "the trainer is not running"
        operator.post(reverse("run_cancel", args=["training", run.pk]))
        wait_for(
            lambda: state_of(run) == RunState.CANCELLED,
            timeout=60,
            what=f"the worker to cancel the run\n{worker.output()[-3000:]}",
        )
        assert trainer_processes(run.run_dir) == []
        run.refresh_from_db()
        first_gpu_seconds = run.gpu_seconds
        assert first_gpu_seconds > 0
        ckpt = run.checkpoints.filter(is_final=False).order_by("-step").first()
        stopped_at = run.last_step
        assert stopped_at >= ckpt.step

        assert operator.post(reverse("training_resume", args=[run.pk])).status_code == 302
        wait_for(
            lambda: run.metrics.filter(step__gt=ckpt.step + 3).exists(),
            timeout=180,
            interval=0.5,
            what=f"the resumed run to train past its checkpoint\n{worker.output()[-3000:]}",
        )
        operator.post(reverse("run_cancel", args=["training", run.pk]))
        wait_for(lambda: state_of(run) == RunState.CANCELLED, timeout=60, what="second cancel")
        assert trainer_processes(run.run_dir) == []
    run.refresh_from_db()
    assert run.attempts == 2 and run.gpu_seconds > first_gpu_seconds
    steps = list(run.metrics.filter(kind="train").values_list("step", flat=True))
    assert steps == list(range(1, len(steps) + 1))  # no gap, no duplicate across attempts
    assert "resum" in (run.run_dir / "train.log").read_text().lower()


def test_zero3_offload_run_through_the_worker(tmp_path, users, tiny_model, runs_dir):
    dataset = make_sharegpt_dataset()
    run = launch(
        users,
        model_name_or_path=str(tiny_model),
        sources=[f"dataset:{dataset.pk}"],
        deepspeed="z3_offload",
        max_steps="2",
        save_steps="100",
    )
    assert "offload_param" in run.files["deepspeed.json"]
    with celery_worker(tmp_path, queues="gpu", SKYBOARD_RUNS_DIR=str(runs_dir)) as worker:
        wait_for(
            lambda: state_of(run) in (RunState.SUCCEEDED, RunState.FAILED),
            timeout=420,
            interval=1,
            what=f"the ZeRO-3 run to finish\n{worker.output()[-3000:]}",
        )
    run.refresh_from_db()
    assert run.state == RunState.SUCCEEDED, f"{run.failure_reason}: {run.failure_message}"
    assert list(run.metrics.values_list("step", flat=True)) == [1, 2]
    assert run.checkpoints.filter(is_final=True).exists()
    assert "deepspeed" in run.log_tail.lower() or "zero" in run.log_tail.lower()


def test_a_broken_dataset_fails_with_a_clear_reason(tmp_path, users, tiny_model, runs_dir):
    export = make_export(FIXTURES / "wrong_layout.jsonl")  # "messages", not "conversations"
    run = launch(users, model_name_or_path=str(tiny_model), sources=[f"trainingset:{export.pk}"])
    with celery_worker(tmp_path, queues="gpu", SKYBOARD_RUNS_DIR=str(runs_dir)) as worker:
        wait_for(
            lambda: state_of(run) in (RunState.SUCCEEDED, RunState.FAILED),
            timeout=180,
            interval=0.5,
            what=f"the run to fail\n{worker.output()[-3000:]}",
        )
    run.refresh_from_db()
    assert run.state == RunState.FAILED
    assert run.failure_reason == "bad_dataset", run.failure_message
    assert "dataset" in run.failure_message.lower()
    page = client_for(users["viewer"]).get(reverse("training_detail", args=[run.pk]))
    assert b"bad_dataset" in page.content
    assert run.metrics.count() == 0 and not run.checkpoints.exists()
