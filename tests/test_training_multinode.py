"""Multi-node training runs: one task per node, through real Celery workers.

Both "nodes" run on this machine (one worker with two slots, MASTER_ADDR 127.0.0.1): two
torchruns of one CPU process each, joined by torch's gloo backend, with the tiny model.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from django.urls import reverse

from experiments.models import RunState, TrainingNode
from tests.support.accounts import client_for
from tests.support.processes import celery_worker, wait_for
from tests.support.training import FIXTURES, launch, make_export, state_of, trainer_processes

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("empty_broker", "train_venv"),
]

LOCAL = {"TRAINING_MASTER_ADDR": "127.0.0.1", "RUN_HEARTBEAT_SECONDS": "0.5"}


@pytest.fixture
def runs_dir(tmp_path, settings) -> Path:
    settings.RUNS_DIR = tmp_path / "runs"
    return settings.RUNS_DIR


def nodes_of(run) -> list[TrainingNode]:
    return list(TrainingNode.objects.filter(run_id=run.pk).order_by("rank"))


def test_two_cpu_nodes_train_one_model_together(tmp_path, users, tiny_model, runs_dir):
    export = make_export(FIXTURES / "sharegpt_tiny.jsonl")
    run = launch(
        users,
        model_name_or_path=str(tiny_model),
        sources=[f"trainingset:{export.pk}"],
        nodes="2",
        max_steps="4",
        save_steps="2",
    )
    with celery_worker(
        tmp_path, queues="gpu", concurrency=2, SKYBOARD_RUNS_DIR=str(runs_dir), **LOCAL
    ) as worker:
        wait_for(
            lambda: state_of(run) in (RunState.SUCCEEDED, RunState.FAILED),
            timeout=400,
            interval=1,
            what=f"the 2-node run to finish\n{worker.output()[-3000:]}",
        )
        # Node 1 ends on its own, after node 0 has decided (it waits for it).
        wait_for(lambda: all(n.is_final for n in nodes_of(run)), timeout=60, what="node 1")
    run.refresh_from_db()
    assert run.state == RunState.SUCCEEDED, f"{run.failure_reason}: {run.failure_message}"
    nodes = nodes_of(run)
    assert [(n.rank, n.state, n.exit_code) for n in nodes] == [
        (0, RunState.SUCCEEDED, 0),
        (1, RunState.SUCCEEDED, 0),
    ]
    assert all(n.worker and n.gpu_seconds > 0 for n in nodes)
    assert run.master_addr == "127.0.0.1" and run.master_port
    # One job of world size 2: each node's torchrun ran one process of it.
    for log in (run.run_dir / "train.log", run.run_dir / "node-1" / "train.log"):
        text = log.read_text()
        assert "Total train batch size (w. parallel, distributed & accumulation) = 2" in text
    # Metric points and checkpoints once (node 0 only), GPU time of both nodes.
    steps = list(run.metrics.filter(kind="train").values_list("step", flat=True))
    assert steps == [1, 2, 3, 4]
    assert all(math.isfinite(m.loss) for m in run.metrics.all())
    ckpts = list(run.checkpoints.order_by("step", "is_final"))
    assert [(c.step, c.is_final) for c in ckpts] == [(2, False), (4, False), (4, True)]
    assert run.gpu_seconds == pytest.approx(sum(n.gpu_seconds for n in nodes))
    assert run.gpu_seconds > max(n.gpu_seconds for n in nodes)
    page = client_for(users["viewer"]).get(reverse("training_detail", args=[run.pk]))
    assert page.content.decode().count('<span class="state state-succeeded">') == 2
    assert trainer_processes(run.run_dir) == []


def test_cancel_stops_the_processes_of_every_node(tmp_path, users, tiny_model, runs_dir):
    export = make_export(FIXTURES / "sharegpt_tiny.jsonl")
    run = launch(
        users,
        model_name_or_path=str(tiny_model),
        sources=[f"trainingset:{export.pk}"],
        nodes="2",
        max_steps="5000",
    )
    node1_dir = run.run_dir / "node-1"
    with celery_worker(
        tmp_path, queues="gpu", concurrency=2, SKYBOARD_RUNS_DIR=str(runs_dir), **LOCAL
    ) as worker:
        wait_for(
            lambda: run.metrics.filter(step__gte=2).exists(),
            timeout=300,
            interval=1,
            what=f"both nodes training\n{worker.output()[-3000:]}",
        )
        assert trainer_processes(node1_dir), "node 1's trainer is not running"
        assert set(trainer_processes(run.run_dir)) - set(trainer_processes(node1_dir))
        client_for(users["operator"]).post(reverse("run_cancel", args=["training", run.pk]))
        wait_for(
            lambda: state_of(run) == RunState.CANCELLED
            and all(n.is_final for n in nodes_of(run)),
            timeout=90,
            what=f"the run and its nodes to stop\n{worker.output()[-3000:]}",
        )
        assert trainer_processes(run.run_dir) == []  # node 0's and node 1's
    assert [n.state for n in nodes_of(run)] == [RunState.CANCELLED, RunState.CANCELLED]


def test_a_failing_node_fails_the_run_with_its_reason(tmp_path, users, tiny_model, runs_dir):
    export = make_export(FIXTURES / "sharegpt_tiny.jsonl")
    run = launch(
        users, model_name_or_path=str(tiny_model), sources=[f"trainingset:{export.pk}"], nodes="2"
    )
    env = {"SKYBOARD_RUNS_DIR": str(runs_dir), **LOCAL}
    # A good worker takes node 0 (the first message), which publishes its address and waits;
    # then a worker without the training environment takes node 1, which fails.
    with celery_worker(tmp_path, queues="gpu", **env) as good:
        wait_for(
            lambda: run.master() is not None,
            timeout=60,
            what=f"node 0 to publish its address\n{good.output()[-3000:]}",
        )
        assert nodes_of(run)[1].state == RunState.QUEUED
        with celery_worker(
            tmp_path, queues="gpu", SKYBOARD_TRAINING_VENV=str(tmp_path / "no-venv"), **env
        ) as bad:
            wait_for(
                lambda: state_of(run) == RunState.FAILED,
                timeout=60,
                what=f"the run to fail\n{good.output()[-2000:]}\n{bad.output()[-2000:]}",
            )
    run.refresh_from_db()
    node0, node1 = nodes_of(run)
    assert node1.state == RunState.FAILED and node1.failure_reason == "invalid_input"
    assert "training environment is missing" in node1.failure_message
    assert run.failure_reason == "invalid_input"
    assert run.failure_message.startswith(f"node 1 ({node1.worker}): ")
    assert "no-venv" in run.failure_message
    # Node 0 stopped (before launching, or killing its trainer if node 1 had already started).
    assert node0.state == RunState.CANCELLED and node0.exit_code in (None, -15, -9)
    assert trainer_processes(run.run_dir) == []


def test_a_node_that_no_worker_takes_fails_the_run_in_bounded_time(
    tmp_path, users, tiny_model, runs_dir
):
    export = make_export(FIXTURES / "sharegpt_tiny.jsonl")
    run = launch(
        users, model_name_or_path=str(tiny_model), sources=[f"trainingset:{export.pk}"], nodes="2"
    )
    # One slot: node 0 holds it while it waits for node 1, which cannot start.
    with celery_worker(
        tmp_path,
        queues="gpu",
        SKYBOARD_RUNS_DIR=str(runs_dir),
        TRAINING_NODE_WAIT_SECONDS="3",
        **LOCAL,
    ) as worker:
        wait_for(
            lambda: all(n.is_final for n in nodes_of(run)),
            timeout=60,
            what=f"both nodes to end\n{worker.output()[-3000:]}",
        )
    run.refresh_from_db()
    assert run.state == RunState.FAILED and run.failure_reason == "node_timeout"
    assert "node(s) 1 did not start within 3 s" in run.failure_message
    # Node 1 started once the slot was free, saw the failed run and stopped at once.
    assert [n.state for n in nodes_of(run)] == [RunState.FAILED, RunState.CANCELLED]
