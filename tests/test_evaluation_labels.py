"""Issue 15, item 4: an evaluation's page shows its score as the score (not the last stage
counter, "score 10/10", on a run that scored 0%), and an empty chart says there is nothing to
draw instead of plotly's bare -1…6 axes."""

from __future__ import annotations

import pytest
from django.urls import reverse

from experiments.models import EvaluationRun
from tests.support.accounts import client_for
from tests.support.evaluation import make_benchmark, make_checkpoint, make_scored_run

pytestmark = pytest.mark.django_db

F = False


def test_a_run_that_scored_zero_shows_zero_percent_not_the_stage_counter(users):
    bench = make_benchmark(problems=3)
    run, result = make_scored_run(bench, [[F], [F], [F]])
    # What the job leaves behind when it finishes: the last stage counter.
    EvaluationRun.objects.filter(pk=run.pk).update(
        progress={"stage": "score", "done": 3, "total": 3, "current": "math500"})
    page = client_for(users["viewer"]).get(run.get_absolute_url()).content.decode()
    assert "score 3/3" not in page
    assert 'data-field="score">MATH500: <a href' in page and "0.0%</a> (0/3 correct)" in page


def test_a_running_evaluation_shows_its_progress_in_samples(users):
    bench = make_benchmark(problems=3)
    run = EvaluationRun.create_queued(benchmarks=[bench], model_path="/models/demo")
    EvaluationRun.objects.filter(pk=run.pk).update(
        state="running", progress={"stage": "generate", "done": 1, "total": 3})
    page = client_for(users["viewer"]).get(run.get_absolute_url()).content.decode()
    assert "generate 1/3 samples" in page and 'data-field="score"' not in page


def test_empty_charts_say_there_is_nothing_to_draw(users):
    bench = make_benchmark(problems=3)
    run = EvaluationRun.create_queued(benchmarks=[bench], model_path="/models/demo")
    client = client_for(users["viewer"])
    page = client.get(run.get_absolute_url()).content.decode()
    assert "nothing to draw" in page
    assert 'id="eval-lengths-chart"' not in page and "plotly.min.js" not in page
    # With samples, the histogram is drawn.
    scored, _ = make_scored_run(bench, [[True], [F], [F]])
    page = client.get(scored.get_absolute_url()).content.decode()
    assert 'id="eval-lengths-chart"' in page and "nothing to draw" not in page


def test_the_training_page_links_each_checkpoint_to_the_evaluation_form(users):
    ckpt = make_checkpoint(step=6)
    page = client_for(users["operator"]).get(
        reverse("evaluation_training", args=[ckpt.run_id])).content.decode()
    link = f'{reverse("evaluation_new")}?source=checkpoint&amp;checkpoint={ckpt.pk}'
    assert f'href="{link}">Evaluate this checkpoint</a>' in page
