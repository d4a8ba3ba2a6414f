"""vLLM offline engine, run as a subprocess in its own virtualenv and process group.

The vLLM environment (CUDA wheels, its own torch) is kept apart from the web app's; the parent
only speaks JSONL with ``vllm_runner.py``: requests in a file, results streamed on stdout as
each chunk finishes. If the runner dies, the requests it did not answer come back as error
results carrying its stderr tail, so nothing is silently lost; stopping the iteration early
kills the whole process group (vLLM starts worker processes for tensor parallelism).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .base import Backend, GenRequest, GenResult, validate_requests
from .transformers_backend import model_revision

log = logging.getLogger(__name__)

RUNNER = Path(__file__).with_name("vllm_runner.py")
_OPTIONS = {"model", "venv", "python", "tensor_parallel_size", "dtype", "max_model_len",
            "seed", "chunk_size", "gpu_memory_utilization", "kv_cache_memory_bytes",
            "enforce_eager", "trust_remote_code", "env", "model_name", "revision"}


class VLLMBackend(Backend):
    name = "vllm"

    def __init__(self, config: dict[str, Any]) -> None:
        unknown = sorted(set(config) - _OPTIONS)
        if unknown:
            raise ValueError(f"unknown vllm backend option(s): {unknown}")
        if not config.get("model"):
            raise ValueError("the vllm backend needs a 'model'")
        if config.get("python"):
            python = Path(config["python"])
        elif config.get("venv"):  # runs pass the GENERATION_VENV setting
            python = Path(config["venv"]) / "bin" / "python"
        else:
            raise ValueError("the vllm backend needs 'venv' (GENERATION_VENV) or 'python'")
        if not python.exists():
            raise FileNotFoundError(f"vLLM interpreter {python} does not exist")
        self.python = python
        self.config = dict(config)
        model_path = Path(config["model"])
        revision = config.get("revision") or (
            model_revision(model_path) if model_path.is_dir() else None)
        self.identity = {"name": config.get("model_name") or config["model"],
                         "revision": revision}
        self.version = "vllm (not started)"

    def _runner_config(self) -> dict[str, Any]:
        keep = _OPTIONS - {"venv", "python", "env", "model_name", "revision"}
        return {k: v for k, v in self.config.items() if k in keep}

    def generate(self, requests: list[GenRequest]) -> Iterator[GenResult]:
        reqs = validate_requests(requests)
        if not reqs:
            return
        by_key = {r.key: r for r in reqs}
        with tempfile.TemporaryDirectory(prefix="skyboard-vllm-") as tmp:
            cfg_path, req_path = Path(tmp, "config.json"), Path(tmp, "requests.jsonl")
            cfg_path.write_text(json.dumps(self._runner_config()))
            with req_path.open("w") as f:
                for r in reqs:
                    f.write(json.dumps({"key": r.key, "messages": r.messages,
                                        **asdict(r.sampling)}) + "\n")
            stderr_path = Path(tmp, "stderr.log")
            env = dict(os.environ, **{k: str(v) for k, v in
                                      (self.config.get("env") or {}).items()})
            with stderr_path.open("wb") as stderr:
                proc = subprocess.Popen(
                    [str(self.python), str(RUNNER), str(cfg_path), str(req_path)],
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, env=env,
                    start_new_session=True)  # its own process group, killed as a whole
                try:
                    fatal = None
                    for line in proc.stdout:
                        try:
                            msg = json.loads(line)
                        except ValueError:
                            log.warning("vllm runner wrote a non-JSON line: %r", line[:200])
                            continue
                        event = msg.get("event")
                        if event == "ready":
                            device = msg.get("device")
                            self.version = (f"vllm {msg.get('vllm_version')}"
                                            + (f" ({device})" if device else ""))
                        elif event == "fatal":
                            fatal = msg.get("error") or {}
                        elif event == "result" and msg.get("key") in by_key:
                            yield self._result(by_key.pop(msg["key"]), msg)
                    proc.wait()
                finally:
                    _end_group(proc)
                    proc.stdout.close()
            if by_key:  # the runner died or refused: account for every unanswered request
                tail = stderr_path.read_text(errors="replace")[-2000:]
                err = {"type": fatal.get("type", "EngineError") if fatal else "RunnerExited",
                       "message": (fatal.get("message", "") if fatal else
                                   f"vLLM runner exited with status {proc.returncode}")
                       + (f"\n--- runner stderr (tail) ---\n{tail}" if tail else ""),
                       "status": None, "attempts": 1}
                log.error("vllm runner left %d request(s) unanswered: %s", len(by_key),
                          err["type"])
                for r in by_key.values():
                    yield GenResult(key=r.key, completion="", finish_reason="error",
                                    model=dict(self.identity), backend=self.name,
                                    backend_version=self.version, error=dict(err),
                                    sample_index=r.sample_index)

    def _result(self, req: GenRequest, msg: dict[str, Any]) -> GenResult:
        error = msg.get("error")
        finish = "error" if error else msg.get("finish_reason") or "stop"
        return GenResult(
            key=req.key, completion=msg.get("completion") or "", finish_reason=finish,
            prompt_tokens=msg.get("prompt_tokens"),
            completion_tokens=msg.get("completion_tokens"),
            latency_s=float(msg.get("latency_s") or 0.0), model=dict(self.identity),
            backend=self.name, backend_version=self.version,
            prompt_text=msg.get("prompt_text"), error=error, sample_index=req.sample_index)


def _end_group(proc: subprocess.Popen, term_wait: float = 10, grace: float = 3) -> None:
    """Stop the runner if it still runs (SIGTERM to its process group, SIGKILL after
    ``term_wait``), then make sure nothing of its group outlives it: vLLM's engine core and
    workers get ``grace`` seconds to finish their SIGTERM shutdown, then whatever is left is
    killed -- multiprocessing's resource tracker ignores SIGTERM and was seen staying behind
    indefinitely once the runner was gone."""
    pgid = proc.pid  # start_new_session: the runner leads its own group
    if proc.poll() is None:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(term_wait)
        except subprocess.TimeoutExpired:
            pass
    deadline = time.monotonic() + grace
    while True:
        try:
            os.killpg(pgid, 0)  # anyone left in the group (zombies count until reaped)?
        except ProcessLookupError:
            break
        if time.monotonic() >= deadline:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            break
        time.sleep(0.05)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        log.error("vllm runner %d survived SIGKILL", proc.pid)
