"""Curation runs: generate → verify → reformat → re-verify → export, in one task.

Why one task running the stages in order (rather than a task per chunk per queue): the run
already owns a worker slot of the right kind (``gpu`` for local engines, ``api`` for an HTTP
endpoint); verification is Django-free and runs in this process (code in bwrap sandboxes, math in
checker subprocesses), and reformatting is I/O on the same event loop machinery as API
generation. Every stage works in chunks and persists each sample as it completes under the
unique key (run, problem, sample index, stage), and every stage starts by asking the database
what is still missing. So a killed worker, a resumed run and a re-delivered task all continue
exactly where the database says, with nothing lost and nothing done twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, replace
from itertools import islice
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import Exists, OuterRef

from distill.curation import sharegpt_row, user_prompt, verification_problem, write_export
from distill.generation.base import GenRequest, Sampling, get_backend
from distill.generation.reformat import build_convert_messages, parse_reformatted
from distill.verify import Reason, VerifyConfig, verify_many
from experiments.errors import UserError
from experiments.models import (
    KEEP_WITHOUT_VERIFICATION,
    PIPELINE,
    UNVERIFIED,
    PriceTable,
    Problem,
    RecipeItem,
    Sample,
    Stage,
    TrainingSet,
    TrainingSetVersion,
)
from experiments.models.recipes import component_verifies
from workers.runner import JobContext, job

log = logging.getLogger(__name__)

# Results are saved as they arrive: one INSERT per FLUSH_EVERY results, or sooner once
# FLUSH_SECONDS have passed since the last one (so at a few results a second each is saved at
# once, and a killed worker loses at most about half a second of answers). Progress counts (a
# GROUP BY over the run's samples) are refreshed at most every REPORT_SECONDS. At hundreds of
# results a second, an INSERT and a count every 8 results cost more CPU than the requests.
FLUSH_EVERY = 64
FLUSH_SECONDS = 0.5
REPORT_SECONDS = 1.0
LOCAL_BACKENDS = ("transformers", "vllm")


def chunked(items: Iterable, size: int) -> Iterator[list]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


@job("curation")
def run_curation(run, ctx: JobContext) -> None:
    Pipeline(run, ctx).run_all()


class Pipeline:
    def __init__(self, run, ctx: JobContext) -> None:
        if run.recipe_version_id is None:
            raise UserError("the run has no recipe version")
        if not (run.system_prompt_id and run.template_id and run.convert_prompt_id):
            raise UserError("the run needs a system prompt, a template and a convert prompt")
        self.run = run
        self.ctx = ctx
        self.cfg: dict[str, Any] = run.config or {}
        self.n = int(self.cfg.get("n", 1))
        self.chunk = max(1, int(self.cfg.get("chunk_size", 32)))
        self.prices = PriceTable.prices()
        items = list(
            RecipeItem.objects.filter(version_id=run.recipe_version_id)
            .order_by("component", "position", "problem_id")
            .values_list("problem_id", "component")
        )
        self.problem_ids = [pid for pid, _ in items]
        # The verification policy, from the version's frozen spec (what the run uses, not the
        # recipe as edited since): problem id -> its component's index, for the problems of
        # components with ``verify`` off. Anything not in it is verified.
        components = (run.recipe_version.spec or {}).get("components") or []
        off = {i for i, c in enumerate(components) if not component_verifies(c)}
        self.unverified: dict[int, int] = {pid: ci for pid, ci in items if ci in off}
        self.samples = Sample.objects.filter(run=run)

    # --- driver ---------------------------------------------------------------------------

    def run_all(self) -> None:
        stages = self.run.stages_to_run()
        if self.run.parent_id:
            self.copy_parent()
        # API/engine errors of earlier attempts are retried by this one; rows that succeeded
        # (and error rows of stages this run does not redo) stay.
        self.samples.filter(stage__in=stages, error__isnull=False).exclude(
            attempt=self.run.attempt).delete()
        for stage in stages:
            self.ctx.check_cancel()
            started = time.monotonic()
            self.report(stage)
            getattr(self, f"stage_{stage}")()
            self.add_wall_time(stage, time.monotonic() - started)
        self.report("done")

    def expected(self, counts: dict) -> dict[str, int]:
        return {
            # An imported run's generations are what the file held.
            "generate": counts["generate"]["total"] if self.run.imports
            else len(self.problem_ids) * self.n,
            "verify": counts["generate"]["passed"],
            "reformat": counts["verify"]["passed"] if self.run.reformats else 0,
            "reverify": counts["reformat"]["passed"] if self.run.reformats else 0,
            "export": counts["reverify" if self.run.reformats else "verify"]["passed"],
        }

    def report(self, stage: str) -> None:
        counts = self.samples.stage_counts()
        expected = self.expected(counts)
        stages = {s: {"done": counts[s]["total"] if s in counts else (self.run.exported_rows or 0),
                      "total": expected[s]} for s in PIPELINE}
        current = stages.get(stage, {"done": 0, "total": 0})
        progress = {"stage": stage, "done": current["done"], "total": current["total"],
                    "stages": stages}
        if self.run.beat(progress=progress, counts=counts):
            self.run.progress, self.run.counts = progress, counts

    def add_wall_time(self, stage: str, seconds: float) -> None:
        acc = dict(self.run.accounting or {})
        entry = dict(acc.get(stage) or {})
        entry["wall_s"] = round(entry.get("wall_s", 0.0) + seconds, 3)
        entry["device"] = self.cfg.get("backend") if stage == "generate" else "cpu"
        acc[stage] = entry
        type(self.run).objects.filter(pk=self.run.pk).update(accounting=acc)
        self.run.accounting = acc

    def copy_parent(self) -> None:
        start = PIPELINE.index(self.run.start_stage)
        earlier = [s for s in PIPELINE[:start] if s in Stage.values]
        rows = Sample.objects.filter(run_id=self.run.parent_id, stage__in=earlier).order_by("id")
        for batch in chunked(rows.iterator(chunk_size=1000), 1000):
            for s in batch:
                s.pk = None
                s.run_id = self.run.pk
            Sample.objects.bulk_create(batch, ignore_conflicts=True)

    def persist(self, rows: list[Sample]) -> None:
        if rows:
            Sample.objects.bulk_create(rows, ignore_conflicts=True)

    def pending(self, source: str, target: str):
        """Rows of ``source`` that passed it and have no ``target`` row yet."""
        done = Sample.objects.filter(run=self.run, stage=target, problem=OuterRef("problem"),
                                     sample_index=OuterRef("sample_index"))
        return self.samples.filter(stage=source, correct=True).filter(~Exists(done)).order_by("id")

    # --- generate -------------------------------------------------------------------------

    def backend(self):
        name = self.cfg.get("backend", "transformers")
        options = dict(self.cfg.get("backend_options") or {})
        model = self.cfg.get("model") or ""
        if name == "openai":
            config = {"model": model, "base_url": self.cfg.get("base_url") or None,
                      "api_key": settings.OPENAI_API_KEY, **options}
        elif name == "vllm" and not ({"venv", "python"} & set(options)):
            config = {"model": model, "venv": str(settings.GENERATION_VENV), **options}
        else:
            config = {"model": model, **options}
        try:
            backend = get_backend(name, config)
        except (ValueError, FileNotFoundError, ImportError) as exc:
            raise UserError(f"generation backend {name!r}: {exc}") from exc
        if name == "openai":
            # Cancel interrupts requests in flight, not only the next flush.
            backend.cancel = self.ctx.cancel_event
        return backend

    def messages(self, problem: Problem) -> list[dict[str, str]]:
        user = self.run.template.render(user_prompt(problem.prompt, problem.options))
        msgs = [{"role": "user", "content": user}]
        if self.cfg.get("send_system_prompt", True) and self.run.system_prompt.text.strip():
            msgs.insert(0, {"role": "system", "content": self.run.system_prompt.text})
        return msgs

    def stage_generate(self) -> None:
        have = set(self.samples.filter(stage=Stage.GENERATE).values_list(
            "problem_id", "sample_index"))
        todo = [(pid, i) for pid in self.problem_ids for i in range(self.n) if (pid, i) not in have]
        if not todo:
            return
        s = self.cfg.get("sampling") or {}
        base = Sampling(temperature=float(s.get("temperature", 0.0)),
                        top_p=float(s.get("top_p", 1.0)),
                        max_tokens=int(s.get("max_tokens", 1024)),
                        seed=None if s.get("seed") in (None, "") else int(s["seed"]))
        name = self.cfg.get("backend", "transformers")
        batch = int((self.cfg.get("backend_options") or {}).get("batch_size", 8))
        sent: dict[str, tuple] = {}  # key -> (messages, sampling) until its result is saved

        def requests(part: list[tuple[int, int]]) -> list[GenRequest]:
            problems = Problem.objects.only("prompt", "options").in_bulk([pid for pid, _ in part])
            out = []
            for pid, i in part:
                sampling = base if base.seed is None else replace(base, seed=base.seed + i)
                msgs = self.messages(problems[pid])
                key = f"{pid}:{i}"
                sent[key] = (msgs, sampling)
                out.append(GenRequest(key=key, messages=msgs, sampling=sampling,
                                      sample_index=i))
            return out

        with self.backend() as backend:
            if name in LOCAL_BACKENDS:
                # A local engine batches what it is given: one call per chunk, and a chunk's
                # wall time is shared by its requests for the GPU-seconds accounting.
                for part in chunked(todo, self.chunk):
                    reqs = requests(part)
                    share = max(1, min(batch, len(reqs)))
                    self.stream(backend.generate(reqs),
                                lambda r, share=share: self.generate_row(
                                    r, *sent.pop(r.key), name, share), Stage.GENERATE)
            else:
                # An endpoint gets one lazy stream of every missing request, read from the
                # database a chunk at a time as the backend asks for more, so `concurrency`
                # requests stay in flight across chunks instead of each chunk waiting for
                # its slowest trace.
                stream = (r for part in chunked(todo, self.chunk) for r in requests(part))
                self.stream(backend.generate(stream),
                            lambda r: self.generate_row(r, *sent.pop(r.key), name, 1),
                            Stage.GENERATE)

    def stream(self, results, to_row, stage: str) -> None:
        """Persist results as they arrive, a few at a time, checking for cancel between."""
        buffer: list[Sample] = []
        last = reported = time.monotonic()
        for result in results:
            buffer.append(to_row(result))
            now = time.monotonic()
            if len(buffer) >= FLUSH_EVERY or now - last > FLUSH_SECONDS:
                self.persist(buffer)
                buffer, last = [], now
                if now - reported > REPORT_SECONDS:
                    self.report(stage)
                    reported = now
                self.ctx.check_cancel()
        self.persist(buffer)
        self.report(stage)
        # A cancelled backend stops yielding and returns: say why the stage ended.
        self.ctx.check_cancel()

    def generate_row(self, r, msgs, sampling, backend: str, share: int) -> Sample:
        pid, i = (int(x) for x in r.key.split(":"))
        model_name = str(r.model.get("name") or self.cfg.get("model") or "")
        gpu_s = cost = None
        if backend in LOCAL_BACKENDS:
            # A batch's latency is shared by its requests.
            gpu_s = r.latency_s / share
            cost = gpu_s / 3600 * settings.GPU_HOUR_PRICE_USD
        else:
            cost = PriceTable.cost(self.prices, self.cfg.get("model") or model_name,
                                   r.prompt_tokens, r.completion_tokens)
        return Sample(
            run=self.run, problem_id=pid, sample_index=i, stage=Stage.GENERATE,
            attempt=self.run.attempt, text=r.completion if r.ok else "", messages=msgs,
            prompt_text=r.prompt_text or "", prompt_version_id=self.run.template_id,
            finish_reason=r.finish_reason, prompt_tokens=r.prompt_tokens,
            completion_tokens=r.completion_tokens, latency_s=r.latency_s, backend=r.backend,
            backend_version=r.backend_version[:200], model_name=model_name[:300],
            model_revision=str(r.model.get("revision") or "")[:200], sampling=asdict(sampling),
            seed=sampling.seed, correct=r.ok, reason="" if r.ok else error_reason(r.error),
            error=r.error, cost_usd=cost, gpu_s=gpu_s,
        )

    # --- verify / re-verify -----------------------------------------------------------------

    def stage_verify(self) -> None:
        self.verify_from(Stage.GENERATE, Stage.VERIFY)

    def stage_reverify(self) -> None:
        self.verify_from(Stage.REFORMAT, Stage.REVERIFY)

    def verify_from(self, source: str, target: str) -> None:
        vcfg = self.cfg.get("verify") or {}
        config = VerifyConfig(math_timeout_s=float(vcfg.get("math_timeout_s", 5.0)))
        workers = int(vcfg.get("workers") or min(settings.VERIFY_SANDBOXES, 4))
        while True:
            self.ctx.check_cancel()
            rows = list(self.pending(source, target).select_related("problem")[: self.chunk * 4])
            if not rows:
                return
            # Samples of components with verification off never reach a verifier.
            checked = [r for r in rows if r.problem_id not in self.unverified]
            items = [(verification_problem(r.problem.domain, r.problem.answer, r.problem.tests,
                                           r.problem.options), r.text, r.finish_reason)
                     for r in checked]
            verdicts = dict(zip((r.pk for r in checked),
                                verify_many(items, max_workers=workers, config=config)
                                if items else [], strict=True))
            out = []
            for r in rows:
                if r.pk in verdicts:
                    v = verdicts[r.pk]
                    correct, reason = v.correct, str(v.reason)
                    extracted = "" if v.extracted is None else str(v.extracted)
                    detail, latency = {**(v.detail or {}), "ms": v.ms}, v.ms / 1000
                else:
                    correct, reason = keep_unverified(r.text, r.finish_reason)
                    extracted, latency = "", None
                    detail = {"policy": KEEP_WITHOUT_VERIFICATION,
                              "component": self.unverified[r.problem_id]}
                if target == Stage.REVERIFY and not (r.detail or {}).get("well_formed", True):
                    correct, reason = False, "not_well_formed"
                out.append(Sample(
                    run=self.run, problem_id=r.problem_id, sample_index=r.sample_index,
                    stage=target, attempt=self.run.attempt, finish_reason=r.finish_reason,
                    correct=correct, reason=reason, extracted=extracted[:20000],
                    detail=detail, latency_s=latency,
                ))
            self.persist(out)
            self.report(target)

    # --- reformat -----------------------------------------------------------------------------

    def stage_reformat(self) -> None:
        # The openai SDK takes about a second to import; only a reformat stage needs it.
        from distill.generation.openai_backend import OpenAIBackend

        rcfg = dict(self.cfg.get("reformat") or {})
        rcfg.pop("enabled", None)
        model = rcfg.pop("model", "") or settings.OPENAI_MODEL
        base_url = rcfg.pop("base_url", "") or settings.OPENAI_BASE_URL
        sampling = Sampling(temperature=float(rcfg.pop("temperature", 0.0)),
                            max_tokens=int(rcfg.pop("max_tokens", 16384)))
        chunk = int(rcfg.pop("chunk_size", 256))
        # The run's cancel event interrupts reformat requests in flight (a small model on a
        # CPU can take many minutes per request).
        backend = OpenAIBackend({"model": model, "base_url": base_url,
                                 "api_key": settings.OPENAI_API_KEY, **rcfg},
                                cancel=self.ctx.cancel_event)
        convert = self.run.convert_prompt

        def requests():
            """Verified samples without a reformat row, a page at a time, by id: one lazy
            stream for the whole stage, so pages do not wait for each other's slowest call."""
            last = 0
            while page := list(self.pending(Stage.VERIFY, Stage.REFORMAT)
                               .filter(id__gt=last)[:chunk]):
                last = page[-1].id
                generated = self.samples.filter(
                    stage=Stage.GENERATE, problem_id__in={r.problem_id for r in page}).only(
                    "problem_id", "sample_index", "text")
                texts = {(g.problem_id, g.sample_index): g.text for g in generated}
                failed = []
                for r in page:
                    pid, i = r.problem_id, r.sample_index
                    try:
                        msgs = build_messages(convert, texts[(pid, i)])
                    except ValueError as exc:  # nothing to send (an empty trace)
                        failed.append(self.reformat_row(pid, i, None, model, str(exc)))
                        continue
                    yield GenRequest(key=f"{pid}:{i}", messages=msgs, sampling=sampling,
                                     sample_index=i)
                self.persist(failed)

        self.ctx.check_cancel()
        self.stream(backend.generate(requests()),
                    lambda r: self.reformat_row(*map(int, r.key.split(":")), r, model, None),
                    Stage.REFORMAT)

    def reformat_row(self, pid: int, i: int, r, model: str, invalid: str | None) -> Sample:
        if r is None:  # nothing could be sent (an empty trace)
            error = {"type": "InvalidInput", "message": invalid, "status": None, "attempts": 0}
            return Sample(run=self.run, problem_id=pid, sample_index=i, stage=Stage.REFORMAT,
                          attempt=self.run.attempt, prompt_version_id=self.run.convert_prompt_id,
                          correct=False, reason="error:invalid_input", error=error)
        parsed = parse_reformatted(r.completion) if r.ok else None
        ok = bool(r.ok and parsed["well_formed"])
        reason = "" if ok else (error_reason(r.error) if not r.ok else "malformed")
        if r.ok and r.finish_reason == "length":
            ok, reason = False, "truncated"
        model_name = str(r.model.get("name") or model)
        return Sample(
            run=self.run, problem_id=pid, sample_index=i, stage=Stage.REFORMAT,
            attempt=self.run.attempt, text=r.completion if r.ok else "",
            prompt_version_id=self.run.convert_prompt_id, finish_reason=r.finish_reason,
            prompt_tokens=r.prompt_tokens, completion_tokens=r.completion_tokens,
            latency_s=r.latency_s, backend=r.backend, backend_version=r.backend_version[:200],
            model_name=model_name[:300], model_revision=str(r.model.get("revision") or "")[:200],
            correct=ok, reason=reason, error=r.error,
            detail={"well_formed": bool(parsed and parsed["well_formed"]),
                    "attempts": r.attempts},
            cost_usd=PriceTable.cost(self.prices, model, r.prompt_tokens, r.completion_tokens),
        )

    # --- export -------------------------------------------------------------------------------

    def stage_export(self) -> None:
        # Without a reformat stage the verified teacher trace itself is the training text.
        text_stage = Stage.REFORMAT if self.run.reformats else Stage.GENERATE
        # Human review overrides the verifier: a sample a reviewer rejected is left out; one
        # reviewers accepted against the verifier goes in when it has a text to export.
        accepted = self.run.export_keys()
        system = self.run.system_prompt.text

        def rows() -> Iterator[dict]:
            for part in chunked(accepted, 500):
                pids = {pid for pid, _ in part}
                by_key: dict[tuple, dict[str, Sample]] = {}
                for s in self.samples.filter(stage__in=[Stage.GENERATE, Stage.REFORMAT],
                                             problem_id__in=pids).only(
                        "problem_id", "sample_index", "stage", "text", "messages"):
                    by_key.setdefault((s.problem_id, s.sample_index), {})[s.stage] = s
                for key in part:
                    gen, out = by_key[key][Stage.GENERATE], by_key[key][text_stage]
                    user = next(m["content"] for m in gen.messages if m["role"] == "user")
                    yield sharegpt_row(system, user, out.text)

        dataset_name = f"skyboard_curation_{self.run.pk}"
        directory = Path(settings.RUNS_DIR) / "curation" / str(self.run.pk) / "export"
        out = write_export(directory, dataset_name, rows())
        tset_name = self.cfg.get("training_set") or f"{self.run.recipe_version.recipe.name}-curated"
        TrainingSetVersion.register(
            training_set=TrainingSet.objects.get_or_create(name=tset_name[:200])[0],
            source_run=self.run, path=out["path"], dataset_name=dataset_name,
            dataset_info=out["dataset_info"], row_count=out["rows"], sha256=out["sha256"])
        type(self.run).objects.filter(pk=self.run.pk).update(exported_rows=out["rows"])
        self.run.exported_rows = out["rows"]
        self.report("export")


def build_messages(convert, text: str) -> list[dict[str, str]]:
    return build_convert_messages(convert.text, convert.example, text)


def keep_unverified(text: str, finish_reason: str) -> tuple[bool, str]:
    """The verdict on a sample of a component with verification off: kept when the model
    finished it; cut at max_tokens or empty fails with the verifier's own reason."""
    if finish_reason == "length":
        return False, str(Reason.TRUNCATED)
    if finish_reason == "error":
        return False, "error"
    if not (text or "").strip():
        return False, str(Reason.NO_ANSWER_FOUND)
    return True, UNVERIFIED


def error_reason(error: dict | None) -> str:
    if not error:
        return "error"
    return f"error:{error.get('status') or error.get('type') or 'unknown'}"[:60]
