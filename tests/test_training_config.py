"""Config generation: the YAML, DeepSpeed JSON and dataset_info.json a run is launched with."""

import json
from pathlib import Path

import pytest
import yaml

from distill.training.config import (
    ConfigError,
    TrainingSettings,
    build_run_files,
    effective_batch_size,
    sky_t1_preset,
    write_run_files,
)

FIXTURES = Path(__file__).parent / "fixtures" / "training"
TINY = FIXTURES / "sharegpt_tiny.jsonl"


def settings(tmp_path, **overrides):
    data = {
        "model_name_or_path": "/models/base",
        "datasets": [{"name": "tiny", "file": str(TINY)}],
        "output_dir": str(tmp_path / "out"),
        **overrides,
    }
    return TrainingSettings.from_dict(data)


def test_sky_t1_preset_reproduces_the_published_recipe(tmp_path):
    s = sky_t1_preset([{"name": "sky_t1_17k", "file": str(TINY)}], tmp_path / "out")
    files = build_run_files(s, tmp_path / "run")
    args = yaml.safe_load(files.config_yaml)
    # SkyThought skythought/train/LLaMA-Factory/examples/train_full/qwen2_full_sft_32B.yaml
    published = {
        "model_name_or_path": "Qwen/Qwen2.5-32B-Instruct",
        "stage": "sft",
        "do_train": True,
        "finetuning_type": "full",
        "cutoff_len": 16384,
        "preprocessing_num_workers": 16,
        "logging_steps": 1,
        "save_steps": 100,
        "per_device_train_batch_size": 1,
        "gradient_accumulation_steps": 12,
        "learning_rate": 1e-5,
        "num_train_epochs": 3.0,
        "lr_scheduler_type": "cosine",
        "warmup_ratio": 0.1,
        "bf16": True,
        "ddp_timeout": 180000000,
        "report_to": "wandb",
    }
    assert {k: args[k] for k in published} == published
    assert "max_steps" not in args  # epochs decide the length, as published
    assert effective_batch_size(s) == 96  # 1 x 12 x 8 GPUs
    ds = json.loads(files.deepspeed_json)
    assert args["deepspeed"] == str((tmp_path / "run" / "deepspeed.json").resolve())
    zero = ds["zero_optimization"]
    assert zero["stage"] == 3
    assert zero["offload_optimizer"]["device"] == "cpu"
    assert zero["offload_param"]["device"] == "cpu"
    # Batch/precision come from the YAML through the Trainer's "auto" values: one source of truth.
    assert ds["train_micro_batch_size_per_gpu"] == "auto"
    assert ds["bf16"]["enabled"] == "auto"


def test_yaml_and_dataset_info_are_llamafactory_sharegpt(tmp_path):
    s = settings(tmp_path, template="qwen", cutoff_len=64, max_steps=3, precision="fp32")
    paths = write_run_files(s, tmp_path / "run")
    assert set(paths) == {"config", "dataset_info"}  # no DeepSpeed file without DeepSpeed
    args = yaml.safe_load(paths["config"].read_text())
    assert args["dataset"] == "tiny"
    assert args["dataset_dir"] == str((tmp_path / "run").resolve())
    assert args["max_steps"] == 3
    assert "bf16" not in args and "fp16" not in args and "deepspeed" not in args
    info = json.loads(paths["dataset_info"].read_text())
    assert info == {
        "tiny": {
            "file_name": str(TINY.resolve()),
            "formatting": "sharegpt",
            "columns": {"messages": "conversations", "system": "system"},
            "tags": {
                "role_tag": "from",
                "content_tag": "value",
                "user_tag": "user",
                "assistant_tag": "assistant",
            },
        }
    }


def test_simpo_is_dpo_stage_with_simpo_loss_and_ranking_data(tmp_path):
    s = settings(tmp_path, stage="simpo", simpo_gamma=0.3)
    files = build_run_files(s, tmp_path / "run")
    args = yaml.safe_load(files.config_yaml)
    assert (args["stage"], args["pref_loss"], args["simpo_gamma"]) == ("dpo", "simpo", 0.3)
    entry = json.loads(files.dataset_info_json)["tiny"]
    assert entry["ranking"] is True
    assert entry["columns"]["chosen"] == "chosen" and entry["columns"]["rejected"] == "rejected"


def test_kto_and_dpo_stages(tmp_path):
    dpo = yaml.safe_load(
        build_run_files(settings(tmp_path, stage="dpo"), tmp_path / "r1").config_yaml
    )
    assert (dpo["stage"], dpo["pref_loss"]) == ("dpo", "sigmoid")
    kto = build_run_files(settings(tmp_path, stage="kto"), tmp_path / "r2")
    assert yaml.safe_load(kto.config_yaml)["stage"] == "kto"
    assert json.loads(kto.dataset_info_json)["tiny"]["columns"]["kto_tag"] == "kto_tag"


def test_lora_settings_and_default_alpha(tmp_path):
    args = build_run_files(
        settings(tmp_path, finetuning_type="lora", lora_rank=16, lora_target="q_proj,v_proj"),
        tmp_path / "run",
    ).train_args
    assert (
        args["finetuning_type"],
        args["lora_rank"],
        args["lora_alpha"],
        args["lora_target"],
    ) == ("lora", 16, 32, "q_proj,v_proj")


def test_interleaved_mixture_of_two_datasets(tmp_path):
    s = settings(
        tmp_path,
        datasets=[{"name": "math", "file": str(TINY)}, {"name": "code", "file": str(TINY)}],
        mix_strategy="interleave_under",
        interleave_probs=[0.7, 0.3],
    )
    args = build_run_files(s, tmp_path / "run").train_args
    assert (args["dataset"], args["mix_strategy"], args["interleave_probs"]) == (
        "math,code",
        "interleave_under",
        "0.7,0.3",
    )


def test_deepspeed_overrides_merge_into_the_preset(tmp_path):
    s = settings(
        tmp_path,
        deepspeed="z3_offload",
        deepspeed_overrides={
            "zero_optimization": {"offload_param": {"device": "none"}, "sub_group_size": 1e8}
        },
    )
    ds = json.loads(build_run_files(s, tmp_path / "run").deepspeed_json)["zero_optimization"]
    assert ds["offload_param"] == {"device": "none", "pin_memory": True}
    assert ds["sub_group_size"] == 1e8
    assert ds["offload_optimizer"]["device"] == "cpu"  # untouched keys stay


def test_multi_node_effective_batch(tmp_path):
    s = settings(
        tmp_path,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=4,
        gpus_per_node=8,
        nodes=2,
    )
    assert effective_batch_size(s) == 128


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"stage": "ppo"}, "unknown stage 'ppo'"),
        ({"learning_rate": 0}, "learning_rate must be a positive number"),
        ({"learning_rate": -1e-5}, "learning_rate must be a positive number"),
        (
            {"gradient_accumulation_steps": 0},
            "gradient_accumulation_steps must be a positive integer",
        ),
        (
            {"per_device_train_batch_size": 0},
            "per_device_train_batch_size must be a positive integer",
        ),
        ({"deepspeed": "z4"}, "unknown deepspeed preset 'z4'"),
        ({"precision": "int8"}, "unknown precision 'int8'"),
        (
            {"datasets": [{"name": "gone", "file": "/nonexistent/data.jsonl"}]},
            "dataset 'gone': file /nonexistent/data.jsonl does not exist",
        ),
        ({"datasets": []}, "at least one dataset is required"),
        ({"interleave_probs": [0.5, 0.5]}, "interleave_probs needs mix_strategy"),
        ({"warmup_ratio": 1.5}, "warmup_ratio must be in [0, 1)"),
        ({"max_steps": 0}, "max_steps must be a positive integer"),
        ({"deepspeed_overrides": {"x": 1}}, "deepspeed_overrides given but deepspeed is 'none'"),
    ],
)
def test_bad_settings_are_rejected_with_a_clear_error(tmp_path, overrides, message):
    with pytest.raises(ConfigError) as err:
        build_run_files(settings(tmp_path, **overrides), tmp_path / "run")
    assert message in str(err.value)


def test_unknown_and_missing_keys_are_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown training settings: lerning_rate"):
        settings(tmp_path, lerning_rate=1e-5)
    with pytest.raises(ConfigError, match="missing required training settings: datasets"):
        TrainingSettings.from_dict({"model_name_or_path": "m", "output_dir": str(tmp_path)})


def test_empty_dataset_file_is_rejected(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        build_run_files(
            settings(tmp_path, datasets=[{"name": "e", "file": str(empty)}]), tmp_path / "run"
        )
