"""The tiny model fixture: deterministic, ChatML, loadable by both transformers versions."""

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from devtools.tiny_model import make_tiny_model


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_same_seed_same_files_and_chatml_template(tmp_path):
    a = make_tiny_model(tmp_path / "a")
    b = make_tiny_model(tmp_path / "b")
    assert digest(a) == digest(b)
    c = make_tiny_model(tmp_path / "c", seed=1)
    assert digest(c)["model.safetensors"] != digest(a)["model.safetensors"]

    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(a)
    text = tok.apply_chat_template(
        [{"role": "user", "content": "What is 2 + 3?"}], tokenize=False, add_generation_prompt=True
    )
    assert text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n"
    )
    ids = tok(text)["input_ids"]
    # Special tokens are single ids, and byte-level BPE round-trips any text.
    assert ids[0] == tok.convert_tokens_to_ids("<|im_start|>")
    assert tok.decode(ids) == text
    assert tok.decode(tok("ünïcödé ∑ 🙂")["input_ids"]) == "ünïcödé ∑ 🙂"
    model = AutoModelForCausalLM.from_pretrained(a)
    assert model.config.num_hidden_layers == 2 and model.config.hidden_size == 64
    assert (
        model.generation_config.eos_token_id
        == tok.eos_token_id
        == tok.convert_tokens_to_ids("<|im_end|>")
    )


def test_llama_arch_and_bad_arch(tmp_path):
    from transformers import AutoConfig

    assert (
        AutoConfig.from_pretrained(make_tiny_model(tmp_path / "l", arch="llama")).model_type
        == "llama"
    )
    with pytest.raises(ValueError, match="unknown tiny model arch 'gpt5'"):
        make_tiny_model(tmp_path / "x", arch="gpt5")


@pytest.mark.integration  # runs the training virtualenv's transformers
def test_training_venv_transformers_loads_it(tmp_path, train_venv):
    venv = train_venv
    folder = make_tiny_model(tmp_path / "m")
    script = (
        "import sys, transformers\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
        "t = AutoTokenizer.from_pretrained(sys.argv[1]); AutoModelForCausalLM.from_pretrained(sys.argv[1])\n"
        "print(transformers.__version__, repr(t.apply_chat_template([{'role': 'user', 'content': 'hi'}], tokenize=False)))\n"
    )
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", script, str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": os.environ.get("HOME", "/tmp"),
            "HF_HUB_OFFLINE": "1",
        },
    ).stdout
    version, template = out.strip().split(" ", 1)
    assert version.startswith("5.6")
    assert "<|im_start|>user\\nhi<|im_end|>\\n" in template
