"""Mixture recipes: deterministic materialisation, de-duplication, decontamination, pages."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from experiments.models import Dataset, Recipe, RecipeBuildRun, RecipeComponent, RunState
from tests.support.accounts import client_for
from tests.support.datasets import FIXTURES, import_file, math_rows, write_jsonl
from workers.runner import execute

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_datasets(tmp_path):
    """'a' with 100 problems; 'b' with 40, of which the first 20 repeat a's."""
    import_file(write_jsonl(tmp_path / "a.jsonl", math_rows(100)), "a", layout="math500")
    rows = math_rows(20) + math_rows(20, prefix="Evaluate")
    import_file(write_jsonl(tmp_path / "b.jsonl", rows), "b", layout="math500")
    return Dataset.objects.get(name="a"), Dataset.objects.get(name="b")


def make_recipe(name: str, *components: dict, **fields) -> Recipe:
    recipe = Recipe.objects.create(name=name, **fields)
    for i, c in enumerate(components):
        RecipeComponent.objects.create(recipe=recipe, position=i, **c)
    return recipe


def build(recipe: Recipe) -> RecipeBuildRun:
    run = RecipeBuildRun.objects.create(recipe=recipe, config={"spec": recipe.spec()})
    execute("recipe", run.pk, hostname="test")
    run.refresh_from_db()
    assert run.state == RunState.SUCCEEDED, run.failure_message
    return run


def chosen_prompts(version) -> list[str]:
    return list(version.items.order_by("position").values_list("problem__prompt", flat=True))


def test_a_recipe_materialises_identically_twice(two_datasets):
    a, b = two_datasets
    recipe = make_recipe(
        "mix",
        {"dataset": a, "count": 30, "seed": 7, "difficulty_min": 2},
        {"dataset": b, "fraction": 1.0, "seed": 3},
    )
    first = build(recipe)
    assert first.result == {**first.result, "version": 1, "created": True}
    again = build(recipe)
    assert again.result["version"] == 1 and again.result["created"] is False
    assert recipe.versions.count() == 1
    version = recipe.latest_version()
    # The second component takes all of b, except what the first already chose.
    comps = version.components
    assert comps[0]["taken"] == 30 and comps[1]["available"] == 40
    assert comps[1]["taken"] == 40 - comps[1]["duplicates_skipped"]
    assert comps[1]["duplicates_skipped"] > 0
    prompts = chosen_prompts(version)
    assert len(prompts) == len({p.casefold() for p in prompts}) == version.problem_count
    assert version.composition["domain"] == {"math": version.problem_count}


def test_selection_depends_on_seed_and_content_not_on_row_ids(two_datasets, tmp_path):
    a, _ = two_datasets
    one = make_recipe("one", {"dataset": a, "count": 10, "seed": 1})
    other_seed = make_recipe("two", {"dataset": a, "count": 10, "seed": 2})
    # The same rows imported again, in reverse order: new ids, same content.
    import_file(write_jsonl(tmp_path / "r.jsonl", math_rows(100)[::-1]), "a-copy", layout="math500")
    copy = make_recipe(
        "copy", {"dataset": Dataset.objects.get(name="a-copy"), "count": 10, "seed": 1}
    )
    versions = [build(r).version for r in (one, other_seed, copy)]
    prompts = [chosen_prompts(v) for v in versions]
    assert prompts[0] == prompts[2]
    assert prompts[0] != prompts[1]


def test_contaminated_problems_are_reported_and_can_be_excluded(two_datasets, tmp_path, users):
    a, _ = two_datasets
    leaked = math_rows(100)[:5]
    import_file(
        write_jsonl(tmp_path / "bench.jsonl", leaked), "bench", layout="math500", is_benchmark=True
    )
    recipe = make_recipe("leaky", {"dataset": a, "fraction": 1.0})
    v1 = build(recipe).version
    assert len(v1.contamination) == 5 and v1.problem_count == 100
    assert all(
        c["fraction"] == 1.0 and c["benchmarks"][0].startswith("bench:") for c in v1.contamination
    )
    client = client_for(users["operator"])
    page = client.get(recipe.get_absolute_url()).content.decode()
    assert "Contamination in v1" in page and "Compute $0 + 0$ for case 0." in page
    assert 'id="exclude-contaminated"' in page

    resp = client.post(
        reverse("recipe_materialise", args=[recipe.pk]), {"exclude_contaminated": "on"}
    )
    assert resp.status_code == 302
    recipe.refresh_from_db()
    assert recipe.exclude_contaminated
    run = RecipeBuildRun.objects.filter(state=RunState.QUEUED).get()
    execute("recipe", run.pk, hostname="test")
    v2 = recipe.latest_version()
    assert v2.number == 2 and v2.problem_count == 95
    assert all(c["excluded"] for c in v2.contamination)

    compare = client.get(reverse("recipe_compare", args=[recipe.pk]), {"a": 1, "b": 2})
    body = compare.content.decode()
    assert compare.status_code == 200 and "<b>0</b> added, <b>5</b> removed, 95 in both" in body


def test_operator_builds_a_recipe_in_the_browser_with_a_live_preview(two_datasets, users):
    a, b = two_datasets
    client = client_for(users["operator"])
    form = {
        "name": "web",
        "description": "",
        "contamination_threshold": "0.2",
        "components-TOTAL_FORMS": "2",
        "components-INITIAL_FORMS": "0",
        "components-MIN_NUM_FORMS": "1",
        "components-MAX_NUM_FORMS": "1000",
        "components-0-dataset": a.pk,
        "components-0-count": "25",
        "components-0-seed": "0",
        "components-0-has_tests": "unknown",
        "components-1-dataset": b.pk,
        "components-1-fraction": "0.5",
        "components-1-seed": "0",
        "components-1-has_tests": "unknown",
    }
    preview = client.post(reverse("recipe_preview"), form).json()
    assert preview["ok"] and preview["total"] == 45
    assert [c["available"] for c in preview["components"]] == [100, 40]
    assert preview["by_domain"] == {"math": 45} and sum(preview["by_source"].values()) == 45

    bad = dict(form, **{"components-0-fraction": "0.3"})
    assert not client.post(reverse("recipe_preview"), bad).json()["ok"]
    resp = client.post(reverse("recipe_new"), bad)
    assert resp.status_code == 200 and b"Give a count or a fraction" in resp.content
    assert not Recipe.objects.filter(name="web").exists()

    resp = client.post(reverse("recipe_new"), form)
    recipe = Recipe.objects.get(name="web")
    assert resp.status_code == 302 and resp["Location"] == recipe.get_absolute_url()
    assert [(c.dataset, c.count, c.fraction) for c in recipe.components.all()] == [
        (a, 25, None),
        (b, None, 0.5),
    ]
    resp = client.post(reverse("recipe_materialise", args=[recipe.pk]))
    assert resp.status_code == 302 and RecipeBuildRun.objects.get().state == RunState.QUEUED
    assert recipe.versions.count() == 0  # built by a worker, not by the request
    assert client_for(users["viewer"]).post(reverse("recipe_new"), form).status_code == 403


def test_sky_t1_preset_encodes_the_published_mixture(users):
    for fixture in ("apps", "taco", "numina", "still2"):
        import_file(FIXTURES / f"{fixture}.jsonl", fixture)
    client = client_for(users["operator"])
    resp = client.post(reverse("recipe_preset"), {"name": "Sky-T1"}, follow=True)
    recipe = Recipe.objects.get(name="Sky-T1")
    titles = list(recipe.components.values_list("title", "dataset__layout", "count"))
    assert titles == [
        ("APPs code", "apps", 2500),
        ("TACO code", "taco", 2500),
        ("Numina AMC/AIME", "numina", 2500),
        ("Numina MATH", "numina", 3500),
        ("Numina olympiads", "numina", 4000),
        ("STILL-2 science", "still2", 700),
        ("STILL-2 puzzles", "still2", 300),
    ]
    assert sum(c for _, _, c in titles) == 16000  # ~5k code, ~10k math, ~1k science and puzzles
    assert resp.status_code == 200 and b"Created Sky-T1 from the Sky-T1 preset" in resp.content
    version = build(recipe).version
    by_title = {c["title"]: c for c in version.components}
    assert by_title["STILL-2 science"]["taken"] == 1 and by_title["APPs code"]["taken"] == 2


def test_preset_names_what_is_missing(users):
    resp = client_for(users["operator"]).post(
        reverse("recipe_preset"), {"name": "empty"}, follow=True
    )
    assert b"no apps dataset imported" in resp.content


def test_version_page_lists_the_chosen_problems(two_datasets, users):
    a, _ = two_datasets
    recipe = make_recipe("v", {"dataset": a, "count": 60, "seed": 5})
    version = build(recipe).version
    client = client_for(users["viewer"])
    page = client.get(version.get_absolute_url())
    assert page.status_code == 200 and len(page.context["problems"]) == 50
    rest = client.get(version.get_absolute_url(), {"after": page.context["next_after"]})
    ids = {p.pk for p in page.context["problems"]} | {p.pk for p in rest.context["problems"]}
    assert ids == version.problem_ids()
    assert client.get(reverse("recipe_version", args=[recipe.pk, 9])).status_code == 404


def test_new_recipe_page_flags_nothing_before_anything_was_typed(two_datasets, users):
    client = client_for(users["operator"])
    page = client.get(reverse("recipe_new")).content.decode()
    assert "This field is required" not in page and "errorlist" not in page
    # What the page's live preview posts on load: one untouched component row.
    untouched = {
        "name": "", "description": "", "contamination_threshold": "0.2",
        "components-TOTAL_FORMS": "1", "components-INITIAL_FORMS": "0",
        "components-MIN_NUM_FORMS": "1", "components-MAX_NUM_FORMS": "1000",
        "components-0-seed": "0", "components-0-has_tests": "unknown",
        "components-0-verify": "on",
    }
    body = client.post(reverse("recipe_preview"), untouched).json()
    assert body == {"ok": False, "errors": []}
    # Once the row is touched, what is missing is said.
    body = client.post(reverse("recipe_preview"),
                       dict(untouched, **{"components-0-count": "5"})).json()
    assert not body["ok"] and "This field is required." in json.dumps(body["errors"])
