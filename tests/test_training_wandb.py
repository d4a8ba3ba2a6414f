"""A real training run reporting to wandb, offline: the trainer writes the wandb run into the
run's folder, its history matches what skyboard stored, the page says how to sync it (or, with
an online configuration, links to it), and the API key never reaches the trainer offline.

The job runs in-process (``workers.runner.execute``) with the real LLaMA-Factory of the training
virtualenv and the tiny model; no wandb server is contacted.
"""

from __future__ import annotations

import json
import math
import subprocess

import pytest
from django.urls import reverse

from experiments.models import RunState, TrainingRun
from tests.support.accounts import client_for
from tests.support.training import launch, make_sharegpt_dataset, trainer_processes
from workers.runner import execute

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("empty_broker"),
]

SECRET = "wk-secret-0123456789abcdef"

# Reads the offline run's .wandb file with the SDK of the training virtualenv.
READ_HISTORY = """
import json, sys
from wandb.proto import wandb_internal_pb2 as pb
from wandb.sdk.internal.datastore import DataStore
ds = DataStore()
ds.open_for_scan(sys.argv[1])
run_id, history = None, []
while True:
    data = ds.scan_data()
    if data is None:
        break
    rec = pb.Record()
    rec.ParseFromString(data)
    kind = rec.WhichOneof("record_type")
    if kind == "run":
        run_id = rec.run.run_id
    elif kind == "history":
        history.append({
            (i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in rec.history.item
        })
print(json.dumps({"run_id": run_id, "history": history}))
"""


def test_offline_wandb_run_matches_the_stored_metrics_and_the_page_explains_it(
    tmp_path, users, tiny_model, train_venv, settings, monkeypatch
):
    settings.RUNS_DIR = tmp_path / "runs"
    settings.TRAINING_VENV = train_venv
    # A key is configured (in the worker's environment and settings) but the mode is offline.
    settings.WANDB_MODE, settings.WANDB_PROJECT, settings.WANDB_API_KEY = "offline", "sky", SECRET
    monkeypatch.setenv("WANDB_API_KEY", SECRET)
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))
    trainer_envs: list[dict] = []
    real_popen = subprocess.Popen

    def spy(args, *a, **kw):
        if str(args[0]).endswith("llamafactory-cli"):
            trainer_envs.append(dict(kw["env"]))
        return real_popen(args, *a, **kw)

    monkeypatch.setattr("distill.training.launcher.subprocess.Popen", spy)

    run = launch(
        users,
        model_name_or_path=str(tiny_model),
        sources=[f"dataset:{make_sharegpt_dataset().pk}"],
        max_steps="2",
        cutoff_len="32",
        report_to="wandb",
    )
    assert execute("training", run.pk, hostname="test") == RunState.SUCCEEDED
    run.refresh_from_db()
    assert run.state == RunState.SUCCEEDED, f"{run.failure_reason}: {run.failure_message}"
    assert trainer_processes(run.run_dir) == []  # wandb's service ended with the trainer

    # The trainer's environment: wandb offline, into the run folder, and no key.
    (env,) = trainer_envs
    assert env["WANDB_MODE"] == "offline" and env["WANDB_DIR"] == str(run.run_dir)
    assert env["WANDB_RUN_ID"] == f"skyboard-training-{run.pk}"
    assert "WANDB_API_KEY" not in env and SECRET not in json.dumps(env)
    assert run.wandb_url == ""

    # The offline run folder, inside the run's folder.
    (offline,) = (run.run_dir / "wandb").glob(f"offline-run-*-skyboard-training-{run.pk}")
    (wandb_file,) = offline.glob("*.wandb")
    assert wandb_file.stat().st_size > 0

    # Its history: the same train/loss steps as the metric points skyboard stored.
    read = subprocess.run(
        [str(train_venv / "bin" / "python"), "-c", READ_HISTORY, str(wandb_file)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    recorded = json.loads(read.stdout)
    assert recorded["run_id"] == f"skyboard-training-{run.pk}"
    logged = [h for h in recorded["history"] if "train/loss" in h]
    stored = list(run.metrics.filter(kind="train").order_by("step"))
    assert [m.step for m in stored] == [1, 2]
    assert [h["train/global_step"] for h in logged] == [m.step for m in stored]
    for h, m in zip(logged, stored, strict=True):
        assert math.isclose(h["train/loss"], m.loss, rel_tol=1e-3), (h, m.loss)
    assert SECRET not in wandb_file.read_bytes().decode("latin-1")

    # The page: where the offline run is and how to upload it; never the key.
    viewer = client_for(users["viewer"])
    page = viewer.get(reverse("training_detail", args=[run.pk])).content.decode()
    offline_note = f"offline: <code>{run.run_dir}/wandb</code> (<code>wandb sync</code> uploads it)"
    assert offline_note in page
    assert SECRET not in page

    # Online (configured, not contacted): the link is built from entity, project and run id —
    # the same run id the trainer used — and the page shows it, still without the key.
    settings.WANDB_MODE, settings.WANDB_ENTITY = "online", "lab"
    online_env, url = run.wandb_env()
    assert online_env["WANDB_API_KEY"] == SECRET  # online, the trainer needs it
    assert url == f"https://wandb.ai/lab/sky/runs/{recorded['run_id']}"
    TrainingRun.objects.filter(pk=run.pk).update(wandb_url=url)  # what start_attempt records
    page = viewer.get(reverse("training_detail", args=[run.pk])).content.decode()
    assert f'<a href="{url}" rel="noopener">' in page and offline_note not in page
    assert SECRET not in page
