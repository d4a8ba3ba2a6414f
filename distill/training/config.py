"""Turn a run's settings into the three files LLaMA-Factory reads.

The output is LLaMA-Factory's own format -- a training YAML, a DeepSpeed JSON and a
`dataset_info.json` -- so a run can be reproduced by hand with `llamafactory-cli train
config.yaml` from the run folder, without skyboard.

Stage names follow LLaMA-Factory 0.9.5 (`pt sft rm ppo dpo kto`); skyboard offers sft, dpo,
simpo and kto. SimPO is not a stage there: it is `stage: dpo` with `pref_loss: simpo` (no
reference model), which is what `stage="simpo"` produces here.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

STAGES = ("sft", "dpo", "simpo", "kto")
FINETUNING_TYPES = ("full", "lora")
DEEPSPEED_PRESETS = ("none", "z2", "z3", "z3_offload")
PRECISIONS = ("bf16", "fp16", "fp32")
REPORT_TO = ("none", "wandb")
MIX_STRATEGIES = ("concat", "interleave_under", "interleave_over")
LR_SCHEDULERS = (
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
    "reduce_lr_on_plateau",
    "cosine_with_min_lr",
    "warmup_stable_decay",
)

CONFIG_FILE = "config.yaml"
DEEPSPEED_FILE = "deepspeed.json"
DATASET_INFO_FILE = "dataset_info.json"


class ConfigError(ValueError):
    """Settings that cannot produce a valid LLaMA-Factory run; the message says which and why."""


# DeepSpeed presets, the same content as LLaMA-Factory's examples/deepspeed/ds_z*_config.json:
# "auto" values are filled by the HF Trainer from the YAML, so batch size, accumulation,
# clipping and precision have a single source of truth (the YAML).
_DS_COMMON: dict[str, Any] = {
    "train_batch_size": "auto",
    "train_micro_batch_size_per_gpu": "auto",
    "gradient_accumulation_steps": "auto",
    "gradient_clipping": "auto",
    "zero_allow_untested_optimizer": True,
    "fp16": {
        "enabled": "auto",
        "loss_scale": 0,
        "loss_scale_window": 1000,
        "initial_scale_power": 16,
        "hysteresis": 2,
        "min_loss_scale": 1,
    },
    "bf16": {"enabled": "auto"},
}
_ZERO2 = {
    "stage": 2,
    "allgather_partitions": True,
    "allgather_bucket_size": 5e8,
    "overlap_comm": False,
    "reduce_scatter": True,
    "reduce_bucket_size": 5e8,
    "contiguous_gradients": True,
    "round_robin_gradients": True,
}
_ZERO3 = {
    "stage": 3,
    "overlap_comm": False,
    "contiguous_gradients": True,
    "sub_group_size": 1e9,
    "reduce_bucket_size": "auto",
    "stage3_prefetch_bucket_size": "auto",
    "stage3_param_persistence_threshold": "auto",
    "stage3_max_live_parameters": 1e9,
    "stage3_max_reuse_distance": 1e9,
    "stage3_gather_16bit_weights_on_model_save": True,
}
_OFFLOAD = {
    "offload_optimizer": {"device": "cpu", "pin_memory": True},
    "offload_param": {"device": "cpu", "pin_memory": True},
}


def deepspeed_preset(name: str) -> dict[str, Any] | None:
    """The DeepSpeed config of a preset (a fresh copy), or None for "none"."""
    if name == "none":
        return None
    if name == "z2":
        zero = dict(_ZERO2)
    elif name == "z3":
        zero = dict(_ZERO3)
    elif name == "z3_offload":
        zero = {**_ZERO3, **_OFFLOAD}
    else:
        raise ConfigError(
            f"unknown deepspeed preset {name!r}; choose one of {', '.join(DEEPSPEED_PRESETS)}"
        )
    return copy.deepcopy({**_DS_COMMON, "zero_optimization": zero})


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclass
class DatasetSpec:
    """One training file and its `dataset_info.json` entry.

    `info` overrides/extends the default entry, which is the ShareGPT layout skyboard exports
    (SPEC: messages in "conversations", system prompt in "system", from/value tags). For dpo and
    simpo the default adds `ranking: true` with "chosen"/"rejected" columns; for kto a "kto_tag"
    column.
    """

    name: str
    file: Path
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_value(cls, value: DatasetSpec | dict[str, Any]) -> DatasetSpec:
        if isinstance(value, DatasetSpec):
            return value
        if not isinstance(value, dict) or "name" not in value or "file" not in value:
            raise ConfigError(f"each dataset needs a 'name' and a 'file', got {value!r}")
        unknown = set(value) - {"name", "file", "info"}
        if unknown:
            raise ConfigError(f"dataset {value['name']!r}: unknown keys {sorted(unknown)}")
        return cls(name=value["name"], file=Path(value["file"]), info=dict(value.get("info") or {}))


def sharegpt_info(file: Path, stage: str = "sft") -> dict[str, Any]:
    """The `dataset_info.json` entry for a skyboard ShareGPT export used in `stage`."""
    entry: dict[str, Any] = {
        "file_name": str(file),
        "formatting": "sharegpt",
        "columns": {"messages": "conversations", "system": "system"},
        "tags": {
            "role_tag": "from",
            "content_tag": "value",
            "user_tag": "user",
            "assistant_tag": "assistant",
        },
    }
    if stage in ("dpo", "simpo"):
        entry["ranking"] = True
        entry["columns"].update({"chosen": "chosen", "rejected": "rejected"})
    elif stage == "kto":
        entry["columns"]["kto_tag"] = "kto_tag"
    return entry


@dataclass
class TrainingSettings:
    """Everything a training run is made of. Field names follow LLaMA-Factory's where they exist."""

    model_name_or_path: str
    datasets: list[DatasetSpec]
    output_dir: Path
    stage: str = "sft"
    finetuning_type: str = "full"
    lora_rank: int = 8
    lora_alpha: int | None = None
    lora_dropout: float = 0.0
    lora_target: str = "all"
    template: str = "qwen"
    cutoff_len: int = 2048
    max_samples: int | None = None
    learning_rate: float = 1e-5
    num_train_epochs: float = 3.0
    max_steps: int | None = None  # when set, it wins over num_train_epochs (HF Trainer semantics)
    lr_scheduler_type: str = "cosine"
    warmup_ratio: float = 0.0
    per_device_train_batch_size: int = 1
    gradient_accumulation_steps: int = 1
    gpus_per_node: int = 1
    nodes: int = 1
    deepspeed: str = "none"
    deepspeed_overrides: dict[str, Any] = field(default_factory=dict)
    precision: str = "bf16"
    logging_steps: int = 1
    save_steps: int = 500
    save_total_limit: int | None = None
    report_to: str = "none"
    run_name: str = "skyboard-run"
    mix_strategy: str = "concat"
    interleave_probs: list[float] | None = None
    preprocessing_num_workers: int | None = None
    pref_beta: float = 0.1
    simpo_gamma: float = 0.5
    seed: int = 42
    resume_from_checkpoint: Path | None = None
    # Escape hatch for LLaMA-Factory arguments skyboard has no field for; merged last.
    extra_args: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingSettings:
        """Build from plain data (a form, a JSON column); unknown keys are an error, not ignored."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown training settings: {', '.join(sorted(unknown))}")
        missing = [
            name for name in ("model_name_or_path", "datasets", "output_dir") if name not in data
        ]
        if missing:
            raise ConfigError(f"missing required training settings: {', '.join(missing)}")
        values = dict(data)
        values["datasets"] = [DatasetSpec.from_value(d) for d in data["datasets"]]
        values["output_dir"] = Path(data["output_dir"])
        if data.get("resume_from_checkpoint") is not None:
            values["resume_from_checkpoint"] = Path(data["resume_from_checkpoint"])
        return cls(**values)

    @property
    def world_size(self) -> int:
        return self.gpus_per_node * self.nodes

    @property
    def uses_deepspeed(self) -> bool:
        return self.deepspeed != "none"


def effective_batch_size(settings: TrainingSettings) -> int:
    """Sequences per optimizer step: per-device batch x accumulation x GPUs x nodes."""
    return (
        settings.per_device_train_batch_size
        * settings.gradient_accumulation_steps
        * settings.gpus_per_node
        * settings.nodes
    )


def validate(settings: TrainingSettings, *, check_files: bool = True) -> None:
    """Raise ConfigError naming the first problem; check_files=False skips filesystem checks
    (for presets built on a machine that does not hold the data)."""
    s = settings
    if s.stage not in STAGES:
        raise ConfigError(f"unknown stage {s.stage!r}; choose one of {', '.join(STAGES)}")
    if s.finetuning_type not in FINETUNING_TYPES:
        raise ConfigError(
            f"unknown finetuning_type {s.finetuning_type!r}; choose one of {', '.join(FINETUNING_TYPES)}"
        )
    if s.deepspeed not in DEEPSPEED_PRESETS:
        raise ConfigError(
            f"unknown deepspeed preset {s.deepspeed!r}; choose one of {', '.join(DEEPSPEED_PRESETS)}"
        )
    if s.deepspeed_overrides and not s.uses_deepspeed:
        raise ConfigError("deepspeed_overrides given but deepspeed is 'none'")
    if s.precision not in PRECISIONS:
        raise ConfigError(
            f"unknown precision {s.precision!r}; choose one of {', '.join(PRECISIONS)}"
        )
    if s.report_to not in REPORT_TO:
        raise ConfigError(
            f"unknown report_to {s.report_to!r}; choose one of {', '.join(REPORT_TO)}"
        )
    if s.lr_scheduler_type not in LR_SCHEDULERS:
        raise ConfigError(
            f"unknown lr_scheduler_type {s.lr_scheduler_type!r}; choose one of {', '.join(LR_SCHEDULERS)}"
        )
    if s.mix_strategy not in MIX_STRATEGIES:
        raise ConfigError(
            f"unknown mix_strategy {s.mix_strategy!r}; choose one of {', '.join(MIX_STRATEGIES)}"
        )
    if not s.model_name_or_path or not str(s.model_name_or_path).strip():
        raise ConfigError("model_name_or_path is empty")
    if (
        not isinstance(s.learning_rate, (int, float))
        or not math.isfinite(s.learning_rate)
        or s.learning_rate <= 0
    ):
        raise ConfigError(f"learning_rate must be a positive number, got {s.learning_rate!r}")
    for name in (
        "per_device_train_batch_size",
        "gradient_accumulation_steps",
        "gpus_per_node",
        "nodes",
        "cutoff_len",
        "logging_steps",
        "save_steps",
    ):
        value = getattr(s, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if effective_batch_size(s) < 1:
        raise ConfigError(f"effective batch size must be at least 1, got {effective_batch_size(s)}")
    if s.max_steps is not None:
        if not isinstance(s.max_steps, int) or s.max_steps < 1:
            raise ConfigError(f"max_steps must be a positive integer or unset, got {s.max_steps!r}")
    elif not (isinstance(s.num_train_epochs, (int, float)) and s.num_train_epochs > 0):
        raise ConfigError(
            f"num_train_epochs must be positive (or set max_steps), got {s.num_train_epochs!r}"
        )
    if not 0 <= s.warmup_ratio < 1:
        raise ConfigError(f"warmup_ratio must be in [0, 1), got {s.warmup_ratio!r}")
    if s.finetuning_type == "lora":
        if s.lora_rank < 1:
            raise ConfigError(f"lora_rank must be a positive integer, got {s.lora_rank!r}")
        if not s.lora_target:
            raise ConfigError("lora_target is empty (use 'all' or a comma-separated module list)")
    if not s.datasets:
        raise ConfigError("at least one dataset is required")
    names = [d.name for d in s.datasets]
    if len(set(names)) != len(names):
        raise ConfigError(f"dataset names must be unique, got {names}")
    for d in s.datasets:
        # LLaMA-Factory joins dataset names with commas and the launcher splits argv on spaces.
        if not d.name or any(c in d.name for c in ", \t\n"):
            raise ConfigError(f"dataset name {d.name!r} must be non-empty without commas or spaces")
        if check_files:
            if not d.file.is_file():
                raise ConfigError(f"dataset {d.name!r}: file {d.file} does not exist")
            if d.file.stat().st_size == 0:
                raise ConfigError(f"dataset {d.name!r}: file {d.file} is empty")
    if s.interleave_probs is not None:
        if s.mix_strategy == "concat":
            raise ConfigError(
                "interleave_probs needs mix_strategy interleave_under or interleave_over"
            )
        if len(s.interleave_probs) != len(s.datasets):
            raise ConfigError(
                f"interleave_probs has {len(s.interleave_probs)} values for {len(s.datasets)} datasets"
            )
        if any(p < 0 for p in s.interleave_probs) or not math.isclose(
            sum(s.interleave_probs), 1.0, abs_tol=1e-6
        ):
            raise ConfigError(
                f"interleave_probs must be non-negative and sum to 1, got {s.interleave_probs}"
            )
    if " " in str(s.output_dir):
        # llamafactory-cli rebuilds the torchrun command by joining and splitting on spaces.
        raise ConfigError(f"output_dir must not contain spaces: {s.output_dir}")


def build_deepspeed(settings: TrainingSettings) -> dict[str, Any] | None:
    """The DeepSpeed JSON content for these settings, or None without DeepSpeed."""
    base = deepspeed_preset(settings.deepspeed)
    if base is None:
        return None
    return _deep_merge(base, settings.deepspeed_overrides)


def build_dataset_info(settings: TrainingSettings) -> dict[str, Any]:
    """`dataset_info.json` content; file names are absolute so the run folder can be anywhere."""
    info = {}
    for d in settings.datasets:
        entry = sharegpt_info(d.file.resolve(), settings.stage)
        info[d.name] = _deep_merge(entry, d.info)
        info[d.name]["file_name"] = str(Path(info[d.name]["file_name"]).resolve())
    return info


def build_train_args(settings: TrainingSettings, run_dir: Path) -> dict[str, Any]:
    """The LLaMA-Factory arguments (the YAML's content) for a run whose files live in run_dir."""
    s = settings
    run_dir = Path(run_dir).resolve()
    stage = "dpo" if s.stage == "simpo" else s.stage
    args: dict[str, Any] = {
        "model_name_or_path": str(s.model_name_or_path),
        "stage": stage,
        "do_train": True,
        "finetuning_type": s.finetuning_type,
    }
    if s.finetuning_type == "lora":
        args.update(
            lora_rank=s.lora_rank,
            lora_alpha=s.lora_alpha if s.lora_alpha is not None else 2 * s.lora_rank,
            lora_dropout=s.lora_dropout,
            lora_target=s.lora_target,
        )
    if s.stage == "simpo":
        args.update(pref_loss="simpo", pref_beta=s.pref_beta, simpo_gamma=s.simpo_gamma)
    elif s.stage == "dpo":
        args.update(pref_loss="sigmoid", pref_beta=s.pref_beta)
    elif s.stage == "kto":
        args.update(pref_beta=s.pref_beta)
    if s.uses_deepspeed:
        args["deepspeed"] = str(run_dir / DEEPSPEED_FILE)
    args.update(
        dataset=",".join(d.name for d in s.datasets),
        dataset_dir=str(run_dir),
        template=s.template,
        cutoff_len=s.cutoff_len,
        overwrite_cache=True,
    )
    if s.max_samples is not None:
        args["max_samples"] = s.max_samples
    if s.preprocessing_num_workers is not None:
        args["preprocessing_num_workers"] = s.preprocessing_num_workers
    if len(s.datasets) > 1:
        args["mix_strategy"] = s.mix_strategy
        if s.interleave_probs is not None:
            args["interleave_probs"] = ",".join(repr(float(p)) for p in s.interleave_probs)
    args.update(
        output_dir=str(Path(s.output_dir).resolve()),
        logging_steps=s.logging_steps,
        save_steps=s.save_steps,
        plot_loss=False,
        overwrite_output_dir=s.resume_from_checkpoint is None,
        per_device_train_batch_size=s.per_device_train_batch_size,
        gradient_accumulation_steps=s.gradient_accumulation_steps,
        learning_rate=float(s.learning_rate),
        num_train_epochs=float(s.num_train_epochs),
        lr_scheduler_type=s.lr_scheduler_type,
        warmup_ratio=float(s.warmup_ratio),
        ddp_timeout=180000000,
        seed=s.seed,
        report_to=s.report_to,
        run_name=s.run_name,
        # Token counts give the throughput (tokens/s) field in trainer_log.jsonl.
        include_num_input_tokens_seen=True,
    )
    if s.max_steps is not None:
        args["max_steps"] = s.max_steps
    if s.save_total_limit is not None:
        args["save_total_limit"] = s.save_total_limit
    if s.precision == "bf16":
        args["bf16"] = True
    elif s.precision == "fp16":
        args["fp16"] = True
    if s.resume_from_checkpoint is not None:
        args["resume_from_checkpoint"] = str(Path(s.resume_from_checkpoint).resolve())
    args.update(s.extra_args)
    return args


@dataclass
class RunFiles:
    """The generated files' content, ready to be written into a run folder."""

    config_yaml: str
    deepspeed_json: str | None
    dataset_info_json: str
    train_args: dict[str, Any]


def build_run_files(
    settings: TrainingSettings, run_dir: Path, *, check_files: bool = True
) -> RunFiles:
    """Validate the settings and render the YAML, DeepSpeed JSON and dataset_info.json."""
    validate(settings, check_files=check_files)
    args = build_train_args(settings, run_dir)
    ds = build_deepspeed(settings)
    return RunFiles(
        config_yaml=yaml.safe_dump(args, sort_keys=False, default_flow_style=False),
        deepspeed_json=json.dumps(ds, indent=2) + "\n" if ds is not None else None,
        dataset_info_json=json.dumps(build_dataset_info(settings), indent=2) + "\n",
        train_args=args,
    )


def write_run_files(settings: TrainingSettings, run_dir: Path) -> dict[str, Path]:
    """Write the three files into run_dir and return their paths by role."""
    run_dir = Path(run_dir)
    files = build_run_files(settings, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    paths = {"config": run_dir / CONFIG_FILE, "dataset_info": run_dir / DATASET_INFO_FILE}
    paths["config"].write_text(files.config_yaml)
    paths["dataset_info"].write_text(files.dataset_info_json)
    if files.deepspeed_json is not None:
        paths["deepspeed"] = run_dir / DEEPSPEED_FILE
        paths["deepspeed"].write_text(files.deepspeed_json)
    return paths


# Sky-T1-32B-Preview (NovaSky, Jan 2025): SkyThought's skythought/train/LLaMA-Factory
# examples/train_full/qwen2_full_sft_32B.yaml with ds_z3_offload_config.json, 8 GPUs.
# Differences from that file, on purpose:
# - template: their LLaMA-Factory fork registers `qwen25` (turns end with <|endoftext|>);
#   LLaMA-Factory 0.9.5 has no `qwen25`, its `qwen` template is the same ChatML except the
#   assistant turn ends with <|im_end|>, which is what Qwen2.5-Instruct's own chat template does.
# - max_samples 1000000 and overwrite_cache are dropped/kept as no-ops for a 17k-row set;
#   plot_loss is off because skyboard draws the curves itself.
SKY_T1_32B_PREVIEW: dict[str, Any] = {
    "model_name_or_path": "Qwen/Qwen2.5-32B-Instruct",
    "stage": "sft",
    "finetuning_type": "full",
    "template": "qwen",
    "cutoff_len": 16384,
    "learning_rate": 1e-5,
    "num_train_epochs": 3.0,
    "lr_scheduler_type": "cosine",
    "warmup_ratio": 0.1,
    "precision": "bf16",
    "per_device_train_batch_size": 1,
    "gradient_accumulation_steps": 12,
    "gpus_per_node": 8,
    "nodes": 1,
    "deepspeed": "z3_offload",
    "logging_steps": 1,
    "save_steps": 100,
    "report_to": "wandb",
    "preprocessing_num_workers": 16,
    "run_name": "Sky-T1-32B-Preview",
}


def sky_t1_preset(
    datasets: list[DatasetSpec | dict[str, Any]], output_dir: Path, **overrides: Any
) -> TrainingSettings:
    """The Sky-T1-32B-Preview recipe on the given datasets; overrides change any field."""
    data = {**SKY_T1_32B_PREVIEW, "datasets": datasets, "output_dir": output_dir, **overrides}
    return TrainingSettings.from_dict(data)
