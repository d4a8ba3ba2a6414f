"""Following trainer_log.jsonl while it grows, failure classification, and the trainer's env."""

import json
import signal

from distill.training.config import TrainingSettings
from distill.training.failures import (
    BAD_DATASET,
    CANCELLED,
    KILLED,
    MODEL_NOT_FOUND,
    NCCL_ERROR,
    OUT_OF_MEMORY_GPU,
    OUT_OF_MEMORY_HOST,
    UNKNOWN,
    classify_failure,
)
from distill.training.launcher import training_env
from distill.training.logs import TrainerLogFollower, grad_norms_in_output, parse_trainer_log_line

LINE = {
    "current_steps": 3,
    "total_steps": 10,
    "loss": 1.25,
    "lr": 5e-06,
    "epoch": 0.25,
    "percentage": 30.0,
    "elapsed_time": "0:00:03",
    "remaining_time": "0:00:07",
    "throughput": 161.43,
    "total_tokens": 192,
}


def test_a_trainer_log_line_becomes_a_metric_point():
    p = parse_trainer_log_line(json.dumps(LINE))
    assert (
        p.step,
        p.total_steps,
        p.loss,
        p.lr,
        p.epoch,
        p.throughput_tokens_per_s,
        p.total_tokens,
    ) == (3, 10, 1.25, 5e-06, 0.25, 161.43, 192)
    assert p.is_train_step
    summary = parse_trainer_log_line(
        json.dumps({"current_steps": 10, "total_steps": 10, "epoch": 1.0})
    )
    assert summary.step == 10 and not summary.is_train_step
    assert parse_trainer_log_line("{not json") is None
    assert parse_trainer_log_line("") is None


def test_follower_reads_only_new_complete_lines(tmp_path):
    path = tmp_path / "trainer_log.jsonl"
    follower = TrainerLogFollower(path)
    assert follower.poll() == []  # not created yet
    first = json.dumps({**LINE, "current_steps": 1})
    second = json.dumps({**LINE, "current_steps": 2})
    path.write_text(first + "\n" + second[:20])  # second line half-written
    assert [p.step for p in follower.poll()] == [1]
    assert follower.poll() == []
    with path.open("a") as fh:
        fh.write(second[20:] + "\n")
    assert [p.step for p in follower.poll()] == [2]
    # Rewritten from scratch (a new run in the same folder): read again from the start.
    path.write_text(json.dumps({**LINE, "current_steps": 1}) + "\n")
    assert [p.step for p in follower.poll()] == [1]


def test_final_unterminated_line_is_read_at_the_end(tmp_path):
    path = tmp_path / "trainer_log.jsonl"
    path.write_text(json.dumps(LINE))
    follower = TrainerLogFollower(path)
    assert follower.poll() == []
    assert [p.step for p in follower.poll(final=True)] == [3]


def test_grad_norms_are_read_from_the_trainer_stdout_dicts():
    out = (
        " 33%|###      | 1/3 [00:00<00:01]\r{'loss': '6.285', 'grad_norm': '2.62', 'learning_rate': '1e-05', 'epoch': '0.08'}\n"
        "{'eval_loss': '6.1', 'epoch': '0.1'}\n"
        "{'loss': 6.28, 'grad_norm': 1.5, 'learning_rate': 7.5e-06, 'epoch': 0.16}\n"
        "{'train_runtime': '1.2', 'train_loss': '6.299'}\n"
    )
    assert grad_norms_in_output(out) == [2.62, 1.5]


def test_failure_reasons_from_real_log_lines():
    cases = [
        (
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
            OUT_OF_MEMORY_GPU,
        ),
        (
            "torch.distributed.elastic.multiprocessing.api:failed (exitcode: -9) local_rank: 0\n"
            "  exitcode  : -9 (pid: 4242)\n  error_file: <N/A>\n  traceback : Signal 9 (SIGKILL) received by PID 4242",
            OUT_OF_MEMORY_HOST,
        ),
        ("MemoryError: Unable to allocate 3.1 GiB", OUT_OF_MEMORY_HOST),
        (
            "torch.distributed.DistBackendError: NCCL error in: ProcessGroupNCCL.cpp:1970, unhandled system error",
            NCCL_ERROR,
        ),
        (
            "ValueError: Cannot find valid samples, check `data/README.md` for the data format.",
            BAD_DATASET,
        ),
        ("ValueError: File /data/x.jsonl not found.", BAD_DATASET),
        ("ValueError: Undefined dataset math in dataset_info.json.", BAD_DATASET),
        ("OSError: /models/x does not appear to have a file named config.json.", MODEL_NOT_FOUND),
        (
            "huggingface_hub.errors.HFValidationError: Repo id must be in the form 'repo_name'",
            MODEL_NOT_FOUND,
        ),
        ("RuntimeError: something nobody anticipated", UNKNOWN),
    ]
    for tail, reason in cases:
        failure = classify_failure(1, "[INFO] starting\n" + tail + "\n")
        assert failure.reason == reason, tail
        assert failure.message
    # A GPU OOM on one rank makes the others fail in NCCL: the root cause wins.
    both = "NCCL error in: ProcessGroupNCCL.cpp\ntorch.OutOfMemoryError: CUDA out of memory."
    assert classify_failure(1, both).reason == OUT_OF_MEMORY_GPU


def test_exit_status_decides_when_the_log_says_nothing():
    assert classify_failure(0, "all good") is None
    assert classify_failure(-signal.SIGKILL, "").reason == OUT_OF_MEMORY_HOST
    killed = classify_failure(-signal.SIGTERM, "")
    assert killed.reason == KILLED and "SIGTERM" in killed.message
    assert (
        classify_failure(-signal.SIGKILL, "CUDA out of memory", cancelled=True).reason == CANCELLED
    )
    unknown = classify_failure(2, "line one\nValueError: the real problem\nfinal noise")
    assert unknown.reason == UNKNOWN and "ValueError: the real problem" in unknown.message


def _settings(tmp_path, **kw):
    return TrainingSettings.from_dict(
        {"model_name_or_path": "m", "datasets": [], "output_dir": str(tmp_path), **kw}
    )


def test_trainer_environment_is_an_allowlist(tmp_path):
    worker_env = {
        "PATH": "/usr/bin",
        "HOME": "/home/w",
        "LANG": "C.UTF-8",
        "CUDA_VISIBLE_DEVICES": "0,1",
        "NCCL_DEBUG": "INFO",
        "HF_HOME": "/hf",
        "WANDB_API_KEY": "wk",
        "OPENAI_API_KEY": "sk",
        "DATABASE_URL": "postgres://",
        "SECRET_KEY": "s",
        "CELERY_BROKER_URL": "redis://",
        "AWS_SECRET_ACCESS_KEY": "a",
        "DJANGO_SETTINGS_MODULE": "x",
    }
    env = training_env(_settings(tmp_path), tmp_path / "venv", base_env=worker_env)
    for secret in (
        "OPENAI_API_KEY",
        "DATABASE_URL",
        "SECRET_KEY",
        "CELERY_BROKER_URL",
        "AWS_SECRET_ACCESS_KEY",
        "DJANGO_SETTINGS_MODULE",
        "WANDB_API_KEY",
    ):
        assert secret not in env
    assert (
        env["CUDA_VISIBLE_DEVICES"] == "0,1"
        and env["NCCL_DEBUG"] == "INFO"
        and env["HF_HOME"] == "/hf"
    )
    assert env["PATH"].split(":")[0] == str((tmp_path / "venv" / "bin").resolve())
    assert "FORCE_TORCHRUN" not in env  # a single-process run needs no torchrun
    wandb = training_env(
        _settings(tmp_path, report_to="wandb"), tmp_path / "venv", base_env=worker_env
    )
    assert wandb["WANDB_API_KEY"] == "wk"


def test_deepspeed_and_multi_node_launch_variables(tmp_path):
    s = _settings(tmp_path, deepspeed="z3", gpus_per_node=8, nodes=2)
    env = training_env(
        s, tmp_path / "venv", base_env={}, node_rank=1, master_addr="10.0.0.1", master_port=29500
    )
    assert {
        k: env[k]
        for k in (
            "FORCE_TORCHRUN",
            "NPROC_PER_NODE",
            "NNODES",
            "NODE_RANK",
            "MASTER_ADDR",
            "MASTER_PORT",
        )
    } == {
        "FORCE_TORCHRUN": "1",
        "NPROC_PER_NODE": "8",
        "NNODES": "2",
        "NODE_RANK": "1",
        "MASTER_ADDR": "10.0.0.1",
        "MASTER_PORT": "29500",
    }
