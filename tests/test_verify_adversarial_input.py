"""Extraction runs in the worker, outside any sandbox limit: on adversarial responses (1 MB of
backticks, braces, dollars, boxes) it must stay linear and still read what is there."""

from __future__ import annotations

import random
import re
import time

import pytest

from distill.verify import Reason, verify
from distill.verify.boxed import all_boxes, last_boxed
from distill.verify.code import extract_code, fenced_blocks
from distill.verify.mathv import decisive_box, extract_answer, final_boxes, gold_answer
from distill.verify.mcq import extract_choice

MB = 1 << 20
# CPU seconds for one extraction of 1 MB (process time, so other jobs on the machine do not
# count); a quadratic path takes minutes here (the old code-fence pattern: 10 s on 160 kB).
BOUND_S = 2.0

INPUTS = {
    "backticks": "`" * MB,
    "fence lines": "```\n" * (MB // 4),
    "open braces": "\\boxed{" + "{" * MB,
    "close braces": "}" * MB + "\\boxed{1}",
    "dollars": "The answer is " + "$" * MB + "5",
    "unclosed boxes": "\\boxed{" * (MB // 7),
    "nested boxes": "\\boxed{" * (MB // 14) + "}" * (MB // 14),
    "brace-less boxes": "\\fbox " * (MB // 6),
    "answer phrases": "the answer is " * (MB // 14),
    "spaces after a phrase": "Answer" + " " * MB + "x",
    "mixed": "`{$\\boxed{```\n" * (MB // 14),
}
EXTRACTORS = {
    "extract_code": extract_code,
    "extract_answer": extract_answer,
    "last_boxed": last_boxed,
    "final_boxes": final_boxes,
    "decisive_box": decisive_box,
    "gold_answer": gold_answer,
    "extract_choice": lambda text: extract_choice(text, ["1", "2", "3", "4"]),
    "all_boxes": all_boxes,
}


@pytest.mark.parametrize("name", list(INPUTS))
def test_extraction_is_linear_on_a_megabyte_of_adversarial_text(name):
    text = INPUTS[name]
    for label, fn in EXTRACTORS.items():
        start = time.process_time()
        fn(text)
        spent = time.process_time() - start
        assert spent < BOUND_S, (name, label, spent)


def test_adversarial_text_is_still_read_correctly():
    assert extract_code(INPUTS["backticks"]) is None
    assert extract_code("`" * MB + "\n\n```python\nprint(1)\n```\n") is None  # as before
    assert extract_code("x" * MB + "\n```python\nprint(1)\n```\n" + "`" * MB) == "print(1)\n"
    assert last_boxed(INPUTS["open braces"]) is None
    assert last_boxed(INPUTS["close braces"]) == "1"
    assert final_boxes(INPUTS["nested boxes"])[0] == ""
    assert final_boxes("\\boxed{" * 1000 + "42" + "}" * 1000)[0] == "42"
    assert last_boxed("{" * MB + r"\boxed{\frac{1}{2}}") == r"\frac{1}{2}"
    assert extract_answer(INPUTS["dollars"])[1] == "answer_is"
    assert extract_answer("the answer is " * 1000 + "$17$")[0] == "17"
    assert extract_choice("the answer is " * 1000 + "(C)", ["a", "b", "c", "d"]) == (
        "C",
        "answer_phrase",
    )
    assert len(all_boxes(INPUTS["unclosed boxes"], last=3)) == 3


def test_verify_on_adversarial_responses_is_quick():
    problem = {"domain": "code", "tests": [{"input": "", "output": "1\n"}]}
    for name, reason in [
        ("backticks", Reason.NO_CODE_BLOCK),
        ("fence lines", Reason.NO_CODE_BLOCK),
        ("mixed", Reason.COMPILE_ERROR),  # its last fence holds `{$\boxed{`, a program of sorts
    ]:
        start = time.process_time()
        verdict = verify(problem, INPUTS[name])
        assert time.process_time() - start < BOUND_S
        assert verdict.reason == reason
    mcq = {"domain": "mcq", "answer": "B", "options": ["1", "2", "3", "4"]}
    for text in INPUTS.values():
        start = time.process_time()
        assert not verify(mcq, text).correct
        assert time.process_time() - start < BOUND_S


_OLD_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+.-]*)[^\n]*\n(.*?)```", re.DOTALL)


def test_fenced_blocks_reads_what_the_old_pattern_read():
    rng = random.Random(14)
    tokens = ["`", "```", "```python", "```text", "\n", "x = 1", " ", "py", "\t"]
    for _ in range(3000):
        text = "".join(rng.choice(tokens) for _ in range(rng.randint(0, 40)))
        assert fenced_blocks(text) == _OLD_FENCE.findall(text), repr(text)
