"""The demo's realistic funnel: the model transcripts the champ-dataset package carries, imported
into a curation run at verification (manage.py import_champ_traces)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from distill.datasets import packaged_datasets
from experiments.models import CurationRun, ImportRun, RunState, Sample
from workers.runner import execute

CHAMP = next((p for p in packaged_datasets() if p.name == "champ"), None)


@pytest.fixture(autouse=True)
def _quiet_heartbeat(settings):
    settings.RUN_HEARTBEAT_SECONDS = 600


@pytest.mark.skipif(CHAMP is None, reason="champ-dataset is not installed")
@pytest.mark.django_db
def test_champ_transcripts_become_a_finished_run_with_a_real_funnel(settings, tmp_path):
    settings.RUNS_DIR = tmp_path / "runs"
    run = ImportRun.create_queued(name="import champ", config={
        "path": str(CHAMP.path), "name": "champ", "layout": CHAMP.layout, "origin": "pip"})
    assert execute("import", run.pk) == RunState.SUCCEEDED
    out = StringIO()
    call_command("import_champ_traces", problems=6, stdout=out)
    run = CurationRun.objects.get()
    assert run.state == RunState.SUCCEEDED and run.start_stage == "verify", out.getvalue()
    gen = Sample.objects.filter(run=run, stage="generate")
    models = set(gen.values_list("model_name", flat=True))
    assert models == {"GPT-3.5", "GPT-4", "GPT-4 Turbo", "PaLM 2 Medium"}
    assert gen.count() == 24 and run.counts["verify"]["total"] == 24
    one = gen.first()
    assert one.detail["imported"]["format"] == "jsonl" and one.detail["imported"]["line"] >= 1
    assert "v0.json" in one.detail["imported"]["file"] and one.text
    # Real answers, really verified: some pass, some do not, and export takes the passed ones.
    passed = run.counts["verify"]["passed"]
    assert run.exported_rows == passed < 24
    assert "imported into run" in out.getvalue()
    # Idempotent: the demo runs it on every start.
    call_command("import_champ_traces", stdout=StringIO())
    assert CurationRun.objects.count() == 1
