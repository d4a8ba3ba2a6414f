"""A local server speaking the OpenAI chat-completions protocol, for tests, benches and demos.

It is a real HTTP/1.1 server (asyncio, keep-alive, stdlib only; the CLI uses uvloop if installed) so the ``openai`` client talks to
it exactly as to the real API. Answers are a deterministic function of the request:

* a reformat request (its last user message contains "Content to be converted:") is answered
  with the trace wrapped in thought/solution tags, the solution being the trace's last paragraph,
  so re-verification of a correct trace passes;
* any other request is answered ``"Echo: <last user message>"``.

Completions are cut at ``max_tokens`` (a token here is a whitespace-separated word), and then
``finish_reason`` is ``"length"``.

Faults are scripted per request key (a hash of the messages): ``faults=["429", "500", "slow"]``
makes each distinct request answer 429 on its first attempt, 500 on its second, stall for
``slow_s`` on its third, and succeed on its fourth. A request whose last user message contains
``fail_marker`` always answers 500, and one containing ``slow_marker`` always stalls. The server records counts per status and the peak number of
requests in flight, for assertions.

Run: ``python -m devtools.openai_stub --port 8765 --latency-ms 200 --faults 429,500``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

CONVERT_MARKER = "Content to be converted:"
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests",
            500: "Internal Server Error"}


@dataclass
class StubConfig:
    latency_s: float = 0.0
    faults: list[str] = field(default_factory=list)  # per attempt: "429", "500", "slow"
    retry_after: str | None = "1"  # value of Retry-After on 429s; "date:N" = HTTP date N s ahead
    slow_s: float = 30.0
    fail_marker: str | None = "PERMANENT_FAILURE"
    slow_marker: str | None = "SLOW_ANSWER"  # such requests always stall for slow_s
    model: str = "stub-model"


@dataclass
class StubStats:
    by_status: Counter = field(default_factory=Counter)
    attempts_by_key: Counter = field(default_factory=Counter)
    in_flight: int = 0
    max_in_flight: int = 0
    seen_auth: set = field(default_factory=set)
    request_times: list[float] = field(default_factory=list)  # monotonic arrival times
    # Requests whose client hung up before the answer was ready (a cancelled caller): the
    # stub notices while it waits (latency, "slow") and stops working on them.
    abandoned: int = 0

    @property
    def total(self) -> int:
        return sum(self.by_status.values())


def _words(text: str) -> list[str]:
    return text.split()


def _request_key(messages: list[dict[str, Any]]) -> str:
    blob = json.dumps(messages, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def answer_for(messages: list[dict[str, Any]]) -> str:
    """The deterministic answer the stub gives to ``messages``."""
    last_user = next((m.get("content") or "" for m in reversed(messages)
                      if m.get("role") == "user"), "")
    if CONVERT_MARKER in last_user:
        trace = last_user.split(CONVERT_MARKER, 1)[1].strip()
        paragraphs = [p for p in trace.split("\n\n") if p.strip()]
        solution = paragraphs[-1].strip() if paragraphs else trace
        return (f"<|begin_of_thought|>\n\n{trace}\n\n<|end_of_thought|>\n\n"
                f"<|begin_of_solution|>\n\n{solution}\n\n<|end_of_solution|>")
    return f"Echo: {last_user}"


class StubServer:
    """Run the stub in a background thread: ``with StubServer(latency_s=0.2) as s: s.base_url``."""

    def __init__(self, config: StubConfig | None = None, *, host: str = "127.0.0.1",
                 port: int = 0, **overrides: Any) -> None:
        self.config = config or StubConfig()
        for k, v in overrides.items():
            setattr(self.config, k, v)
        self.host, self.port = host, port
        self.stats = StubStats()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # -- lifecycle -------------------------------------------------------------------------
    async def start_async(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(self._handle, self.host, self.port,
                                                  backlog=4096, limit=2**24)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop_async(self) -> None:
        if self._server is not None:
            self._server.close()
            # Idle keep-alive connections would otherwise hold wait_closed() open forever.
            for w in list(self._writers):
                w.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    def start(self) -> StubServer:
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self.start_async())
            except BaseException as e:  # report bind errors to the starting thread
                errors.append(e)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop_async())
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=run, name="openai-stub", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._thread = None

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- HTTP ------------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                try:
                    status, extra, payload = await self._route(
                        method, path.split("?")[0], headers, body, reader.at_eof)
                except _ClientGone:
                    with self._lock:
                        self.stats.abandoned += 1
                    break
                data = json.dumps(payload).encode()
                out = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
                       "content-type: application/json", f"content-length: {len(data)}",
                       f"x-request-id: req_{self.stats.total}"]
                out += [f"{k}: {v}" for k, v in extra.items()]
                writer.write(("\r\n".join(out) + "\r\n\r\n").encode() + data)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _route(self, method: str, path: str, headers: dict[str, str], body: bytes,
                     gone: Any = None) -> tuple[int, dict[str, str], dict[str, Any]]:
        if method == "GET" and path == "/v1/models":
            return 200, {}, {"object": "list", "data": [
                {"id": self.config.model, "object": "model", "created": 0, "owned_by": "stub"}]}
        if method != "POST" or path != "/v1/chat/completions":
            return self._count(404, {}, _error("not found", "invalid_request_error"))
        try:
            req = json.loads(body)
            messages = req["messages"]
            assert isinstance(messages, list)
        except (ValueError, KeyError, AssertionError, TypeError):
            return self._count(400, {}, _error("invalid JSON body", "invalid_request_error"))
        with self._lock:
            self.stats.in_flight += 1
            self.stats.max_in_flight = max(self.stats.max_in_flight, self.stats.in_flight)
            self.stats.request_times.append(time.monotonic())
            if "authorization" in headers:
                self.stats.seen_auth.add(headers["authorization"])
        try:
            return await self._complete(req, messages, gone)
        finally:
            with self._lock:
                self.stats.in_flight -= 1

    def _count(self, status: int, extra: dict[str, str],
               payload: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        with self._lock:
            self.stats.by_status[status] += 1
        return status, extra, payload

    async def _complete(self, req: dict[str, Any], messages: list[dict[str, Any]],
                        gone: Any = None) -> tuple[int, dict[str, str], dict[str, Any]]:
        cfg = self.config
        key = _request_key(messages)
        with self._lock:
            self.stats.attempts_by_key[key] += 1
            attempt = self.stats.attempts_by_key[key]
        fault = cfg.faults[attempt - 1] if attempt <= len(cfg.faults) else None
        last_user = next((m.get("content") or "" for m in reversed(messages)
                          if m.get("role") == "user"), "")
        if cfg.latency_s:
            await _wait(cfg.latency_s, gone)
        if cfg.fail_marker and cfg.fail_marker in last_user:
            fault = "500"
        if fault == "429":
            extra = {}
            if cfg.retry_after:
                if cfg.retry_after.startswith("date:"):
                    ahead = float(cfg.retry_after[5:])
                    extra["retry-after"] = formatdate(time.time() + ahead, usegmt=True)
                else:
                    extra["retry-after"] = cfg.retry_after
            return self._count(429, extra, _error("Rate limit reached", "rate_limit_exceeded"))
        if fault == "500":
            return self._count(500, {}, _error("The server had an error", "server_error"))
        if cfg.slow_marker and cfg.slow_marker in last_user:
            fault = "slow"
        if fault == "slow":
            await _wait(cfg.slow_s, gone)

        words = _words(answer_for(messages))
        max_tokens = req.get("max_completion_tokens") or req.get("max_tokens")
        finish = "stop"
        if isinstance(max_tokens, int) and len(words) > max_tokens:
            words, finish = words[:max_tokens], "length"
        # Keep the original spacing when nothing was cut, so tags and paragraphs survive.
        content = answer_for(messages) if finish == "stop" else " ".join(words)
        prompt_tokens = sum(len(_words(str(m.get("content") or ""))) for m in messages)
        n = int(req.get("n") or 1)
        payload = {
            "id": f"chatcmpl-{key}{attempt}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": req.get("model") or cfg.model,
            "system_fingerprint": "fp_stub",
            "choices": [{"index": i, "message": {"role": "assistant", "content": content},
                         "logprobs": None, "finish_reason": finish} for i in range(n)],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(words) * n,
                      "total_tokens": prompt_tokens + len(words) * n},
        }
        return self._count(200, {}, payload)


class _ClientGone(Exception):
    """The client closed the connection while its request was being answered."""


async def _wait(seconds: float, gone: Any = None) -> None:
    """Sleep like a slow model, giving up (``_ClientGone``) once the client hangs up, as a real
    server drops a request whose connection closed."""
    if gone is None or seconds <= 0.25:
        await asyncio.sleep(seconds)
        return
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if gone():
            raise _ClientGone()
        await asyncio.sleep(min(0.25, left))


def _error(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": code, "param": None, "code": code}}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--faults", default="", help="comma list per attempt: 429,500,slow")
    p.add_argument("--retry-after", default="1", help='seconds, or "date:N" for an HTTP date')
    p.add_argument("--slow-s", type=float, default=30.0)
    p.add_argument("--model", default="stub-model")
    p.add_argument("--event-loop", choices=["auto", "uvloop", "asyncio"], default="auto",
                   help="auto: uvloop when installed")
    a = p.parse_args(argv)
    faults = [f for f in a.faults.split(",") if f]
    bad = [f for f in faults if f not in ("429", "500", "slow")]
    if bad:
        p.error(f"unknown fault(s) {bad}; use 429, 500 or slow")
    cfg = StubConfig(latency_s=a.latency_ms / 1000, faults=faults, retry_after=a.retry_after,
                     slow_s=a.slow_s, model=a.model)
    server = StubServer(cfg, host=a.host, port=a.port)

    async def serve() -> None:
        await server.start_async()
        print(f"openai stub listening on {server.base_url}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop_async()

    with contextlib.suppress(KeyboardInterrupt):
        if a.event_loop == "asyncio":
            asyncio.run(serve())
        else:  # uvloop halves the stub's CPU per request; it is optional
            try:
                import uvloop
            except ImportError:
                if a.event_loop == "uvloop":
                    p.error("uvloop is not installed")
                asyncio.run(serve())
            else:
                uvloop.run(serve())


if __name__ == "__main__":
    main()
