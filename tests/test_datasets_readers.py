"""Reading dataset files: formats, compression, locations, damage."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distill.datasets import DatasetError, RowError, iter_rows

FIXTURES = Path(__file__).parent / "fixtures" / "datasets"


def rows_of(path, **kwargs):
    return [(str(loc), row) for loc, row in iter_rows(path, **kwargs)]


def test_jsonl_rows_carry_one_based_line_numbers_and_skip_blank_lines(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n')
    assert rows_of(path) == [("line 1", {"a": 1}), ("line 3", {"a": 2})]


def test_bad_jsonl_line_becomes_a_row_error_and_reading_goes_on():
    rows = rows_of(FIXTURES / "bad_json_line.jsonl")
    assert [loc for loc, _ in rows] == ["line 1", "line 2", "line 3", "line 4"]
    bad = rows[2][1]
    assert isinstance(bad, RowError) and "invalid JSON" in bad.message
    assert rows[3][1]["question"].startswith("Ann has 3 cats")


def test_jsonl_line_that_is_not_an_object_is_a_row_error(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"a": 1}\n[1, 2]\n')
    (_, first), (loc, second) = rows_of(path)
    assert first == {"a": 1}
    assert loc == "line 2" and "expected a JSON object, got list" in second.message


def test_gzip_is_detected_by_magic_bytes_not_extension(tmp_path):
    source = (FIXTURES / "gsm8k.jsonl").read_bytes()
    disguised = tmp_path / "gsm8k.jsonl"  # gzip content under a plain name
    disguised.write_bytes(gzip.compress(source))
    assert rows_of(disguised) == rows_of(FIXTURES / "gsm8k.jsonl")


def test_json_list_rows_are_located_by_index(tmp_path):
    path = tmp_path / "list.json.gz"
    path.write_bytes(gzip.compress(json.dumps([{"x": 1.5}, {"x": 2}]).encode()))
    assert rows_of(path) == [("index 0", {"x": 1.5}), ("index 1", {"x": 2})]


def test_json_object_keyed_by_id_is_located_by_key():
    rows = rows_of(FIXTURES / "skythought_results.json")
    assert [loc for loc, _ in rows] == ["key 'q-17'", "key 'q-18'"]
    assert rows[0][1]["answer"] == "12"


def test_json_root_reads_a_nested_container(tmp_path):
    path = tmp_path / "nested.json"
    path.write_text(json.dumps({"problems": {"p1": {"a": 1}}, "hints": {"h1": {"b": 2}}}))
    assert rows_of(path, json_root="problems") == [("key 'p1'", {"a": 1})]


def test_truncated_json_document_raises_naming_the_last_good_row():
    with pytest.raises(DatasetError, match=r"invalid JSON after index 0"):
        rows_of(FIXTURES / "truncated.json")


def test_parquet_rows_stream_in_batches_with_row_numbers(tmp_path):
    rows = [{"question": f"q{i}", "answer": f"#### {i}"} for i in range(2500)]
    path = tmp_path / "data.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    read = rows_of(path)
    assert len(read) == 2500
    assert read[2499] == ("row 2499", rows[2499])


def test_gzipped_parquet_without_extension_is_read(tmp_path):
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.Table.from_pylist([{"a": 1}, {"a": 2}]), plain)
    packed = tmp_path / "download"
    with plain.open("rb") as src, gzip.open(packed, "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert rows_of(packed) == [("row 0", {"a": 1}), ("row 1", {"a": 2})]


def test_corrupt_gzip_raises_a_dataset_error_after_the_last_good_line(tmp_path):
    data = gzip.compress(b"".join(b'{"a": %d}\n' % i for i in range(5000)))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=r"damaged after line \d+"):
        rows_of(path)


def test_missing_file_and_unknown_format_give_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="cannot open"):
        rows_of(tmp_path / "absent.jsonl")
    odd = tmp_path / "notes.txt"
    odd.write_text("hello")
    with pytest.raises(DatasetError, match="cannot tell the format"):
        rows_of(odd)


def test_jsonl_reading_is_lazy(tmp_path):
    # A file whose tail is garbage still yields its first row before anything fails,
    # which is what lets a 1 GB file stream instead of loading whole.
    path = tmp_path / "big.jsonl"
    path.write_bytes(b'{"a": 1}\n' + b"x" * 5_000_000 + b"\n")
    first = next(iter_rows(path))
    assert str(first[0]) == "line 1" and first[1] == {"a": 1}
