"""Factories for training tests: exports and ShareGPT datasets over the tiny fixture, the launch
form's data, metric points, and launching a run (and finding its processes) as an operator."""

from __future__ import annotations

import json
import os
from pathlib import Path

from django.urls import reverse

from distill.training.config import sharegpt_info
from distill.training.logs import MetricPoint
from distill.training.processes import TAG_VARIABLE
from experiments.models import Dataset, Problem, TrainingRun
from experiments.models.curation import TrainingSet, TrainingSetVersion
from tests.support.accounts import client_for

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "training"


def make_export(path: Path, name: str = "tiny-export") -> TrainingSetVersion:
    """A curation export (training-set version) over an existing ShareGPT file."""
    ts, _ = TrainingSet.objects.get_or_create(name=name)
    number = ts.versions.count() + 1
    return TrainingSetVersion.objects.create(
        training_set=ts,
        number=number,
        path=str(path),
        dataset_name=f"{name}-v{number}".replace("-", "_"),
        dataset_info={"x": sharegpt_info(path)},
        row_count=sum(1 for _ in path.open()),
    )


def make_sharegpt_dataset(name: str = "tiny-sharegpt") -> Dataset:
    """An imported ShareGPT dataset: the fixture's rows, as the importer stores them."""
    dataset = Dataset.objects.create(name=name, layout="sharegpt", ready=True)
    for i, line in enumerate((FIXTURES / "sharegpt_tiny.jsonl").read_text().splitlines()):
        row = json.loads(line)
        turns = row["conversations"]
        Problem.objects.create(
            dataset=dataset,
            row=i,
            domain="other",
            source="sharegpt",
            prompt=turns[0]["value"],
            solution=turns[1]["value"],
            meta={"system": row["system"]},
            raw=row,
            content_hash=f"{i:064d}",
        )
    dataset.refresh_stats()
    return dataset


def form_data(**overrides) -> dict:
    data = {
        "name": "tiny run",
        "model_name_or_path": "/models/tiny",
        "sources": [],
        "mix_strategy": "concat",
        "interleave_probs": "",
        "stage": "sft",
        "finetuning_type": "full",
        "lora_rank": "8",
        "template": "qwen",
        "cutoff_len": "64",
        "learning_rate": "0.001",
        "num_train_epochs": "1",
        "lr_scheduler_type": "cosine",
        "warmup_ratio": "0",
        "per_device_train_batch_size": "1",
        "gradient_accumulation_steps": "1",
        "gpus_per_node": "1",
        "nodes": "1",
        "deepspeed": "none",
        "deepspeed_json": "",
        "precision": "fp32",
        "logging_steps": "1",
        "save_steps": "500",
        "report_to": "none",
    }
    data.update(overrides)
    return data


def points(steps, **fields):
    return [MetricPoint(step=s, total_steps=max(steps), loss=1.0 / s, **fields) for s in steps]


def state_of(run) -> str:
    return TrainingRun.objects.values_list("state", flat=True).get(pk=run.pk)


def launch(users, **fields) -> TrainingRun:
    resp = client_for(users["operator"]).post(reverse("training_new"), form_data(**fields))
    assert resp.status_code == 302, resp.content.decode()[:3000]
    return TrainingRun.objects.latest("pk")


def trainer_processes(run_dir: Path) -> list[int]:
    """Live processes started by a skyboard training run whose working folder is run_dir."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            cwd = os.readlink(entry / "cwd")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if TAG_VARIABLE.encode() + b"=" in environ and cwd.startswith(str(run_dir)):
            if stat[stat.rindex(")") + 2] != "Z":
                found.append(int(entry.name))
    return found


def make_benchmark_over(dataset: Dataset, count: int, slug: str = "gsm8k"):
    """A registered benchmark whose first ``count`` items are ``dataset``'s first prompts (a
    training set that holds a benchmark's problems)."""
    from experiments.models import Benchmark

    bench_set = Dataset.objects.create(name=f"bench-{slug}", layout="gsm8k", ready=True)
    for i, prompt in enumerate(dataset.problems.order_by("id").values_list("prompt", flat=True)[:count]):
        Problem.objects.create(dataset=bench_set, row=i, domain="math", source="fixture",
                               prompt=prompt, answer="1", external_id=f"b{i}",
                               content_hash=f"bench{i}".ljust(64, "0"))
    return Benchmark.objects.register(slug, bench_set)
