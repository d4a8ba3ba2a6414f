"""Throughput of the OpenAI-compatible backend against the local stub (fixed latency).

Prints requests/second at several concurrency levels beside the ideal (concurrency / latency),
for both of the backend's clients (the openai SDK and direct aiohttp), and beside a 16-thread
pool making synchronous ``openai`` calls, which is how SkyThought's convert_format.py
reformats. The stub runs in its own process so it does not share the client's interpreter lock.

    .venv/bin/python bench/bench_generation.py [--latency-ms 200] [--waves 40]
        [--levels 16,64,256] [--clients openai,aiohttp] [--repeat 2]
        [--event-loop auto|uvloop|asyncio]

Two rates per row: "run" is requests / wall time of the whole ``generate`` call (including the
first wave's connection set-up and the last wave's drain), "steady" counts only the results
completed between the end of the first wave and the start of the last one (completions
``concurrency`` to ``n - concurrency``), i.e. the rate a long curation run sustains.
Each row also reports the CPU time the client process and the stub process spent per request
(process CPU time over the row / requests), which hardly depends on how loaded the machine is,
and the CPU time the hypervisor stole from this VM during the row (``steal``, from /proc/stat),
since a shared or oversubscribed machine skews the rates.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distill.generation.base import GenRequest, Sampling  # noqa: E402
from distill.generation.openai_backend import OpenAIBackend  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_stub(port: int, latency_ms: float, event_loop: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "devtools.openai_stub", "--port", str(port),
         "--latency-ms", str(latency_ms), "--event-loop", event_loop],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True)
    line = proc.stdout.readline()
    if "listening" not in line:
        proc.kill()
        raise RuntimeError(f"stub did not start: {line!r}")
    return proc


def requests_for(n: int, tag: str) -> list[GenRequest]:
    return [GenRequest(key=f"{tag}:{i}", messages=[{"role": "user", "content": f"q {tag} {i}"}],
                       sampling=Sampling(max_tokens=16)) for i in range(n)]


def steady_rate(stamps: list[float], concurrency: int) -> float:
    """Completions per second between the end of the first wave and the last one's start."""
    a, b = concurrency - 1, len(stamps) - concurrency - 1
    if b <= a:
        return float("nan")
    return (b - a) / (stamps[b] - stamps[a])


def bench_backend(base_url: str, concurrency: int, n: int, client: str,
                  event_loop: str = "auto") -> tuple[float, float, int]:
    backend = OpenAIBackend({"model": "stub", "base_url": base_url, "api_key": "sk-bench",
                             "concurrency": concurrency, "timeout_s": 30,
                             "event_loop": event_loop, "client": client})
    reqs = requests_for(n, f"c{concurrency}")
    stamps, errors = [], 0
    t0 = time.perf_counter()
    for r in backend.generate(reqs):
        stamps.append(time.perf_counter())
        errors += bool(r.error)
    return n / (stamps[-1] - t0), steady_rate(stamps, concurrency), errors


def bench_threads(base_url: str, threads: int, n: int) -> tuple[float, float, int]:
    client = openai.OpenAI(base_url=base_url, api_key="sk-bench", max_retries=0, timeout=30)

    def call(i: int) -> tuple[bool, float]:
        try:
            client.chat.completions.create(
                model="stub", messages=[{"role": "user", "content": f"q t {i}"}], max_tokens=16)
            return True, time.perf_counter()
        except openai.APIError:
            return False, time.perf_counter()

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        done = list(pool.map(call, range(n)))
    stamps = sorted(t for _, t in done)
    errors = sum(1 for ok, _ in done if not ok)
    return n / (stamps[-1] - t0), steady_rate(stamps, threads), errors


def steal_s() -> float:
    """CPU seconds stolen from this VM by the hypervisor so far, all CPUs (/proc/stat)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--latency-ms", type=float, default=200)
    p.add_argument("--waves", type=int, default=40, help="requests per run = concurrency * waves")
    p.add_argument("--levels", default="16,64,256")
    p.add_argument("--clients", default="openai,aiohttp",
                   help="the backend's clients to measure, comma-separated")
    p.add_argument("--repeat", type=int, default=1, help="run every row this many times")
    p.add_argument("--event-loop", choices=["auto", "uvloop", "asyncio"], default="auto",
                   help="for the backend's private loop and the stub")
    a = p.parse_args()
    port = free_port()
    load_before = os.getloadavg()
    stub = start_stub(port, a.latency_ms, a.event_loop)
    base_url = f"http://127.0.0.1:{port}/v1"
    lat = a.latency_ms / 1000
    rows = []

    def measure(name: str, c: int, n: int, fn) -> None:
        s0, c0, st0 = proc_cpu_s(stub.pid), time.process_time(), steal_s()
        rps, steady, err = fn()
        c1, s1, st1 = time.process_time(), proc_cpu_s(stub.pid), steal_s()
        rows.append((name, n, rps, steady, c / lat, err, 1e6 * (c1 - c0) / n,
                     1e6 * (s1 - s0) / n, st1 - st0, os.getloadavg()[0]))

    clients = [x for x in a.clients.split(",") if x]
    try:
        for client in clients:  # warm-up: imports, connection setup
            bench_backend(base_url, 16, 32, client, a.event_loop)
        for _ in range(a.repeat):
            n16 = 16 * a.waves
            measure("sync openai, 16 threads", 16, n16,
                    lambda n=n16: bench_threads(base_url, 16, n))
            for c in (int(x) for x in a.levels.split(",")):
                for client in clients:
                    n = c * a.waves
                    measure(f"OpenAIBackend {client}, c={c}", c, n,
                            lambda c=c, n=n, client=client: bench_backend(
                                base_url, c, n, client, a.event_loop))
    finally:
        os.killpg(stub.pid, 15)
        stub.wait(10)
    load_after = os.getloadavg()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"stub latency {a.latency_ms:.0f} ms; nproc {cores} (cpu_count {os.cpu_count()}); "
          f"load average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}; "
          f"event loop {a.event_loop}; openai {version('openai')}, "
          f"aiohttp {version('aiohttp')}, uvloop {version('uvloop')}, "
          f"Python {sys.version.split()[0]}\n")
    print(f"| {'client':<30} | {'requests':>8} | {'ideal':>6} | {'run req/s':>9} | "
          f"{'% ideal':>7} | {'steady req/s':>12} | {'% ideal':>7} | {'errors':>6} | "
          f"{'client CPU µs/req':>17} | {'stub CPU µs/req':>15} | {'steal s':>7} | "
          f"{'load 1 min':>10} |")
    print(f"|{'-' * 32}|{'-' * 10}:|{'-' * 7}:|{'-' * 10}:|{'-' * 8}:|{'-' * 13}:|{'-' * 8}:|"
          f"{'-' * 7}:|{'-' * 18}:|{'-' * 16}:|{'-' * 8}:|{'-' * 11}:|")
    for name, n, rps, steady, ideal, err, ccpu, scpu, steal, load in rows:
        print(f"| {name:<30} | {n:>8} | {ideal:>6.0f} | {rps:>9.1f} | "
              f"{100 * rps / ideal:>6.1f}% | {steady:>12.1f} | {100 * steady / ideal:>6.1f}% | "
              f"{err:>6} | {ccpu:>17.0f} | {scpu:>15.0f} | {steal:>7.1f} | {load:>10.2f} |")


if __name__ == "__main__":
    main()
