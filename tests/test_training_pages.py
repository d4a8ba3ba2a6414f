"""Training runs on the Django side: the launch form and its presets, the generated files, the
run page and its JSON endpoints, metric storage and downsampling, cost, wandb."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from django.urls import reverse

from distill.training.logs import MetricPoint
from experiments.models import RunState, TrainingMetric, TrainingRun
from tests.support.accounts import client_for
from tests.support.training import (
    FIXTURES,
    form_data,
    make_export,
    make_sharegpt_dataset,
    points,
)

pytestmark = pytest.mark.django_db


def make_run(**settings) -> TrainingRun:
    base = {"model_name_or_path": "/models/tiny", "gpus_per_node": 1, "nodes": 1}
    return TrainingRun.objects.create(
        name="r", config={"settings": {**base, **settings}, "sources": []}
    )


# --- launch form and generated files -------------------------------------------------------


def test_sky_t1_preset_reproduces_the_published_recipe(users):
    from experiments.models.training import presets

    export = make_export(FIXTURES / "sharegpt_tiny.jsonl")
    preset = {k: v for k, v in presets()["sky_t1"].items() if k not in ("label", "run_name")}
    data = form_data(sources=[f"trainingset:{export.pk}"], name="sky", deepspeed_json="")
    data.update({k: str(v) for k, v in preset.items()})
    resp = client_for(users["operator"]).post(reverse("training_preview"), data)
    body = resp.json()
    assert body["ok"], body
    assert body["effective_batch"] == 96
    args = yaml.safe_load(body["files"]["config.yaml"])
    expected = {
        "model_name_or_path": "Qwen/Qwen2.5-32B-Instruct",
        "stage": "sft",
        "finetuning_type": "full",
        "cutoff_len": 16384,
        "learning_rate": 1e-5,
        "num_train_epochs": 3.0,
        "lr_scheduler_type": "cosine",
        "warmup_ratio": 0.1,
        "bf16": True,
        "per_device_train_batch_size": 1,
        "gradient_accumulation_steps": 12,
        "logging_steps": 1,
        "save_steps": 100,
        "report_to": "wandb",
        "preprocessing_num_workers": 16,
        "ddp_timeout": 180000000,
        "template": "qwen",  # upstream's name for SkyThought's qwen25 ChatML (docs/training.md)
    }
    assert {k: args[k] for k in expected} == expected
    assert args["deepspeed"].endswith("/deepspeed.json")
    ds = json.loads(body["files"]["deepspeed.json"])
    zero = ds["zero_optimization"]
    assert zero["stage"] == 3
    assert zero["offload_optimizer"]["device"] == "cpu"
    assert zero["offload_param"]["device"] == "cpu"
    assert ds["train_micro_batch_size_per_gpu"] == "auto" and ds["bf16"]["enabled"] == "auto"
    info = json.loads(body["files"]["dataset_info.json"])
    (entry,) = info.values()
    assert entry["formatting"] == "sharegpt"
    assert entry["columns"] == {"messages": "conversations", "system": "system"}
    assert entry["tags"]["role_tag"] == "from" and entry["file_name"] == export.path


# Real commits: a run is sent to its worker when the launching transaction commits.
@pytest.mark.django_db(transaction=True)
def test_launch_creates_a_queued_gpu_run_with_its_files(users, empty_broker, settings, tmp_path):
    settings.RUNS_DIR = tmp_path
    dataset = make_sharegpt_dataset()
    data = form_data(
        sources=[f"dataset:{dataset.pk}"],
        deepspeed="z2",
        deepspeed_json='{"zero_optimization": {"overlap_comm": true}}',
        gradient_accumulation_steps="4",
        gpus_per_node="2",
    )
    resp = client_for(users["operator"]).post(reverse("training_new"), data)
    assert resp.status_code == 302
    run = TrainingRun.objects.get()
    assert resp["Location"] == reverse("training_detail", args=[run.pk])
    assert run.state == RunState.QUEUED and run.queue == "gpu" and run.celery_task_id
    assert run.launched_by == users["operator"] and run.effective_batch == 8
    ds = json.loads(run.files["deepspeed.json"])
    assert ds["zero_optimization"]["stage"] == 2
    assert ds["zero_optimization"]["overlap_comm"] is True  # the edited JSON wins
    args = yaml.safe_load(run.files["config.yaml"])
    assert args["output_dir"] == str(tmp_path / f"training-{run.pk}" / "output")
    assert args["dataset"] == f"ds{dataset.pk}_tiny-sharegpt"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("deepspeed_json", "{not json", "Not valid JSON"),
        ("interleave_probs", "0.3,0.3", "interleave_probs"),
        ("sources", [], "required"),
    ],
)
def test_launch_form_rejects_bad_settings(users, field, value, message):
    dataset = make_sharegpt_dataset()
    data = form_data(sources=[f"dataset:{dataset.pk}"], mix_strategy="interleave_under")
    data["deepspeed"] = "z3" if field == "deepspeed_json" else "none"
    data[field] = value
    resp = client_for(users["operator"]).post(reverse("training_new"), data)
    assert resp.status_code == 200 and message in resp.content.decode()
    assert not TrainingRun.objects.exists()


def test_preview_shows_multi_node_files_and_effective_batch(users):
    dataset = make_sharegpt_dataset()
    data = form_data(sources=[f"dataset:{dataset.pk}"], nodes="4", gpus_per_node="8",
                     gradient_accumulation_steps="3", deepspeed="z3")  # fmt: skip
    body = client_for(users["operator"]).post(reverse("training_preview"), data).json()
    assert body["ok"] and body["effective_batch"] == 96
    assert "zero_optimization" in body["files"]["deepspeed.json"]


# Real commits: a run is sent to its worker when the launching transaction commits.
@pytest.mark.django_db(transaction=True)
def test_multi_node_launch_queues_one_task_per_node_and_shows_the_nodes(users):
    from experiments.models import TrainingNode

    dataset = make_sharegpt_dataset()
    data = form_data(
        sources=[f"dataset:{dataset.pk}"], nodes="3", gpus_per_node="2",
        per_device_train_batch_size="1", gradient_accumulation_steps="2",
    )  # fmt: skip
    resp = client_for(users["operator"]).post(reverse("training_new"), data)
    assert resp.status_code == 302, resp.content.decode()[:2000]
    run = TrainingRun.objects.get()
    assert run.nodes == 3 and run.effective_batch == 1 * 2 * 2 * 3
    nodes = list(TrainingNode.objects.filter(run=run).order_by("rank"))
    assert [(n.rank, n.state) for n in nodes] == [(r, RunState.QUEUED) for r in range(3)]
    assert nodes[0].celery_task_id == run.celery_task_id  # node 0 is the run's own task
    assert len({n.celery_task_id for n in nodes}) == 3 and all(n.celery_task_id for n in nodes)
    page = client_for(users["viewer"]).get(reverse("training_detail", args=[run.pk]))
    assert page.content.decode().count('<span class="state state-queued">queued</span>') == 3
    live = client_for(users["viewer"]).get(reverse("training_live", args=[run.pk])).json()
    assert [n["rank"] for n in live["nodes"]] == [0, 1, 2]
    # Cancelling the queued run cancels every node (their messages are revoked).
    client_for(users["operator"]).post(reverse("run_cancel", args=["training", run.pk]))
    assert set(TrainingNode.objects.filter(run=run).values_list("state", flat=True)) == {
        RunState.CANCELLED
    }


def test_new_form_prefills_from_a_preset_and_from_a_run(users):
    client = client_for(users["operator"])
    page = client.get(reverse("training_new") + "?preset=sky_t1").content.decode()
    assert 'value="Qwen/Qwen2.5-32B-Instruct"' in page and 'value="16384"' in page
    run = make_run(learning_rate=3e-4, deepspeed="z3", deepspeed_overrides={"a": 1})
    page = client.get(reverse("training_new") + f"?from={run.pk}").content.decode()
    assert 'value="0.0003"' in page and "&quot;a&quot;: 1" in page


# --- metrics, charts, cost ------------------------------------------------------------------


def test_metric_points_are_upserted_and_drawn(users):
    run = make_run()
    run.state = RunState.RUNNING
    run.save(update_fields=["state"])
    run.add_metrics(points([1, 2, 3], lr=1e-3, grad_norm=0.5))
    run.add_metrics(points([3, 4], lr=1e-4))  # a step reported twice is updated, not duplicated
    run.add_metrics([MetricPoint(step=4, total_steps=4, eval_loss=0.9)])
    run.add_metrics([MetricPoint(step=4, total_steps=4, raw={"train_runtime": 3.0})])  # summary
    assert run.metrics.filter(kind="train").count() == 4 and run.metrics.count() == 5
    run.refresh_from_db()
    assert (run.last_step, run.total_steps) == (4, 4)
    assert run.progress == {"stage": "train", "done": 4, "total": 4}
    chart = client_for(users["viewer"]).get(reverse("training_metrics", args=[run.pk])).json()
    assert chart["train"]["step"] == [1, 2, 3, 4]
    assert chart["train"]["loss"] == [1.0, 0.5, 1 / 3, 0.25]
    assert chart["train"]["lr"] == [1e-3, 1e-3, 1e-4, 1e-4]
    assert chart["eval"] == {**chart["eval"], "step": [4], "loss": [0.9]}
    assert chart["points"] == 4 and chart["bucket"] == 1


def test_a_long_run_is_downsampled_in_the_database():
    run = make_run()
    n = 30_000
    TrainingMetric.objects.bulk_create(
        [TrainingMetric(run=run, step=s, loss=float(s % 10), lr=1.0) for s in range(1, n + 1)],
        batch_size=5000,
    )
    chart = run.chart(max_points=1000)
    train = chart["train"]
    assert chart["points"] == n and chart["bucket"] == 30
    assert len(train["step"]) == 1000
    assert train["step"] == sorted(train["step"]) and train["step"][-1] == n
    # Each point is its bucket's mean, with the bucket's min and max as the band.
    assert all(
        lo == 0.0 and hi == 9.0
        for lo, hi in zip(train["loss_min"][:-1], train["loss_max"][:-1], strict=True)
    )
    assert 4.0 < train["loss"][0] < 5.0 and train["lr"][0] == 1.0


def test_gpu_hours_and_cost(settings):
    settings.GPU_HOUR_PRICE_USD = 2.5
    run = make_run(gpus_per_node=8)
    run.gpu_seconds = 7200
    assert run.gpu_hours == 2 and run.cost_usd == 5.0


def test_wandb_online_links_the_run_and_offline_keeps_the_key(settings):
    run = make_run(report_to="wandb")
    settings.WANDB_MODE, settings.WANDB_ENTITY, settings.WANDB_API_KEY = "online", "lab", "k-1"
    env, url = run.wandb_env()
    assert url == f"https://wandb.ai/lab/skyboard/runs/skyboard-training-{run.pk}"
    assert env["WANDB_API_KEY"] == "k-1" and env["WANDB_RUN_ID"] == f"skyboard-training-{run.pk}"
    settings.WANDB_MODE = "offline"
    env, url = run.wandb_env()
    assert url == "" and "WANDB_API_KEY" not in env and env["WANDB_MODE"] == "offline"
    assert make_run(report_to="none").wandb_env() == ({}, "")


# --- the run page -----------------------------------------------------------------------------


def test_run_page_escapes_the_log_and_offers_the_files(users):
    run = make_run()
    run.log_tail = "<script>alert(1)</script> loss 0.5"
    run.files = {"config.yaml": "stage: sft\n", "dataset_info.json": "{}\n"}
    run.save(update_fields=["log_tail", "files"])
    run.register_checkpoint(2, Path("/runs/out/checkpoint-2"), 2048)
    page = client_for(users["viewer"]).get(reverse("run_detail", args=["training", run.pk]))
    html = page.content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert "checkpoint-2" in html and "vendor/plotly/plotly.min.js" in html
    assert reverse("training_file", args=[run.pk, "config.yaml"]) in html
    assert "Resume" not in html  # queued: nothing to resume
    resp = client_for(users["viewer"]).get(reverse("training_file", args=[run.pk, "config.yaml"]))
    assert resp.content == b"stage: sft\n"
    assert f'filename="training-{run.pk}-config.yaml"' in resp["Content-Disposition"]
    missing = reverse("training_file", args=[run.pk, "deepspeed.json"])
    assert client_for(users["viewer"]).get(missing).status_code == 404
    live = client_for(users["viewer"]).get(reverse("training_live", args=[run.pk])).json()
    assert live["checkpoints"][0]["step"] == 2 and live["log_tail"].startswith("<script>")


# Real commits: a run is sent to its worker when the launching transaction commits.
@pytest.mark.django_db(transaction=True)
def test_resume_requeues_a_failed_run_once(users, empty_broker):
    run = make_run()
    run.state = RunState.FAILED
    run.save(update_fields=["state"])
    client = client_for(users["operator"])
    client.post(reverse("training_resume", args=[run.pk]))
    client.post(reverse("training_resume", args=[run.pk]))
    run.refresh_from_db()
    assert run.state == RunState.QUEUED and run.celery_task_id


def test_compare_draws_several_runs(users):
    a, b = make_run(), make_run()
    a.add_metrics(points([1, 2]))
    TrainingMetric.objects.create(run=b, step=1, loss=2.0, lr=0.1)
    url = reverse("training_compare") + f"?runs={a.pk}&runs={b.pk}&metric=loss"
    html = client_for(users["viewer"]).get(url).content.decode()
    curves = json.loads(html.split('id="compare-curves" type="application/json">')[1].split("<")[0])
    assert [(c["id"], c["step"], c["value"]) for c in curves] == [
        (a.pk, [1, 2], [1.0, 0.5]),
        (b.pk, [1], [2.0]),
    ]


# --- issue 15: what a new user meets on the training pages ---------------------------------


def test_form_warns_when_a_training_set_overlaps_a_benchmark(users):
    from tests.support.training import make_benchmark_over

    dataset = make_sharegpt_dataset()
    clean = make_sharegpt_dataset("clean-sharegpt")
    Problem = type(dataset.problems.first())
    for i, p in enumerate(clean.problems.order_by("id")):  # other problems, nothing in common
        Problem.objects.filter(pk=p.pk).update(prompt=f"Spell the word number {i} backwards.")
    make_benchmark_over(dataset, 3)
    client = client_for(users["operator"])
    # The preview says so as soon as the set is chosen, naming the benchmark and the count.
    body = client.post(reverse("training_preview"),
                       form_data(sources=[f"dataset:{dataset.pk}"])).json()
    assert body["ok"], body
    (warning,) = body["warnings"]
    assert "tiny-sharegpt" in warning and "GSM8K" in warning and "3 of its 12" in warning
    clean_body = client.post(reverse("training_preview"),
                             form_data(sources=[f"dataset:{clean.pk}"])).json()
    assert clean_body["ok"] and clean_body["warnings"] == []
    # Edits that keep the chosen sets do not read them again (the page keeps its warning).
    again = client.post(reverse("training_preview"),
                        form_data(sources=[f"dataset:{dataset.pk}"], overlap="0")).json()
    assert again["ok"] and again["warnings"] is None
    # The form page shows it before launch (here prefilled from an earlier run's sets) ...
    earlier = TrainingRun.objects.create(
        name="earlier", config={"settings": {"model_name_or_path": "/m"},
                                "sources": [f"dataset:{dataset.pk}"]})
    page = client.get(reverse("training_new") + f"?from={earlier.pk}").content.decode()
    assert 'id="overlap-warnings"' in page and "3 of its 12 problems overlap" in page
    assert "the evaluation benchmark GSM8K" in page
    # ... and the launch repeats it next to the run.
    resp = client.post(reverse("training_new"), form_data(sources=[f"dataset:{dataset.pk}"]),
                       follow=True)
    assert "overlap the evaluation benchmark GSM8K" in resp.content.decode()


def test_form_shows_no_errors_before_anything_was_typed(users):
    client = client_for(users["operator"])
    for query in ("", "?preset=cpu_demo", "?preset=sky_t1", "?from=999"):
        page = client.get(reverse("training_new") + query).content.decode()
        assert "This field is required" not in page and '<span class="failure">' not in page
    # The page previews the form as it stands on load: no set chosen yet is a hint, not an error.
    body = client.post(reverse("training_preview"), form_data()).json()
    assert not body["ok"] and body["errors"] == {}
    assert body["hint"] == "Choose a training set to see the generated files."
    assert "This field is required" not in json.dumps(body)
    # A real mistake is still reported.
    body = client.post(reverse("training_preview"), form_data(cutoff_len="0")).json()
    assert "cutoff_len" in body["errors"]


def test_preview_names_the_run_folder_by_a_placeholder(users):
    dataset = make_sharegpt_dataset()
    body = client_for(users["operator"]).post(
        reverse("training_preview"), form_data(sources=[f"dataset:{dataset.pk}"])).json()
    assert body["ok"], body
    text = json.dumps(body["files"])
    assert "None" not in text
    config = yaml.safe_load(body["files"]["config.yaml"])
    assert config["output_dir"].endswith("/training-<id assigned at launch>/output")
    info = json.loads(body["files"]["dataset_info.json"])
    assert all("training-<id assigned at launch>/data/" in e["file_name"] for e in info.values())
    page = client_for(users["operator"]).get(reverse("training_new")).content.decode()
    assert "training-&lt;id assigned at launch&gt;" in page and "the id the launch assigns" in page


def test_run_page_names_its_training_sets(users):
    export = make_export(FIXTURES / "sharegpt_tiny.jsonl", name="gsm-export")
    dataset = make_sharegpt_dataset("my-traces")
    run = TrainingRun.objects.create(
        name="labelled", config={"settings": {"model_name_or_path": "/m"},
                                 "sources": [f"trainingset:{export.pk}", f"dataset:{dataset.pk}",
                                             "dataset:98765"]})
    page = client_for(users["viewer"]).get(run.get_absolute_url()).content.decode()
    facts = page.split("<dt>Training sets</dt>")[1].split("</dd>")[0]
    assert "gsm-export v1 (curation export)" in facts
    assert "my-traces (ShareGPT dataset)" in facts
    assert "dataset:98765 (deleted)" in facts
    assert f"trainingset:{export.pk}" not in facts and f"dataset:{dataset.pk} " not in facts


def test_run_page_links_each_checkpoint_to_its_evaluation(users):
    from experiments.models import TrainingCheckpoint

    run = make_run()
    ckpt = TrainingCheckpoint.objects.create(run=run, step=6, path="/runs/x/checkpoint-6")
    href = f"{reverse('evaluation_new')}?source=checkpoint&amp;checkpoint={ckpt.pk}"
    page = client_for(users["operator"]).get(run.get_absolute_url()).content.decode()
    assert f'href="{href}">Evaluate this checkpoint</a>' in page
    # The live table the page redraws keeps the link (it needs the checkpoint's id).
    live = client_for(users["operator"]).get(reverse("training_live", args=[run.pk])).json()
    assert live["checkpoints"][0]["id"] == ckpt.pk
    # Viewers cannot launch evaluations: no link.
    viewer_page = client_for(users["viewer"]).get(run.get_absolute_url()).content.decode()
    assert "Evaluate this checkpoint" not in viewer_page
