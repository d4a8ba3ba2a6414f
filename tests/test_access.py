"""Every view, for every kind of user: anonymous users are sent to log in, users below the
view's role get 403, everyone else gets through; every POST needs a CSRF token."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, get_resolver, reverse

from experiments.models import (
    Dataset,
    DiagnosticRun,
    Problem,
    Recipe,
    RecipeComponent,
    RecipeItem,
    RecipeVersion,
    TrainingRun,
)
from experiments.roles import Role, role_of
from tests.support.accounts import client_for

pytestmark = pytest.mark.django_db

PUBLIC = {"login", "logout"}
POST_ONLY = {
    "curation_resume",
    "curation_rerun",
    "curation_prompt_new",
    "curation_price_save",
    "run_cancel",
    "diagnostic_new",
    "dataset_import",
    "recipe_preset",
    "recipe_preview",
    "recipe_materialise",
    "training_preview",
    "training_resume",
    "evaluation_new",
    "evaluation_schedule_run",
    "review_queue_new",
    "review_queue_assign",
    "review_item_verdict",
    "review_item_skip",
    "review_sample_verdict",
    "review_comment",
    "review_tag",
}


def sample_recipe() -> Recipe:
    """A ready dataset with one problem, and a recipe over it with one version."""
    recipe = Recipe.objects.filter(name="access").first()
    if recipe:
        return recipe
    dataset = Dataset.objects.create(name="access", layout="math500", ready=True)
    problem = Problem.objects.create(
        dataset=dataset, row=0, domain="math", source="s", prompt="1+1?", content_hash="0" * 64
    )
    recipe = Recipe.objects.create(name="access")
    RecipeComponent.objects.create(recipe=recipe, dataset=dataset, count=1)
    version = RecipeVersion.objects.create(recipe=recipe, number=1, spec={}, fingerprint="f")
    RecipeItem.objects.create(version=version, problem=problem, component=0, position=0)
    return recipe


def sample_training_run() -> TrainingRun:
    run = TrainingRun.objects.filter(name="access").first()
    return run or TrainingRun.objects.create(name="access", files={"config.yaml": "stage: sft\n"})


def evaluation_url_kwargs(name: str) -> dict:
    if not name.startswith("evaluation_"):
        return {}
    from experiments.models import EvaluationSchedule
    from tests.support.evaluation import make_benchmark, make_scored_run

    bench = make_benchmark()
    result = bench.results.first() or make_scored_run(bench, [[True], [False], [True]])[1]
    schedule = EvaluationSchedule.objects.get_or_create(name="access")[0]
    return {
        "evaluation_detail": {"pk": result.run_id},
        "evaluation_samples": {"pk": result.run_id, "slug": bench.slug},
        "evaluation_training": {"pk": sample_training_run().pk},
        "evaluation_schedule_edit": {"pk": schedule.pk},
        "evaluation_schedule_run": {"pk": schedule.pk},
    }


def curation_url_kwargs(name: str) -> dict:
    if not name.startswith("curation_"):
        return {}
    from django.conf import settings

    from experiments.models import CurationRun, Sample, TrainingSet, TrainingSetVersion
    from tests.support.curation import echo_problems, make_run, make_version

    run = CurationRun.objects.filter(name="test curation").first()
    if run is None:
        run = make_run(make_version(echo_problems(1), name="access-curation"), "http://127.0.0.1:9/v1")
        problem = run.recipe_version.items.get().problem
        Sample.objects.create(run=run, problem=problem, stage="generate", text="4 $x^2$",
                              correct=True)
        path = settings.VAR_DIR / "access-export.json"
        path.write_text("[]")
        TrainingSetVersion.objects.create(
            training_set=TrainingSet.objects.create(name="access"), number=1, path=str(path),
            dataset_name="access", source_run=run)
    problem = Sample.objects.filter(run=run).first().problem_id
    kwargs = {"pk": run.pk}
    return {
        **{n: kwargs for n in ("curation_detail", "curation_status", "curation_resume",
                               "curation_rerun", "curation_samples", "curation_export")},
        "curation_sample": {"pk": run.pk, "problem": problem, "index": 0},
    }


def review_url_kwargs(name: str) -> dict:
    if not name.startswith("review_"):
        return {}
    from experiments.models import ReviewQueue
    from tests.support.review import make_reviewed_run

    queue = ReviewQueue.objects.filter(name="access").first()
    if queue is None:
        run, gens = make_reviewed_run([(True, True), (False, False)], name="access-review")
        queue = ReviewQueue.build(run, user=None, name="access")
    sample = queue.items.get(position=0).sample
    item = {"pk": queue.pk, "position": 0}
    return {
        **{n: {"pk": queue.pk} for n in ("review_queue", "review_queue_assign", "review_work")},
        **{n: item for n in ("review_item", "review_item_verdict", "review_item_skip")},
        **{n: {"sample": sample.pk} for n in ("review_sample", "review_sample_verdict",
                                              "review_comment", "review_tag", "review_diff")},
        "review_pair": {"run": queue.run_id, "problem": sample.problem_id},
    }


def all_patterns(resolver=None, prefix=""):
    for p in (resolver or get_resolver()).url_patterns:
        if isinstance(p, URLPattern):
            yield p
        elif getattr(p, "namespace", None) != "admin":
            yield from all_patterns(p)


def url_for(name: str, run: DiagnosticRun) -> str:
    recipe = sample_recipe()
    dataset = recipe.components.get().dataset
    problem = dataset.problems.get()
    kwargs = {
        "dataset_detail": {"pk": dataset.pk},
        "problem_detail": {"pk": dataset.pk, "problem": problem.pk},
        "recipe_detail": {"pk": recipe.pk},
        "recipe_edit": {"pk": recipe.pk},
        "recipe_materialise": {"pk": recipe.pk},
        "recipe_version": {"pk": recipe.pk, "number": 1},
        "recipe_compare": {"pk": recipe.pk},
        "run_list": {"kind": "diagnostic"},
        "run_detail": {"kind": "diagnostic", "pk": run.pk},
        "run_status": {"kind": "diagnostic", "pk": run.pk},
        "run_cancel": {"kind": "diagnostic", "pk": run.pk},
        **{
            n: {"pk": sample_training_run().pk}
            for n in ("training_detail", "training_live", "training_metrics", "training_resume")
        },
        "training_file": {"pk": sample_training_run().pk, "name": "config.yaml"},
        **curation_url_kwargs(name),
        **evaluation_url_kwargs(name),
        **review_url_kwargs(name),
    }.get(name, {})
    return reverse(name, kwargs=kwargs)


def guarded_views():
    views = []
    for p in all_patterns():
        if p.name in PUBLIC or p.name is None:
            continue
        views.append((p.name, p.callback))
    return views


def test_every_view_declares_its_role():
    missing = [name for name, cb in guarded_views() if not hasattr(cb, "required_role")]
    assert missing == []


@pytest.mark.parametrize("who", ["anonymous", "norole", "viewer", "reviewer", "operator", "admin"])
def test_role_matrix(users, who):
    user = users[who]
    role = role_of(user) if user else None
    for name, callback in guarded_views():
        run = DiagnosticRun.objects.create(name="r")
        url = url_for(name, run)
        client = client_for(user)
        if name in POST_ONLY:
            resp = client.post(url, {"queue": "cpu", "hold_seconds": "0"})
            assert client.get(url).status_code in (302, 403, 405)
        else:
            resp = client.get(url)
        needed: Role = callback.required_role
        if user is None:
            assert resp.status_code == 302 and "/login/" in resp["Location"], (name, who)
        elif role is None or role < needed:
            assert resp.status_code == 403, (name, who, resp.status_code)
        else:
            assert resp.status_code in (200, 302), (name, who, resp.status_code)


def test_viewer_cannot_cancel_or_launch(users):
    run = DiagnosticRun.objects.create(name="r")
    client = client_for(users["viewer"])
    assert client.post(reverse("run_cancel", args=["diagnostic", run.pk])).status_code == 403
    assert client.post(reverse("diagnostic_new"), {"queue": "cpu"}).status_code == 403
    run.refresh_from_db()
    assert run.state == "queued" and DiagnosticRun.objects.count() == 1


@pytest.mark.parametrize("name", sorted(POST_ONLY))
def test_posts_need_csrf(users, name):
    run = DiagnosticRun.objects.create(name="r")
    client = client_for(users["operator"], csrf=True)
    resp = client.post(url_for(name, run), {"queue": "cpu"})
    assert resp.status_code == 403 and b"CSRF" in resp.content
    run.refresh_from_db()
    assert run.state == "queued" and DiagnosticRun.objects.count() == 1


def test_operator_cancels_a_queued_run(users):
    run = DiagnosticRun.objects.create(name="r", celery_task_id="abc")
    resp = client_for(users["operator"]).post(reverse("run_cancel", args=["diagnostic", run.pk]))
    assert resp.status_code == 302
    run.refresh_from_db()
    assert run.state == "cancelled" and run.finished_at


def test_login_page_and_login(users):
    client = client_for(None)
    assert client.get(reverse("login")).status_code == 200
    resp = client.post(reverse("login"), {"username": "viewer", "password": "pw-for-tests"})
    assert resp.status_code == 302
    assert client.get(reverse("overview")).status_code == 200
