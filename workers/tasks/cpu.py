"""Queue ``cpu``: Verification, imports, exports, diagnostics: anything a CPU does."""

from celery import shared_task

from experiments.models import EvaluationSchedule

from .base import SkyboardTask, execute_run_task


@shared_task(bind=True, base=SkyboardTask, soft_time_limit=21600, time_limit=21600 + 600)
def execute_run(self, kind: str, pk: int) -> str:
    return execute_run_task(self, kind, pk)


@shared_task(base=SkyboardTask, soft_time_limit=300, time_limit=360)
def run_evaluation_schedule(schedule_id: int) -> list[int]:
    """Beat's nightly tick: enqueue evaluations of what a schedule watches and has not
    evaluated yet with the same configuration; returns the new runs' ids."""
    schedule = EvaluationSchedule.objects.filter(pk=schedule_id, enabled=True).first()
    if schedule is None:
        return []
    return [run.pk for run in schedule.run_now()]
