"""The run lifecycle: conditional transitions, heartbeats, cancel and the stale-run reaper."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from experiments.models import DiagnosticRun, RunState, TrainingNode, TrainingRun
from workers import runner
from workers.tasks.maintenance import reap_stale_runs

pytestmark = pytest.mark.django_db


def make_run(**fields) -> DiagnosticRun:
    return DiagnosticRun.objects.create(**{"name": "check", **fields})


def test_start_is_conditional_so_a_duplicate_delivery_cannot_restart_a_run():
    run = make_run()
    assert run.start(worker="w1", pid=1)
    assert not run.start(worker="w2", pid=2)
    run.refresh_from_db()
    assert (run.state, run.worker) == (RunState.RUNNING, "w1")
    assert run.code_version and "django" in run.package_versions


def test_a_finished_run_cannot_be_moved_by_a_late_task():
    run = make_run()
    run.start(worker="w", pid=1)
    assert run.succeed()
    assert not run.fail("error", "late failure from a retried task")
    assert not run.mark_cancelled()
    run.refresh_from_db()
    assert run.state == RunState.SUCCEEDED and run.failure_message == ""


def test_execute_twice_runs_the_job_once():
    run = make_run(config={"hold_seconds": 0})
    assert runner.execute("diagnostic", run.pk, hostname="w") == RunState.SUCCEEDED
    first_started = DiagnosticRun.objects.get(pk=run.pk).started_at
    assert runner.execute("diagnostic", run.pk, hostname="w") == "skipped"
    assert DiagnosticRun.objects.get(pk=run.pk).started_at == first_started


def test_worker_check_records_the_machine():
    run = make_run(config={"hold_seconds": 0})
    runner.execute("diagnostic", run.pk, hostname="w")
    run.refresh_from_db()
    assert run.result["cpus"] >= 1
    assert run.result["packages"]["django"].startswith("5.2")


def test_cancelling_a_queued_run_is_immediate_and_final():
    run = make_run()
    assert run.cancel() == "cancelled"
    assert run.state == RunState.CANCELLED and run.finished_at
    assert runner.execute("diagnostic", run.pk, hostname="w") == "skipped"
    assert run.cancel() == "final"


def test_cancelling_a_running_run_asks_the_worker_to_stop():
    run = make_run()
    run.start(worker="w", pid=1)
    assert run.cancel() == "stopping"
    assert run.state == RunState.RUNNING and run.cancel_requested()


def test_reaper_fails_only_runs_whose_heartbeat_is_stale(settings):
    settings.RUN_STALE_AFTER_SECONDS = 60
    stale, fresh, queued = make_run(name="stale"), make_run(name="fresh"), make_run(name="queued")
    for run in (stale, fresh):
        run.start(worker="w", pid=1)
    DiagnosticRun.objects.filter(pk=stale.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=61)
    )
    assert reap_stale_runs() == 1
    for run in (stale, fresh, queued):
        run.refresh_from_db()
    assert stale.state == RunState.FAILED and stale.failure_reason == "worker_lost"
    assert "stopped sending heartbeats" in stale.failure_message
    assert fresh.state == RunState.RUNNING and queued.state == RunState.QUEUED
    assert reap_stale_runs() == 0


def test_unknown_job_kind_fails_with_a_clear_reason():
    run = TrainingRun.objects.create(name="t")
    saved = runner.JOBS.pop("training", None)
    try:
        assert runner.execute("training", run.pk, hostname="w") == RunState.FAILED
    finally:
        if saved:
            runner.JOBS["training"] = saved
    run.refresh_from_db()
    assert "no worker job is registered" in run.failure_message


def two_node_run() -> tuple[TrainingRun, TrainingNode, TrainingNode]:
    run = TrainingRun.objects.create(name="t", config={"settings": {"nodes": 2}})
    run.reset_nodes()
    run.start(worker="w", pid=1)
    node0, node1 = TrainingNode.objects.filter(run=run).order_by("rank")
    return run, node0, node1


def test_reaper_fails_stale_training_nodes_too_and_node_zero_sees_it(settings):
    settings.RUN_STALE_AFTER_SECONDS = 60
    run, node0, node1 = two_node_run()
    for node in (node0, node1):
        assert node.start(worker="w", pid=1)
    assert not node0.stop_requested()
    TrainingNode.objects.filter(pk=node1.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=61)
    )
    assert reap_stale_runs() == 1
    node1.refresh_from_db()
    assert node1.state == RunState.FAILED and node1.failure_reason == "worker_lost"
    assert node0.stop_requested()  # node 0 stops its trainer: a node it watches failed
    run.refresh_from_db()
    assert run.state == RunState.RUNNING  # node 0 decides the run's state


def test_a_node_runs_through_the_executor_and_stops_with_its_run():
    run, _, node1 = two_node_run()
    body = []
    assert (
        runner.execute_row(
            TrainingNode,
            lambda row, ctx: body.append(row.rank),
            hostname="n1",
            run_id=run.pk,
            rank=1,
        )
        == RunState.SUCCEEDED
    )
    assert body == [1]
    assert runner.execute_row(TrainingNode, body.append, run_id=run.pk, rank=1) == "skipped"
    TrainingNode.objects.filter(pk=node1.pk).update(**TrainingNode.fresh_fields())
    assert run.cancel() == "stopping"
    # The heartbeat's first check sees the cancelled run before the body does any work.
    state = runner.execute_row(
        TrainingNode, lambda row, ctx: ctx.check_cancel(), hostname="n1", run_id=run.pk, rank=1
    )
    assert state == RunState.CANCELLED
