"""Evaluation runs: generate every (problem, sample) of every benchmark, verify, store, score.

Per benchmark: the samples earlier attempts stored are skipped (resume), the rest are generated
in chunks; each chunk is verified and inserted before the next one starts, so a killed worker
loses at most one chunk. Metrics are computed from the stored rows when a benchmark is done.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from django.conf import settings

from distill.evaluation import render
from distill.generation.base import GenRequest, Sampling, get_backend
from distill.generation.transformers_backend import model_revision
from distill.verify import verify_many
from experiments.errors import UserError
from experiments.models import BenchmarkResult, EvalSample, EvaluationRun, Problem
from workers.runner import JobContext, job

log = logging.getLogger(__name__)

CHUNK = 32  # requests per generate → verify → insert round


def verification_input(domain: str, problem: Problem) -> dict:
    return {"domain": domain, "answer": problem.answer, "tests": problem.tests,
            "options": problem.options}


def call_based(problem: Problem) -> bool:
    return isinstance(problem.tests, dict) and problem.tests.get("style") == "call"


@job("evaluation")
def run_evaluation(run: EvaluationRun, ctx: JobContext) -> None:
    results = list(run.results.select_related("benchmark", "benchmark__dataset"))
    if not results:
        raise UserError("the evaluation has no benchmarks")
    if run.backend == "import":
        score_imported(run, results, ctx)
        return
    check_checkpoint(run)
    try:
        backend = get_backend(run.backend, run.backend_config())
    except (ValueError, FileNotFoundError, ImportError, OSError) as exc:
        raise UserError(f"generation backend {run.backend!r}: {exc}") from exc
    total = sum(r.benchmark.problems().count() * r.config["sampling"]["n"] for r in results)
    done_all = 0
    with backend:
        ctx.progress(stage="generate", done=0, total=total, benchmarks={})
        for result in results:
            bench = result.benchmark
            cfg = result.config
            s = cfg["sampling"]
            base = Sampling(temperature=float(s["temperature"]), top_p=float(s["top_p"]),
                            max_tokens=int(s["max_tokens"]), seed=run.seed)
            problems = {p.pk: p for p in bench.problems()}
            have = set(EvalSample.objects.filter(run=run, benchmark=bench).values_list(
                "problem_id", "sample_index"))
            todo = [(pid, i) for pid in problems for i in range(int(s["n"]))
                    if (pid, i) not in have]
            done_all += len(have)
            for start in range(0, len(todo), CHUNK):
                ctx.check_cancel()
                part = todo[start:start + CHUNK]
                requests = []
                for pid, i in part:
                    p = problems[pid]
                    text = render(cfg["template"]["text"], _with_options(p), call_based=call_based(p))
                    sampling = base if base.seed is None else replace(base, seed=base.seed + i)
                    requests.append(GenRequest(key=f"{pid}:{i}", sampling=sampling, sample_index=i,
                                               messages=[{"role": "user", "content": text}]))
                generated = list(backend.generate(requests))
                _store(run, result, problems, generated, {r.key: r for r in requests})
                done_all += len(part)
                ctx.progress(stage="generate", done=done_all, total=total,
                             current=bench.slug)
            ctx.check_cancel()
            result.finish()
            ctx.progress(stage="score", done=done_all, total=total, current=bench.slug)


def score_imported(run: EvaluationRun, results: list[BenchmarkResult], ctx: JobContext) -> None:
    """Imported responses (stored at launch, reason "" until scored): verify them in chunks
    with skyboard's verifiers, then compute the metrics. A resumed run scores what is left."""
    for result in results:
        domain = result.benchmark.domain
        pending = EvalSample.objects.filter(run=run, benchmark_id=result.benchmark_id, reason="")
        total = result.sample_rows().count()
        done = total - pending.count()
        ctx.progress(stage="verify", done=done, total=total, current=result.benchmark.slug)
        while True:
            ctx.check_cancel()
            chunk = list(pending.select_related("problem").order_by("id")[:CHUNK])
            if not chunk:
                break
            verdicts = verify_many(
                [(verification_input(domain, s.problem), s.response, s.finish_reason or None)
                 for s in chunk], max_workers=settings_workers())
            for sample, v in zip(chunk, verdicts, strict=True):
                extracted = v.extracted if isinstance(v.extracted, str) else (
                    "" if v.extracted is None else str(v.extracted))
                sample.correct = bool(v.correct)
                sample.reason = str(v.reason) or "unknown"
                sample.extracted = extracted[:10_000]
                sample.detail = {**(sample.detail or {}),
                                 **(v.detail if isinstance(v.detail, dict) else {})}
            EvalSample.objects.bulk_update(chunk, ["correct", "reason", "extracted", "detail"])
            done += len(chunk)
            ctx.progress(stage="verify", done=done, total=total, current=result.benchmark.slug)
        result.finish()


def check_checkpoint(run: EvaluationRun) -> None:
    """A checkpoint evaluation evaluates the checkpoint's folder as it was at launch: a folder
    whose content changed since (re-saved, overwritten by a resumed training) is refused
    rather than scored under the old checkpoint's name."""
    ck = run.config.get("checkpoint") or {}
    if run.source != "checkpoint":
        return
    if run.model_path.rstrip("/") != str(ck.get("path") or run.model_path).rstrip("/"):
        raise UserError(f"the evaluated path {run.model_path!r} is not the checkpoint's "
                        f"folder {ck.get('path')!r}")
    path = Path(run.model_path)
    if not ck.get("revision") or not (path / "config.json").is_file():
        return
    now = model_revision(path)
    if now != ck["revision"]:
        raise UserError(f"checkpoint folder {run.model_path} changed since the evaluation was "
                        f"launched (revision {ck['revision']} then, {now} now); launch a new "
                        "evaluation to evaluate its current content")


def _with_options(problem: Problem) -> str:
    """GPQA prompts carry their ``A) ...`` options already (shuffled at import with the
    recorded seed); other multiple-choice sets get them appended."""
    options = problem.options
    if not options or "A) " in problem.prompt:
        return problem.prompt
    items = options.items() if isinstance(options, dict) else zip("ABCDEFGHIJ", options,
                                                                   strict=False)
    return problem.prompt + "\n\n" + "\n".join(f"{k}) {v}" for k, v in items)


def _store(run, result: BenchmarkResult, problems: dict, generated: list, sent: dict) -> None:
    domain = result.benchmark.domain
    items = []
    for g in generated:
        pid = int(g.key.split(":")[0])
        items.append((verification_input(domain, problems[pid]),
                      g.completion if g.ok else "", g.finish_reason))
    verdicts = verify_many(items, max_workers=settings_workers())
    rows = []
    for g, v in zip(generated, verdicts, strict=True):
        pid, i = (int(x) for x in g.key.split(":"))
        extracted = v.extracted if isinstance(v.extracted, str) else (
            "" if v.extracted is None else str(v.extracted))
        rows.append(EvalSample(
            run=run, benchmark_id=result.benchmark_id, problem_id=pid, sample_index=i,
            prompt_text=g.prompt_text or sent[g.key].messages[-1]["content"],
            response=g.completion if g.ok else "", extracted=extracted[:10_000],
            correct=bool(v.correct) and g.ok,
            reason=str(v.reason) if g.ok else "generation_error",
            detail=v.detail if isinstance(v.detail, dict) else {},
            finish_reason=g.finish_reason[:16], prompt_tokens=g.prompt_tokens,
            completion_tokens=g.completion_tokens, latency_s=g.latency_s,
            seed=sent[g.key].sampling.seed, error=g.error,
        ))
    EvalSample.objects.bulk_create(rows, ignore_conflicts=True)
    if generated and not run.engine_version:
        first = generated[0]
        EvaluationRun.objects.filter(pk=run.pk).update(
            engine_version=(first.backend_version or first.backend)[:200],
            model_revision=str(first.model.get("revision") or "")[:200])
        run.engine_version = first.backend_version or first.backend


def settings_workers() -> int:
    return max(1, min(settings.VERIFY_SANDBOXES, 8))
