"""Overhead of following LLaMA-Factory's trainer_log.jsonl (and stdout) during a training run.

    .venv/bin/python bench/bench_training_logs.py [--lines 100000]

Prints a table: lines per second and total milliseconds for
  - one-shot: the whole file parsed in one poll (a launcher attaching to a finished run),
  - incremental: the file growing 100 lines at a time with a poll after each append (the
    launcher's real loop, which polls every 0.5 s while the trainer appends),
  - stdout grad_norm: extracting grad_norm from the Trainer's printed log dicts.

Launch overhead (GPU machine only; not measurable meaningfully on CPU): run the same YAML twice,
once by hand and once through skyboard, and compare wall time to the first trainer_log line and
to exit:
    cd <run_dir> && time FORCE_TORCHRUN=1 <venv>/bin/llamafactory-cli train config.yaml
    python -c "from distill.training.launcher import launch; ..."   # outcome.wall_seconds
The launcher adds one /proc scan per cancel/exit and one stat() + read of new bytes per poll.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from distill.training.logs import TrainerLogFollower, grad_norms_in_output  # noqa: E402


def make_line(step: int, total: int) -> str:
    return json.dumps(
        {
            "current_steps": step,
            "total_steps": total,
            "loss": 1.0 / step,
            "lr": 1e-5 * (1 - step / total),
            "epoch": step / 1000,
            "percentage": round(step / total * 100, 2),
            "elapsed_time": "1:00:00",
            "remaining_time": "2:00:00",
            "throughput": 2451.33,
            "total_tokens": step * 16384,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=100)
    n, chunk = parser.parse_args().lines, parser.parse_args().chunk
    lines = [make_line(i, n) + "\n" for i in range(1, n + 1)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trainer_log.jsonl"
        path.write_text("".join(lines))
        t0 = time.perf_counter()
        points = TrainerLogFollower(path).poll(final=True)
        rows.append(("one-shot", len(points), time.perf_counter() - t0))

        path.write_text("")
        follower = TrainerLogFollower(path)
        got = 0
        elapsed = 0.0
        with path.open("a") as fh:
            for start in range(0, n, chunk):
                fh.write("".join(lines[start : start + chunk]))
                fh.flush()
                t0 = time.perf_counter()
                got += len(follower.poll())
                elapsed += time.perf_counter() - t0
        rows.append((f"incremental ({chunk}/poll)", got, elapsed))

    stdout = "".join(
        f"{{'loss': '{1.0 / i:.4g}', 'grad_norm': '{0.5 + i % 7:.4g}', 'learning_rate': '1e-05', 'epoch': '0.1'}}\n"
        for i in range(1, n + 1)
    )
    t0 = time.perf_counter()
    norms = grad_norms_in_output(stdout)
    rows.append(("stdout grad_norm", len(norms), time.perf_counter() - t0))

    print(f"{'mode':<26} {'lines':>8} {'total ms':>10} {'lines/s':>12} {'us/line':>8}")
    for mode, count, secs in rows:
        assert count == n, (mode, count)
        print(
            f"{mode:<26} {count:>8} {secs * 1000:>10.1f} {count / secs:>12,.0f} {secs / count * 1e6:>8.2f}"
        )


if __name__ == "__main__":
    main()
