"""Real LLaMA-Factory runs through the launcher, with the training virtualenv (`make train-env`).

Each run trains the tiny random Qwen2 model on a 12-row ShareGPT file for a few steps on CPU.
"""

import math
import time
from pathlib import Path

import pytest

from distill.training.config import TrainingSettings
from distill.training.failures import BAD_DATASET, CANCELLED, MODEL_NOT_FOUND
from distill.training.launcher import launch
from distill.training.processes import TAG_VARIABLE

FIXTURES = Path(__file__).parent / "fixtures" / "training"
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}

pytestmark = pytest.mark.integration


def make_settings(tmp_path, model, **overrides) -> TrainingSettings:
    data = {
        "model_name_or_path": str(model),
        "datasets": [{"name": "tiny", "file": str(FIXTURES / "sharegpt_tiny.jsonl")}],
        "output_dir": str(tmp_path / "out"),
        "template": "qwen",
        "cutoff_len": 64,
        "precision": "fp32",
        "learning_rate": 1e-3,
        "lr_scheduler_type": "cosine",
        "logging_steps": 1,
        **overrides,
    }
    return TrainingSettings.from_dict(data)


def run_processes() -> dict[int, bytes]:
    """Every process launched by any skyboard training run, with its environment."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if TAG_VARIABLE.encode() + b"=" in environ:
                found[int(entry.name)] = environ
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def test_sft_run_streams_metrics_checkpoints_and_resumes(
    tmp_path, tiny_model, train_venv, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-worker-secret")
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db/skyboard")
    points, ckpts, logs, child_envs = [], [], [], {}

    def on_metric(point):
        points.append(point)
        child_envs.update(run_processes())

    settings = make_settings(tmp_path, tiny_model, max_steps=4, save_steps=2)
    outcome = launch(
        tmp_path / "run",
        settings,
        train_venv=train_venv,
        env_extra=OFFLINE,
        on_metric=on_metric,
        on_log=logs.append,
        on_checkpoint=ckpts.append,
    )
    assert outcome.succeeded, outcome.message + "\n" + outcome.log_tail
    assert outcome.exit_code == 0 and outcome.failure_reason is None
    train = [p for p in points if p.is_train_step]
    assert [p.step for p in train] == [1, 2, 3, 4]
    assert all(math.isfinite(p.loss) and p.loss > 0 for p in train)
    assert all(p.grad_norm is not None and p.grad_norm > 0 for p in train)
    assert all(p.throughput_tokens_per_s > 0 for p in train)
    assert [p.total_tokens for p in train] == sorted(p.total_tokens for p in train)
    assert train[0].lr > train[-1].lr  # cosine decay
    assert train[-1].epoch == pytest.approx(4 / 12)
    assert [c.step for c in ckpts] == [2, 4]
    assert all(c.size_bytes > 0 and (c.path / "trainer_state.json").is_file() for c in ckpts)
    assert [c.step for c in outcome.checkpoints] == [2, 4]
    assert outcome.final_model == (tmp_path / "out").resolve()
    assert outcome.gpu_seconds == pytest.approx(outcome.wall_seconds)
    assert outcome.last_step == 4
    full_log = "".join(logs)
    assert "train_loss" in full_log
    assert full_log == outcome.log_path.read_bytes().decode()
    # The trainer never saw the worker's secrets.
    assert child_envs, "no trainer process was observed while it ran"
    assert not any(
        b"OPENAI_API_KEY" in env or b"DATABASE_URL" in env for env in child_envs.values()
    )
    assert outcome.leftover_pids == []

    # The trained model loads in the main environment's transformers (what evaluation uses).
    from transformers import AutoModelForCausalLM, AutoTokenizer

    AutoModelForCausalLM.from_pretrained(outcome.final_model)
    tok = AutoTokenizer.from_pretrained(outcome.final_model)
    assert tok.eos_token == "<|im_end|>"

    # Resume: 2 more steps pick up at step 5 from checkpoint-4, without re-reporting steps 1-4.
    resumed_points = []
    outcome2 = launch(
        tmp_path / "run",
        make_settings(tmp_path, tiny_model, max_steps=6, save_steps=2),
        train_venv=train_venv,
        env_extra=OFFLINE,
        on_metric=resumed_points.append,
        resume=True,
    )
    assert outcome2.succeeded, outcome2.log_tail
    assert [p.step for p in resumed_points if p.is_train_step] == [5, 6]
    assert "checkpoint-4" in (tmp_path / "run" / "config.yaml").read_text()
    assert [c.step for c in outcome2.checkpoints] == [2, 4, 6]


def _session_and_cmdline(pid: int) -> tuple[int, bytes] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[3]), cmdline


def test_cancel_kills_every_process_of_the_run(tmp_path, tiny_model, train_venv):
    seen: dict[int, tuple[int, bytes]] = {}
    points, cancel_requested_at = [], []

    def should_cancel() -> bool:
        for pid in run_processes():
            info = _session_and_cmdline(pid)
            if info is not None:
                seen.setdefault(pid, info)
        if points and not cancel_requested_at:
            cancel_requested_at.append(time.monotonic())
        return bool(cancel_requested_at)

    # FORCE_TORCHRUN: torchrun starts its worker in a new session, the case a plain killpg misses.
    settings = make_settings(tmp_path, tiny_model, max_steps=100000, save_steps=100000)
    outcome = launch(
        tmp_path / "run",
        settings,
        train_venv=train_venv,
        env_extra={**OFFLINE, "FORCE_TORCHRUN": "1", "NPROC_PER_NODE": "1"},
        on_metric=points.append,
        should_cancel=should_cancel,
        cancel_grace_s=5.0,
    )
    assert cancel_requested_at, outcome.log_tail
    assert outcome.failure_reason == CANCELLED
    assert not outcome.succeeded and outcome.final_model is None
    assert any(b"torchrun" in cmd for _sid, cmd in seen.values())
    assert len({sid for sid, _cmd in seen.values()}) >= 2, (
        "expected the trainer in a session of its own"
    )
    still_alive = [pid for pid in seen if alive(pid)]
    assert still_alive == [], f"processes left behind: {still_alive}"
    assert outcome.leftover_pids == []
    assert time.monotonic() - cancel_requested_at[0] < 30


def test_a_failing_callback_stops_the_run_and_leaves_nothing_behind(
    tmp_path, tiny_model, train_venv
):
    seen: dict[int, bytes] = {}

    def on_log(text):
        seen.update(run_processes())
        raise RuntimeError("database went away")

    settings = make_settings(tmp_path, tiny_model, max_steps=100000, save_steps=100000)
    with pytest.raises(RuntimeError, match="database went away"):
        launch(tmp_path / "run", settings, train_venv=train_venv, env_extra=OFFLINE, on_log=on_log)
    assert seen
    assert [pid for pid in seen if alive(pid)] == []


def test_missing_training_venv_names_the_make_target(tmp_path, tiny_model):
    with pytest.raises(FileNotFoundError, match="make train-env"):
        launch(
            tmp_path / "run", make_settings(tmp_path, tiny_model), train_venv=tmp_path / "no-venv"
        )


def test_wrong_dataset_layout_fails_as_bad_dataset(tmp_path, tiny_model, train_venv):
    settings = make_settings(
        tmp_path,
        tiny_model,
        max_steps=2,
        datasets=[{"name": "wrong", "file": str(FIXTURES / "wrong_layout.jsonl")}],
    )
    outcome = launch(tmp_path / "run", settings, train_venv=train_venv, env_extra=OFFLINE)
    assert not outcome.succeeded
    assert outcome.exit_code != 0
    assert outcome.failure_reason == BAD_DATASET, outcome.message + "\n" + outcome.log_tail
    assert "dataset" in outcome.message


def test_missing_base_model_fails_as_model_not_found(tmp_path, train_venv):
    settings = make_settings(tmp_path, tmp_path / "no-such-model", max_steps=2)
    outcome = launch(tmp_path / "run", settings, train_venv=train_venv, env_extra=OFFLINE)
    assert outcome.failure_reason == MODEL_NOT_FOUND, outcome.message + "\n" + outcome.log_tail


def test_deepspeed_zero3_offload_run_on_cpu(tmp_path, tiny_model, train_venv):
    points, ckpts = [], []
    settings = make_settings(
        tmp_path, tiny_model, max_steps=2, save_steps=2, deepspeed="z3_offload"
    )
    outcome = launch(
        tmp_path / "run",
        settings,
        train_venv=train_venv,
        env_extra=OFFLINE,
        on_metric=points.append,
        on_checkpoint=ckpts.append,
    )
    assert outcome.succeeded, outcome.message + "\n" + outcome.log_tail
    assert [p.step for p in points if p.is_train_step] == [1, 2]
    log = outcome.log_path.read_text()
    assert "torchrun" in log or "distributed tasks" in log
    assert "ZeRO" in log or "zero" in log
    # A ZeRO checkpoint holds DeepSpeed's partitioned state in global_step<N>/.
    assert [c.step for c in ckpts] == [2]
    assert (ckpts[0].path / "global_step2").is_dir()
    assert outcome.final_model is not None
