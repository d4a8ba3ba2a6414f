"""Queue ``gpu``: Generation with vLLM, training, evaluation: needs the machine's accelerators."""

from celery import shared_task

from experiments.models import TrainingNode
from workers.runner import execute_row

from .base import SkyboardTask, execute_run_task


@shared_task(bind=True, base=SkyboardTask, soft_time_limit=604800, time_limit=604800 + 600)
def execute_run(self, kind: str, pk: int) -> str:
    return execute_run_task(self, kind, pk)


@shared_task(bind=True, base=SkyboardTask, soft_time_limit=604800, time_limit=604800 + 600)
def train_node(self, run_id: int, node_rank: int) -> str:
    """Node ``node_rank`` (>= 1) of a multi-node training run, its ``TrainingNode`` row run by
    the same executor as every run; node 0 is part of the run's own ``execute_run``."""
    return execute_row(
        TrainingNode, _node_job, hostname=self.request.hostname, run_id=run_id, rank=node_rank
    )


def _node_job(row, ctx) -> None:
    # Imported when a node runs, as the runner imports the job bodies: a broken job module
    # fails the node (and so the run) instead of the worker's start.
    from workers.jobs.training import run_node

    run_node(row, ctx)
