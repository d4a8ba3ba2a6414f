"""The benchmark registry, Django-free: what each benchmark is made of and how it is asked.

Each entry names the dataset layout it is imported from, the verifier domain, the default
sampling, the subset filter (LiveCodeBench by difficulty and release window) and its prompt
templates. Templates are versioned data: the Django side seeds version 1 (and later ones) as
``PromptVersion`` rows and every evaluation records the version and the exact text it used,
because where the ``\\boxed{}`` instruction sits moved Sky-T1's MATH500 score by four points.

Templates hold ``{prompt}`` (replaced verbatim, never ``str.format``: problems are full of LaTeX
braces). Their wording follows SkyThought's evaluation task handlers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

MATH_FIRST = "Return your final response within \\boxed{}. {prompt}"
MATH_LAST = "{prompt}\n\nReturn your final response within \\boxed{}."
MCQ = (
    "Return your final response within \\boxed{} and only include the letter choice "
    "(A, B, C, or D) as your final response. {prompt}"
)
CODE_STDIN = (
    "Generate an executable Python function generated from the given prompt. The function "
    "should take stdin as input and print the output. Simply call the function after the "
    "definition. {prompt}"
)
CODE_CALL = (
    "Generate an executable Python function generated from the given prompt. Return the "
    "function body without invoking it at the final solution. {prompt}"
)
CODE_COMPLETE = (
    "Complete the following Python function. Return the whole function in one ```python code "
    "block.\n\n{prompt}"
)
GSM8K = "{prompt}\n\nPlease reason step by step, and put your final answer within \\boxed{}."


@dataclass(frozen=True)
class Template:
    number: int
    text: str
    note: str


@dataclass(frozen=True)
class BenchmarkSpec:
    slug: str
    name: str
    layout: str  # distill.datasets layout of its public file
    domain: str  # verifier domain: math, code, mcq
    reference: str = ""  # key of the published figures (SPEC.md rows), "" when none
    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 32768
    subset: dict = field(default_factory=dict)
    templates: tuple[Template, ...] = ()
    hub: str = ""  # Hugging Face dataset id, when the machine is online
    files: tuple[str, ...] = ()  # usual local file names (SPEC's data/ folder first)


MATH_TEMPLATES = (
    Template(1, MATH_LAST, "boxed instruction after the problem"),
    Template(2, MATH_FIRST, "boxed instruction before the problem (SkyThought's handler)"),
)

# The release window is set per benchmark row (the page edits it); none by default, since
# which window a published number used is not in SPEC.md.
LCB_WINDOW: dict = {}

REGISTRY: tuple[BenchmarkSpec, ...] = (
    BenchmarkSpec("math500", "MATH500", "math500", "math", "MATH500",
                  templates=MATH_TEMPLATES, hub="HuggingFaceH4/MATH-500",
                  files=("math500.jsonl",)),
    # The first 25 MATH-500 problems, shipped in the repository (data/NOTICE.md): the demo's
    # offline benchmark in common with the published MATH500 figures.
    BenchmarkSpec("math500-demo", "MATH500 (demo subset)", "math500", "math", "MATH500",
                  templates=MATH_TEMPLATES, files=("math500_demo.jsonl",)),
    BenchmarkSpec("aime2024", "AIME 2024", "aime", "math", "AIME2024", templates=MATH_TEMPLATES,
                  hub="Maxwell-Jia/AIME_2024", files=("aime24.jsonl", "aime2024.jsonl")),
    BenchmarkSpec("aime2025", "AIME 2025", "aime", "math", "", templates=MATH_TEMPLATES,
                  hub="opencompass/AIME2025", files=("aime25.jsonl", "aime2025.jsonl")),
    *(
        BenchmarkSpec(f"lcb-{level}", f"LiveCodeBench {level.title()}", "livecodebench", "code",
                      f"LiveCodeBench {level.title()}",
                      subset={"difficulty": level, **LCB_WINDOW},
                      templates=(Template(1, CODE_STDIN, "stdin programs; call-based get "
                                          "the call template"),),
                      hub="livecodebench/code_generation_lite", files=("livecodebench.jsonl",))
        for level in ("easy", "medium", "hard")
    ),
    BenchmarkSpec("gpqa-diamond", "GPQA-Diamond", "gpqa", "mcq", "GPQA-Diamond",
                  templates=(Template(1, MCQ, "options shuffled at import with a recorded "
                                      "seed"),),
                  hub="Idavidrein/gpqa", files=("gpqa_diamond.jsonl",)),
    BenchmarkSpec("gsm8k", "GSM8K", "gsm8k", "math", "", templates=(Template(1, GSM8K, ""),),
                  hub="openai/gsm8k", files=("gsm8k.jsonl",)),
    BenchmarkSpec("humaneval", "HumanEval", "humaneval", "code", "",
                  templates=(Template(1, CODE_COMPLETE, ""),), hub="openai/openai_humaneval",
                  files=("humaneval.jsonl",)),
    BenchmarkSpec("mbpp", "MBPP", "mbpp", "code", "",
                  templates=(Template(1, CODE_COMPLETE, ""),), hub="mbpp",
                  files=("mbpp_sanitized.jsonl", "mbpp.jsonl")),
)

BY_SLUG = {b.slug: b for b in REGISTRY}

# Benchmark files shipped in this repository (licences and attribution in data/NOTICE.md).
SHIPPED = {"math500-demo": Path(__file__).parent / "data" / "math500_demo.jsonl"}


def render(template: str, prompt: str, *, call_based: bool = False) -> str:
    """Fill ``{prompt}``. Call-based code problems (LeetCode style) get the call template."""
    if call_based and template == CODE_STDIN:
        template = CODE_CALL
    return template.replace("{prompt}", prompt)

