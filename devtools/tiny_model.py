"""A tiny, deterministic, random-weight chat model for tests and demos.

It has the shape of a real Qwen2 (or Llama) checkpoint -- config, safetensors weights, a fast
tokenizer with ChatML special tokens and a chat template -- so every component that loads a
Hugging Face model folder (LLaMA-Factory training, the transformers generation backend,
evaluation) exercises its real loading path, in seconds and without any download.

The tokenizer is a byte-level BPE trained by the `tokenizers` library on a small built-in
corpus: byte-level means any text is encodable, and training it here keeps the fixture free of
third-party vocabulary files.
"""

from __future__ import annotations

import json
from pathlib import Path

# ChatML, the format of LLaMA-Factory's `qwen` template: <|im_start|>role\ncontent<|im_end|>\n
ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = [ENDOFTEXT, IM_START, IM_END]

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Enough text for a few hundred merges covering the words the test fixtures use.
_CORPUS = [
    "Your role as an assistant involves thoroughly exploring questions through a systematic long thinking process.",
    "<|begin_of_thought|> Let me think step by step about the problem. <|end_of_thought|>",
    "<|begin_of_solution|> The answer is \\boxed{42}. <|end_of_solution|>",
    "What is 2 + 3? The sum of two and three is five, so the answer is \\boxed{5}.",
    "Compute the product of 6 and 7. Six times seven equals forty-two.",
    "Find x such that 2x + 4 = 10. Subtract four, divide by two: x = 3.",
    "Write a Python function that returns the square of a number.",
    "def square(x):\n    return x * x\n",
    "def add(a, b):\n    return a + b\n",
    "import sys\nfor line in sys.stdin:\n    print(int(line) * 2)\n",
    "The derivative of x^2 is 2x. The integral of 2x is x^2 + C.",
    "A prime number has exactly two divisors: one and itself. 2, 3, 5, 7, 11 and 13 are prime.",
    "If a triangle has sides 3, 4 and 5, it is a right triangle because 9 + 16 = 25.",
    "Therefore, the final answer is 12. Let us verify: 3 * 4 = 12. Correct.",
    "Question: which option is correct? A) first B) second C) third D) fourth. Answer: B",
    "The quick brown fox jumps over the lazy dog. 0123456789 + - * / = ( ) [ ] { } < > , . ; : ! ?",
]


def _train_tokenizer(vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_CORPUS * 4, trainer=trainer)
    return tokenizer


def make_tiny_model(
    dest: Path,
    arch: str = "qwen2",
    *,
    seed: int = 0,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    vocab_size: int = 512,
) -> Path:
    """Write a tiny random-weight causal LM with a ChatML tokenizer into `dest` and return it.

    `arch` is "qwen2" or "llama". The same arguments always give the same files (seeded).
    """
    import torch
    from transformers import (
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
        Qwen2Config,
        Qwen2ForCausalLM,
    )

    archs = {"qwen2": (Qwen2Config, Qwen2ForCausalLM), "llama": (LlamaConfig, LlamaForCausalLM)}
    if arch not in archs:
        raise ValueError(f"unknown tiny model arch {arch!r}; choose one of {sorted(archs)}")
    if hidden_size % num_heads:
        raise ValueError(f"hidden_size {hidden_size} must be divisible by num_heads {num_heads}")

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)

    raw = _train_tokenizer(vocab_size)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        bos_token=None,
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        unk_token=None,
        additional_special_tokens=[IM_START],
        model_max_length=2048,
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE

    config_cls, model_cls = archs[arch]
    config = config_cls(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=max(1, num_heads // 2),
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.convert_tokens_to_ids(ENDOFTEXT),
        eos_token_id=tokenizer.convert_tokens_to_ids(IM_END),
        pad_token_id=tokenizer.convert_tokens_to_ids(ENDOFTEXT),
    )
    # fork_rng: seeding must not disturb the caller's global RNG state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_cls(config)
    model.generation_config.eos_token_id = config.eos_token_id
    model.generation_config.pad_token_id = config.pad_token_id
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    # Older transformers (the training venv's 5.6) read the template from tokenizer_config.json;
    # newer ones write chat_template.jinja. Keep both so either loads it.
    cfg_path = dest / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["chat_template"] = CHAT_TEMPLATE
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    return dest
