"""The zygote path: jobs forked from one long-lived sandbox must be as isolated from each other
as jobs in separate sandboxes, the zygote must die with its worker, and both paths (zygote and
a fresh bwrap sandbox per job) must give the same verdicts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from distill.verify import Reason, SandboxLimits, VerifyConfig, verify, verify_many
from distill.verify import sandbox as sb
from tests.support.verify import FIXTURES, block, mbpp_cases, sandbox_processes

CFG = VerifyConfig(sandbox=SandboxLimits(time_limit_s=2.0, memory_mb=512))
SAFE = {"domain": "code", "tests": [{"input": "", "output": "SAFE\n"}]}
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def zygote_mode(monkeypatch):
    monkeypatch.setenv("SKYBOARD_SANDBOX_MODE", "zygote")
    yield
    assert sandbox_processes() == []


LEAVE = r"""
import ctypes, os, socket, subprocess, time
L = ctypes.c_long
libc = ctypes.CDLL(None, use_errno=True)
left = []
open("/tmp/left-by-previous", "w").write("x"); left.append("tmp")
open("/dev/shm/left-by-previous", "w").write("x"); left.append("shm")
if libc.msgget(0x5EB0A4D, 0o1666) >= 0: left.append("sysv")
if libc.syscall(L(248), b"user", b"skyboard-left", b"secret", L(6), L(-4)) > 0: left.append("key")
srv = socket.socket(socket.AF_UNIX); srv.bind("\0skyboard-left"); srv.listen(); left.append("sock")
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(500):  # loopback counters (/proc/net/dev, /proc/net/snmp) as a covert channel
    udp.sendto(b"x", ("127.0.0.1", 9))
subprocess.Popen(["sleep", "4242.25"], start_new_session=True)
if os.fork() == 0:
    os.setsid()
    time.sleep(4242.25)
print("SAFE" if left == ["tmp", "shm", "sysv", "key", "sock"] else left)
"""

SEE = r"""
import ctypes, os, socket
L = ctypes.c_long
libc = ctypes.CDLL(None, use_errno=True)
seen = []
if os.listdir("/tmp"): seen.append("tmp")
if os.listdir("/dev/shm"): seen.append("shm")
if libc.msgget(0x5EB0A4D, 0o666) >= 0: seen.append("sysv")
if libc.syscall(L(250), L(10), L(-4), b"user", b"skyboard-left", L(0)) >= 0: seen.append("key")
try:
    socket.socket(socket.AF_UNIX).connect("\0skyboard-left"); seen.append("sock")
except OSError:
    pass
lo = [ln for ln in open("/proc/net/dev") if ln.strip().startswith("lo:")][0].split()
if int(lo[2]) >= 500: seen.append("lo counters")
others = [p for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, os.getpid())]
if others: seen.append("procs " + " ".join(open(f"/proc/{p}/cmdline").read() for p in others))
print("SEEN " + ",".join(seen) if seen else "SAFE")
"""


def test_a_job_sees_nothing_the_previous_job_in_the_same_zygote_left():
    sb.ZYGOTES.close()  # start from one zygote, so both jobs go to it
    first = verify(SAFE, block(LEAVE), config=CFG)
    assert first.reason == Reason.CORRECT, first.detail
    zygote = sb.ZYGOTES.pids()
    assert zygote
    second = verify(SAFE, block(SEE), config=CFG)
    assert second.reason == Reason.CORRECT, second.detail
    assert sb.ZYGOTES.pids() == zygote  # the same zygote ran both


def test_killing_the_worker_takes_its_zygote_down():
    script = (
        "import time\n"
        "from distill.verify.sandbox import run_job, SandboxLimits, ZYGOTES, sandbox_mode\n"
        "job = {'mode': 'stdin', 'code': 'print(1)', 'cases': [{'input': '', 'output': '1'}]}\n"
        "assert run_job(job, SandboxLimits())['status'] == 'passed' and sandbox_mode() == 'zygote'\n"
        "print(*sorted(ZYGOTES.pids()), flush=True)\n"
        "time.sleep(600)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SKYBOARD_SANDBOX_MODE": "zygote"}
    worker = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env)
    try:
        pids = [int(p) for p in worker.stdout.readline().split()]
        assert len(pids) >= 3 and all(_running(p) for p in pids)
    finally:
        worker.kill()
        worker.wait()
    deadline = time.monotonic() + 10
    while any(_running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_running(p) for p in pids)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


CASES = [
    ("print(int(input()) * 2)", Reason.CORRECT),
    ("print(int(input()) * 3)", Reason.TEST_FAILED),
    ("def f(:\n  pass", Reason.COMPILE_ERROR),
    ("raise SystemExit(3)", Reason.RUNTIME_ERROR),
    ("import time\ntime.sleep(60)", Reason.TIMEOUT),
    ("x = bytearray(50 * 1024**3)", Reason.MEMORY_LIMIT),
    ("import sys\nsys.stdout.write('x' * (8 * 2**20))", Reason.OUTPUT_LIMIT),
    ("open('/usr/x', 'w')", Reason.SANDBOX_VIOLATION),
    (
        "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=1)",
        Reason.SANDBOX_VIOLATION,
    ),
]
DOUBLE = {"domain": "code", "tests": [{"input": "21\n", "output": "42\n"}]}


def test_zygote_and_fresh_sandboxes_give_the_same_verdicts(monkeypatch):
    items = [(DOUBLE, block(code), "stop") for code, _ in CASES]
    mbpp = mbpp_cases()
    items += [(p, block(r[key]), "stop") for p, r in mbpp for key in ("code", "broken_code")]
    verdicts = {}
    for mode in ("zygote", "fresh"):
        monkeypatch.setenv("SKYBOARD_SANDBOX_MODE", mode)
        verdicts[mode] = [v.reason for v in verify_many(items, max_workers=2, config=CFG)]
    expected = [r for _, r in CASES] + [Reason.CORRECT, Reason.TEST_FAILED] * len(mbpp)
    assert verdicts["zygote"] == expected
    assert verdicts["fresh"] == expected
    assert FIXTURES.exists()


def test_falls_back_to_a_fresh_sandbox_per_job_when_no_zygote_starts(monkeypatch):
    class NoZygote:
        def __init__(self, limits):
            raise sb.ZygoteError("no user namespaces inside bwrap here")

    monkeypatch.setattr(sb, "ZYGOTES", sb._Zygotes())
    monkeypatch.setattr(sb, "_Zygote", NoZygote)
    verdict = verify(DOUBLE, block("print(42)"), config=CFG)
    assert verdict.reason == Reason.CORRECT
    assert sb.ZYGOTES.broken and sb.sandbox_mode() == "fresh"
    assert verify(DOUBLE, block("print(42)"), config=CFG).reason == Reason.CORRECT


def test_host_wall_limit_kills_the_zygote_and_the_next_job_gets_a_new_one():
    job = {"mode": "stdin", "code": "import time\ntime.sleep(60)", "cases": [{"input": ""}]}
    summary = sb.run_job(job, SandboxLimits(time_limit_s=30.0, total_wall_s=1.0))
    assert summary.get("host_timeout") and summary["results"][0]["status"] == "timeout"
    assert verify(DOUBLE, block("print(42)"), config=CFG).reason == Reason.CORRECT
