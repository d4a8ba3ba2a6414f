"""The overview's regression flag, as an inclusion tag so the overview view stays as it is."""

from django import template

from experiments.models import BenchmarkResult

register = template.Library()


@register.inclusion_tag("experiments/evaluation/_overview_regressions.html")
def evaluation_regressions(limit: int = 5) -> dict:
    return {"eval_regressions": list(BenchmarkResult.objects.regressions()[:limit])}
