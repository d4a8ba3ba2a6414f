"""Finding and stopping every process a training run started.

A process group is not enough: torchrun starts each worker with `start_new_session=True`, and
ninja (DeepSpeed's JIT build) puts each compiler in its own process group, so `killpg` on the
launcher's group leaves them running. Every process of a run instead inherits an environment
variable holding the run's unique tag (torchrun, LLaMA-Factory and ninja all pass the
environment on); `/proc/<pid>/environ` shows it even after a process was re-parented to init.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

TAG_VARIABLE = "SKYBOARD_TRAINING_TAG"


def tagged_processes(tag: str) -> list[int]:
    """Pids of live (non-zombie) processes whose environment carries TAG_VARIABLE=tag."""
    needle = b"\0" + f"{TAG_VARIABLE}={tag}".encode() + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            if needle not in b"\0" + environ + b"\0":
                continue
            # A zombie is already dead; only its parent can clear it, and signals cannot.
            stat = (entry / "stat").read_text()
            if stat[stat.rindex(")") + 2] == "Z":
                continue
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        found.append(int(entry.name))
    return found


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_all(pgid: int | None, tag: str, sig: int) -> None:
    if pgid is not None:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass
    for pid in tagged_processes(tag):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def terminate_run(pgid: int | None, tag: str, *, grace_s: float = 10.0, reap=None) -> bool:
    """SIGTERM every process of the run, SIGKILL what is left after grace_s.

    `reap` is called while waiting so the caller can collect its direct child (otherwise it
    stays a zombie). Returns True when nothing of the run is left.
    """
    _signal_all(pgid, tag, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if reap is not None:
            reap()
        if not tagged_processes(tag):
            break
        time.sleep(0.1)
    survivors = tagged_processes(tag)
    if survivors:
        _signal_all(pgid, tag, signal.SIGKILL)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and tagged_processes(tag):
            if reap is not None:
                reap()
            time.sleep(0.05)
    if reap is not None:
        reap()
    return not tagged_processes(tag)
