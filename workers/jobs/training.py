"""The training job: materialise the data, write the LLaMA-Factory files, train, report.

Runs on the ``gpu`` queue. The launcher (``distill/training/launcher.py``) calls back on this
thread; points are stored in batches once per poll, the log tail at most once a second.

Multi-node (``nodes`` = N > 1): one task per node. Node 0 is the run's own task (this job,
through the runner: start, heartbeat, final state); nodes 1..N-1 are ``train_node`` tasks
(``run_training_node``). Node 0 publishes its address and a port on the run row, waits until
every node is running, trains, then waits for the others to end and decides the run's state.
Only node 0 stores metric points and checkpoints (LLaMA-Factory writes them from rank 0).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.utils import timezone

from distill.training.config import ConfigError, validate
from distill.training.failures import CANCELLED, NCCL_ERROR, UNKNOWN
from distill.training.launcher import launch
from experiments.models import FailureReason, RunState, TrainingNode, TrainingRun
from experiments.models.training import LogTail, free_port, master_address, materialise_dataset
from workers.runner import Cancelled, UserError, job

log = logging.getLogger(__name__)
NODE_TIMEOUT = "node_timeout"
# A node failing for its own reason makes its peers fail with communication errors: the
# specific reason is the run's.
GENERIC_REASONS = {NCCL_ERROR, UNKNOWN, CANCELLED}

# The trainer runs offline: models and data are local paths; a hub lookup would only hang.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
LOG_WRITE_INTERVAL_S = 1.0


class _Reporter:
    """Buffers what the launcher reports and writes it to the run row."""

    def __init__(self, run, ctx):
        self.run = run
        self.ctx = ctx
        self.points: list = []
        self.tail = LogTail(run.log_tail)
        self.log_dirty = False
        self.log_written = 0.0
        self.nodes: _Peers | None = None  # multi-node: node 0 also watches the other nodes

    def on_metric(self, point) -> None:
        self.points.append(point)

    def on_log(self, text: str) -> None:
        self.tail.add(text)
        self.log_dirty = True

    def on_checkpoint(self, ckpt) -> None:
        self.run.register_checkpoint(ckpt.step, ckpt.path, ckpt.size_bytes)

    def flush(self, *, force: bool = False) -> None:
        if self.points:
            points, self.points = self.points, []
            self.run.add_metrics(points)
        now = time.monotonic()
        if self.log_dirty and (force or now - self.log_written >= LOG_WRITE_INTERVAL_S):
            self.run.set_log_tail(self.tail.text())
            self.log_dirty = False
            self.log_written = now

    def should_cancel(self) -> bool:
        # Called once per launcher poll, after metrics and output were handed over.
        self.flush()
        if self.nodes is not None and self.nodes.check():
            return True
        return self.ctx.cancelled


def _check_venv() -> Path:
    venv = Path(settings.TRAINING_VENV)
    if not (venv / "bin" / "llamafactory-cli").exists():
        raise UserError(
            f"the training environment is missing on this worker ({venv}); run `make train-env`"
        )
    return venv


def _prepare_data(run, data_dir: Path | None, check_cancel):
    """Materialise imported datasets (into data_dir), build and validate the settings."""
    try:
        sources = run.sources(data_dir)
    except Exception as exc:  # a deleted dataset or export
        raise UserError(f"a training dataset is no longer available: {exc}") from exc
    for source in sources:
        if source["kind"] == "dataset":
            rows = materialise_dataset(source["id"], Path(source["file"]))
            if rows == 0:
                raise UserError(
                    f"dataset {source['label']} has no rows with an assistant answer to train on"
                )
        check_cancel()
    try:
        train_settings = run.training_settings(sources)
        validate(train_settings)
    except ConfigError as exc:
        raise UserError(str(exc)) from exc
    return train_settings


class _Peers:
    """Node 0's view of the other nodes: heart-beats node 0's row, notices a failed or lost
    node (then node 0 stops its trainer), at most once per heartbeat interval."""

    def __init__(self, run):
        self.run = run
        self.row, _ = TrainingNode.objects.get_or_create(run_id=run.pk, rank=0)
        self.interval = settings.RUN_HEARTBEAT_SECONDS
        self.last = 0.0
        self.stopped = False

    def others(self) -> list[TrainingNode]:
        rows = list(TrainingNode.objects.filter(run_id=self.run.pk, rank__gt=0).order_by("rank"))
        now = timezone.now()
        for row in rows:
            if row.is_stale(now):
                row.finish(
                    RunState.FAILED,
                    reason=FailureReason.WORKER_LOST,
                    message=f"the worker of node {row.rank} ({row.worker}) stopped heart-beating",
                )
        return rows

    def check(self, *, force: bool = False) -> bool:
        """True once another node failed or was stopped: node 0 must stop too."""
        if self.stopped:
            return True
        now = time.monotonic()
        if not force and now - self.last < self.interval:
            return False
        self.last = now
        self.row.beat()
        if any(r.state in (RunState.FAILED, RunState.CANCELLED) for r in self.others()):
            self.stopped = True
        return self.stopped

    def wait_until_running(self, ctx) -> None:
        """Before launching: every node's task has started (bounded)."""
        deadline = time.monotonic() + settings.TRAINING_NODE_WAIT_SECONDS
        while True:
            if self.check(force=True):
                return  # a node failed: the run fails with its reason after the wait
            waiting = [r.rank for r in self.others() if r.state == RunState.QUEUED]
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise _NodeError(
                    NODE_TIMEOUT,
                    f"node(s) {', '.join(map(str, waiting))} did not start within "
                    f"{settings.TRAINING_NODE_WAIT_SECONDS:g} s: is a worker with free slots "
                    f"listening on the {self.run.queue} queue for every node?",
                )
            ctx.sleep(0.5)

    def settle(self) -> list[TrainingNode]:
        """After node 0's trainer exited: the other nodes' final rows (bounded wait)."""
        deadline = time.monotonic() + settings.TRAINING_NODE_SETTLE_SECONDS
        while True:
            rows = self.others()
            if all(r.is_final for r in rows) or time.monotonic() > deadline:
                return rows
            time.sleep(0.5)


class _NodeError(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def _pick_failure(rows: list[TrainingNode]) -> TrainingNode | None:
    """The failed node whose reason becomes the run's: a specific reason (out of memory, bad
    dataset, worker lost...) before a generic one (NCCL, unknown), then the earliest."""
    failed = [r for r in rows if r.state == RunState.FAILED]
    failed.sort(key=lambda r: (r.failure_reason in GENERIC_REASONS, r.finished_at, r.rank))
    return failed[0] if failed else None


def _begin_attempt(run, ctx):
    """What every attempt does before launching (node 0 of a multi-node run included): check
    the training env, write the data, render and record the files, start the attempt."""
    venv = _check_venv()
    ctx.progress(stage="prepare data")
    train_settings = _prepare_data(run, None, ctx.check_cancel)
    try:
        files = run.render_files(check_files=True)
    except ConfigError as exc:
        raise UserError(str(exc)) from exc
    wandb_env, wandb_url = run.wandb_env()
    resumed_from = run.start_attempt(files, wandb_url)
    return venv, train_settings, wandb_env, resumed_from


@job("training")
def run_training(run, ctx) -> None:
    if run.nodes > 1:
        _run_node_zero(run, ctx)
        return
    venv, train_settings, wandb_env, resumed_from = _begin_attempt(run, ctx)
    ctx.progress(stage="train", done=resumed_from or 0, total=run.total_steps)
    reporter = _Reporter(run, ctx)
    outcome = launch(
        run.run_dir,
        train_settings,
        train_venv=venv,
        env_extra={**OFFLINE_ENV, **wandb_env},
        on_metric=reporter.on_metric,
        on_log=reporter.on_log,
        on_checkpoint=reporter.on_checkpoint,
        should_cancel=reporter.should_cancel,
        resume=resumed_from is not None,
    )
    reporter.flush(force=True)
    run.finish_attempt(outcome)
    if outcome.failure_reason == CANCELLED or ctx.cancelled:
        raise Cancelled()
    if not outcome.succeeded:
        # The launcher's reason (out_of_memory_gpu, bad_dataset, ...) is the run's; the runner's
        # own succeed() afterwards is a conditional transition and leaves a failed run failed.
        run.fail(outcome.failure_reason or "unknown", outcome.message)


def _run_node_zero(run, ctx) -> None:
    """Node 0 of a multi-node run: the run's own task."""
    peers = _Peers(run)
    row = peers.row
    row.start(worker=run.worker, pid=os.getpid())
    try:
        venv, train_settings, wandb_env, resumed_from = _begin_attempt(run, ctx)
        addr, port = master_address(), free_port()
        run.publish_master(addr, port)
        ctx.progress(stage="wait for nodes", done=0, total=run.nodes)
        peers.wait_until_running(ctx)
    except Cancelled:
        row.finish(RunState.CANCELLED)
        raise
    except _NodeError as exc:
        row.finish(RunState.FAILED, reason=exc.reason, message=str(exc))
        run.fail(exc.reason, str(exc))
        return
    except UserError as exc:
        row.finish(RunState.FAILED, reason=FailureReason.INVALID_INPUT, message=str(exc))
        raise
    except BaseException as exc:
        row.finish(RunState.FAILED, reason=FailureReason.ERROR, message=f"{exc}")
        raise
    outcome = None
    if not peers.stopped:
        ctx.progress(stage="train", done=resumed_from or 0, total=run.total_steps)
        reporter = _Reporter(run, ctx)
        reporter.nodes = peers
        try:
            outcome = launch(
                run.run_dir,
                train_settings,
                train_venv=venv,
                env_extra={**OFFLINE_ENV, **wandb_env},
                on_metric=reporter.on_metric,
                on_log=reporter.on_log,
                on_checkpoint=reporter.on_checkpoint,
                should_cancel=reporter.should_cancel,
                resume=resumed_from is not None,
                node_rank=0,
                master_addr=addr,
                master_port=port,
            )
        except BaseException as exc:
            row.finish(RunState.FAILED, reason=FailureReason.ERROR, message=f"{exc}")
            raise
        reporter.flush(force=True)
        run.finish_attempt(outcome)
        stopped = outcome.failure_reason == CANCELLED
        row.finish(
            RunState.SUCCEEDED
            if outcome.succeeded
            else RunState.CANCELLED
            if stopped
            else RunState.FAILED,
            exit_code=outcome.exit_code,
            reason="" if outcome.succeeded or stopped else outcome.failure_reason or UNKNOWN,
            message="" if outcome.succeeded else outcome.message,
            gpu_seconds=outcome.gpu_seconds,
        )
    else:
        row.finish(RunState.CANCELLED, message="another node failed before training started")
    # Node 0's row is final: the other nodes see it and stop if they still train.
    rows = [row, *peers.settle()]
    failed = _pick_failure(rows)
    if failed is not None:
        run.fail(
            failed.failure_reason or UNKNOWN,
            f"node {failed.rank} ({failed.worker or 'no worker'}): {failed.failure_message}",
        )
        return
    if ctx.cancelled or run.cancel_requested():
        raise Cancelled()
    unfinished = [r for r in rows if r.state != RunState.SUCCEEDED]
    if unfinished:
        r = unfinished[0]
        run.fail(
            NODE_TIMEOUT if not r.is_final else UNKNOWN,
            f"node {r.rank} ({r.worker or 'no worker'}) ended {r.state}"
            + (f": {r.failure_message}" if r.failure_message else ""),
        )


class _NodeWatch:
    """A node (rank >= 1) heart-beats its row and stops when the run is cancelled, failed, or
    node 0 stopped; checked at most once per heartbeat interval."""

    def __init__(self, run, row):
        self.run = run
        self.row = row
        self.interval = settings.RUN_HEARTBEAT_SECONDS
        self.last = 0.0
        self.cancelled = False

    def should_cancel(self, *, force: bool = False) -> bool:
        if self.cancelled:
            return True
        now = time.monotonic()
        if not force and now - self.last < self.interval:
            return False
        self.last = now
        alive = self.row.beat()
        state, cancel_at = TrainingRun.objects.values_list("state", "cancel_requested_at").get(
            pk=self.run.pk
        )
        node0_stopped = TrainingNode.objects.filter(
            run_id=self.run.pk, rank=0, state__in=[RunState.FAILED, RunState.CANCELLED]
        ).exists()
        if (
            not alive
            or cancel_at is not None
            or state in (RunState.FAILED, RunState.CANCELLED)
            or node0_stopped
        ):
            self.cancelled = True
        return self.cancelled

    def check_cancel(self) -> None:
        if self.should_cancel(force=True):
            raise Cancelled()

    def wait_for_master(self) -> tuple[str, int]:
        deadline = time.monotonic() + settings.TRAINING_NODE_WAIT_SECONDS
        while True:
            self.check_cancel()
            master = self.run.master()
            if master is not None:
                return master
            if time.monotonic() > deadline:
                raise _NodeError(
                    NODE_TIMEOUT,
                    f"node 0 did not publish its address within "
                    f"{settings.TRAINING_NODE_WAIT_SECONDS:g} s",
                )
            time.sleep(0.5)


def run_training_node(run_id: int, rank: int, *, hostname: str | None = None) -> str:
    """Node ``rank`` (>= 1) of a multi-node run, in its own Celery task. Records itself in its
    ``TrainingNode`` row; node 0 turns the nodes' outcomes into the run's state."""
    import socket

    row = TrainingNode.objects.select_related("run").filter(run_id=run_id, rank=rank).first()
    if row is None:
        log.warning("training run %s has no node %s; nothing to do", run_id, rank)
        return "missing"
    run = row.run
    if not row.start(worker=hostname or socket.gethostname(), pid=os.getpid()):
        log.info("node %s of training run %s is %s; not starting it", rank, run_id, row.state)
        return "skipped"
    watch = _NodeWatch(run, row)
    try:
        watch.check_cancel()
        venv = _check_venv()
        node_dir = run.node_dir(rank)
        train_settings = _prepare_data(run, node_dir / "data", watch.check_cancel)
        addr, port = watch.wait_for_master()
        # Published after node 0 started this attempt: attempts is current now.
        run.refresh_from_db(fields=["attempts"])
        outcome = launch(
            node_dir,
            train_settings,
            train_venv=venv,
            env_extra={**OFFLINE_ENV, **run.wandb_env()[0]},
            should_cancel=watch.should_cancel,
            heartbeat_interval_s=settings.RUN_HEARTBEAT_SECONDS,
            resume=run.attempts > 1,
            node_rank=rank,
            master_addr=addr,
            master_port=port,
        )
    except Cancelled:
        row.finish(RunState.CANCELLED)
    except _NodeError as exc:
        row.finish(RunState.FAILED, reason=exc.reason, message=str(exc))
    except UserError as exc:
        row.finish(RunState.FAILED, reason=FailureReason.INVALID_INPUT, message=str(exc))
    except SoftTimeLimitExceeded:
        row.finish(RunState.FAILED, reason=FailureReason.TIMEOUT, message="time limit exceeded")
    except Exception as exc:
        log.exception("node %s of training run %s failed", rank, run_id)
        row.finish(
            RunState.FAILED, reason=FailureReason.ERROR, message=f"{type(exc).__name__}: {exc}"
        )
    else:
        run.add_gpu_seconds(outcome.gpu_seconds)
        # Only node 0 saves the model (a node's disk may not hold it): exit code 0 is success.
        if outcome.exit_code == 0:
            row.finish(RunState.SUCCEEDED, exit_code=0, gpu_seconds=outcome.gpu_seconds)
        elif outcome.failure_reason == CANCELLED or watch.cancelled:
            row.finish(
                RunState.CANCELLED, exit_code=outcome.exit_code, gpu_seconds=outcome.gpu_seconds
            )
        else:
            row.finish(
                RunState.FAILED,
                exit_code=outcome.exit_code,
                reason=outcome.failure_reason or UNKNOWN,
                message=outcome.message,
                gpu_seconds=outcome.gpu_seconds,
            )
    row.refresh_from_db()
    return row.state
