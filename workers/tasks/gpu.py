"""Queue ``gpu``: Generation with vLLM, training, evaluation: needs the machine's accelerators."""

from celery import shared_task

from .base import SkyboardTask, execute_run_task


@shared_task(bind=True, base=SkyboardTask, soft_time_limit=604800, time_limit=604800 + 600)
def execute_run(self, kind: str, pk: int) -> str:
    return execute_run_task(self, kind, pk)


@shared_task(bind=True, base=SkyboardTask, soft_time_limit=604800, time_limit=604800 + 600)
def train_node(self, run_id: int, node_rank: int) -> str:
    """Node ``node_rank`` (>= 1) of a multi-node training run; node 0 is ``execute_run``."""
    # Imported when a node runs, as the runner imports the job bodies: a broken job module
    # fails the run instead of the worker's start.
    from workers.jobs.training import run_training_node

    return run_training_node(run_id, node_rank, hostname=self.request.hostname)
