"""Why a training run failed, read from its exit status and the end of its log.

The reason is a stable machine-readable code (stored on the run, filterable in the UI) with a
message a person can act on. The patterns are the errors LLaMA-Factory 0.9.5, transformers,
DeepSpeed, torchrun and PyTorch print; the most specific cause wins (a CUDA OOM on one rank
makes the others fail with NCCL errors, so OOM is checked first).
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass

OUT_OF_MEMORY_GPU = "out_of_memory_gpu"
OUT_OF_MEMORY_HOST = "out_of_memory_host"
NCCL_ERROR = "nccl_error"
BAD_DATASET = "bad_dataset"
MODEL_NOT_FOUND = "model_not_found"
KILLED = "killed"
CANCELLED = "cancelled"
UNKNOWN = "unknown"

REASONS = (
    OUT_OF_MEMORY_GPU,
    OUT_OF_MEMORY_HOST,
    NCCL_ERROR,
    BAD_DATASET,
    MODEL_NOT_FOUND,
    KILLED,
    CANCELLED,
    UNKNOWN,
)


@dataclass(frozen=True)
class Failure:
    reason: str
    message: str


_RULES: list[tuple[str, str, re.Pattern[str]]] = [
    (
        OUT_OF_MEMORY_GPU,
        "The GPU ran out of memory. Lower per_device_train_batch_size or cutoff_len, or use ZeRO-3 with offload.",
        re.compile(
            r"CUDA out of memory|torch\.OutOfMemoryError|OutOfMemoryError: CUDA|CUBLAS_STATUS_ALLOC_FAILED"
        ),
    ),
    (
        OUT_OF_MEMORY_HOST,
        "The machine ran out of host memory (a process was killed or raised MemoryError). "
        "Use fewer preprocessing workers, less CPU offload, or a machine with more RAM.",
        re.compile(
            r"\bMemoryError\b|^Killed$|Signal 9 \(SIGKILL\)|exitcode\s*:\s*-9\b|"
            r"died with <Signals\.SIGKILL: 9>|Cannot allocate memory|DefaultCPUAllocator: can't allocate",
            re.MULTILINE,
        ),
    ),
    (
        NCCL_ERROR,
        "NCCL communication between GPUs failed. Check NCCL_* settings, the network between nodes and MASTER_ADDR/PORT.",
        re.compile(
            r"NCCL error|ncclInternalError|ncclSystemError|ncclUnhandledCudaError|ProcessGroupNCCL.*(?:timeout|Timeout|abort)|NCCL communicator was aborted"
        ),
    ),
    (
        MODEL_NOT_FOUND,
        "The base model could not be loaded: check model_name_or_path (a local folder with config.json, or a hub id reachable from the worker).",
        re.compile(
            r"is not a local folder and is not a valid model identifier|HFValidationError|"
            r"does not appear to have a file named config\.json|Can't load (?:the )?(?:configuration|tokenizer|config) for|"
            r"LocalEntryNotFoundError|We couldn't connect to 'https://huggingface\.co'|"
            r"Repository Not Found|RepositoryNotFoundError|GatedRepoError|Unrecognized model in"
        ),
    ),
    (
        BAD_DATASET,
        "The training data could not be used: check the dataset files and their dataset_info.json entry "
        "(ShareGPT layout, column and tag names).",
        re.compile(
            r"Cannot find valid samples|Undefined dataset .* in dataset_info\.json|Cannot open .*dataset_info\.json|"
            r"File \S+ not found\.|DatasetGenerationError|Failed to load JSON from file|ArrowInvalid|"
            r"JSONDecodeError|Invalid role tag|Invalid message count|File types should be identical|"
            r"Allowed file types:|Unknown dataset|KeyError: '(?:conversations|messages|chosen|rejected|kto_tag|system|from|value)'"
        ),
    ),
]

_ERROR_LINE = re.compile(r"(?:Error|Exception|error:|FAILED|Traceback)")


def _last_error_line(tail: str) -> str:
    lines = [ln.strip() for ln in tail.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if _ERROR_LINE.search(ln):
            return ln[:500]
    return lines[-1][:500] if lines else ""


def classify_failure(
    exit_code: int | None, log_tail: str, *, cancelled: bool = False
) -> Failure | None:
    """The failure of a finished run, or None if it succeeded.

    exit_code follows subprocess conventions: negative means killed by that signal.
    """
    if cancelled:
        return Failure(CANCELLED, "Cancelled by a user; the process group was terminated.")
    if exit_code == 0:
        return None
    for reason, advice, pattern in _RULES:
        match = pattern.search(log_tail)
        if match:
            line = next(
                (ln.strip() for ln in log_tail[match.start() :].splitlines() if ln.strip()),
                match.group(0),
            )
            return Failure(reason, f"{advice} Log: {line[:500]}")
    if exit_code == -signal.SIGKILL:
        # SIGKILL that we did not send is almost always the kernel's OOM killer.
        return Failure(
            OUT_OF_MEMORY_HOST,
            "The trainer was killed with SIGKILL, most likely by the out-of-memory killer.",
        )
    if exit_code is not None and exit_code < 0:
        name = (
            signal.Signals(-exit_code).name
            if -exit_code in signal.Signals._value2member_map_
            else str(-exit_code)
        )
        return Failure(KILLED, f"The trainer was killed by signal {name} from outside skyboard.")
    line = _last_error_line(log_tail)
    return Failure(UNKNOWN, f"Training exited with code {exit_code}. {line}".strip())
