"""Test runner that executes *inside* the sandbox (stdlib only, no skyboard imports).

The host copies this file and a job description into the sandbox. This process never runs model
code itself: for every test case it forks a child that applies the per-test limits, redirects its
standard streams to pipes and only then executes the model's code. The runner compares results,
kills every other process in the sandbox's pid namespace after each test (so daemons and fork
bombs cannot outlive a test), and prints one JSON summary on its own stdout, which model code
cannot reach because children replace or close all inherited descriptors.

Run as `runner.py --zygote`, it is instead a long-lived zygote that isolates and runs one job
after another (see zygote_main).

The comparison helpers are also imported by the host-side tests.
"""

from __future__ import annotations

import json
import math
import os
import resource
import select
import signal
import sys
import time
import traceback

CLIP = 300  # characters of expected/got kept in a report

# Exception texts that mean the code tried something the sandbox forbids.
VIOLATION_MARKERS = (
    "Network is unreachable",
    "Read-only file system",
    "Operation not permitted",
    "Permission denied",
    "Resource temporarily unavailable",  # fork/clone refused by the process limit
    "Temporary failure in name resolution",
    "Name or service not known",
    "Address family not supported",
)


def clip(value: object, limit: int = CLIP) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + f"...[{len(text) - limit} more chars]"


# ---------------------------------------------------------------------------------------------
# Output comparison (APPs/TACO/LiveCodeBench conventions: whitespace tolerant, float tolerant).


def _tokens_equal(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        fa, fb = float(a), float(b)
    except ValueError:
        return False
    if math.isnan(fa) or math.isnan(fb):
        return False
    return math.isclose(fa, fb, rel_tol=1e-6, abs_tol=1e-6)


def stdout_matches(got: str, expected: str) -> bool:
    """Whitespace-tolerant comparison: trailing spaces and blank lines do not matter, and
    tokens compare as floats with a small tolerance when both sides are numbers."""
    if got == expected:
        return True
    g_lines = [ln.strip() for ln in got.strip().splitlines()]
    e_lines = [ln.strip() for ln in expected.strip().splitlines()]
    if g_lines == e_lines:
        return True
    g_tok, e_tok = got.split(), expected.split()
    if len(g_tok) != len(e_tok) or len(g_lines) != len(e_lines):
        # Some datasets put the whole answer on one line where solutions print one per line.
        if len(g_tok) != len(e_tok):
            return False
    return all(_tokens_equal(x, y) for x, y in zip(g_tok, e_tok, strict=True))


def _canon(value: object) -> object:
    """Tuples become lists (JSON has no tuples), so `(1, 2)` equals an expected `[1, 2]`."""
    if isinstance(value, (list, tuple)):
        return [_canon(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _canon(v) for k, v in value.items()}
    return value


def values_equal(got: object, expected: object) -> bool:
    got, expected = _canon(got), _canon(expected)
    if got == expected:
        return True
    if isinstance(got, bool) or isinstance(expected, bool):
        return False
    if isinstance(got, (int, float)) and isinstance(expected, (int, float)):
        return math.isclose(got, expected, rel_tol=1e-6, abs_tol=1e-9)
    if isinstance(got, list) and isinstance(expected, list) and len(got) == len(expected):
        return all(values_equal(g, e) for g, e in zip(got, expected, strict=True))
    return False


def call_output_matches(got: object, expected: object) -> bool:
    # APPs/TACO store call outputs wrapped in a one-element list; accept both forms.
    if values_equal(got, expected):
        return True
    return isinstance(expected, list) and len(expected) == 1 and values_equal(got, expected[0])


# ---------------------------------------------------------------------------------------------
# Child side: runs model code. Never returns.


def _limit(res: int, value: int) -> None:
    try:
        resource.setrlimit(res, (value, value))
    except (ValueError, OSError):
        pass


def _child(job: dict, case: dict | None, fds: dict[str, int]) -> None:
    code = 1
    try:
        os.dup2(fds["stdin"], 0)
        os.dup2(fds["out"], 1)
        os.dup2(fds["err"], 2)
        res_fd = os.dup(fds["res"]) if job["mode"] == "call" else -1
        if res_fd >= 0:
            os.closerange(3, res_fd)
            os.closerange(res_fd + 1, 1 << 16)
        else:
            os.closerange(3, 1 << 16)
        cpu = int(math.ceil(job["time_limit_s"])) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        _limit(resource.RLIMIT_AS, job["memory_bytes"])
        _limit(resource.RLIMIT_FSIZE, job["fsize_bytes"])
        _limit(resource.RLIMIT_CORE, 0)
        sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
        namespace: dict = {"__name__": "__main__", "__builtins__": __builtins__}
        if job["mode"] == "stdin":
            exec(compile(job["code"], "<solution>", "exec"), namespace)
        elif job["mode"] == "assert":
            exec(compile(job["code"], "<solution>", "exec"), namespace)
            exec(compile(job["test_code"], "<tests>", "exec"), namespace)
            if job.get("entry_point"):
                namespace["check"](namespace[job["entry_point"]])
        else:
            namespace["__name__"] = "solution"
            exec(compile(job["code"], "<solution>", "exec"), namespace)
            fn = _find_function(namespace, job["fn_name"])
            args = case["input"] if isinstance(case["input"], list) else [case["input"]]
            result = fn(*args)
            try:
                payload = json.dumps({"value": _canon(result)})
            except (TypeError, ValueError):
                payload = json.dumps({"repr": repr(result)})
            data = payload.encode()
            while data:
                data = data[os.write(res_fd, data) :]
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # report every failure of model code, including KeyboardInterrupt
        try:
            traceback.print_exc()
        except BaseException:
            pass
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass
    os._exit(code)


def _find_function(namespace: dict, name: str):
    if name in namespace and callable(namespace[name]):
        return namespace[name]
    # LeetCode style: `class Solution: def name(self, ...)`.
    cls = namespace.get("Solution")
    if cls is not None and hasattr(cls, name):
        return getattr(cls(), name)
    raise NameError(f"function {name!r} not defined by the solution")


# ---------------------------------------------------------------------------------------------
# Runner side.


def _run_one(job: dict, case: dict | None) -> dict:
    stdin_fd = os.memfd_create("stdin")
    if case is not None and job["mode"] == "stdin":
        data = str(case.get("input", "")).encode()
        while data:
            data = data[os.write(stdin_fd, data) :]
        os.lseek(stdin_fd, 0, os.SEEK_SET)
    pipes = {name: os.pipe() for name in ("out", "err", "res")}
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _child(job, case, {"stdin": stdin_fd, **{k: w for k, (_, w) in pipes.items()}})
    os.close(stdin_fd)
    for _, w in pipes.values():
        os.close(w)
    readers = {r: name for name, (r, _) in pipes.items()}
    bufs = {name: bytearray() for name in pipes}
    caps = {"out": job["output_bytes"], "err": 64 * 1024, "res": job["output_bytes"]}
    pidfd = os.pidfd_open(pid)
    deadline = start + job["time_limit_s"]
    status = None
    exited = False
    while not exited:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            status = "timeout"
            break
        ready, _, _ = select.select([*readers, pidfd], [], [], remaining)
        for fd in ready:
            if fd == pidfd:
                exited = True
                continue
            chunk = os.read(fd, 65536)
            name = readers[fd]
            if not chunk:
                del readers[fd]
                os.close(fd)
                continue
            if name == "err":
                bufs[name] += chunk
                del bufs[name][: max(0, len(bufs[name]) - caps["err"])]
            else:
                bufs[name] += chunk
                if len(bufs[name]) > caps[name]:
                    status = "output_limit"
        if status:
            break
    if exited:
        # Drain what the child wrote just before it exited (descendants may keep pipes open,
        # so read only what is already there).
        for fd in list(readers):
            os.set_blocking(fd, False)
            try:
                while len(bufs[readers[fd]]) <= caps[readers[fd]]:
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        break
                    bufs[readers[fd]] += chunk
            except BlockingIOError:
                pass
            if readers[fd] != "err" and len(bufs[readers[fd]]) > caps[readers[fd]]:
                status = "output_limit"
    # Kill the child and anything it spawned (daemons, fork bombs) before the next test.
    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _, wstatus = os.waitpid(pid, 0)
    if os.getpid() == 1:
        # Zygote mode: this runner is the pid namespace's init, so orphans (daemons) are
        # re-parented here; reap them, or their zombies would count against RLIMIT_NPROC.
        _reap_all()
    os.close(pidfd)
    for fd in readers:
        os.close(fd)
    ms = (time.monotonic() - start) * 1000
    err = bufs["err"].decode("utf-8", "replace")
    out = {"ms": round(ms, 2), "stderr": err[-2000:]}
    if status:
        return {**out, "status": status}
    if os.WIFSIGNALED(wstatus):
        sig = os.WTERMSIG(wstatus)
        out["signal"] = sig
        if sig == signal.SIGXCPU:
            return {**out, "status": "timeout"}
        return {**out, "status": "memory" if "MemoryError" in err else "error"}
    exit_code = os.WEXITSTATUS(wstatus)
    last = err.strip().splitlines()[-1] if err.strip() else ""
    if exit_code != 0:
        if "MemoryError" in last:
            return {**out, "status": "memory"}
        # Fork bombs interleave many children's tracebacks: look at the last few lines.
        tail = "\n".join(err.strip().splitlines()[-6:])
        if any(m in tail for m in VIOLATION_MARKERS) or "BlockingIOError" in tail:
            return {**out, "status": "violation"}
        if job["mode"] == "assert" and last.startswith("AssertionError"):
            return {**out, "status": "wrong", "failed_test": _failed_assert(err, job)}
        return {**out, "status": "error", "exit_code": exit_code}
    if job["mode"] == "assert":
        return {**out, "status": "passed"}
    if job["mode"] == "stdin":
        got = bufs["out"].decode("utf-8", "replace")
        expected = str(case.get("output", ""))
        ok = stdout_matches(got, expected)
        return {
            **out,
            "status": "passed" if ok else "wrong",
            "got": clip(got),
            "expected": clip(expected),
        }
    try:
        payload = json.loads(bufs["res"].decode("utf-8", "replace"))
    except ValueError:
        return {
            **out,
            "status": "error",
            "exit_code": exit_code,
            "note": "no return value reported",
        }
    got = payload.get("value", payload.get("repr"))
    ok = "value" in payload and call_output_matches(got, case.get("output"))
    return {
        **out,
        "status": "passed" if ok else "wrong",
        "got": clip(got),
        "expected": clip(case.get("output")),
    }


def _failed_assert(err: str, job: dict) -> str:
    """The source line of the assert that failed, read from the traceback's <tests> frame."""
    lines = job.get("test_code", "").splitlines()
    found = ""
    for line in err.splitlines():
        line = line.strip()
        if line.startswith('File "<tests>", line '):
            try:
                num = int(line.split("line ")[1].split(",")[0])
                found = lines[num - 1].strip()
            except (ValueError, IndexError):
                pass
    return clip(found)


def run_job(job: dict) -> dict:
    try:
        compile(job["code"], "<solution>", "exec")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        return {"status": "compile_error", "error": clip(f"{type(exc).__name__}: {exc}", 1000)}
    _limit(resource.RLIMIT_NPROC, job["nproc"])
    cases = job["cases"] if job["mode"] != "assert" else [None]
    results = []
    for case in cases:
        result = _run_one(job, case)
        results.append(result)
        if result["status"] != "passed" and job.get("stop_on_first_failure", True):
            break
    passed = all(r["status"] == "passed" for r in results) and len(results) == len(cases)
    return {"status": "passed" if passed else "failed", "results": results, "total": len(cases)}


def _reap_all() -> None:
    while True:
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


# ---------------------------------------------------------------------------------------------
# Zygote mode: one long-lived runner per worker slot inside one bwrap sandbox (uid 1000, no
# capabilities, no network, read-only /usr, no /work). For each job it forks a child that
# enters a *fresh* user, pid, mount, ipc and uts namespace (a new user namespace needs no
# privilege, and it owns the others), whose own child is pid 1 of the new pid namespace: it
# mounts a fresh /proc, a fresh size-capped /tmp and /dev/shm, forbids further user
# namespaces, drops every capability, and only then runs the job as above. When it
# exits the kernel kills everything left in its pid namespace. The zygote itself never reads a
# job or a result (its child does), so no earlier job's data is in the memory a job inherits.

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 4, 24, 38, 47
PR_CAP_AMBIENT_CLEAR_ALL = 4


def _read_exact(fd: int, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, min(n - len(buf), 1 << 20))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class _Sys:
    """The few syscalls the zygote needs that Python 3.11's os lacks (trusted code only: model
    code runs after they are done)."""

    def __init__(self) -> None:
        import ctypes

        self.ctypes = ctypes
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fresh_net = False

    def check(self, ret: int, what: str) -> None:
        if ret != 0:
            err = self.ctypes.get_errno()
            raise OSError(err, f"{what}: {os.strerror(err)}")

    def prctl(self, *args: int) -> int:
        return self.libc.prctl(*[self.ctypes.c_ulong(a) for a in args])

    def mount(self, src: str | None, target: str, fstype: str | None, flags: int,
              data: str | None = None) -> None:  # fmt: skip
        enc = lambda v: None if v is None else v.encode()  # noqa: E731
        ret = self.libc.mount(enc(src), enc(target), enc(fstype), self.ctypes.c_ulong(flags),
                              enc(data))  # fmt: skip
        self.check(ret, f"mount {target}")

    def enter_namespaces(self, net: bool) -> None:
        uid, gid = os.getuid(), os.getgid()
        # Our own /proc/self/*_map are only writable while dumpable; nothing can reach this
        # process meanwhile (model code never sees the zygote's pid namespace).
        self.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
        flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS
        self.check(self.libc.unshare(flags | (CLONE_NEWNET if net else 0)), "unshare")
        self.fresh_net = net
        for name, text in (("uid_map", f"{uid} {uid} 1"), ("setgroups", "deny"),
                           ("gid_map", f"{gid} {gid} 1")):  # fmt: skip
            fd = os.open(f"/proc/self/{name}", os.O_WRONLY)
            try:
                os.write(fd, text.encode())
            finally:
                os.close(fd)
        self.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)

    @staticmethod
    def loopback_up() -> None:
        """In a fresh network namespace: bring `lo` up (no other interface exists), as bwrap
        does, so code that talks to itself over 127.0.0.1 behaves as in a fresh sandbox."""
        import fcntl
        import socket
        import struct

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            flags = 0x1 | 0x8 | 0x40  # IFF_UP | IFF_LOOPBACK | IFF_RUNNING
            fcntl.ioctl(sock, 0x8914, struct.pack("16sh14x", b"lo", flags))  # SIOCSIFFLAGS

    def isolate_init(self, tmpfs_bytes: int) -> None:
        """In pid 1 of the fresh namespaces, before any job data is parsed."""
        self.mount(None, "/", None, MS_REC | MS_PRIVATE)
        self.mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        with open("/proc/sys/user/max_user_namespaces", "w") as fh:
            fh.write("0")  # no nested user namespaces (what bwrap's --disable-userns does)
        for path in ("/proc/sys", "/proc/sysrq-trigger"):
            if not os.path.exists(path):
                continue
            self.mount(path, path, None, MS_BIND | MS_REC)
            self.mount(None, path, None,
                       MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)  # fmt: skip
        opts = f"size={tmpfs_bytes},mode=1777"
        self.mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, opts)
        self.mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts)
        os.chdir("/tmp")
        if self.fresh_net:
            self.loopback_up()

    def drop_privileges(self) -> None:
        """No capabilities left (bounding, ambient, effective, permitted, inheritable), no new
        privileges on exec, not dumpable. The uid stays the unprivileged sandbox uid."""
        self.check(self.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "ambient")
        with open("/proc/sys/kernel/cap_last_cap") as fh:
            last = int(fh.read())
        for cap in range(last + 1):
            self.check(self.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), "capbset")
        header = (self.ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
        data = (self.ctypes.c_uint32 * 6)()
        self.check(self.libc.capset(header, data), "capset")
        self.check(self.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        self.check(self.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "dumpable")
        uid, gid = os.getuid(), os.getgid()
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)


def _frame(kind: bytes, payload: bytes) -> bytes:
    return kind + len(payload).to_bytes(8, "big") + payload


def _job_child(sysc: _Sys, size: int, net: bool) -> None:
    """Forked by the zygote for one job (size bytes of JSON waiting on fd 0). Never returns."""
    code = 1
    try:
        body = _read_exact(0, size) if size else b""
        sysc.enter_namespaces(net)
        pid = os.fork()
        if pid == 0:
            _job_init(sysc, body)
        body = b""
        _, wstatus = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(wstatus)
    except BaseException:
        try:
            summary = {"status": "failed", "results": [{"status": "error",
                       "note": "zygote could not isolate the job",
                       "stderr": traceback.format_exc()[-2000:]}]}  # fmt: skip
            _write_all(1 if size else 2, _frame(b"R", json.dumps(summary).encode()))
        except BaseException:
            pass
    os._exit(max(0, min(code, 255)))


def _job_init(sysc: _Sys, body: bytes) -> None:
    """pid 1 of the job's fresh namespaces. Never returns."""
    if not body:  # the zygote's self-test
        try:
            sysc.isolate_init(1024 * 1024)
            sysc.drop_privileges()
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    try:
        job = json.loads(body.decode("utf-8"))
        del body
        sysc.isolate_init(int(job.get("tmpfs_bytes") or 64 * 1024 * 1024))
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)  # the zygote's job stream: later jobs must not be readable
        os.closerange(3, 1 << 16)
        sysc.drop_privileges()
        summary = run_job(job)
    except BaseException:
        summary = {"status": "failed", "results": [{"status": "error",
                   "note": "runner failed", "stderr": traceback.format_exc()[-2000:]}]}  # fmt: skip
    try:
        _write_all(1, _frame(b"R", json.dumps(summary).encode()))
    finally:
        os._exit(0)


def zygote_main(net: bool) -> None:
    """Protocol on fds 0/1: the host writes an 8-byte big-endian length and that many bytes of
    job JSON; the job's runner writes b"R" + length + summary JSON, then the zygote writes
    b"Z" + 8-byte wait status of the job's child. b"READY\n" (or b"FAIL ...") at start."""
    import fcntl  # noqa: F401 (imported once here rather than in every job: loopback_up)
    import socket  # noqa: F401
    import struct  # noqa: F401

    sysc = _Sys()
    sysc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    pid = os.fork()  # self-test: the whole isolation path once, with no job
    if pid == 0:
        _job_child(sysc, 0, net)
    _, wstatus = os.waitpid(pid, 0)
    if wstatus != 0:
        _write_all(1, b"FAIL isolation self-test exited with status %d\n" % wstatus)
        os._exit(1)
    _write_all(1, b"READY\n")
    while True:
        header = _read_exact(0, 8)
        if len(header) < 8:
            os._exit(0)
        pid = os.fork()
        if pid == 0:
            _job_child(sysc, int.from_bytes(header, "big"), net)
        _, wstatus = os.waitpid(pid, 0)
        _write_all(1, b"Z" + wstatus.to_bytes(8, "big"))


def main() -> None:
    if sys.argv[1] == "--zygote":
        zygote_main(net=len(sys.argv) < 3 or sys.argv[2] != "shared-net")
        return
    try:
        import ctypes

        # Not dumpable: model code running as the same uid cannot ptrace this process or read
        # its memory (and with it the expected outputs) through /proc.
        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except Exception:
        pass
    if sys.argv[1] == "-":
        # Pre-started sandbox: wait here, namespaces already set up, until the host sends the
        # one job this sandbox will ever run (then stdin is closed by the host).
        job = json.loads(sys.stdin.buffer.read().decode("utf-8"))
        os.close(0)
    else:
        with open(sys.argv[1], encoding="utf-8") as fh:
            job = json.load(fh)
    summary = run_job(job)
    sys.stdout.write(json.dumps(summary))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
