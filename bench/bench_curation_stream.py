"""The curation generate stage end to end: an endpoint with fixed latency, samples into PostgreSQL.

``bench_generation.py`` measures the backend alone; this runs the real ``Pipeline.stage_generate``
of a curation run (requests read from the database a chunk at a time, results persisted in
batches with ``bulk_create``, progress reported) against the local stub in its own process, and
prints samples/s beside the ideal (concurrency / latency) for each HTTP client. The caller's
thread (database writes) and the backend's event-loop thread share one interpreter, so this is
the rate a curation run really gets, not the backend's alone.

    .venv/bin/python bench/bench_curation_stream.py [--problems 10240] [--concurrency 256]
        [--latency-ms 200] [--chunk 64] [--clients aiohttp,openai]

Uses a scratch PostgreSQL database (``BENCH_DATABASE_URL``, default
postgres://postgres@127.0.0.1:5432/skyboard_bench), dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _db import drop_database, setup_django  # noqa: E402
from bench_generation import free_port, proc_cpu_s, start_stub, steal_s  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--problems", type=int, default=10_240)
    p.add_argument("--concurrency", type=int, default=256)
    p.add_argument("--latency-ms", type=float, default=200)
    p.add_argument("--chunk", type=int, default=64)
    p.add_argument("--clients", default="aiohttp,openai")
    a = p.parse_args()
    setup_django()
    try:
        rows = run(a)
    finally:
        drop_database()
    load = os.getloadavg()
    print(f"\nstub latency {a.latency_ms:.0f} ms, {a.problems} problems, chunk {a.chunk}, "
          f"PostgreSQL; nproc {os.cpu_count()}, load average after {load[0]:.2f}\n")
    print("| client | samples | ideal/s | samples/s | % ideal | errors | worker CPU µs/sample "
          "| stub CPU µs/sample | steal s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print("| {} | {} | {:.0f} | {:.1f} | {:.1f}% | {} | {:.0f} | {:.0f} | {:.1f} |".format(*r))


def run(a) -> list[tuple]:
    from django.conf import settings

    from experiments.models import (
        CurationRun,
        Dataset,
        Problem,
        PromptVersion,
        Recipe,
        RecipeItem,
        RecipeVersion,
        Sample,
    )
    from workers.jobs.curation import Pipeline
    from workers.runner import JobContext

    settings.RUN_HEARTBEAT_SECONDS = 600
    ds = Dataset.objects.create(name="bench", layout="bench", ready=True)
    Problem.objects.bulk_create(
        [Problem(dataset=ds, row=i, domain="math", source="bench", answer=str(i),
                 prompt=f"Problem {i}: what is {i} + 0?", content_hash=f"b{i}")
         for i in range(a.problems)], batch_size=2000)
    recipe = Recipe.objects.create(name="bench")
    version = RecipeVersion.objects.create(recipe=recipe, number=1, spec={"components": []},
                                           fingerprint="bench", problem_count=a.problems)
    RecipeItem.objects.bulk_create(
        [RecipeItem(version=version, problem_id=pid, component=0, position=i)
         for i, pid in enumerate(Problem.objects.order_by("id").values_list("id", flat=True))],
        batch_size=2000)
    defaults = PromptVersion.objects.ensure_defaults()
    port = free_port()
    stub = start_stub(port, a.latency_ms, "auto")
    rows = []
    try:
        for client in [c for c in a.clients.split(",") if c]:
            run = CurationRun.objects.create(
                name=f"bench {client}", queue="api", recipe_version=version,
                system_prompt=defaults["system"], template=defaults["template"],
                convert_prompt=defaults["convert"],
                config={"backend": "openai", "model": "stub", "n": 1,
                        "base_url": f"http://127.0.0.1:{port}/v1", "chunk_size": a.chunk,
                        "sampling": {"temperature": 0.0, "max_tokens": 64},
                        "backend_options": {"concurrency": a.concurrency, "client": client,
                                            "timeout_s": 60}})
            pipeline = Pipeline(run, JobContext(run))
            s0, c0, st0 = proc_cpu_s(stub.pid), time.process_time(), steal_s()
            t0 = time.perf_counter()
            pipeline.stage_generate()
            wall = time.perf_counter() - t0
            cpu, scpu = time.process_time() - c0, proc_cpu_s(stub.pid) - s0
            stored = Sample.objects.filter(run=run, stage="generate")
            n, errors = stored.count(), stored.filter(error__isnull=False).count()
            assert n == a.problems, (n, a.problems)
            ideal = a.concurrency / (a.latency_ms / 1000)
            rows.append((client, n, ideal, n / wall, 100 * n / wall / ideal, errors,
                         1e6 * cpu / n, 1e6 * scpu / n, steal_s() - st0))
    finally:
        os.killpg(stub.pid, 15)
        stub.wait(10)
    return rows


if __name__ == "__main__":
    main()
