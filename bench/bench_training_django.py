"""Django-side cost of a training run's live view, and skyboard's launch overhead.

    .venv/bin/python bench/bench_training_django.py [--points 100000] [--launch]

1. store: N metric points written the way the job writes them (one upsert per launcher poll,
   100 points each), into a scratch PostgreSQL database (BENCH_DATABASE_URL, default
   postgres://postgres@127.0.0.1:5432/skyboard_bench_training; dropped and re-created).
2. chart: the run page's chart query (downsampled in the database to <= 1500 points) over those
   N points, and the size of its JSON.
3. --launch: the same tiny-model SFT (the test suite's fixture model and data, 30 steps) run
   by hand (`llamafactory-cli train config.yaml`) and through skyboard's launcher with the
   job's callbacks; compares the Trainer's train_runtime per step and total wall time.
   On a GPU machine, point --model at a real model to record GPU step times.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PG = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/skyboard_bench_training"
)


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = PG
    os.environ.setdefault("SKYBOARD_VAR_DIR", str(ROOT / "var" / "bench"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "skyboard.settings")
    import psycopg

    base, name = PG.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def bench_store_and_chart(n: int) -> None:
    from distill.training.logs import MetricPoint
    from experiments.models import RunState, TrainingRun

    run = TrainingRun.objects.create(name="bench", state=RunState.RUNNING, config={"settings": {}})
    t0 = time.perf_counter()
    for start in range(1, n + 1, 100):
        batch = [
            MetricPoint(step=s, total_steps=n, loss=2.0 / (1 + s / 1000), lr=1e-5, grad_norm=0.5,
                        epoch=s / n, throughput_tokens_per_s=1234.0, total_tokens=s * 512)
            for s in range(start, min(start + 100, n + 1))
        ]  # fmt: skip
        run.add_metrics(batch)
    store_s = time.perf_counter() - t0
    timings = []
    for _ in range(5):
        t0 = time.perf_counter()
        chart = run.chart()
        body = json.dumps(chart)
        timings.append(time.perf_counter() - t0)
    print(f"| store {n:,} points (upsert per 100) | {store_s * 1000:,.0f} ms | "
          f"{store_s / n * 1e6:.1f} us/point |")  # fmt: skip
    print(f"| chart query + JSON, {n:,} points -> {len(chart['train']['step'])} | "
          f"{statistics.median(timings) * 1000:,.1f} ms (median of 5) | {len(body) / 1024:,.0f} KiB |")  # fmt: skip


def _step_time(output_dir: Path, steps: int) -> float:
    """The Trainer's own train_runtime (seconds, float) per optimizer step."""
    results = json.loads((output_dir / "all_results.json").read_text())
    return results["train_runtime"] / steps


def bench_launch(model: str | None, steps: int) -> None:
    from devtools.tiny_model import make_tiny_model
    from distill.training.config import TrainingSettings, write_run_files
    from distill.training.launcher import launch

    venv = Path(os.environ.get("SKYBOARD_TRAINING_VENV", ROOT / ".venv-train"))
    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    model = model or str(make_tiny_model(tmp / "tiny"))
    data = ROOT / "tests" / "fixtures" / "training" / "sharegpt_tiny.jsonl"
    env_extra = {
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    results = {}
    for mode in ("by hand", "skyboard launcher"):
        run_dir = tmp / mode.replace(" ", "_")
        settings = TrainingSettings.from_dict({
            "model_name_or_path": model, "datasets": [{"name": "tiny", "file": str(data)}],
            "output_dir": str(run_dir / "out"), "template": "qwen", "cutoff_len": 64,
            "precision": "fp32", "learning_rate": 1e-3, "max_steps": steps, "save_steps": steps,
            "logging_steps": 1,
        })  # fmt: skip
        t0 = time.perf_counter()
        if mode == "by hand":
            write_run_files(settings, run_dir)
            env = {**os.environ, **env_extra, "PATH": f"{venv}/bin:{os.environ['PATH']}"}
            subprocess.run([str(venv / "bin" / "llamafactory-cli"), "train", "config.yaml"],
                           cwd=run_dir, env=env, check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)  # fmt: skip
        else:
            points = []
            outcome = launch(run_dir, settings, train_venv=venv, env_extra=env_extra,
                             on_metric=points.append, on_log=lambda _t: None)  # fmt: skip
            assert outcome.succeeded, outcome.message
        wall = time.perf_counter() - t0
        results[mode] = (wall, _step_time(run_dir / "out", steps))
    for mode, (wall, step) in results.items():
        print(f"| {mode} | {wall:.1f} s wall | {step * 1000:.1f} ms/step |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--launch", action="store_true")
    parser.add_argument("--model", help="model path for --launch (default: the tiny model)")
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    setup_django()
    bench_store_and_chart(args.points)
    if args.launch:
        bench_launch(args.model, args.steps)


if __name__ == "__main__":
    main()
