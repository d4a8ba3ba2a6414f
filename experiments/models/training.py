"""Training runs: what they train on, their metric points and checkpoints, GPU-hours and cost.

The worker side (``distill/training``) is Django-free; this module turns a run row into its
``TrainingSettings`` and stores what the launcher reports while it runs.
"""

from __future__ import annotations

import json
import re
import socket
from collections import deque
from pathlib import Path
from typing import Any

from celery import current_app
from django.apps import apps
from django.conf import settings
from django.db import models
from django.db.models import Avg, F, Max, Min, Value
from django.utils import timezone

from distill.training.config import (
    CONFIG_FILE,
    DATASET_INFO_FILE,
    DEEPSPEED_FILE,
    SKY_T1_32B_PREVIEW,
    TrainingSettings,
    build_run_files,
)

from .datasets import Dataset, Problem
from .runs import Lifecycle, Queue, QueuedRun, RunState

# Chart JSON never carries more points than this per curve: a 100k-step run draws as fast as a
# 100-step one (bucket mean, with the bucket's min/max as a band).
MAX_CHART_POINTS = 1500
LOG_TAIL_LINES = 400
LOG_TAIL_CHARS = 64_000
RUN_FILES = (CONFIG_FILE, DEEPSPEED_FILE, DATASET_INFO_FILE)
METRIC_FIELDS = ("loss", "lr", "grad_norm", "epoch", "tokens_per_s", "total_tokens")


class SourceKind(models.TextChoices):
    TRAINING_SET = "trainingset", "curation export"
    DATASET = "dataset", "imported ShareGPT dataset"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:60] or "data"


def _training_set_version_model():
    """Curation exports (``TrainingSetVersion``), or None where that model is not installed."""
    try:
        return apps.get_model("experiments", "TrainingSetVersion")
    except LookupError:
        return None


def training_sources() -> list[tuple[str, str]]:
    """(value, label) of everything a run can train on: curation exports, ShareGPT datasets."""
    choices = []
    tsv = _training_set_version_model()
    if tsv is not None:
        for v in tsv.objects.select_related("training_set").order_by("-created_at")[:200]:
            choices.append((f"trainingset:{v.pk}", f"{v} (curation export, {v.row_count} rows)"))
    for d in Dataset.objects.ready().filter(layout="sharegpt").order_by("name"):
        choices.append((f"dataset:{d.pk}", f"{d.name} (ShareGPT dataset, {d.problem_count} rows)"))
    return choices


def source_label(value: str) -> str:
    """What a user calls a stored source ("trainingset:3"): the export's or dataset's name."""
    kind, _, pk = value.partition(":")
    if not pk.isdigit():
        return value
    if kind == SourceKind.TRAINING_SET:
        model = _training_set_version_model()
        version = model and model.objects.select_related("training_set").filter(pk=int(pk)).first()
        return f"{version} (curation export)" if version else f"{value} (deleted)"
    if kind == SourceKind.DATASET:
        name = Dataset.objects.filter(pk=int(pk)).values_list("name", flat=True).first()
        return f"{name} (ShareGPT dataset)" if name else f"{value} (deleted)"
    return value


def resolve_source(value: str, data_dir: Path) -> dict[str, Any]:
    """'kind:id' -> {"kind", "id", "name", "label", "file", "info"}; LookupError if it is gone.

    An imported dataset lives in the database: its file is written by the worker into the run's
    ``data/`` folder (``materialise_dataset``). A curation export is already a ShareGPT file
    with its own dataset_info entry, used where it is.
    """
    kind, _, pk = value.partition(":")
    if kind == SourceKind.TRAINING_SET:
        model = _training_set_version_model()
        if model is None:
            raise LookupError("curation exports are not available")
        v = model.objects.select_related("training_set").get(pk=int(pk))
        entry = dict(v.dataset_info.get(v.dataset_name) or {})
        entry.pop("file_name", None)
        return {
            "kind": kind,
            "id": v.pk,
            "name": _slug(f"ts{v.pk}_{v.dataset_name}"),
            "label": str(v),
            "file": v.path,
            "info": entry,
        }
    if kind == SourceKind.DATASET:
        d = Dataset.objects.get(pk=int(pk), layout="sharegpt")
        name = _slug(f"ds{d.pk}_{d.name}")
        return {
            "kind": kind,
            "id": d.pk,
            "name": name,
            "label": d.name,
            "file": str(Path(data_dir) / f"{name}.jsonl"),
            "info": {},
        }
    raise LookupError(f"unknown training source {value!r}")


def materialise_dataset(dataset_id: int, dest: Path) -> int:
    """Write an imported ShareGPT dataset as the ShareGPT JSONL skyboard exports; rows count.

    Rows without an assistant turn cannot be trained on and are left out.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".partial")
    count = 0
    rows = Problem.objects.filter(dataset_id=dataset_id).exclude(solution="").order_by("id")
    with tmp.open("w", encoding="utf-8") as out:
        for prompt, solution, meta in rows.values_list("prompt", "solution", "meta").iterator():
            row = {
                "system": (meta or {}).get("system") or "",
                "conversations": [
                    {"from": "user", "value": prompt},
                    {"from": "assistant", "value": solution},
                ],
            }
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    tmp.replace(dest)
    return count


class TrainingRun(QueuedRun):
    """A LLaMA-Factory (+ DeepSpeed) training job on GPU workers.

    ``config`` holds {"settings": TrainingSettings fields except datasets/output_dir,
    "sources": ["trainingset:3", "dataset:7"], "preset": "..."}.
    """

    kind = "training"
    title = "Training"
    queue = models.CharField(max_length=8, choices=Queue.choices, default=Queue.GPU)
    node_task_name = "workers.tasks.gpu.train_node"

    base_model = models.CharField(max_length=500, blank=True)
    stage = models.CharField(max_length=16, default="sft")
    # The generated config.yaml / deepspeed.json / dataset_info.json: shown and downloadable
    # on the run page (the web server may not see the worker's disk).
    files = models.JSONField(default=dict, blank=True)
    log_tail = models.TextField(blank=True)
    last_step = models.PositiveIntegerField(null=True, blank=True)
    total_steps = models.PositiveIntegerField(null=True, blank=True)
    # Summed over attempts (a resumed run pays for every attempt).
    gpu_seconds = models.FloatField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    final_model = models.CharField(max_length=1000, blank=True)
    wandb_url = models.CharField(max_length=500, blank=True)
    # Multi-node: where node 0's torchrun listens (published by node 0's worker each attempt).
    master_addr = models.CharField(max_length=255, blank=True)
    master_port = models.PositiveIntegerField(null=True, blank=True)

    class Meta(QueuedRun.Meta):
        pass

    # --- launching -------------------------------------------------------------------------

    @classmethod
    def new(cls, *, settings_data: dict[str, Any], sources: list[str], preset: str = "",
            **fields):
        """A run of ``settings_data`` (TrainingSettings fields) over ``sources``."""
        return super().new(
            base_model=str(settings_data.get("model_name_or_path", ""))[:500],
            stage=settings_data.get("stage", "sft"),
            config={"settings": settings_data, "sources": list(sources), "preset": preset},
            **fields,
        )

    def on_launch(self) -> None:
        """The generated files, shown on the run page before a worker writes them."""
        self.files = self.render_files()
        self.save(update_fields=["files"])

    def enqueue(self, **options) -> None:
        """One task per node: node 0 is the run's own task (``execute_run``, the lifecycle
        owner), nodes 1..N-1 are ``train_node(run_id, rank)`` tasks on the same queue."""
        self.reset_nodes()
        super().enqueue(**options)
        if self.nodes < 2:
            return
        TrainingNode.objects.filter(run_id=self.pk, rank=0).update(
            celery_task_id=self.celery_task_id
        )
        for rank in range(1, self.nodes):
            result = current_app.send_task(self.node_task_name, args=[self.pk, rank], **options)
            TrainingNode.objects.filter(run_id=self.pk, rank=rank).update(celery_task_id=result.id)

    def cancel(self) -> str:
        """As every run; a queued multi-node run also revokes its node tasks (a running one is
        stopped by each node's heartbeat, which sees the cancel flag)."""
        outcome = super().cancel()
        if outcome == "cancelled":
            queued = TrainingNode.objects.filter(run_id=self.pk, state=RunState.QUEUED)
            for task_id in queued.exclude(celery_task_id="").values_list(
                "celery_task_id", flat=True
            ):
                current_app.control.revoke(task_id)
            queued.update(state=RunState.CANCELLED, finished_at=self.finished_at)
        return outcome

    # --- configuration ---------------------------------------------------------------------

    @property
    def run_dir(self) -> Path:
        return Path(settings.RUNS_DIR) / f"training-{self.pk}"

    @property
    def output_dir(self) -> Path:
        return self.run_dir / "output"

    @property
    def settings_data(self) -> dict[str, Any]:
        return dict(self.config.get("settings") or {})

    def node_dir(self, rank: int) -> Path:
        """Where node ``rank`` writes its launcher files, log and data (node 0: the run folder).

        Other nodes get their own folder, so that nodes sharing a disk (or a machine) do not
        write the same files; the trainer's output_dir is the same path on every node.
        """
        return self.run_dir if rank == 0 else self.run_dir / f"node-{rank}"

    def source_labels(self) -> list[str]:
        return [source_label(v) for v in self.config.get("sources", [])]

    def sources(self, data_dir: Path | None = None) -> list[dict[str, Any]]:
        data_dir = self.run_dir / "data" if data_dir is None else data_dir
        return [resolve_source(v, data_dir) for v in self.config.get("sources", [])]

    def training_settings(self, sources: list[dict[str, Any]] | None = None) -> TrainingSettings:
        sources = self.sources() if sources is None else sources
        data = {
            **self.settings_data,
            "datasets": [
                {"name": s["name"], "file": s["file"], "info": s["info"]} for s in sources
            ],
            "output_dir": str(self.output_dir),
        }
        data.setdefault("run_name", f"skyboard-training-{self.pk}")
        return TrainingSettings.from_dict(data)

    def render_files(self, *, check_files: bool = False) -> dict[str, str]:
        """The three files as they will be written (ConfigError when the settings are invalid)."""
        files = build_run_files(self.training_settings(), self.run_dir, check_files=check_files)
        out = {CONFIG_FILE: files.config_yaml, DATASET_INFO_FILE: files.dataset_info_json}
        if files.deepspeed_json is not None:
            out[DEEPSPEED_FILE] = files.deepspeed_json
        return out

    @property
    def gpus_per_node(self) -> int:
        return int(self.settings_data.get("gpus_per_node", 1))

    @property
    def nodes(self) -> int:
        return int(self.settings_data.get("nodes", 1))

    @property
    def effective_batch(self) -> int:
        """Sequences per optimizer step (``effective_batch_size`` of the stored settings)."""
        s = self.settings_data
        return (
            int(s.get("per_device_train_batch_size", 1))
            * int(s.get("gradient_accumulation_steps", 1))
            * self.gpus_per_node
            * self.nodes
        )

    def wandb_env(self) -> tuple[dict[str, str], str]:
        """Environment for the trainer's wandb and the page's link to the run.

        The run id is fixed (``skyboard-training-<pk>``) so the link is known before the first
        step and a resumed attempt continues the same wandb run.
        """
        if self.settings_data.get("report_to") != "wandb":
            return {}, ""
        run_id = f"skyboard-training-{self.pk}"
        env = {
            "WANDB_PROJECT": settings.WANDB_PROJECT,
            "WANDB_MODE": settings.WANDB_MODE,
            "WANDB_RUN_ID": run_id,
            "WANDB_RESUME": "allow",
            "WANDB_DIR": str(self.run_dir),
        }
        if settings.WANDB_ENTITY:
            env["WANDB_ENTITY"] = settings.WANDB_ENTITY
        if settings.WANDB_MODE == "offline":
            return env, ""
        if settings.WANDB_API_KEY:
            env["WANDB_API_KEY"] = settings.WANDB_API_KEY
        entity = settings.WANDB_ENTITY or "-"
        return env, f"https://wandb.ai/{entity}/{settings.WANDB_PROJECT}/runs/{run_id}"

    # --- cost ------------------------------------------------------------------------------

    @property
    def gpu_hours(self) -> float:
        """Finished attempts, plus the running attempt so far on every GPU of every node."""
        seconds = self.gpu_seconds
        if self.state == RunState.RUNNING and self.started_at:
            elapsed = (timezone.now() - self.started_at).total_seconds()
            seconds += elapsed * self.gpus_per_node * self.nodes
        return seconds / 3600

    @property
    def cost_usd(self) -> float:
        return self.gpu_hours * settings.GPU_HOUR_PRICE_USD

    # --- what the worker reports -----------------------------------------------------------

    def start_attempt(self, files: dict[str, str], wandb_url: str) -> int | None:
        """Before launching: record the files, and forget metric points after the checkpoint
        this attempt resumes from (they will be trained, and reported, again)."""
        latest = self.checkpoints.filter(is_final=False).order_by("-step").first()
        from_step = latest.step if latest else 0
        self.metrics.filter(step__gt=from_step).delete()
        self.checkpoints.filter(is_final=True).delete()
        self.files = files
        self.wandb_url = wandb_url
        self.attempts += 1
        self.final_model = ""
        self.save(update_fields=["files", "wandb_url", "attempts", "final_model"])
        return latest.step if latest else None

    def add_metrics(self, points) -> None:
        """Store launcher MetricPoints; a step stored twice (a retried delivery) is updated."""
        rows = []
        for p in points:
            if p.loss is None and p.eval_loss is None:
                continue  # the end-of-training summary line: nothing to draw
            kind = TrainingMetric.Kind.TRAIN if p.loss is not None else TrainingMetric.Kind.EVAL
            rows.append(
                TrainingMetric(
                    run_id=self.pk,
                    kind=kind,
                    step=p.step,
                    loss=p.loss if p.loss is not None else p.eval_loss,
                    lr=p.lr,
                    grad_norm=p.grad_norm,
                    epoch=p.epoch,
                    tokens_per_s=p.throughput_tokens_per_s,
                    total_tokens=p.total_tokens,
                )
            )
        if not rows:
            return
        TrainingMetric.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["run", "kind", "step"],
            update_fields=list(METRIC_FIELDS),
        )
        last = max(points, key=lambda p: p.step)
        self.last_step = last.step
        self.total_steps = last.total_steps or self.total_steps
        self.beat(
            last_step=self.last_step,
            total_steps=self.total_steps,
            progress={"stage": "train", "done": self.last_step, "total": self.total_steps},
        )

    def set_log_tail(self, text: str) -> None:
        self.log_tail = text[-LOG_TAIL_CHARS:]
        type(self).objects.filter(pk=self.pk).update(log_tail=self.log_tail)

    def register_checkpoint(self, step: int, path: Path, size_bytes: int, *, is_final=False):
        ckpt, _ = TrainingCheckpoint.objects.update_or_create(
            run_id=self.pk,
            path=str(path),
            defaults={"step": step, "size_bytes": size_bytes, "is_final": is_final},
        )
        return ckpt

    def finish_attempt(self, outcome) -> None:
        """After the trainer exited: GPU time, checkpoints' final sizes, the final model."""
        for c in outcome.checkpoints:
            self.register_checkpoint(c.step, c.path, c.size_bytes)
        if outcome.final_model is not None:
            # The output folder also holds the checkpoint-N folders: count the model's own files.
            size = sum(f.stat().st_size for f in Path(outcome.final_model).iterdir() if f.is_file())
            self.register_checkpoint(
                outcome.last_step or 0, outcome.final_model, size, is_final=True
            )
            self.final_model = str(outcome.final_model)
        self.add_gpu_seconds(outcome.gpu_seconds)
        self.log_tail = outcome.log_tail[-LOG_TAIL_CHARS:]
        self.save(update_fields=["final_model", "log_tail"])

    def add_gpu_seconds(self, seconds: float) -> None:
        """Atomic: every node of a multi-node run adds its own GPU time."""
        type(self).objects.filter(pk=self.pk).update(gpu_seconds=F("gpu_seconds") + seconds)
        self.gpu_seconds = type(self).objects.values_list("gpu_seconds", flat=True).get(pk=self.pk)

    # --- multi-node ------------------------------------------------------------------------

    def reset_nodes(self) -> None:
        """Before (re-)enqueueing: one queued row per node, no master address yet."""
        type(self).objects.filter(pk=self.pk).update(master_addr="", master_port=None)
        self.master_addr, self.master_port = "", None
        TrainingNode.objects.filter(run_id=self.pk, rank__gte=self.nodes).delete()
        if self.nodes < 2:
            TrainingNode.objects.filter(run_id=self.pk).delete()
            return
        for rank in range(self.nodes):
            TrainingNode.objects.update_or_create(
                run_id=self.pk, rank=rank, defaults=TrainingNode.fresh_fields()
            )

    def publish_master(self, addr: str, port: int) -> None:
        type(self).objects.filter(pk=self.pk, state=RunState.RUNNING).update(
            master_addr=addr, master_port=port
        )
        self.master_addr, self.master_port = addr, port

    def master(self) -> tuple[str, int] | None:
        """The published (address, port) of node 0, or None while it is not published."""
        addr, port = type(self).objects.values_list("master_addr", "master_port").get(pk=self.pk)
        return (addr, port) if addr and port else None

    def node_rows(self) -> list[TrainingNode]:
        return list(self.training_nodes.order_by("rank"))

    # --- reading ---------------------------------------------------------------------------

    def chart(self, max_points: int = MAX_CHART_POINTS) -> dict[str, Any]:
        return TrainingMetric.objects.chart(self.pk, max_points=max_points)

    def live_dict(self) -> dict[str, Any]:
        data = self.status_dict()
        data.update(
            log_tail=self.log_tail,
            last_step=self.last_step,
            total_steps=self.total_steps,
            gpu_hours=round(self.gpu_hours, 4),
            cost_usd=round(self.cost_usd, 2),
            wandb_url=self.wandb_url,
            final_model=self.final_model,
            checkpoints=[c.as_dict() for c in self.checkpoints.order_by("step", "is_final")],
            nodes=[n.as_dict() for n in self.node_rows()],
        )
        return data


class LogTail:
    """The last lines of a trainer's output, as the page shows them (tqdm redraws collapsed)."""

    def __init__(self, initial: str = "", lines: int = LOG_TAIL_LINES):
        self._lines: deque[str] = deque(initial.splitlines() if initial else (), maxlen=lines)

    def add(self, text: str) -> None:
        for line in text.splitlines():
            self._lines.append(line.rsplit("\r", 1)[-1])

    def text(self) -> str:
        return "\n".join(self._lines)


class TrainingMetricQuerySet(models.QuerySet):
    def chart(self, run_id: int, *, max_points: int = MAX_CHART_POINTS) -> dict[str, Any]:
        """Curves of one run, downsampled in the database into at most max_points buckets.

        {"train": {"step": [...], "loss": [...], "loss_min": [...], "loss_max": [...],
        "lr": [...], "grad_norm": [...], "tokens_per_s": [...], "epoch": [...]},
        "eval": {"step": [...], "loss": [...]}, "points": n, "bucket": steps per point}
        """
        out: dict[str, Any] = {"points": 0, "bucket": 1}
        for kind in TrainingMetric.Kind.values:
            rows = self.filter(run_id=run_id, kind=kind)
            stats = rows.aggregate(n=models.Count("id"), lo=Min("step"), hi=Max("step"))
            n = stats["n"] or 0
            curve: dict[str, list] = {"step": [], "loss": [], "loss_min": [], "loss_max": []}
            curve.update({f: [] for f in ("lr", "grad_norm", "tokens_per_s", "epoch")})
            if kind == TrainingMetric.Kind.TRAIN:
                out["points"] = n
            if n and n > max_points:
                width = -(-(stats["hi"] - stats["lo"] + 1) // max_points)  # ceil
                if kind == TrainingMetric.Kind.TRAIN:
                    out["bucket"] = width
                # Integer division on both SQLite and PostgreSQL: GROUP BY (step - lo) / width.
                grouped = (
                    rows.annotate(bucket=(F("step") - Value(stats["lo"])) / Value(width))
                    .values("bucket")
                    .annotate(
                        s=Max("step"),
                        l_avg=Avg("loss"),
                        l_min=Min("loss"),
                        l_max=Max("loss"),
                        lr_avg=Avg("lr"),
                        g_avg=Avg("grad_norm"),
                        t_avg=Avg("tokens_per_s"),
                        e_max=Max("epoch"),
                    )
                    .order_by("bucket")
                )
                for r in grouped:
                    curve["step"].append(r["s"])
                    curve["loss"].append(r["l_avg"])
                    curve["loss_min"].append(r["l_min"])
                    curve["loss_max"].append(r["l_max"])
                    curve["lr"].append(r["lr_avg"])
                    curve["grad_norm"].append(r["g_avg"])
                    curve["tokens_per_s"].append(r["t_avg"])
                    curve["epoch"].append(r["e_max"])
            elif n:
                fields = ("step", "loss", "lr", "grad_norm", "tokens_per_s", "epoch")
                for row in rows.order_by("step").values_list(*fields):
                    for name, value in zip(fields, row, strict=True):
                        curve[name].append(value)
                curve["loss_min"] = curve["loss_max"] = []
            out[kind] = curve
        return out


class TrainingMetric(models.Model):
    """One logged step of a training run (trainer_log.jsonl + the Trainer's grad_norm)."""

    class Kind(models.TextChoices):
        TRAIN = "train", "train"
        EVAL = "eval", "eval"

    run = models.ForeignKey(
        "experiments.TrainingRun", on_delete=models.CASCADE, related_name="metrics"
    )
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.TRAIN)
    step = models.PositiveIntegerField()
    loss = models.FloatField(null=True)  # eval_loss for eval points
    lr = models.FloatField(null=True)
    grad_norm = models.FloatField(null=True)
    epoch = models.FloatField(null=True)
    tokens_per_s = models.FloatField(null=True)
    total_tokens = models.BigIntegerField(null=True)

    objects = TrainingMetricQuerySet.as_manager()

    class Meta:
        ordering = ["run", "kind", "step"]
        constraints = [
            # Also the index of every chart query: WHERE run_id=? AND kind=? [GROUP BY step/w]
            # ORDER BY step; and the conflict target of add_metrics' upsert.
            models.UniqueConstraint(fields=["run", "kind", "step"], name="training_metric_step")
        ]

    def __str__(self) -> str:
        return f"{self.kind} step {self.step} of run {self.run_id}"


class TrainingCheckpoint(models.Model):
    """A saved checkpoint (``checkpoint-N``) or the final model: what evaluations pick up."""

    run = models.ForeignKey(
        "experiments.TrainingRun", on_delete=models.CASCADE, related_name="checkpoints"
    )
    step = models.PositiveIntegerField()
    path = models.CharField(max_length=1000)
    size_bytes = models.BigIntegerField(default=0)
    is_final = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["run", "step"]
        constraints = [
            models.UniqueConstraint(fields=["run", "path"], name="training_checkpoint_path")
        ]

    def __str__(self) -> str:
        return (
            f"{'final model' if self.is_final else f'checkpoint-{self.step}'} of run {self.run_id}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.pk,
            "step": self.step,
            "path": self.path,
            "size_bytes": self.size_bytes,
            "is_final": self.is_final,
            "created_at": self.created_at.isoformat(),
        }


def master_address() -> str:
    """The address other nodes reach node 0 at: setting TRAINING_MASTER_ADDR, else this host's
    IP address as its fully qualified name resolves (the FQDN itself if it does not)."""
    if settings.TRAINING_MASTER_ADDR:
        return settings.TRAINING_MASTER_ADDR
    fqdn = socket.getfqdn()
    try:
        return socket.gethostbyname(fqdn)
    except OSError:
        return fqdn


def free_port() -> int:
    """Setting TRAINING_MASTER_PORT, else a port free on this host right now."""
    if settings.TRAINING_MASTER_PORT:
        return settings.TRAINING_MASTER_PORT
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


class TrainingNode(Lifecycle):
    """One node (one Celery task, one torchrun) of a multi-node training run.

    A lifecycle row like the run itself, run by the same executor: nodes 1..N-1 in their own
    ``train_node`` tasks, node 0 inside the run's task, which then decides the run's state from
    the nodes' rows.
    """

    run = models.ForeignKey(
        "experiments.TrainingRun", on_delete=models.CASCADE, related_name="training_nodes"
    )
    rank = models.PositiveIntegerField()
    exit_code = models.IntegerField(null=True, blank=True)
    gpu_seconds = models.FloatField(default=0)

    class Meta:
        ordering = ["run", "rank"]
        constraints = [models.UniqueConstraint(fields=["run", "rank"], name="training_node_rank")]

    def __str__(self) -> str:
        return f"node {self.rank} of run {self.run_id}"

    @staticmethod
    def fresh_fields() -> dict[str, Any]:
        return {
            "state": RunState.QUEUED,
            "worker": "",
            "worker_pid": None,
            "celery_task_id": "",
            "started_at": None,
            "heartbeat_at": None,
            "finished_at": None,
            "cancel_requested_at": None,
            "exit_code": None,
            "gpu_seconds": 0,
            "failure_reason": "",
            "failure_message": "",
        }

    def peers(self) -> models.QuerySet[TrainingNode]:
        """The nodes this node watches: node 0 every other node, every other node node 0."""
        nodes = TrainingNode.objects.filter(run_id=self.run_id)
        return nodes.exclude(rank=0) if self.rank == 0 else nodes.filter(rank=0)

    def stop_requested(self) -> bool:
        """Checked by the heartbeat. A node stops when a node it watches failed or stopped, and
        (nodes 1..N-1) when the run is cancelled or failed. Node 0 runs inside the run's task,
        whose own heartbeat stops it on the run's cancel; it also reaps the nodes that stopped
        heart-beating (as the reaper does, sooner)."""
        if super().stop_requested():
            return True
        peers = self.peers()
        if self.rank == 0:
            peers.reap_stale()
        else:
            run_state, cancel_at = TrainingRun.objects.values_list(
                "state", "cancel_requested_at"
            ).get(pk=self.run_id)
            if cancel_at is not None or run_state in (RunState.FAILED, RunState.CANCELLED):
                return True
        return peers.filter(state__in=(RunState.FAILED, RunState.CANCELLED)).exists()

    def as_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "state": self.state,
            "worker": self.worker,
            "heartbeat_at": self.heartbeat_at.isoformat() if self.heartbeat_at else None,
            "exit_code": self.exit_code,
            "gpu_seconds": round(self.gpu_seconds, 1),
            "failure_reason": self.failure_reason,
            "failure_message": self.failure_message,
        }


# --- presets and launching ----------------------------------------------------------------------


def presets() -> dict[str, dict[str, Any]]:
    """Launch-form presets: settings fields (TrainingSettings names) plus "label"."""
    return {
        "sky_t1": {"label": "Sky-T1-32B-Preview (published recipe)", **SKY_T1_32B_PREVIEW},
        "cpu_demo": {
            "label": "SmolLM2-135M on CPU, a few steps (demo)",
            "model_name_or_path": str(settings.DEMO_MODEL_DIR),
            "stage": "sft",
            "finetuning_type": "full",
            "template": "smollm",
            "cutoff_len": 256,
            "max_samples": 64,
            "learning_rate": 1e-4,
            "num_train_epochs": 1.0,
            "max_steps": 6,
            "lr_scheduler_type": "cosine",
            "warmup_ratio": 0.0,
            "precision": "fp32",
            "per_device_train_batch_size": 1,
            "gradient_accumulation_steps": 2,
            "gpus_per_node": 1,
            "nodes": 1,
            "deepspeed": "none",
            "logging_steps": 1,
            "save_steps": 3,
            "report_to": "none",
            "run_name": "smollm2-demo",
        },
    }

