"""A real `celery worker` process takes runs from the broker and moves them through their
lifecycle in the database; killed with SIGKILL, its run is reaped by a real `celery beat`."""

from __future__ import annotations

import signal

import pytest

from experiments.models import DiagnosticRun, RunState
from tests.support.processes import celery_beat, celery_worker, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("empty_broker"),
]


def state_of(run: DiagnosticRun) -> str:
    return DiagnosticRun.objects.values_list("state", flat=True).get(pk=run.pk)


def test_worker_runs_a_queued_run_to_success(tmp_path):
    run = DiagnosticRun.objects.create(name="check", queue="gpu", config={"hold_seconds": 1})
    run.enqueue()
    with celery_worker(tmp_path, queues="gpu") as worker:
        wait_for(
            lambda: state_of(run) == RunState.SUCCEEDED,
            timeout=60,
            what=f"the run to succeed\n{worker.output()}",
        )
    run.refresh_from_db()
    assert run.worker.startswith("test-")
    assert run.started_at and run.finished_at and run.heartbeat_at
    assert run.progress["stage"] == "hold" and run.progress["done"] == 1.0
    assert run.result["packages"]["celery"]
    assert run.package_versions["django"].startswith("5.2")


def test_cancel_stops_a_running_run(tmp_path):
    run = DiagnosticRun.objects.create(name="long", config={"hold_seconds": 120})
    run.enqueue()
    with celery_worker(tmp_path) as worker:
        wait_for(lambda: state_of(run) == RunState.RUNNING, what="the run to start")
        assert run.cancel() == "stopping"
        wait_for(
            lambda: state_of(run) == RunState.CANCELLED,
            timeout=20,
            what=f"the worker to stop the run\n{worker.output()}",
        )
        # The worker survives and takes the next run.
        nxt = DiagnosticRun.objects.create(name="next", config={"hold_seconds": 0})
        nxt.enqueue()
        wait_for(lambda: state_of(nxt) == RunState.SUCCEEDED, what="the next run")


def test_killed_worker_run_is_reaped_by_beat(tmp_path, settings):
    run = DiagnosticRun.objects.create(name="doomed", config={"hold_seconds": 300})
    run.enqueue()
    with celery_worker(tmp_path) as worker:
        wait_for(lambda: state_of(run) == RunState.RUNNING, what="the run to start")
        worker.kill_group(signal.SIGKILL)
        assert not worker.group_alive()
    assert state_of(run) == RunState.RUNNING  # nobody has noticed yet
    # A fresh worker and beat, reaping every second with a 3 s staleness limit.
    fast_reaper = {"REAPER_INTERVAL_SECONDS": "1", "RUN_STALE_AFTER_SECONDS": "3"}
    with (
        celery_worker(tmp_path, **fast_reaper) as worker,
        celery_beat(tmp_path, **fast_reaper) as beat,
    ):
        wait_for(
            lambda: state_of(run) == RunState.FAILED,
            timeout=60,
            what=f"the reaper\nworker:\n{worker.output()}\nbeat:\n{beat.output()}",
        )
    run.refresh_from_db()
    assert run.failure_reason == "worker_lost"
    assert "stopped sending heartbeats" in run.failure_message
