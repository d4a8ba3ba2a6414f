"""Each layout adapter turns its fixture into the normalised problems a user expects."""

from __future__ import annotations

from pathlib import Path

import pytest

from distill.datasets import DatasetError, RowError, convert_file, detect, get_layout, last_boxed

FIXTURES = Path(__file__).parent / "fixtures" / "datasets"


def problems(name: str, layout: str = "auto", **kwargs) -> list[dict]:
    result = convert_file(FIXTURES / name, layout, **kwargs)
    assert result.errors == []
    return result.problems


@pytest.mark.parametrize(
    ("fixture", "layout"),
    [
        ("apps.jsonl", "apps"),
        ("taco.jsonl", "taco"),
        ("livecodebench.jsonl", "livecodebench"),
        ("numina.jsonl", "numina"),
        ("still2.jsonl", "still2"),
        ("math.jsonl", "math"),
        ("math500.jsonl", "math500"),
        ("aime.jsonl", "aime"),
        ("aime_capitalised.json", "aime"),
        ("gpqa.jsonl", "gpqa"),
        ("gpqa_lowercase.jsonl", "gpqa"),
        ("humaneval.jsonl", "humaneval"),
        ("mbpp.jsonl", "mbpp"),
        ("mbpp_sanitized.jsonl", "mbpp"),
        ("gsm8k.jsonl", "gsm8k"),
        ("sharegpt.jsonl", "sharegpt"),
    ],
)
def test_auto_detection_picks_the_layout_and_keeps_the_raw_row(fixture, layout):
    result = convert_file(FIXTURES / fixture)
    assert result.layout == layout
    assert result.errors == [] and result.problems
    for problem in result.problems:
        assert problem["prompt"].strip()
        assert isinstance(problem["raw"], dict) and problem["raw"]


def test_apps_stdin_and_call_based_tests():
    stdin, call = problems("apps.jsonl")
    assert stdin["domain"] == "code" and stdin["source"] == "apps"
    assert (stdin["difficulty"], stdin["difficulty_level"]) == ("introductory", 1.0)
    assert stdin["tests"]["style"] == "stdin"
    assert stdin["tests"]["cases"][1] == {"input": "10 -3\n", "output": "7\n"}
    assert stdin["solution"].startswith("a, b = map(int")
    assert stdin["meta"]["n_solutions"] == 2 and stdin["external_id"] == "4001"
    assert call["tests"]["style"] == "call" and call["tests"]["fn_name"] == "count_vowels"
    assert call["tests"]["cases"][0] == {"input": ["hello"], "output": [2]}
    assert call["difficulty_level"] == 2.0
    assert call["meta"]["starter_code"].startswith("def count_vowels")


def test_taco_joins_line_lists_and_reads_time_limit():
    stdin, call = problems("taco.jsonl")
    assert stdin["tests"]["cases"] == [{"input": "3\n1 5 2", "output": "5"}]
    assert stdin["tests"]["time_limit_s"] == 2.0
    assert (stdin["difficulty"], stdin["difficulty_level"]) == ("MEDIUM_HARD", 3.0)
    assert stdin["meta"]["platform"] == "codechef"
    assert call["difficulty_level"] is None and call["solution"] is None
    assert call["tests"]["fn_name"] == "reverse_words"


def test_livecodebench_decodes_compressed_private_tests():
    stdin, func = problems("livecodebench.jsonl")
    assert stdin["tests"]["style"] == "stdin"
    assert [c["output"] for c in stdin["tests"]["cases"]] == ["6\n", "10\n", "-4\n"]
    assert (stdin["difficulty"], stdin["difficulty_level"]) == ("easy", 1.0)
    assert stdin["meta"]["release_date"] == "2024-04-20"
    assert stdin["meta"]["platform"] == "atcoder" and stdin["external_id"] == "abc350_a"
    assert func["tests"]["style"] == "call" and func["tests"]["fn_name"] == "twoSum"
    assert func["tests"]["cases"] == [
        {"input": [[2, 7, 11, 15], 9], "output": [0, 1]},
        {"input": [[3, 2, 4], 6], "output": [1, 2]},
    ]
    assert func["difficulty_level"] == 2.0
    assert "class Solution" in func["meta"]["starter_code"]


def test_numina_answer_from_last_box_and_source_subset():
    amc, olympiad = problems("numina.jsonl")
    assert amc["answer"] == "\\frac{1}{2}" and amc["source"] == "numina/amc_aime"
    # A proof has no final answer: "proof" in the answer column is not an answer.
    assert olympiad["answer"] is None and olympiad["source"] == "numina/olympiads"
    assert (olympiad["difficulty"], olympiad["difficulty_level"]) == ("7", 7.0)


def test_still2_domains():
    physics, puzzle, maths = problems("still2.jsonl")
    assert [physics["domain"], puzzle["domain"], maths["domain"]] == ["science", "puzzle", "math"]
    assert maths["answer"] == "1024" and physics["answer"] is None
    assert physics["solution"].startswith("<|begin_of_thought|>")


def test_math_levels_and_boxed_answers():
    level1, unknown = problems("math.jsonl")
    assert (level1["difficulty"], level1["difficulty_level"], level1["answer"]) == ("Level 1", 1.0, "4")
    assert unknown["difficulty"] == "Level ?" and unknown["difficulty_level"] is None
    assert unknown["answer"] == "2"  # the brace-less "\boxed 2" form
    assert level1["meta"]["subject"] == "Algebra"


def test_math500_keeps_answer_and_unique_id():
    first, second = problems("math500.jsonl")
    assert first["answer"] == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert first["external_id"] == "test/precalculus/807.json" and first["difficulty_level"] == 2.0
    assert second["answer"] == "2"  # an integer answer is stored as text


def test_aime_layouts_and_year():
    (lower,) = problems("aime.jsonl")
    (upper,) = problems("aime_capitalised.json")
    assert (lower["answer"], lower["external_id"], lower["meta"]["year"]) == ("204", "60", 2024)
    assert (upper["answer"], upper["external_id"], upper["meta"]["year"]) == ("807", "2025-II-3", 2025)


def test_gpqa_options_are_shuffled_reproducibly_and_answer_is_the_letter():
    (first,) = problems("gpqa.jsonl")
    (again,) = problems("gpqa.jsonl")
    (lower,) = problems("gpqa_lowercase.jsonl")
    assert first["options"] == again["options"] == lower["options"]
    assert sorted(first["options"]) == ["Gluon", "Graviton", "Photon", "W boson"]
    letter = first["answer"]
    assert first["options"]["ABCD".index(letter)] == "Photon"
    assert f"{letter}) Photon" in first["prompt"]
    assert first["meta"]["options_seed"] == lower["meta"]["options_seed"]
    assert first["domain"] == "science" and first["external_id"] == "rec123"


def test_gpqa_shuffle_differs_between_questions():
    adapter = get_layout("gpqa")
    base = {"Correct Answer": "a", "Incorrect Answer 1": "b", "Incorrect Answer 2": "c",
            "Incorrect Answer 3": "d"}
    orders = {tuple(adapter.convert({**base, "Question": f"Question {i}?"})["options"])
              for i in range(12)}
    assert len(orders) > 1


def test_humaneval_assert_style():
    (problem,) = problems("humaneval.jsonl")
    tests = problem["tests"]
    assert tests["style"] == "assert" and tests["entry_point"] == "add"
    assert tests["code"].startswith("def check(candidate)")
    # prompt + body is a whole function that passes its own test
    namespace: dict = {}
    exec(problem["solution"] + "\n" + tests["code"], namespace)  # noqa: S102 - our fixture
    namespace["check"](namespace["add"])


def test_mbpp_original_and_sanitized():
    (original,) = problems("mbpp.jsonl")
    (sanitized,) = problems("mbpp_sanitized.jsonl")
    assert original["tests"]["entry_point"] == "remove_Occ"
    assert 'assert remove_Occ("hello","l") == "heo"' in original["prompt"]
    assert sanitized["tests"]["entry_point"] == "similar_elements"
    assert sanitized["tests"]["code"].startswith("import math\n")
    namespace: dict = {}
    exec(original["solution"] + "\n" + original["tests"]["code"], namespace)  # noqa: S102


def test_gsm8k_final_number_without_commas():
    farm, apples = problems("gsm8k.jsonl")
    assert farm["answer"] == "1234" and apples["answer"] == "3"
    assert farm["solution"].startswith("1200 + 34")


def test_sharegpt_both_shapes_and_domain_override():
    from_value, role_content = problems("sharegpt.jsonl", domain_override="math")
    assert from_value["prompt"] == "Name a prime greater than 10." and from_value["solution"] == "11"
    assert from_value["meta"]["system"] == "You are helpful."
    assert role_content["prompt"] == "Capital of France?" and role_content["solution"] == "Paris."
    assert role_content["meta"]["system"] == "Be brief."
    assert {from_value["domain"], role_content["domain"]} == {"math"}
    assert problems("sharegpt.jsonl")[0]["domain"] == "other"


def test_mapped_layout_with_columns_and_constants():
    mapping = {"prompt": "question_text", "answer": "final", "external_id": "qid",
               "difficulty_level": "hardness", "domain": "const:math", "source": "const:custom-geo"}
    first, _ = problems("mapped.jsonl", mapping=mapping)
    assert first["prompt"] == "How many sides has a hexagon?"
    assert (first["answer"], first["external_id"], first["difficulty_level"]) == ("6", "c-1", 3.0)
    assert (first["domain"], first["source"]) == ("math", "custom-geo")


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"answer": "final"}, "at least the prompt"),
        ({"prompt": "q", "tests": "t"}, "cannot map tests"),
        ({"prompt": "q", "domain": "const:biology"}, "domain must be one of"),
    ],
)
def test_bad_mappings_are_refused_up_front(mapping, message):
    with pytest.raises(DatasetError, match=message):
        get_layout("mapped", mapping)


def test_skythought_results_keys_become_external_ids():
    first, second = problems("skythought_results.json", "math500")
    assert (first["external_id"], second["external_id"]) == ("q-17", "q-18")


def test_detect_errors_name_the_problem():
    with pytest.raises(DatasetError, match="columns bar, foo match no known layout"):
        convert_file(FIXTURES / "unknown_layout.jsonl")
    with pytest.raises(DatasetError, match="ambiguous layout: the rows fit apps and taco"):
        convert_file(FIXTURES / "ambiguous_layout.jsonl")
    with pytest.raises(DatasetError, match="unknown layout 'nope'"):
        get_layout("nope")


def test_detect_prefers_the_more_specific_layout():
    # NuminaMath-CoT rows carry chat messages too; they are Numina, not ShareGPT.
    row = {"problem": "p", "solution": "s", "source": "olympiads", "messages": []}
    assert detect([row]) == "numina"
    # question+answer without GSM8K's "####" is not claimed by gsm8k.
    with pytest.raises(DatasetError, match="match no known layout"):
        detect([{"question": "q", "answer": "42"}])


def test_adapter_raises_row_error_with_field():
    with pytest.raises(RowError) as info:
        get_layout("math").convert({"problem": "p", "solution": "no box here", "level": "Level 2"})
    assert info.value.field == "solution" and "boxed" in info.value.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so $\\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}"),
        ("first \\boxed{1} then \\boxed{2}", "2"),
        ("set \\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),
        ("\\fbox{7}", "7"),
        ("answer $\\boxed 5$.", "5"),
        ("\\boxed{\\frac{1}{2}", None),
        ("no box", None),
        (None, None),
    ],
)
def test_last_boxed(text, expected):
    assert last_boxed(text) == expected


def test_mapped_row_errors_name_the_users_column(tmp_path):
    path = tmp_path / "custom.jsonl"
    path.write_text(
        '{"q": "Add 1 and 1.", "kind": "math", "hard": "2"}\n'
        '{"q": "Name a colour.", "kind": "art", "hard": "2"}\n'
        '{"q": "Add 2 and 2.", "kind": "math", "hard": "very"}\n'
    )
    result = convert_file(path, mapping={"prompt": "q", "domain": "kind", "difficulty_level": "hard"})
    assert len(result.problems) == 1
    assert [(e["location"], e["field"]) for e in result.errors] == [("line 2", "kind"), ("line 3", "hard")]
    assert "not one of" in result.errors[0]["message"]
    assert "not a number" in result.errors[1]["message"]
