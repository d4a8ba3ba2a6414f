"""The training job: materialise the data, write the LLaMA-Factory files, train, report.

Runs on the ``gpu`` queue. The launcher (``distill/training/launcher.py``) calls back on this
thread; points are stored in batches once per poll, the log tail at most once a second.

Multi-node (``nodes`` = N > 1): one task per node, each node a ``TrainingNode`` row run to
its final state by the runner's ``execute_row`` (start, heartbeat, stop, errors), as the run
is. Node 0 runs inside the run's own task (this job); nodes 1..N-1 are ``train_node`` tasks
(``run_node``). Node 0 publishes its address and a port on the run row, waits until
every node is running, trains, then waits for the others to end and decides the run's state.
Only node 0 stores metric points and checkpoints (LLaMA-Factory writes them from rank 0).
"""

from __future__ import annotations

import logging
import time
from functools import partial
from pathlib import Path

from django.conf import settings

from distill.training.config import ConfigError, validate
from distill.training.failures import CANCELLED, NCCL_ERROR, UNKNOWN
from distill.training.launcher import launch
from experiments.errors import Cancelled, Failed, UserError
from experiments.models import RunState, TrainingNode
from experiments.models.training import LogTail, free_port, master_address, materialise_dataset
from workers.runner import execute_row, job

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

    def __init__(self, run, *contexts):
        self.run = run
        self.contexts = contexts  # the run's; node 0 also its node's (a peer stopped)
        self.points: list = []
        self.tail = LogTail(run.log_tail)
        self.log_dirty = False
        self.log_written = 0.0

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
        return any(ctx.cancelled for ctx in self.contexts)


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


def _train(run, attempt, *contexts, **node):
    """Node 0's (or the only node's) trainer, reporting to the run; its outcome."""
    venv, train_settings, wandb_env, resumed_from = attempt
    contexts[0].progress(stage="train", done=resumed_from or 0, total=run.total_steps)
    reporter = _Reporter(run, *contexts)
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
        **node,
    )
    reporter.flush(force=True)
    run.finish_attempt(outcome)
    return outcome


@job("training")
def run_training(run, ctx) -> None:
    if run.nodes > 1:
        _run_node_zero(run, ctx)
        return
    outcome = _train(run, _begin_attempt(run, ctx), ctx)
    if outcome.failure_reason == CANCELLED or ctx.cancelled:
        raise Cancelled()
    if not outcome.succeeded:
        # The launcher's reason (out_of_memory_gpu, bad_dataset, ...) is the run's; the runner's
        # own succeed() afterwards is a conditional transition and leaves a failed run failed.
        run.fail(outcome.failure_reason or "unknown", outcome.message)


def _finish_node(row, outcome, *, succeeded: bool, cancelled: bool) -> None:
    """A node's final state from its trainer's outcome (the runner leaves it as it is)."""
    fields = {"exit_code": outcome.exit_code, "gpu_seconds": outcome.gpu_seconds}
    if succeeded:
        row.succeed(**fields)
    elif cancelled:
        row.mark_cancelled(outcome.message, **fields)
    else:
        row.fail(outcome.failure_reason or UNKNOWN, outcome.message, **fields)


def _run_node_zero(run, ctx) -> None:
    """Node 0 of a multi-node run, in the run's own task. Its row is run by the executor; an
    error before training ends it, then (raised again) the run. Afterwards the other nodes'
    rows decide the run's state."""
    TrainingNode.objects.get_or_create(run_id=run.pk, rank=0)
    execute_row(
        TrainingNode,
        partial(_node_zero, run, ctx),
        hostname=run.worker,
        propagate=True,
        run_id=run.pk,
        rank=0,
    )
    row = TrainingNode.objects.get(run_id=run.pk, rank=0)
    # Node 0's row is final: the other nodes see it and stop if they still train.
    rows = [row, *_settle(row)]
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


def _node_zero(run, ctx, row, node_ctx) -> None:
    """Node 0's body: ``ctx`` is the run's context, ``node_ctx`` the node's (stops when
    another node failed or stopped)."""
    attempt = _begin_attempt(run, ctx)
    addr, port = master_address(), free_port()
    run.publish_master(addr, port)
    ctx.progress(stage="wait for nodes", done=0, total=run.nodes)
    _wait_until_running(row, ctx, node_ctx)
    if node_ctx.check():
        row.mark_cancelled("another node failed before training started")
        return
    outcome = _train(run, attempt, ctx, node_ctx, node_rank=0, master_addr=addr, master_port=port)
    _finish_node(
        row,
        outcome,
        succeeded=outcome.succeeded,
        cancelled=outcome.failure_reason == CANCELLED,
    )


def _wait_until_running(row, ctx, node_ctx) -> None:
    """Before launching: every node's task has started (bounded), or a node stopped."""
    deadline = time.monotonic() + settings.TRAINING_NODE_WAIT_SECONDS
    while not node_ctx.cancelled:
        waiting = list(row.peers().filter(state=RunState.QUEUED).values_list("rank", flat=True))
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise Failed(
                NODE_TIMEOUT,
                f"node(s) {', '.join(map(str, waiting))} did not start within "
                f"{settings.TRAINING_NODE_WAIT_SECONDS:g} s: is a worker with free slots "
                f"listening on the {row.run.queue} queue for every node?",
            )
        ctx.sleep(0.5)


def _settle(row) -> list[TrainingNode]:
    """After node 0's row is final: the other nodes' final rows (bounded wait)."""
    deadline = time.monotonic() + settings.TRAINING_NODE_SETTLE_SECONDS
    while True:
        row.peers().reap_stale()
        rows = list(row.peers().order_by("rank"))
        if all(r.is_final for r in rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)


def run_node(row, ctx) -> None:
    """Node ``row.rank`` (>= 1) of a multi-node run, in its own ``train_node`` task (the
    executor runs its row); node 0 turns the nodes' outcomes into the run's state."""
    run = row.run
    ctx.check_cancel()
    venv = _check_venv()
    node_dir = run.node_dir(row.rank)
    train_settings = _prepare_data(run, node_dir / "data", ctx.check_cancel)
    addr, port = _wait_for_master(run, ctx)
    # Published after node 0 started this attempt: attempts is current now.
    run.refresh_from_db(fields=["attempts"])
    outcome = launch(
        node_dir,
        train_settings,
        train_venv=venv,
        env_extra={**OFFLINE_ENV, **run.wandb_env()[0]},
        should_cancel=lambda: ctx.cancelled,
        resume=run.attempts > 1,
        node_rank=row.rank,
        master_addr=addr,
        master_port=port,
    )
    run.add_gpu_seconds(outcome.gpu_seconds)
    # Only node 0 saves the model (a node's disk may not hold it): exit code 0 is success.
    _finish_node(
        row,
        outcome,
        succeeded=outcome.exit_code == 0,
        cancelled=outcome.failure_reason == CANCELLED or ctx.cancelled,
    )


def _wait_for_master(run, ctx) -> tuple[str, int]:
    deadline = time.monotonic() + settings.TRAINING_NODE_WAIT_SECONDS
    while True:
        ctx.check_cancel()
        master = run.master()
        if master is not None:
            return master
        if time.monotonic() > deadline:
            raise Failed(
                NODE_TIMEOUT,
                f"node 0 did not publish its address within "
                f"{settings.TRAINING_NODE_WAIT_SECONDS:g} s",
            )
        ctx.sleep(0.5)
