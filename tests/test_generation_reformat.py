"""Building the convert request and reading the reformatted answer."""

from __future__ import annotations

import pytest

from distill.generation.prompts import CONVERT_PROMPT, CONVERT_PROMPT_EXAMPLE, SYSTEM_PROMPT
from distill.generation.reformat import build_convert_messages, parse_reformatted

GOOD = ("<|begin_of_thought|>\n\nFirst add 2 and 3.\n\nThat is 5.<|end_of_thought|>\n\n"
        "<|begin_of_solution|>\n\nThe sum is $\\boxed{5}$.<|end_of_solution|>\n")


def test_well_formed_answer_is_split_into_thought_and_solution():
    assert parse_reformatted(GOOD) == {
        "thought": "First add 2 and 3.\n\nThat is 5.",
        "solution": "The sum is $\\boxed{5}$.",
        "well_formed": True,
    }


def test_the_one_shot_example_itself_is_well_formed():
    parsed = parse_reformatted(CONVERT_PROMPT_EXAMPLE)
    assert parsed["well_formed"] and parsed["solution"].endswith("$\\boxed{12}$.")


@pytest.mark.parametrize("text, thought, solution", [
    # truncated at max_tokens: the solution never closed
    (GOOD.split("<|end_of_solution|>")[0], "First add 2 and 3.\n\nThat is 5.", None),
    # the model skipped the thought section
    ("<|begin_of_solution|>5<|end_of_solution|>", None, "5"),
    # sections swapped
    ("<|begin_of_solution|>5<|end_of_solution|><|begin_of_thought|>t<|end_of_thought|>",
     "t", "5"),
    # two solutions (the prompt asks for exactly one)
    (GOOD + "<|begin_of_solution|>6<|end_of_solution|>", "First add 2 and 3.\n\nThat is 5.",
     "The sum is $\\boxed{5}$."),
    # empty sections
    ("<|begin_of_thought|> <|end_of_thought|><|begin_of_solution|> <|end_of_solution|>", None,
     None),
    ("plain text, no tags at all", None, None),
    ("", None, None),
    (None, None, None),
])
def test_malformed_answers_are_flagged_but_keep_what_can_be_read(text, thought, solution):
    parsed = parse_reformatted(text)
    assert parsed["well_formed"] is False
    assert parsed["thought"] == thought
    assert parsed["solution"] == solution


def test_convert_messages_follow_skythought_with_braces_left_alone():
    trace = "We need $\\frac{a}{b}$ and the set {content} literally; answer \\boxed{7}."
    messages = build_convert_messages(CONVERT_PROMPT, CONVERT_PROMPT_EXAMPLE, trace)
    assert [m["role"] for m in messages] == ["system", "user"]
    user = messages[1]["content"]
    assert user.startswith("Another solution is written in an unstructured way.")
    assert CONVERT_PROMPT_EXAMPLE in user
    assert user.endswith("Content to be converted: " + trace)
    assert user.count("{content}") == 1  # the trace's own text, not re-substituted


def test_edited_prompt_versions_are_used_as_given():
    messages = build_convert_messages("EX={example} / C={content}!", "e.g.", "trace")
    assert messages[1]["content"] == "EX=e.g. / C=trace!"


@pytest.mark.parametrize("prompt, trace, match", [
    ("no placeholders here", "t", "placeholder"),
    ("{example} only", "t", r"\{content\}"),
    (CONVERT_PROMPT, "   ", "empty"),
])
def test_bad_convert_inputs_are_rejected(prompt, trace, match):
    with pytest.raises(ValueError, match=match):
        build_convert_messages(prompt, CONVERT_PROMPT_EXAMPLE, trace)


def test_default_prompts_are_the_published_ones():
    assert CONVERT_PROMPT.count("{example}") == 1 and CONVERT_PROMPT.count("{content}") == 1
    assert SYSTEM_PROMPT.startswith("Your role as an assistant involves thoroughly exploring")
    assert SYSTEM_PROMPT.endswith("through the above guidelines:")
    assert "<|begin_of_thought|> {thought with steps separated with '\n\n'}" in SYSTEM_PROMPT
