"""Host side of the code sandbox: bubblewrap namespaces + rlimits + an unprivileged uid.

Two paths. "zygote" (default): one long-lived bwrap sandbox per worker slot (as below) whose
runner forks each job into fresh user, pid, mount, ipc and uts namespaces with a fresh /proc,
/tmp and /dev/shm and no capabilities (see _runner.zygote_main). "fresh" (fallback, or
SKYBOARD_SANDBOX_MODE=fresh): each job runs in a new bwrap sandbox.

A bwrap sandbox has new user, pid, net, ipc, uts and cgroup namespaces; a
read-only bind of /usr only (no /etc, /home, /root, /work); a size-limited private tmpfs as /tmp;
an empty environment; all capabilities dropped; no further user namespaces. bwrap itself is
started as an unprivileged uid (when we are root) with a scrubbed environment, so even its own
/proc/1/environ holds no secret. Killing bwrap kills the pid namespace and with it every process
the model code spawned. See docs/verification.md for the threat model.
"""

from __future__ import annotations

import atexit
import functools
import json
import logging
import os
import queue
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from ._runner import clip, prepare_tests

RUNNER = Path(__file__).with_name("_runner.py")
# An unprivileged uid outside the sandbox (nobody). RLIMIT_NPROC is accounted per user
# namespace on current kernels, so parallel sandboxes do not share one process budget.
HOST_UID = 65534
SANDBOX_UID = 1000
log = logging.getLogger(__name__)


class SandboxUnavailable(RuntimeError):
    """bwrap is missing or cannot create namespaces on this machine."""


@dataclass(frozen=True)
class SandboxLimits:
    time_limit_s: float = 6.0  # wall time per test (CPU time limit is this plus one second)
    memory_mb: int = 1024  # address space per process
    nproc: int = 32  # processes/threads inside the sandbox
    output_bytes: int = 4 * 1024 * 1024  # stdout kept per test; more is output_limit
    fsize_mb: int = 64  # largest file the code may write
    tmpfs_mb: int = 64  # size of the private /tmp
    total_wall_s: float = 120.0  # hard cap for the whole job, enforced from outside


def python_interpreter() -> str:
    # The Debian system interpreter lives under /usr, which is the only tree bound into the
    # sandbox; the venv's interpreter lives under /root and is deliberately not reachable.
    path = os.environ.get("SKYBOARD_SANDBOX_PYTHON", "/usr/bin/python3")
    if not os.path.exists(path):
        raise SandboxUnavailable(f"sandbox interpreter {path} not found (apt-get install python3)")
    return path


def bwrap_command(
    runner_fd: int, job_fd: int | None, limits: SandboxLimits, zygote: bool = False
) -> list[str]:
    """The bwrap command line; with job_fd None the runner reads its job from stdin.

    With `zygote`, the sandbox is a long-lived zygote (see _runner.zygote_main) instead: no
    --disable-userns (it makes a fresh user namespace per job, and forbids nested ones inside
    that), /dev read-only, and no /tmp of its own (each job mounts its own /tmp and /dev/shm).
    """
    bwrap = shutil.which("bwrap") or "/usr/bin/bwrap"
    if not os.path.exists(bwrap):
        raise SandboxUnavailable("bubblewrap is not installed (apt-get install bubblewrap)")
    cmd = [
        bwrap,
        "--unshare-all", "--unshare-user", *([] if zygote else ["--disable-userns"]),
        "--die-with-parent", "--new-session", "--cap-drop", "ALL",
        "--hostname", "sandbox",
        "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
        "--ro-bind", "/usr", "/usr",
        "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
        "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
        "--proc", "/proc", "--dev", "/dev",
        *(["--remount-ro", "/dev", "--dir", "/tmp"] if zygote else
          ["--size", str(limits.tmpfs_mb * 1024 * 1024), "--tmpfs", "/tmp"]),
        "--dir", "/box",
        "--ro-bind-data", str(runner_fd), "/box/runner.py",
        *(["--ro-bind-data", str(job_fd), "/box/job.json"] if job_fd is not None else []),
        # The sandbox root is a bwrap tmpfs; make it read-only so only the size-capped /tmp is
        # writable.
        "--remount-ro", "/",
        "--chdir", "/tmp",
        "--clearenv", "--setenv", "HOME", "/tmp", "--setenv", "PATH", "/usr/bin:/bin",
        "--setenv", "LANG", "C.UTF-8", "--setenv", "PYTHONIOENCODING", "utf-8",
        python_interpreter(), "-I", "-S", "-B", "/box/runner.py",
        *(["--zygote", "net" if NET_PER_JOB else "shared-net"] if zygote else
          ["/box/job.json" if job_fd is not None else "-"]),
    ]  # fmt: skip
    return cmd


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, 0)  # no MFD_CLOEXEC: bwrap must inherit it
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


_RUNNER_SOURCE: bytes | None = None


def _runner_source() -> bytes:
    global _RUNNER_SOURCE
    if _RUNNER_SOURCE is None:
        _RUNNER_SOURCE = RUNNER.read_bytes()
    return _RUNNER_SOURCE


def _spawn(
    limits: SandboxLimits, job_bytes: bytes | None, zygote: bool = False, stderr=subprocess.PIPE
) -> subprocess.Popen:
    fds = [_memfd("runner", _runner_source())]
    if job_bytes is not None:
        fds.append(_memfd("job", job_bytes))
    cmd = bwrap_command(fds[0], fds[1] if job_bytes is not None else None, limits, zygote)
    as_root = os.geteuid() == 0
    try:
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL if job_bytes is not None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            pass_fds=fds,
            env={"PATH": "/usr/bin:/bin"},
            cwd="/",
            process_group=0,
            user=HOST_UID if as_root else None,
            group=HOST_UID if as_root else None,
            extra_groups=[] if as_root else None,
        )
    finally:
        for fd in fds:
            os.close(fd)


class _Prestarted:
    """Sandboxes started ahead of need, one job each.

    Setting up the namespaces (above all the network namespace) and starting the interpreter
    is most of a run's fixed cost; a sandbox started while the previous job runs hides it.
    Isolation is unchanged: every job still gets its own, never-used sandbox (fresh user, pid,
    net namespaces and /tmp); a pre-started one has run nothing but the runner waiting on its
    stdin. They are started by one long-lived thread (bwrap's --die-with-parent fires when
    the *thread* that started it ends, so the caller's short-lived pool threads cannot own
    them); dead ones are discarded, and fork children (Celery prefork) never use their
    parent's.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[int, list[subprocess.Popen]] = {}
        self._pid = os.getpid()
        self._requests: queue.SimpleQueue | None = None
        self.max_idle = 4

    def idle_pids(self, settle_s: float = 5.0) -> set[int]:
        """Pids of the idle pre-started sandboxes, once pending starts are done (for tests)."""
        deadline = time.monotonic() + settle_s
        while self._requests is not None and self._pending and time.monotonic() < deadline:
            time.sleep(0.01)
        with self._lock:
            return {p.pid for idle in self._idle.values() for p in idle if p.poll() is None}

    _pending = 0

    def _starter(self, requests: queue.SimpleQueue) -> None:
        while True:
            limits = requests.get()
            try:
                self._start_one(limits)
            finally:
                with self._lock:
                    self._pending -= 1

    def _start_one(self, limits: SandboxLimits) -> None:
        with self._lock:
            if len(self._idle.get(limits.tmpfs_mb, [])) >= self.max_idle:
                return
        try:
            proc = _spawn(limits, None)
        except (OSError, SandboxUnavailable):
            return
        with self._lock:
            self._idle.setdefault(limits.tmpfs_mb, []).append(proc)

    def take(self, limits: SandboxLimits) -> subprocess.Popen | None:
        with self._lock:
            if self._pid != os.getpid():
                self._idle, self._pid, self._requests = {}, os.getpid(), None
            idle = self._idle.setdefault(limits.tmpfs_mb, [])
            while idle:
                proc = idle.pop()
                if proc.poll() is None:
                    return proc
                _reap(proc)
        return None

    def refill(self, limits: SandboxLimits) -> None:
        """Ask for one more sandbox to be started in the background."""
        with self._lock:
            if self._pid != os.getpid():
                self._idle, self._pid, self._requests = {}, os.getpid(), None
            if self._requests is None:
                self._requests = queue.SimpleQueue()
                threading.Thread(
                    target=self._starter, args=(self._requests,), daemon=True,
                    name="sandbox-prestart",
                ).start()  # fmt: skip
            self._pending += 1
            self._requests.put(limits)

    def close(self) -> None:
        with self._lock:
            procs = [p for idle in self._idle.values() for p in idle]
            self._idle = {}
        for proc in procs:
            _kill(proc)
            _reap(proc)


def _reap(proc: subprocess.Popen) -> None:
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass
    try:
        proc.wait(timeout=1)
    except subprocess.TimeoutExpired:
        _kill(proc)
        proc.wait()


PRESTARTED = _Prestarted()
atexit.register(PRESTARTED.close)

# Each zygote job gets its own network namespace (only `lo`). Sharing the zygote's one saves
# ~2 ms and the kernel's asynchronous namespace clean-up per job, but its loopback's counters
# (/proc/net/dev, /proc/net/snmp) would outlive a job: a covert channel between consecutive
# jobs. SKYBOARD_SANDBOX_NET_PER_JOB=0 shares it anyway (see docs/verification.md).
NET_PER_JOB = os.environ.get("SKYBOARD_SANDBOX_NET_PER_JOB", "1") != "0"


class ZygoteError(RuntimeError):
    """A zygote could not start or stopped answering (the caller falls back or retries)."""


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except OSError:
            pass
    return found


def _wait_fd(fd: int, events: int, timeout_s: float) -> bool:
    """poll(), not select(): a busy worker may hold descriptors above FD_SETSIZE."""
    poller = select.poll()
    poller.register(fd, events | select.POLLHUP | select.POLLERR)
    return bool(poller.poll(max(1, int(timeout_s * 1000))))


class _Zygote:
    """One long-lived bwrap sandbox whose runner forks a freshly isolated child per job."""

    def __init__(self, limits: SandboxLimits) -> None:
        self.stderr = tempfile.TemporaryFile()
        self.proc = _spawn(limits, None, zygote=True, stderr=self.stderr)
        self.out_fd = self.proc.stdout.fileno()
        self.in_fd = self.proc.stdin.fileno()
        try:
            line = self._read_until(lambda buf: b"\n" in buf, time.monotonic() + 30.0)
        except TimeoutError:
            line = b"no answer from the zygote in 30 s"
        if not line.startswith(b"READY\n"):
            self.stderr.seek(0)
            err = self.stderr.read().decode("utf-8", "replace").strip()
            self.close()
            raise ZygoteError((line.decode("utf-8", "replace").strip() + " " + err).strip())
        # bwrap, its init and the zygote runner (for the tests' process accounting).
        self.pids = frozenset(_descendants(self.proc.pid))

    def _read_until(self, done, deadline: float, buf: bytes = b"") -> bytes:
        while not done(buf):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            if _wait_fd(self.out_fd, select.POLLIN, remaining):
                chunk = os.read(self.out_fd, 1 << 16)
                if not chunk:
                    return buf
                buf += chunk
        return buf

    def run(self, job_bytes: bytes, secret: bytes, wall: float) -> tuple[dict | None, int]:
        """(runner summary or None if the job's runner wrote none, its exit status).
        Raises TimeoutError past `wall` and ZygoteError if the zygote died."""
        deadline = time.monotonic() + wall
        header = len(job_bytes).to_bytes(8, "big") + len(secret).to_bytes(8, "big")
        data = memoryview(header + job_bytes + secret)
        try:
            while data:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                if _wait_fd(self.in_fd, select.POLLOUT, remaining):
                    data = data[os.write(self.in_fd, data[: 1 << 16]) :]
        except BrokenPipeError:
            raise ZygoteError("zygote exited") from None
        summary, buf = None, b""
        while True:
            buf = self._read_until(lambda b: len(b) >= 9, deadline, buf)
            if len(buf) < 9:
                raise ZygoteError("zygote exited")
            size = int.from_bytes(buf[1:9], "big")
            if buf[:1] == b"Z":
                return summary, size
            if buf[:1] != b"R":
                raise ZygoteError("zygote protocol error")
            need = 9 + size
            buf = self._read_until(lambda b, need=need: len(b) >= need, deadline, buf)
            if len(buf) < need:
                raise ZygoteError("zygote exited")
            summary = json.loads(buf[9 : 9 + size].decode("utf-8", "replace"))
            buf = buf[9 + size :]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        _kill(self.proc)
        _reap(self.proc)
        self.stderr.close()


class _Zygotes:
    """Zygotes for this process, one per concurrently running job (at most `max_idle` kept).

    They are started by one long-lived thread (bwrap's --die-with-parent follows the thread
    that started it); fork children (Celery prefork) start their own. If the first zygote
    cannot start (an older kernel, no unprivileged user namespaces inside bwrap), `broken`
    says why and run_job uses a fresh bwrap sandbox per job instead.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[_Zygote] = []
        self._all: list[_Zygote] = []
        self._pid = os.getpid()
        self._requests: queue.SimpleQueue | None = None
        self.broken: str | None = None
        self.max_idle = 8

    def _check_fork(self) -> None:
        if self._pid != os.getpid():  # a fork child: the parent's zygotes are not ours
            self._idle, self._all, self._requests = [], [], None
            self._pid = os.getpid()

    def _starter(self, requests: queue.SimpleQueue) -> None:
        while True:
            limits, future = requests.get()
            try:
                future.set_result(_Zygote(limits))
            except BaseException as exc:
                future.set_exception(exc)

    def take(self, limits: SandboxLimits) -> _Zygote:
        with self._lock:
            self._check_fork()
            while self._idle:
                zygote = self._idle.pop()
                if zygote.alive():
                    return zygote
                self._forget(zygote)
            if self._requests is None:
                self._requests = queue.SimpleQueue()
                threading.Thread(
                    target=self._starter, args=(self._requests,), daemon=True,
                    name="sandbox-zygotes",
                ).start()  # fmt: skip
            future: Future = Future()
            self._requests.put((limits, future))
        zygote = future.result()
        with self._lock:
            self._all.append(zygote)
        return zygote

    def _forget(self, zygote: _Zygote) -> None:
        if zygote in self._all:
            self._all.remove(zygote)
        zygote.close()

    def give_back(self, zygote: _Zygote) -> None:
        with self._lock:
            if self._pid == os.getpid() and zygote.alive() and len(self._idle) < self.max_idle:
                self._idle.append(zygote)
                return
            self._forget(zygote)

    def discard(self, zygote: _Zygote) -> None:
        with self._lock:
            self._forget(zygote)

    def pids(self) -> set[int]:
        """Host pids of the zygotes' own processes (bwrap, its init, the zygote runner)."""
        with self._lock:
            return {pid for z in self._all if z.alive() for pid in z.pids}

    def close(self) -> None:
        with self._lock:
            if self._pid != os.getpid():  # a fork child must not kill its parent's zygotes
                self._idle, self._all = [], []
                return
            zygotes, self._idle, self._all = self._all, [], []
        for zygote in zygotes:
            zygote.close()


ZYGOTES = _Zygotes()
atexit.register(ZYGOTES.close)


def sandbox_mode() -> str:
    """The sandbox path: "zygote" (default) or "fresh" (a bwrap sandbox per job: set by
    SKYBOARD_SANDBOX_MODE=fresh, or automatically when no zygote can start here)."""
    if os.environ.get("SKYBOARD_SANDBOX_MODE", "zygote") == "fresh" or ZYGOTES.broken:
        return "fresh"
    return "zygote"


def _run_zygote(job_bytes: bytes, secret: bytes, limits: SandboxLimits, wall: float) -> dict | None:
    """The summary of one job run in a zygote; None when no zygote can run it (fall back)."""
    try:
        zygote = ZYGOTES.take(limits)
    except ZygoteError as exc:
        if not ZYGOTES.pids():  # not even one zygote works here: use fresh sandboxes
            ZYGOTES.broken = str(exc) or "zygote failed to start"
            log.warning("sandbox zygote unavailable, using a fresh sandbox per job: %s", exc)
        return None
    try:
        summary, status = zygote.run(job_bytes, secret, wall)
    except TimeoutError:
        ZYGOTES.discard(zygote)  # kills the zygote and with it the job's pid namespace
        return {
            "status": "failed",
            "results": [{"status": "timeout", "ms": wall * 1000}],
            "host_timeout": True,
        }
    except ZygoteError:
        ZYGOTES.discard(zygote)
        return None
    ZYGOTES.give_back(zygote)
    if summary is None:
        return {
            "status": "failed",
            "results": [{"status": "error", "note": "runner died", "rc": status, "stderr": ""}],
        }
    return summary


def run_job(
    job: dict, limits: SandboxLimits, prestart: bool = True, mode: str | None = None
) -> dict:
    """Run one runner job (see _runner.py) in freshly isolated namespaces and return the
    runner's summary.

    `mode` "zygote" (the default, see sandbox_mode) forks the job from a long-lived zygote
    sandbox into fresh user/pid/mount/ipc/uts namespaces; "fresh" starts a whole bwrap sandbox
    for it. A job a zygote cannot take (none starts here, or it died) runs fresh.

    With `prestart`, the job goes to a sandbox started ahead of time (see _Prestarted) and the
    next one is started before this job runs. Outside limits (total wall time, size of the
    runner's report) are enforced here; if they trip, the whole process group and pid
    namespace are killed.
    """
    job = {
        **job,
        "time_limit_s": job.get("time_limit_s") or limits.time_limit_s,
        "memory_bytes": limits.memory_mb * 1024 * 1024,
        "output_bytes": limits.output_bytes,
        "fsize_bytes": limits.fsize_mb * 1024 * 1024,
        "nproc": limits.nproc,
    }
    job["tmpfs_bytes"] = limits.tmpfs_mb * 1024 * 1024
    public, secret, expected = split_job(job)
    job_bytes = json.dumps(public).encode()
    n_cases = max(1, len(job.get("cases") or []))
    wall = min(limits.total_wall_s, n_cases * (job["time_limit_s"] + 0.5) + 5.0)
    start = time.monotonic()
    if (mode or sandbox_mode()) == "zygote":
        summary = _run_zygote(job_bytes, secret, limits, wall)
        if summary is not None:
            summary["sandbox_ms"] = round((time.monotonic() - start) * 1000, 2)
            return _with_expected(summary, expected)
        if mode == "zygote":
            raise SandboxUnavailable(f"sandbox zygote unavailable: {ZYGOTES.broken}")
    proc = PRESTARTED.take(limits) if prestart else None
    if prestart:
        PRESTARTED.refill(limits)  # the next job's sandbox sets up while this one runs
    # Always through stdin (never a file in the sandbox, which model code could read).
    job_input = (
        len(job_bytes).to_bytes(8, "big") + job_bytes + len(secret).to_bytes(8, "big") + secret
    )
    fresh = proc is None
    if fresh:
        proc = _spawn(limits, None)
    try:
        out, err = proc.communicate(input=job_input, timeout=wall)
        if not fresh and not out and proc.returncode != 0:
            # The pre-started sandbox died before taking the job (the runner reports every
            # failure of model code as JSON, so no output means it never ran): run it fresh.
            _reap(proc)
            proc = _spawn(limits, None)
            out, err = proc.communicate(input=job_input, timeout=wall)
    except subprocess.TimeoutExpired:
        _kill(proc)
        proc.communicate()
        return {
            "status": "failed",
            "results": [{"status": "timeout", "ms": wall * 1000}],
            "host_timeout": True,
        }
    finally:
        if proc.poll() is None:
            _kill(proc)
    elapsed = (time.monotonic() - start) * 1000
    try:
        summary = json.loads(out.decode("utf-8", "replace"))
    except ValueError:
        stderr = err.decode("utf-8", "replace")
        if "bwrap:" in stderr and ("namespace" in stderr or "Operation not permitted" in stderr):
            raise SandboxUnavailable(stderr.strip()) from None
        summary = {
            "status": "failed",
            "results": [
                {
                    "status": "error",
                    "stderr": stderr[-2000:],
                    "note": "runner died",
                    "rc": proc.returncode,
                }
            ],
        }
    summary["sandbox_ms"] = round(elapsed, 2)
    return _with_expected(summary, expected)


def split_job(job: dict) -> tuple[dict, bytes, list]:
    """(public part, tests, expected outputs). The public part (code, inputs, limits) is what
    the runner and every process that runs model code may hold. The tests (expected outputs,
    or the assert-style test code) travel separately and go, unread by the runner, to a memfd
    that only the judge / the test harness reads (see _runner.run_job); `expected` stays here
    for the report."""
    public = {k: v for k, v in job.items() if k not in ("cases", "test_code", "entry_point")}
    if job["mode"] == "assert":
        entry = job.get("entry_point")
        spec = {**_prepared(job.get("test_code") or "", entry), "entry_point": entry}
        return public, json.dumps(spec).encode(), []
    cases = job.get("cases") or []
    default = "" if job["mode"] == "stdin" else None
    expected = [case.get("output", default) for case in cases]
    blobs = [json.dumps(value).encode() for value in expected]
    index, offset = [], 0
    for blob in blobs:
        index.append([offset, len(blob)])
        offset += len(blob)
    public["inputs"] = [case.get("input") for case in cases]
    public["secret_index"] = index
    return public, b"".join(blobs), expected


@functools.lru_cache(maxsize=1024)
def _prepared(test_code: str, entry: str | None) -> dict:
    """The assert-style tests as the harness takes them (once per problem: rejection sampling
    verifies many responses to one problem)."""
    return prepare_tests(test_code, entry)


def _with_expected(summary: dict, expected: list) -> dict:
    """Failed stdin/call tests get their expected output in the report (from the host's copy)."""
    for index, result in enumerate(summary.get("results") or []):
        if result.get("status") == "wrong" and index < len(expected):
            result["expected"] = clip(expected[index])
    return summary


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
