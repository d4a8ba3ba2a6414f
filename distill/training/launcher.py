"""Run one LLaMA-Factory training job as a subprocess and report on it while it runs.

Called by the Celery task on the `gpu` queue; Django-free. The caller passes callbacks that
store metric points, log text and checkpoints, and `should_cancel` which it answers from the
database. All callbacks run on the calling thread (safe for Django's per-thread connections).
"""

from __future__ import annotations

import os
import queue
import subprocess
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .config import TrainingSettings, write_run_files
from .failures import Failure, classify_failure
from .logs import MetricPoint, TrainerLogFollower, grad_norms_in_output
from .processes import TAG_VARIABLE, tagged_processes, terminate_run

LOG_FILE = "train.log"
TRAINER_LOG = "trainer_log.jsonl"

# The worker's environment is not passed on wholesale: it holds OPENAI_API_KEY, DATABASE_URL,
# SECRET_KEY, the broker URL... A training run (user-chosen model code with trust_remote_code,
# wandb uploads) only gets what it needs.
_ENV_NAMES = {
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "TERM",
    "LD_LIBRARY_PATH",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "CC",
    "CXX",
    "XDG_CACHE_HOME",
}
_ENV_PREFIXES = (
    "LC_",
    "CUDA_",
    "NCCL_",
    "HF_",
    "TORCH_",
    "PYTORCH_",
    "NVIDIA_",
    "TRANSFORMERS_",
    "TRITON_",
    "DS_",
)
_WANDB_PREFIX = "WANDB_"


def training_env(
    settings: TrainingSettings,
    train_venv: Path,
    *,
    base_env: dict[str, str] | None = None,
    env_extra: dict[str, str] | None = None,
    node_rank: int = 0,
    master_addr: str | None = None,
    master_port: int | None = None,
) -> dict[str, str]:
    """The environment the trainer runs with: an allowlist of base_env, plus launch variables."""
    base = dict(os.environ if base_env is None else base_env)
    env = {
        k: v
        for k, v in base.items()
        if k in _ENV_NAMES
        or k.startswith(_ENV_PREFIXES)
        or (settings.report_to == "wandb" and k.startswith(_WANDB_PREFIX))
    }
    venv_bin = str(Path(train_venv).resolve() / "bin")
    # torchrun and ninja must be the training venv's, found first on PATH.
    env["PATH"] = os.pathsep.join([venv_bin, env.get("PATH") or "/usr/local/bin:/usr/bin:/bin"])
    env["VIRTUAL_ENV"] = str(Path(train_venv).resolve())
    env["PYTHONUNBUFFERED"] = "1"
    if settings.uses_deepspeed or settings.world_size > 1:
        env["FORCE_TORCHRUN"] = "1"
        env["NPROC_PER_NODE"] = str(settings.gpus_per_node)
        env["NNODES"] = str(settings.nodes)
        env["NODE_RANK"] = str(node_rank)
        if master_addr is not None:
            env["MASTER_ADDR"] = master_addr
        if master_port is not None:
            env["MASTER_PORT"] = str(master_port)
        if settings.nodes > 1 and master_addr is None:
            raise ValueError("a multi-node run needs master_addr (the address of node 0)")
    env.update(env_extra or {})
    if env.get("WANDB_MODE") in ("offline", "disabled", "dryrun"):
        # Nothing is uploaded: the worker's key, passed by the WANDB_* allowlist, stays behind.
        env.pop("WANDB_API_KEY", None)
    return env


@dataclass
class CheckpointInfo:
    step: int
    path: Path
    size_bytes: int


@dataclass
class TrainingOutcome:
    exit_code: int | None
    succeeded: bool
    failure_reason: str | None
    message: str
    wall_seconds: float
    gpu_seconds: float
    last_step: int | None
    metric_points: int
    checkpoints: list[CheckpointInfo]
    final_model: Path | None
    log_path: Path
    log_tail: str
    command: list[str]
    leftover_pids: list[int] = field(default_factory=list)


def dir_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                pass
    return total


def list_checkpoints(output_dir: Path, *, complete_only: bool = True) -> list[CheckpointInfo]:
    """`checkpoint-N` folders, by step. A folder is complete once the Trainer wrote its
    trainer_state.json (written after the weights and optimizer state)."""
    found = []
    if not Path(output_dir).is_dir():
        return found
    for child in Path(output_dir).iterdir():
        name = child.name
        if not (child.is_dir() and name.startswith("checkpoint-") and name[11:].isdigit()):
            continue
        if complete_only and not (child / "trainer_state.json").is_file():
            continue
        found.append(CheckpointInfo(step=int(name[11:]), path=child, size_bytes=dir_size(child)))
    return sorted(found, key=lambda c: c.step)


def latest_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete checkpoint, to resume from."""
    ckpts = list_checkpoints(output_dir)
    return ckpts[-1].path if ckpts else None


def final_model_path(output_dir: Path) -> Path | None:
    """The output folder when it holds a saved model (full weights or a LoRA adapter)."""
    out = Path(output_dir)
    markers = (
        "model.safetensors",
        "model.safetensors.index.json",
        "pytorch_model.bin",
        "adapter_model.safetensors",
        "adapter_model.bin",
    )
    return out if any((out / m).is_file() for m in markers) else None


def _noop(*_args, **_kwargs) -> None:
    return None


def launch(
    run_dir: Path,
    settings: TrainingSettings,
    *,
    train_venv: Path,
    env_extra: dict[str, str] | None = None,
    on_metric: Callable[[MetricPoint], None] = _noop,
    on_log: Callable[[str], None] = _noop,
    on_checkpoint: Callable[[CheckpointInfo], None] = _noop,
    should_cancel: Callable[[], bool] = lambda: False,
    heartbeat: Callable[[], None] = _noop,
    resume: bool = False,
    node_rank: int = 0,
    master_addr: str | None = None,
    master_port: int | None = None,
    poll_interval_s: float = 0.5,
    heartbeat_interval_s: float = 10.0,
    cancel_grace_s: float = 10.0,
    tail_lines: int = 300,
) -> TrainingOutcome:
    """Write the config files into run_dir, train, and return how it ended.

    on_log gets new output text (whole lines) at most once per poll interval. With resume=True
    the newest complete checkpoint in output_dir is resumed from (none: starts from scratch).
    """
    run_dir = Path(run_dir).resolve()
    train_venv = Path(train_venv)
    cli = train_venv / "bin" / "llamafactory-cli"
    if not cli.exists():
        raise FileNotFoundError(
            f"{cli} not found: the training environment is not installed (run `make train-env`, "
            f"or scripts/install_train_env.sh {train_venv})"
        )
    if " " in str(run_dir):
        raise ValueError(
            f"run_dir must not contain spaces (llamafactory-cli splits argv on them): {run_dir}"
        )
    if resume:
        ckpt = latest_checkpoint(settings.output_dir)
        if ckpt is not None:
            settings = TrainingSettings(**{**settings.__dict__, "resume_from_checkpoint": ckpt})
    paths = write_run_files(settings, run_dir)
    tag = uuid.uuid4().hex
    env = training_env(
        settings,
        train_venv,
        env_extra=env_extra,
        node_rank=node_rank,
        master_addr=master_addr,
        master_port=master_port,
    )
    env[TAG_VARIABLE] = tag
    if settings.report_to == "wandb":
        env.setdefault("WANDB_DIR", str(run_dir))
    command = [str(cli), "train", str(paths["config"])]
    log_path = run_dir / LOG_FILE
    output_dir = Path(settings.output_dir).resolve()

    started = time.monotonic()
    log_fh = log_path.open("ab")
    proc = subprocess.Popen(
        command,
        cwd=run_dir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # own group and session: signals to the worker do not reach it
    )
    pgid = proc.pid
    lines: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()

    def pump() -> None:
        # Own thread: a full pipe would block the trainer; the log file is written here so it is
        # complete even if a callback on the main thread is slow.
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            log_fh.write(raw)
            log_fh.flush()
            lines.put(raw)
        lines.put(None)

    reader = threading.Thread(target=pump, name=f"train-log-{pgid}", daemon=True)
    reader.start()

    tail: deque[str] = deque(maxlen=tail_lines)
    follower = TrainerLogFollower(output_dir / TRAINER_LOG)
    if settings.resume_from_checkpoint is not None:
        # LLaMA-Factory appends to the old log when resuming; its points were reported already.
        follower.skip_existing()
    pending: deque[tuple[MetricPoint, float]] = deque()
    grad_norms: deque[float | None] = deque()
    seen_ckpts: dict[int, CheckpointInfo] = {}
    metric_count = 0
    last_step: int | None = None
    cancelled = False
    reader_done = False
    last_beat = 0.0

    def drain_output() -> None:
        nonlocal reader_done
        chunk: list[str] = []
        while True:
            try:
                raw = lines.get_nowait()
            except queue.Empty:
                break
            if raw is None:
                reader_done = True
                break
            text = raw.decode("utf-8", errors="replace")
            # tqdm redraws with \r: keep the last state of the line, as a terminal would show it.
            shown = text.rstrip("\n").rsplit("\r", 1)[-1]
            tail.append(shown)
            chunk.append(text)
        if chunk:
            text = "".join(chunk)
            grad_norms.extend(grad_norms_in_output(text))
            on_log(text)

    def emit_metrics(final: bool) -> None:
        nonlocal metric_count, last_step
        now = time.monotonic()
        for point in follower.poll(final=final):
            pending.append((point, now))
        while pending:
            point, seen_at = pending[0]
            if point.is_train_step:
                if grad_norms:
                    point.grad_norm = grad_norms.popleft()
                elif not final and now - seen_at < 3 * poll_interval_s + 1.0:
                    break  # its stdout dict (with grad_norm) may not have been read yet
            pending.popleft()
            metric_count += 1
            last_step = point.step
            on_metric(point)

    def scan_checkpoints() -> None:
        for ckpt in list_checkpoints(output_dir):
            if ckpt.step not in seen_ckpts:
                seen_ckpts[ckpt.step] = ckpt
                on_checkpoint(ckpt)

    leftover: list[int] = []
    try:
        while True:
            drain_output()
            emit_metrics(final=False)
            scan_checkpoints()
            now = time.monotonic()
            if now - last_beat >= heartbeat_interval_s:
                heartbeat()
                last_beat = now
            if proc.poll() is not None and reader_done:
                break
            if not cancelled and should_cancel():
                cancelled = True
                terminate_run(pgid, tag, grace_s=cancel_grace_s, reap=proc.poll)
            time.sleep(poll_interval_s)
    finally:
        if proc.poll() is None or tagged_processes(tag):
            # The launcher is leaving (exception in a callback, or the trainer exited leaving
            # children behind): nothing of the run may outlive it.
            terminate_run(pgid, tag, grace_s=min(cancel_grace_s, 5.0), reap=proc.poll)
        proc.wait()
        reader.join(timeout=10)
        leftover = tagged_processes(tag)
        log_fh.close()

    wall = time.monotonic() - started
    drain_output()
    emit_metrics(final=True)
    scan_checkpoints()
    exit_code = proc.returncode
    log_tail = "\n".join(tail)
    failure: Failure | None = classify_failure(exit_code, log_tail, cancelled=cancelled)
    final_model = final_model_path(output_dir) if failure is None else None
    if failure is None and final_model is None:
        failure = Failure(
            "unknown", f"Training exited with code 0 but no model was saved in {output_dir}."
        )
    checkpoints = list_checkpoints(output_dir)  # sizes again: now that nothing is writing
    return TrainingOutcome(
        exit_code=exit_code,
        succeeded=failure is None,
        failure_reason=failure.reason if failure else None,
        message=failure.message
        if failure
        else f"Trained {last_step} steps; model saved in {final_model}.",
        wall_seconds=wall,
        gpu_seconds=wall * settings.gpus_per_node,
        last_step=last_step,
        metric_points=metric_count,
        checkpoints=checkpoints,
        final_model=final_model,
        log_path=log_path,
        log_tail=log_tail,
        command=command,
        leftover_pids=leftover,
    )
