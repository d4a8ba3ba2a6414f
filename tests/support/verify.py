"""Helpers for the verification tests: sandbox process accounting, code blocks, MBPP cases."""

from __future__ import annotations

import json
import os
from pathlib import Path

from distill.verify.sandbox import PRESTARTED, ZYGOTES

FIXTURES = Path(__file__).parent.parent / "fixtures" / "verify"


def block(code: str) -> str:
    return f"Here is my solution.\n```python\n{code}\n```\nDone."


def mbpp_cases():
    rows = [
        json.loads(line)
        for line in (FIXTURES / "mbpp_sample.jsonl").read_text().splitlines()
        if line.strip()
    ]
    return [
        (
            {
                "domain": "code",
                "tests": {"style": "assert", "code": "\n".join(r["test_imports"] + r["test_list"])},
            },
            r,
        )
        for r in rows
    ]


def _ancestors(pid: int) -> set[int]:
    seen = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            break
        pid = int(status.split("PPid:")[1].split()[0])
    return seen


def sandbox_processes() -> list[str]:
    """Processes that come from a sandbox (our runner or the marker command below), except
    the idle pre-started sandboxes waiting for their first and only job and the zygotes' own
    processes, among this test process's descendants (bwrap, its init, the zygote runner; never a job's process: those are forked
    from the zygote and must all be gone)."""
    idle = PRESTARTED.idle_pids()
    zygotes = ZYGOTES.pids()
    me = os.getpid()  # other test runs on this machine have sandboxes of their own
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if (
            (b"/box/runner.py" in cmdline or b"4242.25" in cmdline)
            and me in _ancestors(int(pid))
            and not (_ancestors(int(pid)) & idle)
            and int(pid) not in zygotes
        ):
            found.append(cmdline.decode(errors="replace"))
    return found
