"""Issue 15, item 1: the evaluation source decides the model. A checkpoint evaluation evaluates
the checkpoint's folder (never the demo model the form pre-fills), records the checkpoint's
revision, training run and step, and shows them on the run's page."""

from __future__ import annotations

import pytest
from django.http import QueryDict
from django.urls import reverse

from distill.generation.transformers_backend import model_revision
from experiments.errors import UserError
from experiments.forms import EvaluationForm
from experiments.models import EvaluationRun, TrainingCheckpoint, TrainingRun
from tests.support.accounts import client_for
from tests.support.evaluation import make_benchmark
from workers.jobs.evaluation import check_checkpoint

pytestmark = pytest.mark.django_db


def checkpoint_folder(tmp_path, step: int = 6) -> TrainingCheckpoint:
    folder = tmp_path / f"checkpoint-{step}"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "llama"}')
    (folder / "model.safetensors").write_bytes(b"weights of step %d" % step)
    training = TrainingRun.objects.create(name="sft-demo")
    return TrainingCheckpoint.objects.create(run=training, step=step, path=str(folder))


def test_checkpoint_evaluation_from_the_form_evaluates_the_checkpoint_not_the_demo_model(
        users, tmp_path, settings):
    bench = make_benchmark()
    ckpt = checkpoint_folder(tmp_path)
    client = client_for(users["operator"])
    # What the browser sends: the pre-filled demo model path and name are still in the form.
    resp = client.post(reverse("evaluation_new"), {
        "source": "checkpoint", "checkpoint": ckpt.pk, "backend": "transformers",
        "model_path": str(settings.DEMO_MODEL_DIR), "model_name": "SmolLM2-135M-Instruct",
        "benchmarks": [bench.pk]})
    run = EvaluationRun.objects.get()
    assert resp.status_code == 302 and resp["Location"] == run.get_absolute_url()
    assert run.model_path == ckpt.path and run.config["model"] == ckpt.path
    assert run.source == "checkpoint" and run.checkpoint == ckpt
    assert "SmolLM2" not in run.label and run.label == "sft-demo · step 6"
    recorded = run.config["checkpoint"]
    revision = model_revision(tmp_path / "checkpoint-6")
    assert revision.startswith("sha256:")
    assert recorded["revision"] == revision and run.model_revision == revision
    assert (recorded["training_run"], recorded["step"], recorded["path"]) == (
        ckpt.run_id, 6, ckpt.path)

    page = client.get(run.get_absolute_url()).content.decode()
    assert f'<code data-field="evaluated-path">{ckpt.path}</code>' in page
    assert f'<code data-field="model-revision">{revision}</code>' in page
    assert reverse("training_detail", args=[ckpt.run_id]) in page and "step 6" in page


def test_a_typed_path_beside_a_checkpoint_is_refused_by_the_launch_verb(tmp_path):
    bench = make_benchmark()
    ckpt = checkpoint_folder(tmp_path)
    with pytest.raises(UserError, match="evaluates the checkpoint's folder"):
        EvaluationRun.launch(benchmarks=[bench], checkpoint=ckpt, model_path="/models/base")
    assert EvaluationRun.objects.count() == 0
    with pytest.raises(UserError, match="needs a checkpoint"):
        EvaluationRun.launch(benchmarks=[bench], source="checkpoint", model_path="/models/base")
    # The checkpoint's own path (as the schedule passes it) is fine.
    run = EvaluationRun.launch(benchmarks=[bench], checkpoint=ckpt, model_path=ckpt.path + "/")
    assert run.model_path == ckpt.path


def test_the_form_opens_on_a_checkpoint_from_a_link(users, tmp_path):
    make_benchmark()
    ckpt = checkpoint_folder(tmp_path)
    client = client_for(users["operator"])
    query = f"?source=checkpoint&checkpoint={ckpt.pk}"
    resp = client.get(reverse("evaluation_new") + query)
    assert resp.status_code == 302
    assert resp["Location"] == reverse("evaluation_home") + query + "#new-evaluation"
    page = client.get(reverse("evaluation_home") + query).content.decode()
    assert f'<option value="{ckpt.pk}" selected>' in page
    assert '<option value="checkpoint" selected>' in page
    form = EvaluationForm.from_query(resp.wsgi_request.GET)
    assert form["model_path"].value() == "" and form["checkpoint"].value() == ckpt.pk
    # Without parameters the demo model stays the default.
    assert EvaluationForm.from_query(QueryDict())["model_path"].value()


def test_the_worker_refuses_a_checkpoint_folder_changed_since_launch(tmp_path):
    bench = make_benchmark()
    ckpt = checkpoint_folder(tmp_path)
    run = EvaluationRun.create_queued(benchmarks=[bench], checkpoint=ckpt)
    check_checkpoint(run)  # unchanged: fine
    (tmp_path / "checkpoint-6" / "model.safetensors").write_bytes(b"overwritten by a resume")
    with pytest.raises(UserError, match="changed since the evaluation was launched"):
        check_checkpoint(run)
