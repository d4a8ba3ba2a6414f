"""Recipe components taken without verification (Sky-T1 took STILL-2's science and puzzle data
as the teacher wrote it): the component's ``verify`` flag, frozen into the version's spec, decides
per sample whether the verifier runs or the finished sample is kept as it is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.urls import reverse

from devtools.openai_stub import StubServer
from experiments.models import (
    KEEP_WITHOUT_VERIFICATION,
    Recipe,
    RecipeComponent,
    RecipeVersion,
    RunState,
    Sample,
    TrainingSetVersion,
)
from experiments.models.recipes import component_verifies
from tests.support.accounts import client_for
from tests.support.curation import echo_problems, make_dataset, make_problem, make_run
from tests.support.datasets import FIXTURES, import_file
from workers.jobs.curation import keep_unverified
from workers.runner import execute

pytestmark = pytest.mark.django_db

MAX_TOKENS = 64  # the stub's tokens are words; the long problem's echo is longer than this
POLICY = {"policy": KEEP_WITHOUT_VERIFICATION, "component": 1}


@pytest.fixture(autouse=True)
def _quiet_heartbeat(settings, tmp_path):
    # The job runs in this process, inside the test's transaction (see tests/test_curation.py).
    settings.RUN_HEARTBEAT_SECONDS = 600
    settings.RUNS_DIR = tmp_path / "runs"


def science_problems() -> list:
    """STILL-2-like problems with no reference answer (the verifier could not check them):
    two short ones and one whose echo is cut at MAX_TOKENS."""
    dataset = make_dataset("still2-like")
    prompts = ["Why is the sky blue? Explain briefly.",
               "A farmer crosses a river with a wolf, a goat and a cabbage. How?",
               "Describe photosynthesis. " + " ".join(f"step{i}" for i in range(120))]
    return [make_problem(dataset, i, prompt=p, domain="science", source="still2/science")
            for i, p in enumerate(prompts)]


def mixed_recipe(verify_science: bool = False) -> Recipe:
    """Component 0: echo math problems, verified (0 and 3 have a wrong reference answer);
    component 1: the science problems, verified or not."""
    math = echo_problems(4, dataset=make_dataset("math"), wrong_every=3)
    science = science_problems()
    recipe = Recipe.objects.create(name="mixed")
    RecipeComponent.objects.create(recipe=recipe, position=0, title="math",
                                   dataset=math[0].dataset, fraction=1.0)
    RecipeComponent.objects.create(recipe=recipe, position=1, title="STILL-2 science",
                                   dataset=science[0].dataset, fraction=1.0,
                                   verify=verify_science)
    return recipe


def run_curation(version: RecipeVersion):
    with StubServer() as stub:
        run = make_run(version, stub.base_url,
                       sampling={"temperature": 0.0, "max_tokens": MAX_TOKENS, "seed": 7})
        assert execute("curation", run.pk, hostname="test") == RunState.SUCCEEDED
    run.refresh_from_db()
    return run


def test_unverified_component_keeps_finished_samples_and_exports_them():
    recipe = mixed_recipe()
    version, created = RecipeVersion.materialise(recipe, recipe.spec())
    assert created and [c["verify"] for c in version.spec["components"]] == [True, False]
    run = run_curation(version)

    counts = {s: (c["total"], c["passed"]) for s, c in run.counts.items()}
    assert counts == {"generate": (7, 7), "verify": (7, 4), "reformat": (4, 4),
                      "reverify": (4, 4)}
    assert run.exported_rows == 4
    samples = Sample.objects.filter(run=run)
    science = {s.problem.prompt[:12]: s for s in samples.filter(
        stage="verify", problem__source="still2/science").select_related("problem")}
    for key in ("Why is the s", "A farmer cro"):
        kept = science[key]
        # Kept without a verifier: no extraction, no verifier timing, the policy recorded.
        assert (kept.correct, kept.reason, kept.extracted) == (True, "unverified", "")
        assert kept.detail == POLICY and kept.latency_s is None
    cut = science["Describe pho"]
    assert cut.finish_reason == "length"
    assert (cut.correct, cut.reason, cut.detail) == (False, "truncated", POLICY)
    # Re-verification applies the same policy to the reformatted text.
    again = samples.filter(stage="reverify", problem__source="still2/science")
    assert {(s.correct, s.reason) for s in again} == {(True, "unverified")}
    assert all(s.detail == POLICY for s in again)

    # The verified component is verified as before: wrong answers are rejected, with timing.
    math = samples.filter(stage="verify", problem__source__in=["even", "odd"])
    assert sorted((s.problem.row, s.reason) for s in math) == [
        (0, "wrong_answer"), (1, "correct"), (2, "correct"), (3, "wrong_answer")]
    assert all("ms" in s.detail and "policy" not in s.detail for s in math)

    assert samples.failure_reasons() == {"verify": {"wrong_answer": 2, "truncated": 1}}
    assert samples.kept_unverified() == {"verify": 2, "reverify": 2}
    exported = json.loads(Path(TrainingSetVersion.objects.get(source_run=run).path).read_text())
    users = [row["conversations"][0]["value"] for row in exported]
    assert len(users) == 4
    assert sum(u.startswith(("Why is the sky", "A farmer crosses")) for u in users) == 2
    assert not any(u.startswith("Describe photosynthesis") for u in users)


def test_the_same_problems_verified_are_rejected():
    """The control: with verification on, the science problems (no reference answer) fail."""
    recipe = mixed_recipe(verify_science=True)
    version, _ = RecipeVersion.materialise(recipe, recipe.spec())
    run = run_curation(version)
    reasons = Sample.objects.filter(run=run, stage="verify",
                                    problem__source="still2/science").values_list("reason",
                                                                                  flat=True)
    # A problem the verifier cannot check fails before truncation is looked at.
    assert list(reasons) == ["verifier_error"] * 3
    assert run.exported_rows == 2 and not Sample.objects.filter(run=run).kept_unverified()


def test_keep_unverified_verdicts():
    assert keep_unverified("An answer.", "stop") == (True, "unverified")
    assert keep_unverified("An answer cut", "length") == (False, "truncated")
    assert keep_unverified("  \n", "stop") == (False, "no_answer_found")
    assert keep_unverified("", "error") == (False, "error")
    # Specs frozen before the policy existed have no key: they were verified.
    assert component_verifies({}) and not component_verifies({"verify": False})


def test_a_version_frozen_before_the_policy_is_not_rebuilt_for_it():
    recipe = mixed_recipe(verify_science=True)
    spec = recipe.spec()
    old = {**spec, "components": [{k: v for k, v in c.items() if k != "verify"}
                                  for c in spec["components"]]}
    v1, _ = RecipeVersion.materialise(recipe, old)
    assert RecipeVersion.materialise(recipe, spec) == (v1, False)
    RecipeComponent.objects.filter(recipe=recipe, position=1).update(verify=False)
    v2, created = RecipeVersion.materialise(recipe, recipe.spec())
    assert created and v2.number == 2 and v2.problem_ids() == v1.problem_ids()


def test_the_form_saves_the_policy_the_version_freezes_it_and_the_run_page_counts_it(users):
    math = echo_problems(4, dataset=make_dataset("math"), wrong_every=3)
    science = science_problems()
    client = client_for(users["operator"])
    component = {"count": "", "seed": "0", "has_tests": "unknown", "fraction": "1.0"}
    form = {"name": "web", "description": "", "contamination_threshold": "0.2",
            "components-TOTAL_FORMS": "2", "components-INITIAL_FORMS": "0",
            "components-MIN_NUM_FORMS": "1", "components-MAX_NUM_FORMS": "1000",
            **{f"components-0-{k}": v for k, v in component.items()},
            **{f"components-1-{k}": v for k, v in component.items()},
            "components-0-dataset": math[0].dataset_id, "components-0-title": "math",
            "components-0-verify": "on",
            # An unticked checkbox is not posted: verification off.
            "components-1-dataset": science[0].dataset_id, "components-1-title": "STILL-2 sci"}
    editor = client.get(reverse("recipe_new")).content.decode()
    # Verification is on unless unticked; one explanation serves every row.
    assert 'type="checkbox" name="components-__prefix__-verify" aria-describedby="verify-help"' \
        in editor and 'id="id_components-0-verify" checked' in editor
    assert 'id="verify-help">Verify: Verify samples (reject sampling)' in editor
    resp = client.post(reverse("recipe_new"), form)
    recipe = Recipe.objects.get(name="web")
    assert resp.status_code == 302
    assert list(recipe.components.values_list("title", "verify")) == [
        ("math", True), ("STILL-2 sci", False)]
    detail = client.get(recipe.get_absolute_url()).content.decode()
    assert detail.count("kept without verification") == 1 and \
        "Taken without verification (" in detail and "STILL-2 sci." in detail

    client.post(reverse("recipe_materialise", args=[recipe.pk]))
    build = recipe.builds.get()
    assert execute("recipe", build.pk, hostname="test") == RunState.SUCCEEDED
    version = recipe.latest_version()
    assert [(c["title"], c["verify"]) for c in version.spec["components"]] == [
        ("math", True), ("STILL-2 sci", False)]
    # The run follows the frozen spec, not the recipe as edited after the build.
    recipe.components.update(verify=True)
    page = client.get(version.get_absolute_url()).content.decode()
    assert page.count("kept without verification") == 1

    run = run_curation(version)
    viewer = client_for(users["viewer"])
    page = viewer.get(reverse("curation_detail", args=[run.pk]))
    data = page.context["data"]
    assert data["unverified"] == {"verify": 2, "reverify": 2} and data["accepted_unverified"] == 2
    assert page.context["unverified_components"] == ["STILL-2 sci"]
    assert 'data-field="accepted-unverified">2</b> were kept without verification' in \
        page.content.decode()
    assert viewer.get(reverse("curation_status", args=[run.pk])).json()[
        "accepted_unverified"] == 2
    listing = viewer.get(reverse("curation_samples", args=[run.pk]),
                         {"reason": "unverified", "verdict": "pass"})
    assert "unverified" in listing.context["reasons"]
    assert sorted(s.stage for s in listing.context["rows"]) == ["reverify", "reverify",
                                                                "verify", "verify"]


def test_the_sky_t1_preset_takes_still2_without_verification():
    for fixture in ("numina", "still2"):
        import_file(FIXTURES / f"{fixture}.jsonl", fixture)
    recipe, _ = Recipe.create_sky_t1("Sky-T1")
    assert {c["title"]: c["verify"] for c in recipe.spec()["components"]} == {
        "Numina AMC/AIME": True, "Numina MATH": True, "Numina olympiads": True,
        "STILL-2 science": False, "STILL-2 puzzles": False}
