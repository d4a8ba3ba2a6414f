"""Local generation with transformers on CPU (or any torch device): the laptop/demo backend.

Requests with identical sampling parameters are batched (left padding); greedy decoding when
temperature is 0, otherwise sampling seeded per batch, so a seeded request reproduces exactly
(requests with different seeds therefore never share a batch).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from itertools import groupby
from pathlib import Path
from typing import Any

from .base import Backend, GenRequest, GenResult, validate_requests

log = logging.getLogger(__name__)

_IDENTITY_SUFFIXES = {".json", ".safetensors", ".bin", ".jinja", ".model", ".txt", ".gguf"}


def model_revision(path: Path, head_bytes: int = 1 << 20) -> str:
    """A content hash identifying a model folder: every relevant file's name, size and first
    MiB. Cheap (a few MiB read) yet changes with any re-conversion, fine-tune or config edit,
    unlike mtimes, which change on a mere copy."""
    h = hashlib.sha256()
    for f in sorted(p for p in Path(path).rglob("*") if p.is_file()
                    and p.suffix in _IDENTITY_SUFFIXES):
        h.update(str(f.relative_to(path)).encode() + b"\0" + str(f.stat().st_size).encode())
        with f.open("rb") as fh:
            h.update(fh.read(head_bytes))
    return "sha256:" + h.hexdigest()[:16]


class TransformersBackend(Backend):
    name = "transformers"

    def __init__(self, config: dict[str, Any]) -> None:
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer

        unknown = sorted(set(config) - {"model", "batch_size", "device", "dtype", "num_threads",
                                        "model_name"})
        if unknown:
            raise ValueError(f"unknown transformers backend option(s): {unknown}")
        path = Path(config.get("model") or "")
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"transformers backend: {str(path)!r} is not a model folder (no config.json); "
                "prepare the demo model with `python -m distill.generation.models "
                "prepare-smollm2 DEST`")
        self.batch_size = int(config.get("batch_size", 8))
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if config.get("num_threads"):
            torch.set_num_threads(int(config["num_threads"]))
        self.device = config.get("device", "cpu")
        dtype = getattr(torch, config.get("dtype", "float32"))
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.tokenizer.padding_side = "left"  # decoder-only models continue from the right end
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if not self.tokenizer.chat_template:
            raise ValueError(f"{path} has no chat template; the backend needs one")
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(self.device)
        self.model.eval()
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos])
        self.identity = {"name": config.get("model_name") or path.name,
                         "revision": model_revision(path), "path": str(path)}
        self.version = f"transformers {transformers.__version__}, torch {torch.__version__}"
        self._torch = torch

    def render(self, messages: list[dict[str, str]]) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                  add_generation_prompt=True)

    def generate(self, requests: list[GenRequest]) -> Iterator[GenResult]:
        reqs = validate_requests(requests)

        def group_key(r: GenRequest) -> tuple:
            s = r.sampling
            greedy = s.temperature == 0
            return (greedy, s.max_tokens, None if greedy else (s.temperature, s.top_p, s.seed))

        for _, group in groupby(sorted(reqs, key=lambda r: repr(group_key(r))), key=group_key):
            group = list(group)
            for i in range(0, len(group), self.batch_size):
                yield from self._batch(group[i:i + self.batch_size])

    def _batch(self, batch: list[GenRequest]) -> list[GenResult]:
        torch = self._torch
        s = batch[0].sampling
        prompts = [self.render(r.messages) for r in batch]
        t0 = time.monotonic()
        try:
            # The chat template already holds the special tokens; adding them again would
            # double the BOS for some models.
            enc = self.tokenizer(prompts, return_tensors="pt", padding=True,
                                 add_special_tokens=False).to(self.device)
            kwargs: dict[str, Any] = {"max_new_tokens": s.max_tokens,
                                      "pad_token_id": self.tokenizer.pad_token_id}
            if s.temperature == 0:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            else:
                kwargs.update(do_sample=True, temperature=s.temperature, top_p=s.top_p,
                              top_k=None)
                if s.seed is not None:
                    torch.manual_seed(s.seed)
            with torch.inference_mode():
                out = self.model.generate(**enc, **kwargs)
        except Exception as e:  # one bad batch must not lose the others
            log.exception("transformers generation failed for %d request(s)", len(batch))
            return [self._error(r, prompts[k], e, time.monotonic() - t0)
                    for k, r in enumerate(batch)]
        latency = time.monotonic() - t0
        prompt_len = enc["input_ids"].shape[1]
        results = []
        for k, r in enumerate(batch):
            new = out[k, prompt_len:].tolist()
            stop_at = next((j for j, t in enumerate(new) if t in self.eos_ids), None)
            tokens = new if stop_at is None else new[:stop_at]
            finish = "stop" if stop_at is not None or len(new) < s.max_tokens else "length"
            results.append(GenResult(
                key=r.key,
                completion=self.tokenizer.decode(tokens, skip_special_tokens=True),
                finish_reason=finish,
                prompt_tokens=int(enc["attention_mask"][k].sum()),
                completion_tokens=len(tokens),
                latency_s=latency,
                model=dict(self.identity),
                backend=self.name,
                backend_version=self.version,
                prompt_text=prompts[k],
                sample_index=r.sample_index,
            ))
        return results

    def _error(self, r: GenRequest, prompt: str, e: Exception, latency: float) -> GenResult:
        return GenResult(key=r.key, completion="", finish_reason="error", latency_s=latency,
                         model=dict(self.identity), backend=self.name,
                         backend_version=self.version, prompt_text=prompt,
                         error={"type": type(e).__name__, "message": str(e)[:2000],
                                "status": None, "attempts": 1},
                         sample_index=r.sample_index)
