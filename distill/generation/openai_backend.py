"""Generation through any OpenAI-compatible chat-completions endpoint.

Design: requests run on an asyncio loop (``openai.AsyncOpenAI``, a semaphore bounding
concurrency) in a private thread that feeds a queue, and ``generate`` yields from that queue.
The thread keeps the network busy while the caller persists each result, works from a Celery
prefork child's main thread, and also works when the caller already has a running event loop.

Retry policy is ours, not the client's (``max_retries=0``), so every attempt is counted and
recorded: 408/409/429/5xx, connection errors and timeouts are retried with exponential backoff
and full jitter, and a ``Retry-After`` header (seconds or HTTP date) is honoured. Other statuses
(400, 401, 404, ...) fail at once. A request that still fails is yielded as an error result with
an empty completion; nothing is raised and nothing else is lost.

Cancel: a backend given a ``cancel`` event (anything with ``is_set()``, e.g. a run's
``threading.Event``) watches it while requests are in flight. Once it is set, every request in
flight or backing off is abandoned at once (its connection closed, so the server can drop it),
nothing more is sent or yielded, and ``generate`` / ``agenerate`` return: a caller blocked on a
15-minute completion is released within ``CANCEL_POLL_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import math
import queue
import random
import threading
import time
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from itertools import islice
from typing import Any

import httpx2  # the transport openai 3.x is built on
import openai

from .base import Backend, GenRequest, GenResult, check_request, validate_requests

log = logging.getLogger(__name__)

RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504, 520, 522, 524, 529}
# How often the event loop looks at the cancel event while requests are in flight.
CANCEL_POLL_S = 0.1


@dataclass
class OpenAIConfig:
    model: str
    base_url: str | None = None  # None: the OpenAI API
    api_key: str = field(default="", repr=False)
    concurrency: int = 256
    timeout_s: float = 600.0
    max_attempts: int = 6
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    retry_after_max_s: float = 300.0  # a server asking for longer is capped, not obeyed blindly
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    # Bucket size in seconds of rate: 60 lets a full minute's budget go at once, like the
    # provider's own window; smaller smooths bursts.
    rate_burst_s: float = 60.0
    extra_body: dict[str, Any] = field(default_factory=dict)
    # "aiohttp" (openai's own aiohttp transport, the `openai[aiohttp]` extra) or "httpx".
    # httpcore's pool scans every connection per request, which caps a 256-connection pool at a
    # few hundred requests/s on one core; aiohttp does not (see docs/generation.md).
    http_transport: str = "aiohttp"
    # Who speaks the protocol: "openai" (the openai SDK's AsyncOpenAI, over http_transport) or
    # "aiohttp" (the same chat-completions request and error semantics, sent with aiohttp
    # directly: about a quarter of the SDK's CPU per request, for high-throughput
    # self-hosted servers; see docs/generation.md).
    client: str = "openai"
    # Event loop of generate()'s private thread: "auto" (uvloop when installed, else asyncio),
    # "uvloop" (required) or "asyncio". agenerate() runs on the caller's loop, whatever it is.
    event_loop: str = "auto"

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> OpenAIConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"unknown openai backend option(s): {unknown}")
        if not config.get("model"):
            raise ValueError("the openai backend needs a 'model'")
        cfg = cls(**config)
        if cfg.concurrency < 1 or cfg.max_attempts < 1:
            raise ValueError("concurrency and max_attempts must be at least 1")
        if cfg.http_transport not in ("aiohttp", "httpx"):
            raise ValueError("http_transport must be 'aiohttp' or 'httpx'")
        if cfg.client not in CLIENTS:
            raise ValueError(f"client must be one of {sorted(CLIENTS)}")
        if cfg.event_loop not in ("auto", "uvloop", "asyncio"):
            raise ValueError("event_loop must be 'auto', 'uvloop' or 'asyncio'")
        if cfg.event_loop == "uvloop" and _uvloop() is None:
            raise ValueError("event_loop='uvloop' but uvloop is not installed")
        return cfg


def _uvloop() -> Any:
    """The uvloop module, or None when it is not installed (it is optional)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop


def new_event_loop(kind: str = "auto") -> asyncio.AbstractEventLoop:
    """A fresh loop: uvloop's for "uvloop" (or "auto" when installed), asyncio's otherwise.

    uvloop's C event loop and transports roughly halve the loop's own share of the CPU a
    request costs (see docs/generation.md).
    """
    uvloop = _uvloop() if kind != "asyncio" else None
    if uvloop is None:
        if kind == "uvloop":
            raise RuntimeError("uvloop is not installed")
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class MalformedResponse(Exception):
    """A 2xx answer whose body is not a chat completion."""


class StatusFailure(Exception):
    """The server answered with an error status (named as the openai SDK names it)."""

    def __init__(self, type_: str, status: int, message: str, headers: Any) -> None:
        super().__init__(message)
        self.type, self.status, self.message, self.headers = type_, status, message, headers


class ConnectionFailure(Exception):
    """No answer: refused, reset or timed out (``APIConnectionError`` / ``APITimeoutError``)."""

    def __init__(self, type_: str, message: str) -> None:
        super().__init__(message)
        self.type, self.message = type_, message


# The openai SDK's exception class per status (openai._client._make_status_error).
_STATUS_TYPES = {400: "BadRequestError", 401: "AuthenticationError",
                 403: "PermissionDeniedError", 404: "NotFoundError", 409: "ConflictError",
                 422: "UnprocessableEntityError", 429: "RateLimitError"}


def status_type(status: int) -> str:
    return _STATUS_TYPES.get(status, "InternalServerError" if status >= 500 else
                             "APIStatusError")


def status_message(status: int, body: bytes) -> str:
    """``Error code: 429 - <error.message>``, as the SDK words it."""
    message = f"Error code: {status}"
    try:
        data = json.loads(body)
    except ValueError:
        return message
    error = data.get("error", data) if isinstance(data, dict) else None
    detail = error.get("message") if isinstance(error, dict) else None
    if isinstance(detail, str) and detail:
        message += f" - {detail}"
    return message


class SDKClient:
    """Requests through ``openai.AsyncOpenAI`` (its aiohttp or httpx transport)."""

    def __init__(self, cfg: OpenAIConfig) -> None:
        limits = httpx2.Limits(max_connections=cfg.concurrency + 8,
                               max_keepalive_connections=cfg.concurrency + 8)
        transport = openai.DefaultAioHttpClient if cfg.http_transport == "aiohttp" \
            else openai.DefaultAsyncHttpxClient
        self.client = openai.AsyncOpenAI(
            api_key=cfg.api_key or "EMPTY", base_url=cfg.base_url, max_retries=0,
            timeout=cfg.timeout_s,
            http_client=transport(limits=limits, timeout=cfg.timeout_s))
        self.version = f"openai {openai.__version__}"

    async def post(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            # client.post is the SDK's documented low-level call: same request, headers and
            # status errors (raised before any parsing) as chat.completions.create, minus the
            # typed-parameter transform (~1 ms of CPU per request). cast_to=httpx2.Response
            # returns the read response as is; one json.loads replaces building the pydantic
            # ChatCompletion.
            resp = await self.client.post("/chat/completions", body=body,
                                          cast_to=httpx2.Response)
        except openai.APIStatusError as e:
            raise StatusFailure(type(e).__name__, e.status_code, e.message,
                                e.response.headers) from e
        except openai.APIConnectionError as e:  # includes APITimeoutError
            # The SDK's own message ("Request timed out.") hides the cause, and the aiohttp
            # transport reports a refused connection as a connect timeout.
            cause = f": {e.__cause__}" if e.__cause__ else ""
            raise ConnectionFailure(type(e).__name__, f"{e}{cause}") from e
        except openai.APIError as e:  # e.g. a body that does not parse
            raise MalformedResponse(f"{type(e).__name__}: {e}") from e
        return completion_body(resp.content, resp.status_code)

    async def close(self) -> None:
        await self.client.close()


class AiohttpClient:
    """The same chat-completions call sent with aiohttp directly, without the SDK's layers.

    Request (``POST {base_url}/chat/completions``, bearer key, JSON body), status errors
    (named and worded as the SDK names and words them), connection errors and timeouts are
    what ``SDKClient`` produces, so retries, results and stored errors do not depend on the
    client. What it saves is the SDK's per-request machinery (options models, URL merging,
    header building, the httpx layer over aiohttp): ~3-4x less CPU per request.
    """

    def __init__(self, cfg: OpenAIConfig) -> None:
        import aiohttp

        self.aiohttp = aiohttp
        base = (cfg.base_url or "https://api.openai.com/v1").rstrip("/")
        self.url = f"{base}/chat/completions"
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "User-Agent": f"skyboard aiohttp/{aiohttp.__version__}",
                   "Authorization": f"Bearer {cfg.api_key or 'EMPTY'}"}
        # The session is created here, inside the running loop that will use it.
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=cfg.concurrency + 8),
            timeout=aiohttp.ClientTimeout(total=cfg.timeout_s), headers=headers,
            raise_for_status=False)
        # HTTPS_PROXY / HTTP_PROXY / NO_PROXY, honoured as the SDK honours them, but looked up
        # once here: aiohttp's trust_env re-reads the environment on every request (~0.7 ms of
        # CPU each, which at concurrency 256 halved the throughput).
        parts = urllib.parse.urlsplit(self.url)
        self.proxy = None if urllib.request.proxy_bypass(parts.hostname or "") else \
            urllib.request.getproxies().get(parts.scheme)
        self.version = f"aiohttp {aiohttp.__version__}"

    async def post(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            async with self.session.post(self.url, data=json.dumps(body).encode(),
                                         proxy=self.proxy) as resp:
                status, content = resp.status, await resp.read()
                headers = resp.headers
        except TimeoutError as e:  # aiohttp's total/read timeouts (asyncio.TimeoutError)
            raise ConnectionFailure("APITimeoutError", f"Request timed out: {e!r}") from e
        except self.aiohttp.ClientError as e:
            raise ConnectionFailure("APIConnectionError", f"Connection error: {e}") from e
        if status >= 400:
            raise StatusFailure(status_type(status), status, status_message(status, content),
                                headers)
        return completion_body(content, status)

    async def close(self) -> None:
        await self.session.close()


CLIENTS = {"openai": SDKClient, "aiohttp": AiohttpClient}


class TokenBucket:
    """Continuous-refill bucket; ``acquire`` may overdraw so an oversize request still runs."""

    def __init__(self, per_minute: float, burst_s: float) -> None:
        if per_minute <= 0:
            raise ValueError("rate limits must be positive")
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * burst_s)
        self.level = self.capacity
        self.stamp = time.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    async def acquire(self, amount: float) -> None:
        # The lock makes waiters queue in order, so a large request is not starved by small ones.
        async with self._lock:
            need = min(amount, self.capacity)
            self._refill()
            while self.level < need:
                await asyncio.sleep((need - self.level) / self.rate)
                self._refill()
            self.level -= amount


def parse_retry_after(headers: httpx2.Headers | Any | None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``Retry-After`` (seconds or HTTP date)."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _estimate_tokens(req: GenRequest) -> int:
    # OpenAI counts a request against TPM when it arrives, as its estimated prompt tokens plus
    # max_tokens, whatever it then really uses; ~4 characters per token.
    chars = sum(len(str(m.get("content") or "")) for m in req.messages)
    return math.ceil(chars / 4) + req.sampling.max_tokens


_END = object()
_CANCELLED = object()


class _Feed:
    """Requests handed from ``generate``'s caller thread to the event loop's workers.

    The caller appends (a deque's append and popleft are thread-safe) and then schedules
    ``wake`` on the loop; workers ``take`` and wait for more only when the deque is empty and
    the caller has not closed it.
    """

    def __init__(self) -> None:
        self.items: deque[GenRequest] = deque()
        self.closed = False
        self._more = asyncio.Event()  # loop-bound on first use, i.e. in the loop's thread

    def wake(self) -> None:
        self._more.set()

    async def take(self) -> GenRequest | None:
        while True:
            if self.items:
                return self.items.popleft()
            if self.closed:
                return None
            self._more.clear()
            await self._more.wait()


class OpenAIBackend(Backend):
    name = "openai"

    def __init__(self, config: dict[str, Any] | OpenAIConfig, *, cancel: Any = None) -> None:
        self.config = config if isinstance(config, OpenAIConfig) else OpenAIConfig.from_dict(
            config)
        # Set by the caller (a run's cancel event): in-flight requests are abandoned at once and
        # generation stops (see the module docstring).
        self.cancel = cancel

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.config.model!r}, base_url={self.config.base_url!r})"

    # -- sync API --------------------------------------------------------------------------
    def generate(self, requests: Iterable[GenRequest]) -> Iterator[GenResult]:
        """Yield a result per request as each completes.

        A list or tuple is validated whole before anything is sent. Any other iterable is
        consumed lazily, in the caller's thread (so it may read a database), kept about
        ``2 x concurrency`` requests ahead of the network, and each request is validated as it
        is taken: a bad one raises ``ValueError`` there, after the results before it. Either
        way ``concurrency`` requests stay in flight until the input runs out, with no pause
        between one part of a long input and the next.
        """
        if isinstance(requests, list | tuple):
            source: Iterator[GenRequest] = iter(validate_requests(requests))
            seen = None
            if not requests:
                return
        else:
            source, seen = iter(requests), set()
        feed = _Feed()
        ahead = 2 * self.config.concurrency
        out: queue.Queue[list[GenResult] | BaseException | None] = queue.Queue()
        stop = threading.Event()
        loop_box: list[asyncio.AbstractEventLoop] = []
        main_box: list[asyncio.Task] = []

        def top_up() -> None:
            """Take requests from ``source`` (in this thread) until ``ahead`` are waiting."""
            if feed.closed:
                return
            want = ahead - len(feed.items)
            if want <= 0:
                return
            taken = list(islice(source, want))
            if seen is not None:
                for r in taken:
                    check_request(r, seen)
            feed.items.extend(taken)
            feed.closed = len(taken) < want
            if loop_box:
                with contextlib.suppress(RuntimeError):  # the loop finished meanwhile
                    loop_box[0].call_soon_threadsafe(feed.wake)

        async def main() -> None:
            main_box.append(asyncio.current_task())
            try:
                # Results cross to the caller's thread a batch at a time (whatever completed
                # since the last hand-over): one wake-up of the caller per batch rather than per
                # result, which at hundreds of results a second kept the two threads trading
                # the interpreter lock and cost ~10 % of throughput at concurrency 256.
                async for batch in self._batches(feed.take):
                    out.put(batch)
                    if stop.is_set():
                        break
            except BaseException as e:  # surface programming errors to the caller
                out.put(e)
            finally:
                out.put(None)

        def run() -> None:
            loop = new_event_loop(self.config.event_loop)
            loop_box.append(loop)
            try:
                loop.run_until_complete(main())
            finally:
                loop.close()

        top_up()  # a bad first request fails here, before the thread or any call
        if not feed.items:
            return
        thread = threading.Thread(target=run, name="openai-backend", daemon=True)
        thread.start()
        try:
            while True:
                item = out.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                top_up()  # before handing results over, so the network is busy meanwhile
                yield from item
        finally:
            # The caller stopped early (or raised): cancel what is in flight, then wait.
            stop.set()
            if thread.is_alive() and loop_box and main_box:
                with contextlib.suppress(RuntimeError):  # the loop finished meanwhile
                    loop_box[0].call_soon_threadsafe(main_box[0].cancel)
            thread.join()

    # -- async API -------------------------------------------------------------------------
    async def agenerate(self, requests: Iterable[GenRequest]) -> AsyncIterator[GenResult]:
        """Async form of ``generate``; a lazy iterable is consumed on the event loop."""
        if isinstance(requests, list | tuple):
            source, seen = iter(validate_requests(requests)), None
        else:
            source, seen = iter(requests), set()

        async def take() -> GenRequest | None:
            req = next(source, None)
            if req is not None and seen is not None:
                check_request(req, seen)
            return req

        async for batch in self._batches(take):
            for result in batch:
                yield result

    async def _batches(self, take: Callable[[], Awaitable[GenRequest | None]]
                       ) -> AsyncIterator[list[GenResult]]:
        """Results in completion order, as lists of whatever has completed meanwhile.

        ``take`` gives the next request, or None when there are no more.
        """
        cfg = self.config
        client = CLIENTS[cfg.client](cfg)
        sem = asyncio.Semaphore(cfg.concurrency)
        rpm = TokenBucket(cfg.requests_per_minute, cfg.rate_burst_s) \
            if cfg.requests_per_minute else None
        tpm = TokenBucket(cfg.tokens_per_minute, cfg.rate_burst_s) \
            if cfg.tokens_per_minute else None
        # Results, an exception raised while taking input, or _END once every worker is done.
        done: asyncio.Queue[GenResult | BaseException | object] = asyncio.Queue()
        # A pool of worker coroutines, each sending one request at a time: no task per
        # request (creating thousands of tasks up front also made the cyclic GC rescan them,
        # ~20 % of the CPU per request at 5,000 requests), and in the common case the
        # semaphore is never contended. A worker that has to back off starts a replacement
        # first (up to twice the concurrency in all), so the slot it leaves is used while it
        # sleeps; the semaphore keeps the requests in flight within the bound.
        window = 2 * cfg.concurrency
        tasks: set[asyncio.Task] = set()
        live = 0

        def spawn() -> None:
            nonlocal live
            if live < window:
                live += 1
                task = asyncio.create_task(worker())
                tasks.add(task)
                task.add_done_callback(tasks.discard)

        async def worker() -> None:
            nonlocal live
            try:
                while (req := await take()) is not None:
                    done.put_nowait(await self._run_one(client, sem, rpm, tpm, req, spawn))
            except Exception as e:  # bad input from a lazy iterable: stop and say so
                done.put_nowait(e)
            finally:
                live -= 1
                if live == 0:
                    done.put_nowait(_END)

        async def watch_cancel() -> None:
            while not self.cancel.is_set():
                await asyncio.sleep(CANCEL_POLL_S)
            done.put_nowait(_CANCELLED)

        if self.cancel is not None and self.cancel.is_set():
            await client.close()
            return
        watcher = asyncio.create_task(watch_cancel()) if self.cancel is not None else None
        for _ in range(cfg.concurrency):
            spawn()
        try:
            finished = False
            while not finished:
                batch = []
                item = await done.get()
                while True:
                    if item is _CANCELLED:
                        # Drop what completed meanwhile too: the caller asked to stop.
                        return
                    if item is _END:
                        finished = True
                    elif isinstance(item, BaseException):
                        raise item
                    else:
                        batch.append(item)
                    if done.empty():
                        break
                    item = done.get_nowait()
                if batch:
                    yield batch
        finally:
            if watcher is not None:
                watcher.cancel()
            for t in list(tasks):
                t.cancel()
            await asyncio.gather(*tasks, *([watcher] if watcher else []),
                                 return_exceptions=True)
            await client.close()

    async def _run_one(self, client: SDKClient | AiohttpClient, sem: asyncio.Semaphore,
                       rpm: TokenBucket | None, tpm: TokenBucket | None,
                       req: GenRequest, on_backoff: Any = None) -> GenResult:
        cfg = self.config
        s = req.sampling
        params: dict[str, Any] = {"model": cfg.model, "messages": req.messages,
                                  "temperature": s.temperature, "top_p": s.top_p,
                                  "max_tokens": s.max_tokens}
        if s.seed is not None:
            params["seed"] = s.seed
        if cfg.extra_body:
            params.update(cfg.extra_body)
        estimate = _estimate_tokens(req) if tpm else 0
        error: dict[str, Any] | None = None
        latency = 0.0
        for attempt in range(1, cfg.max_attempts + 1):
            if rpm:
                await rpm.acquire(1)
            if tpm:
                await tpm.acquire(estimate)
            t0 = time.monotonic()
            retry_after: float | None = None
            try:
                async with sem:
                    t0 = time.monotonic()
                    body = await client.post(params)
                latency = time.monotonic() - t0
                return self._success(req, body, latency, attempt, client.version)
            except StatusFailure as e:
                latency = time.monotonic() - t0
                retryable = e.status in RETRYABLE_STATUS
                retry_after = parse_retry_after(e.headers)
                error = self._error(e.type, e.message, e.status, attempt)
            except ConnectionFailure as e:
                latency = time.monotonic() - t0
                retryable = True
                error = self._error(e.type, e.message, None, attempt)
            except MalformedResponse as e:
                latency = time.monotonic() - t0
                retryable = False
                error = self._error(type(e).__name__, str(e), None, attempt)
            if not retryable or attempt == cfg.max_attempts:
                break
            backoff = random.uniform(0, min(cfg.backoff_max_s,
                                            cfg.backoff_base_s * 2 ** (attempt - 1)))
            delay = min(retry_after, cfg.retry_after_max_s) if retry_after is not None \
                else backoff
            log.info("generation request %s: %s (status %s), retry %d/%d in %.2fs",  # rare path
                     req.key, error["type"], error["status"], attempt, cfg.max_attempts - 1,
                     delay)
            if on_backoff is not None:
                on_backoff()
            await asyncio.sleep(delay)
        assert error is not None
        log.warning("generation request %s failed after %d attempt(s): %s", req.key,
                    error["attempts"], error["type"])
        return GenResult(key=req.key, completion="", finish_reason="error", latency_s=latency,
                         model={"name": cfg.model, "revision": None}, backend=self.name,
                         backend_version=client.version, error=error,
                         attempts=error["attempts"], sample_index=req.sample_index)

    def _error(self, type_: str, message: str, status: int | None,
               attempts: int) -> dict[str, Any]:
        key = self.config.api_key
        # A server may echo what it was sent; a key must never reach stored results.
        if key and len(key) >= 4:
            message = message.replace(key, "***")
        return {"type": type_, "message": message[:2000], "status": status,
                "attempts": attempts}

    def _success(self, req: GenRequest, resp: dict[str, Any], latency: float,
                 attempt: int, version: str) -> GenResult:
        choices = resp.get("choices") or []
        choice = choices[0] if choices else None
        usage = resp.get("usage") or {}
        message = (choice.get("message") or {}) if choice else {}
        finish = (choice.get("finish_reason") if choice else None) or "stop"
        return GenResult(
            key=req.key,
            completion=message.get("content") or "",
            finish_reason=finish,
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            latency_s=latency,
            model={"name": resp.get("model") or self.config.model,
                   "revision": resp.get("system_fingerprint")},
            backend=self.name,
            backend_version=version,
            prompt_text=None,  # the server applies the chat template; we never see it
            attempts=attempt,
            sample_index=req.sample_index,
        )


def completion_body(content: bytes, status: int) -> dict[str, Any]:
    """The chat completion in a 2xx response body, checked for the few fields results use."""
    try:
        data = json.loads(content)
    except ValueError as e:
        raise MalformedResponse(f"response is not JSON (status {status}): "
                                f"{content[:200]!r}") from e
    if not isinstance(data, dict):
        raise MalformedResponse(f"response is not a JSON object: {type(data).__name__}")
    choices = data.get("choices")
    if choices is not None and not (isinstance(choices, list)
                                    and all(isinstance(c, dict) for c in choices)):
        raise MalformedResponse("response 'choices' is not a list of objects")
    choice = choices[0] if choices else {}
    message = choice.get("message")
    if message is not None and not isinstance(message, dict):
        raise MalformedResponse("response choice 'message' is not an object")
    content = (message or {}).get("content")
    if content is not None and not isinstance(content, str):
        raise MalformedResponse("response message 'content' is not a string")
    usage = data.get("usage")
    if usage is not None and not isinstance(usage, dict):
        raise MalformedResponse("response 'usage' is not an object")
    return data
