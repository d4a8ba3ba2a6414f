"""Hostile model code: every attempt ends as a failed verdict with the right reason, the worker
survives, nothing is left running and no secret of the worker is readable."""

from __future__ import annotations

from pathlib import Path

import pytest

from distill.verify import Reason, SandboxLimits, VerifyConfig, verify
from tests.support.verify import sandbox_processes

CFG = VerifyConfig(sandbox=SandboxLimits(time_limit_s=1.5, memory_mb=512))
SECRET = "sk-skyboard-verify-test-secret-7f3a"
PROBLEM = {"domain": "code", "tests": [{"input": "", "output": "SAFE\n"}]}


def run(code: str):
    return verify(PROBLEM, f"```python\n{code}\n```", config=CFG)


@pytest.fixture(autouse=True, params=["zygote", "fresh"])
def sandbox_mode(request, monkeypatch):
    """Every attack runs against both paths: a job forked from a zygote (the default) and a
    whole fresh bwrap sandbox per job (the fallback)."""
    monkeypatch.setenv("SKYBOARD_SANDBOX_MODE", request.param)
    return request.param


@pytest.fixture(autouse=True)
def nothing_left_behind(sandbox_mode):
    yield
    assert sandbox_processes() == []


def test_environment_home_and_source_tree_are_invisible(monkeypatch):
    monkeypatch.setenv("SKYBOARD_VERIFY_SECRET", SECRET)
    probe = f"""
import os, glob
leaks = []
if {SECRET!r} in repr(dict(os.environ)): leaks.append("os.environ")
for path in glob.glob("/proc/*/environ"):
    try:
        if {SECRET!r}.encode() in open(path, "rb").read(): leaks.append(path)
    except OSError:
        pass
for path in ["/work", {str(Path(__file__).resolve().parent)!r}, "/root", "/home", "/etc/shadow", "/etc/passwd"]:
    if os.path.exists(path): leaks.append(path)
print("LEAK " + ",".join(leaks) if leaks else "SAFE")
"""
    verdict = run(probe)
    assert verdict.reason == Reason.CORRECT, verdict.detail  # the probe printed SAFE
    reading = run("import os\nprint(os.environ['SKYBOARD_VERIFY_SECRET'])")
    assert reading.reason == Reason.RUNTIME_ERROR and "KeyError" in reading.detail["stderr"]
    assert SECRET not in repr(reading.to_dict())


def test_network_is_unreachable():
    verdict = run("import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=1)")
    assert verdict.reason == Reason.SANDBOX_VIOLATION and not verdict.correct
    dns = run("import socket\nsocket.getaddrinfo('pypi.org', 443)")
    assert dns.reason == Reason.SANDBOX_VIOLATION


def test_system_is_read_only_and_host_files_are_out_of_reach(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    assert run("open('/usr/lib/evil.txt', 'w').write('x')").reason == Reason.SANDBOX_VIOLATION
    assert run("import os\nos.remove('/usr/bin/python3')").reason == Reason.SANDBOX_VIOLATION
    verdict = run(f"import os\nos.remove({str(victim)!r})")
    assert (
        verdict.reason == Reason.RUNTIME_ERROR and "FileNotFoundError" in verdict.detail["stderr"]
    )
    assert victim.read_text() == "keep me"
    assert Path("/usr/bin/python3").exists() and not Path("/usr/lib/evil.txt").exists()


def test_private_tmp_is_writable_and_fresh_per_run():
    assert run("open('/tmp/mark', 'w').write('x')\nprint('SAFE')").reason == Reason.CORRECT
    assert (
        run("import os\nprint('SAFE' if not os.path.exists('/tmp/mark') else 'SEEN')").reason
        == Reason.CORRECT
    )


def test_fork_bomb_is_contained():
    verdict = run("import os\nwhile True:\n    os.fork()")
    assert not verdict.correct and verdict.reason in (Reason.SANDBOX_VIOLATION, Reason.TIMEOUT)


def test_huge_allocation_hits_memory_limit():
    assert run("x = bytearray(50 * 1024**3)").reason == Reason.MEMORY_LIMIT
    # Filling 512 MB page by page takes a while on a loaded machine: give it time to hit the cap.
    slow = VerifyConfig(sandbox=SandboxLimits(time_limit_s=8.0, memory_mb=512))
    growing = verify(
        PROBLEM, "```python\nx = []\nwhile True:\n    x.append(' ' * 10**7)\n```", config=slow
    )
    assert growing.reason == Reason.MEMORY_LIMIT


def test_printing_a_gigabyte_hits_output_limit():
    verdict = run(
        "import sys\nchunk = 'x' * 2**20\nfor _ in range(1024):\n    sys.stdout.write(chunk)"
    )
    assert verdict.reason == Reason.OUTPUT_LIMIT and verdict.ms < 5000


def test_sleeping_forever_and_ignoring_sigterm_time_out():
    assert run("import time\ntime.sleep(10**6)").reason == Reason.TIMEOUT
    spin = run(
        "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    pass"
    )
    assert spin.reason == Reason.TIMEOUT and spin.ms < 6000


def test_daemons_do_not_outlive_the_run():
    daemon = """
import os, subprocess, time
subprocess.Popen(["sleep", "4242.25"], start_new_session=True)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(4242.25)
    os._exit(0)
print("SAFE")
"""
    assert run(daemon).reason == Reason.CORRECT
    # The autouse fixture asserts that neither the sleep nor the forked daemon survives.


def test_no_capabilities_no_new_privileges_no_nested_namespaces():
    probe = """
import ctypes, os, subprocess
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
bad = [k for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb") if int(status[k], 16)]
if status["NoNewPrivs"].strip() != "1": bad.append("NoNewPrivs")
if os.getuid() == 0 or os.geteuid() == 0 or os.getuid() != 1000: bad.append("uid")
if ctypes.CDLL(None, use_errno=True).unshare(0x10000000) == 0: bad.append("userns")
found = subprocess.run(["find", "/", "-xdev", "-writable", "-type", "d"], capture_output=True,
                       text=True).stdout.split()
bad += [d for d in found if d not in ("/tmp", "/dev", "/dev/shm")]
print("LEAK " + ",".join(bad) if bad else "SAFE")
"""
    verdict = run(probe)
    assert verdict.reason == Reason.CORRECT, verdict.detail
