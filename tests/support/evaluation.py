"""Factories for evaluation tests: plain ``make_*`` functions over the real models."""

from __future__ import annotations

from experiments.models import (
    Benchmark,
    BenchmarkResult,
    Dataset,
    EvalSample,
    EvaluationRun,
    Problem,
    TrainingCheckpoint,
    TrainingRun,
)


def make_benchmark(slug: str = "math500", problems: int = 3, **fields) -> Benchmark:
    existing = Benchmark.objects.filter(slug=slug).first()
    if existing:
        return existing
    dataset = Dataset.objects.create(name=f"bench-{slug}", layout="math500", ready=True)
    for i in range(problems):
        Problem.objects.create(dataset=dataset, row=i, domain="math", source="fixture",
                               prompt=f"What is {i}+1?", answer=str(i + 1),
                               external_id=f"p{i}", content_hash=f"{slug}{i}".ljust(64, "0"))
    return Benchmark.objects.register(slug, dataset, **fields)


def make_checkpoint(training: TrainingRun | None = None, step: int = 100) -> TrainingCheckpoint:
    training = training or TrainingRun.objects.create(name="watched")
    return TrainingCheckpoint.objects.create(run=training, step=step,
                                             path=f"/models/run{training.pk}/checkpoint-{step}")


def make_scored_run(bench: Benchmark, per_problem: list[list[bool]], *, checkpoint=None,
                    model_path: str = "/models/demo", overrides=None):
    """A finished evaluation whose samples have the given verdicts, scored by the model."""
    n = len(per_problem[0])
    # A checkpoint evaluation evaluates the checkpoint's folder: no model path beside it.
    run = EvaluationRun.create_queued(benchmarks=[bench],
                                     model_path="" if checkpoint else model_path,
                                     checkpoint=checkpoint, model_name="demo",
                                     overrides={"n": n, **(overrides or {})})
    problems = list(bench.problems())
    rows = [
        EvalSample(run=run, benchmark=bench, problem=problems[p], sample_index=i,
                   response=f"<b>answer</b> \\boxed{{{p if ok else 'x'}}}", correct=ok,
                   reason="correct" if ok else "wrong_answer", completion_tokens=10 + i,
                   finish_reason="stop")
        for p, verdicts in enumerate(per_problem) for i, ok in enumerate(verdicts)
    ]
    EvalSample.objects.bulk_create(rows)
    type(run).objects.filter(pk=run.pk).update(state="succeeded")
    run.refresh_from_db()
    result = BenchmarkResult.objects.get(run=run)
    result.finish()
    return run, result
