"""The OpenAI-compatible backend against a real local HTTP server speaking the protocol."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from devtools.openai_stub import StubServer
from distill.generation.base import GenRequest, Sampling, get_backend
from distill.generation.openai_backend import OpenAIBackend
from distill.generation.prompts import CONVERT_PROMPT, CONVERT_PROMPT_EXAMPLE
from distill.generation.reformat import build_convert_messages, parse_reformatted

SECRET = "sk-test-very-secret-key-0123456789"


def reqs(n: int, tag: str = "q", max_tokens: int = 32) -> list[GenRequest]:
    return [GenRequest(key=f"{tag}:{i}", messages=[{"role": "user", "content": f"{tag} {i}"}],
                       sampling=Sampling(max_tokens=max_tokens)) for i in range(n)]


@pytest.fixture(params=["openai", "aiohttp"])
def client(request) -> str:
    """Every behaviour below must hold for both clients: the openai SDK and direct aiohttp."""
    return request.param


def backend(stub: StubServer, client: str, **over) -> OpenAIBackend:
    cfg = {"model": "gpt-4o-mini", "base_url": stub.base_url, "api_key": SECRET,
           "backoff_base_s": 0.01, "backoff_max_s": 0.05, "timeout_s": 5, "client": client}
    cfg.update(over)
    return get_backend("openai", cfg)


def test_completions_carry_text_usage_and_identity(client):
    with StubServer() as stub:
        results = {r.key: r for r in backend(stub, client).generate(reqs(3) + [
            GenRequest("long", [{"role": "user", "content": "one two three four"}],
                       Sampling(max_tokens=2))])}
    assert results["q:1"].completion == "Echo: q 1"
    assert results["q:1"].finish_reason == "stop"
    assert results["q:1"].prompt_tokens == 2 and results["q:1"].completion_tokens == 3
    assert results["q:1"].model == {"name": "gpt-4o-mini", "revision": "fp_stub"}
    assert results["q:1"].backend == "openai" and results["q:1"].backend_version
    assert results["q:1"].error is None and results["q:1"].attempts == 1
    assert results["long"].finish_reason == "length" and results["long"].completion_tokens == 2


@pytest.mark.parametrize("retry_after", ["1", "date:2"])
def test_rate_limit_waits_for_retry_after(retry_after, client):
    # Backoff alone would retry within 50 ms; only honouring Retry-After makes it wait ~1 s.
    with StubServer(faults=["429"], retry_after=retry_after) as stub:
        results = list(backend(stub, client).generate(reqs(3)))
        times = stub.stats.request_times
    assert all(r.ok and r.attempts == 2 and r.completion.startswith("Echo") for r in results)
    assert stub.stats.by_status == {429: 3, 200: 3}
    first_wave, retries = sorted(times)[:3], sorted(times)[3:]
    assert min(retries) - max(first_wave) >= 0.9


def test_server_errors_and_timeouts_are_retried_until_success(client):
    with StubServer(faults=["500", "slow"], slow_s=10) as stub:
        t0 = time.monotonic()
        results = list(backend(stub, client, timeout_s=0.5).generate(reqs(2)))
        elapsed = time.monotonic() - t0
    assert [r.attempts for r in results] == [3, 3]
    assert all(r.ok and r.completion.startswith("Echo: q") for r in results)
    assert stub.stats.by_status[500] == 2
    assert elapsed < 5  # the slow answer was abandoned at the 0.5 s timeout, not awaited


def test_permanent_failure_is_an_error_after_bounded_attempts_and_loses_nothing(client):
    doomed = GenRequest("doomed", [{"role": "user", "content": "PERMANENT_FAILURE please"}])
    with StubServer() as stub:
        results = {r.key: r for r in backend(stub, client, max_attempts=3).generate(reqs(4) + [doomed])}
    bad = results.pop("doomed")
    assert bad.finish_reason == "error" and bad.completion == ""
    assert bad.error["status"] == 500 and bad.error["attempts"] == 3 == bad.attempts
    assert bad.error["type"] == "InternalServerError"
    assert stub.stats.by_status[500] == 3
    assert sorted(results) == [f"q:{i}" for i in range(4)] and all(r.ok for r in results.values())


def test_client_errors_are_not_retried(client):
    with StubServer() as stub:
        b = get_backend("openai", {"model": "m", "base_url": stub.base_url + "/nowhere",
                                   "api_key": SECRET, "client": client})
        [res] = list(b.generate(reqs(1)))
    assert res.error["status"] == 404 and res.attempts == 1 and res.completion == ""


def test_unreachable_endpoint_is_an_error_not_an_exception(client):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        b = get_backend("openai", {"model": "m", "base_url": f"http://127.0.0.1:{port}/v1",
                                   "api_key": SECRET, "max_attempts": 2, "client": client,
                                   "backoff_base_s": 0.01})
        [res] = list(b.generate(reqs(1)))
    # Transports disagree on the class (aiohttp reports a connect timeout), so the
    # message carries the cause.
    assert res.finish_reason == "error" and res.completion == ""
    assert res.error["type"] in ("APIConnectionError", "APITimeoutError")
    assert "connect" in res.error["message"].lower()
    assert res.error["status"] is None and res.attempts == 2


def test_concurrency_is_bounded(client):
    with StubServer(latency_s=0.1) as stub:
        results = list(backend(stub, client, concurrency=5).generate(reqs(30)))
    assert len(results) == 30 and all(r.ok for r in results)
    assert stub.stats.max_in_flight == 5


def test_tokens_per_minute_limit_spreads_a_burst(client):
    # Each request counts as 1 prompt token (estimate) + 20 max_tokens = 21 tokens; at
    # 12,600 TPM with a 0.1 s bucket, one request fits at a time, one every 0.1 s.
    with StubServer() as stub:
        b = backend(stub, client, tokens_per_minute=12_600, rate_burst_s=0.1)
        results = list(b.generate(reqs(10, max_tokens=20)))
        times = sorted(stub.stats.request_times)
    assert all(r.ok for r in results)
    assert times[-1] - times[0] >= 0.8
    with StubServer() as stub:  # the same burst without the limit arrives at once
        list(backend(stub, client).generate(reqs(10, max_tokens=20)))
        times = sorted(stub.stats.request_times)
    assert times[-1] - times[0] < 0.5


def test_api_key_never_appears_in_results_logs_or_repr(caplog, client):
    caplog.set_level(logging.DEBUG)  # every logger, including openai's and the transport's
    doomed = GenRequest("doomed", [{"role": "user", "content": "PERMANENT_FAILURE"}])
    with StubServer(faults=["429", "500"], retry_after="0") as stub:
        b = backend(stub, client, max_attempts=2)
        results = list(b.generate(reqs(2) + [doomed]))
    assert stub.stats.seen_auth == {f"Bearer {SECRET}"}  # the key really was used
    assert any(not r.ok for r in results)
    dumped = json.dumps([r.to_dict() for r in results])
    assert "PERMANENT_FAILURE" not in dumped  # sanity: results hold no request body either
    for text in (dumped, caplog.text, repr(b), repr(b.config), str(b.config)):
        assert SECRET not in text
    assert "retry" in caplog.text  # logging did happen, so the check above means something


def test_stopping_early_cancels_in_flight_requests(client):
    with StubServer(slow_s=30) as stub:
        gen = backend(stub, client, timeout_s=60).generate(
            [GenRequest("stuck", [{"role": "user", "content": "SLOW_ANSWER"}])] + reqs(1))
        first = next(gen)
        assert first.key == "q:0" and first.ok
        # On a loaded machine "q:0" can come back before "stuck" has even reached the server.
        deadline = time.monotonic() + 10
        while stub.stats.in_flight < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert stub.stats.in_flight == 1  # "stuck" really is in flight now
        t0 = time.monotonic()
        gen.close()  # e.g. the Celery task was revoked while "stuck" is still in flight
        assert time.monotonic() - t0 < 5  # not the 30 s "stuck" would take
    assert not [t for t in threading.enumerate() if t.name == "openai-backend"]


def test_reformat_through_the_api_yields_well_formed_sections(client):
    trace = "Let me add.\n\n2 + 3 is 5 {not a format field}.\n\nThe answer is $\\boxed{5}$."
    messages = build_convert_messages(CONVERT_PROMPT, CONVERT_PROMPT_EXAMPLE, trace)
    with StubServer() as stub:
        [res] = list(backend(stub, client).generate(
            [GenRequest("p1:0", messages, Sampling(temperature=0.7, max_tokens=16384))]))
    parsed = parse_reformatted(res.completion)
    assert parsed["well_formed"]
    assert "2 + 3 is 5 {not a format field}" in parsed["thought"]
    assert parsed["solution"] == "The answer is $\\boxed{5}$."


def test_bad_input_and_configuration_fail_clearly():
    with pytest.raises(ValueError, match="duplicate request key"):
        list(OpenAIBackend({"model": "m"}).generate(reqs(1) + reqs(1)))
    with pytest.raises(ValueError, match="no messages"):
        list(OpenAIBackend({"model": "m"}).generate([GenRequest("k", [])]))
    with pytest.raises(ValueError, match="unknown generation backend"):
        get_backend("tgi", {})
    with pytest.raises(ValueError, match="unknown openai backend option"):
        get_backend("openai", {"model": "m", "api_kye": "x"})
    with pytest.raises(ValueError, match="needs a 'model'"):
        get_backend("openai", {"base_url": "http://x"})


def test_stub_runs_as_a_command_and_stops_cleanly(client):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "devtools.openai_stub", "--port", str(port), "--faults", "429",
         "--retry-after", "0"],
        stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert "listening" in proc.stdout.readline()
        assert httpx.get(f"http://127.0.0.1:{port}/v1/models").json()["data"][0]["id"]
        b = get_backend("openai", {"model": "m", "base_url": f"http://127.0.0.1:{port}/v1",
                                   "api_key": SECRET, "client": client})
        [res] = list(b.generate(reqs(1)))
        assert res.ok and res.attempts == 2 and res.completion == "Echo: q 0"
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(10) == 0


# -- event loop, response parsing, task window ----------------------------------------------

@pytest.mark.parametrize("loop", ["auto", "uvloop", "asyncio"])
def test_generate_works_on_each_event_loop(loop, client):
    pytest.importorskip("uvloop")
    with StubServer(faults=["500"]) as stub:
        results = {r.key: r for r in backend(stub, client, event_loop=loop).generate(reqs(4))}
    assert all(r.ok and r.attempts == 2 for r in results.values())
    assert results["q:3"].completion == "Echo: q 3"


def test_without_uvloop_auto_falls_back_and_uvloop_is_refused(monkeypatch, client):
    from distill.generation import openai_backend as ob

    monkeypatch.setattr(ob, "_uvloop", lambda: None)
    loop = ob.new_event_loop("auto")
    try:
        assert type(loop).__module__.startswith("asyncio")
    finally:
        loop.close()
    with StubServer() as stub:
        [res] = list(backend(stub, client).generate(reqs(1)))  # event_loop="auto"
        assert res.ok and res.completion == "Echo: q 0"
        with pytest.raises(ValueError, match="uvloop is not installed"):
            backend(stub, client, event_loop="uvloop")
    with pytest.raises(ValueError, match="event_loop must be"):
        get_backend("openai", {"model": "m", "event_loop": "trio"})


def test_uvloop_is_used_when_installed():
    uvloop = pytest.importorskip("uvloop")
    from distill.generation import openai_backend as ob

    loop = ob.new_event_loop("auto")
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


def _serve_once_per_request(body: bytes) -> tuple[str, callable]:
    """A server answering every request with 200 and ``body`` (application/json)."""
    return _scripted_server(200, body, [])


@pytest.mark.parametrize("body", [b"<html>oops</html>", b"[1, 2]",
                                  b'{"choices": [{"message": {"content": 5}}]}'])
def test_a_malformed_2xx_body_is_an_error_result_not_retried(body, client):
    url, shutdown = _serve_once_per_request(body)
    try:
        b = get_backend("openai", {"model": "m", "base_url": url, "api_key": SECRET,
                                   "backoff_base_s": 0.01, "client": client})
        [res] = list(b.generate(reqs(1)))
    finally:
        shutdown()
    assert res.finish_reason == "error" and res.completion == ""
    assert res.error["type"] == "MalformedResponse" and res.attempts == 1


def test_a_minimal_completion_body_is_accepted(client):
    url, shutdown = _serve_once_per_request(
        json.dumps({"choices": [{"message": {"content": "hi"}}]}).encode())
    try:
        b = get_backend("openai", {"model": "m", "base_url": url, "api_key": SECRET, "client": client})
        [res] = list(b.generate(reqs(1)))
    finally:
        shutdown()
    assert res.ok and res.completion == "hi" and res.finish_reason == "stop"
    assert res.prompt_tokens is None and res.model == {"name": "m", "revision": None}


def test_many_requests_through_a_small_window_with_retries_lose_nothing(client):
    # Tasks start lazily (at most 2 x concurrency alive); retries must still refill the window.
    with StubServer(faults=["500", "429"], retry_after="0") as stub:
        results = list(backend(stub, client, concurrency=3).generate(reqs(60)))
    assert sorted(r.key for r in results) == sorted(f"q:{i}" for i in range(60))
    assert all(r.ok and r.attempts == 3 for r in results)
    assert stub.stats.max_in_flight <= 3 and stub.stats.by_status[200] == 60


def _scripted_server(status: int, body: bytes, seen: list) -> tuple[str, callable]:
    """A server answering every POST with ``status`` and ``body``, recording each request."""
    import http.server

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802
            data = self.rfile.read(int(self.headers.get("content-length", 0)))
            seen.append((self.path, {k.lower(): v for k, v in self.headers.items()},
                         json.loads(data)))
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{srv.server_address[1]}/v1", srv.shutdown


def _one_result(url: str, client: str, request: GenRequest, **over):
    cfg = {"model": "teacher", "base_url": url, "api_key": SECRET, "client": client,
           "max_attempts": 1, "extra_body": {"repetition_penalty": 1.05}, **over}
    [res] = list(get_backend("openai", cfg).generate([request]))
    return res


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 429, 500, 503])
def test_both_clients_name_and_word_status_errors_alike(status):
    # Stored errors (and the failure reasons built from them) must not depend on the client.
    body = json.dumps({"error": {"message": f"nope {status}", "type": "x", "code": None}})
    url, shutdown = _scripted_server(status, body.encode(), [])
    try:
        errors = [_one_result(url, c, reqs(1)[0]).error for c in ("openai", "aiohttp")]
    finally:
        shutdown()
    assert errors[0] == errors[1]
    assert errors[0]["status"] == status and f"Error code: {status} - nope {status}" == \
        errors[0]["message"]


def test_both_clients_send_the_same_request():
    ok = json.dumps({"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 3, "completion_tokens": 1},
                     "model": "teacher-v2", "system_fingerprint": "fp_1"}).encode()
    request = GenRequest("k", [{"role": "system", "content": "Be brief."},
                               {"role": "user", "content": "Say hi \u00e9 \\boxed{1}"}],
                         Sampling(temperature=0.7, top_p=0.95, max_tokens=64, seed=7))
    seen: list = []
    url, shutdown = _scripted_server(200, ok, seen)
    try:
        results = [_one_result(url, c, request) for c in ("openai", "aiohttp")]
    finally:
        shutdown()
    (path_a, head_a, body_a), (path_b, head_b, body_b) = seen
    assert path_a == path_b == "/v1/chat/completions"
    assert body_a == body_b == {"model": "teacher", "messages": request.messages,
                                "temperature": 0.7, "top_p": 0.95, "max_tokens": 64,
                                "seed": 7, "repetition_penalty": 1.05}
    assert head_a["authorization"] == head_b["authorization"] == f"Bearer {SECRET}"
    assert head_a["content-type"] == head_b["content-type"] == "application/json"
    for r in results:
        assert r.ok and r.completion == "hi" and r.prompt_tokens == 3
        assert r.model == {"name": "teacher-v2", "revision": "fp_1"}
    assert results[0].backend_version.startswith("openai ")
    assert results[1].backend_version.startswith("aiohttp ")


def test_an_unknown_client_is_refused():
    with pytest.raises(ValueError, match="client must be one of"):
        get_backend("openai", {"model": "m", "client": "requests"})


# -- lazy input ------------------------------------------------------------------------------

def test_a_lazy_input_is_taken_in_the_callers_thread_a_window_ahead(client):
    # Curation feeds requests straight from the database: the iterable must be consumed in
    # the thread that called generate() (Django refuses queries from an event loop's thread),
    # only a bounded window ahead of the network, and with no pause between parts.
    caller, pulled, taken_threads = threading.get_ident(), [0], set()

    def source():
        for r in reqs(60):
            taken_threads.add(threading.get_ident())
            pulled[0] += 1
            yield r

    with StubServer(latency_s=0.05) as stub:
        gen = backend(stub, client, concurrency=4).generate(source())
        first = next(gen)
        pulled_at_first = pulled[0]
        rest = list(gen)
    assert taken_threads == {caller}
    # the first window (2 x concurrency) and at most one top-up back to it: not all 60
    assert pulled_at_first <= 2 * (2 * 4)
    assert sorted(r.key for r in [first, *rest]) == sorted(f"q:{i}" for i in range(60))
    assert stub.stats.max_in_flight == 4 and stub.stats.by_status[200] == 60


def test_a_bad_request_in_a_lazy_input_stops_there_with_a_clear_error(client):
    def source():
        yield from reqs(3)
        yield GenRequest("broken", [])

    with StubServer() as stub:
        gen = backend(stub, client, concurrency=2).generate(source())
        got = []
        with pytest.raises(ValueError, match="'broken' has no messages"):
            for r in gen:
                got.append(r)
    assert all(r.ok for r in got)
    assert not [t for t in threading.enumerate() if t.name == "openai-backend"]
    with StubServer() as stub:  # an empty iterable: no results, no calls
        assert list(backend(stub, client).generate(iter([]))) == []
        assert stub.stats.total == 0


def _wait_until(cond, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.01)
    return cond()


def test_a_cancel_event_interrupts_requests_in_flight(client):
    """A caller blocked on completions that take far longer than the test (a 135M model on a
    CPU reformatting at 16384 max tokens: 15 minutes) is released promptly once its run is
    cancelled from another thread (the heartbeat), and the server sees the requests dropped."""
    cancel = threading.Event()
    with StubServer(latency_s=600) as stub:
        b = backend(stub, client, timeout_s=900, concurrency=3)
        b.cancel = cancel
        results: list = []
        finished = threading.Event()

        def consume() -> None:
            results.extend(b.generate(r for r in reqs(5)))
            finished.set()

        thread = threading.Thread(target=consume, daemon=True)
        thread.start()
        assert _wait_until(lambda: stub.stats.in_flight == 3)  # all three are in flight
        t0 = time.monotonic()
        cancel.set()
        assert finished.wait(5), "generate() still blocked after cancel"
        assert time.monotonic() - t0 < 5  # not the 600 s the requests would take
        assert results == []  # nothing more is yielded
        # The connections were closed, so the server dropped the requests.
        assert _wait_until(lambda: stub.stats.abandoned == 3, 5), stub.stats.abandoned
        assert stub.stats.total == 0 and len(stub.stats.request_times) == 3  # nothing more sent
    assert not [t for t in threading.enumerate() if t.name == "openai-backend"]


def test_a_cancel_event_stops_agenerate_and_a_cancelled_backend_sends_nothing(client):
    import asyncio

    cancel = threading.Event()

    async def collect(b):
        asyncio.get_running_loop().call_later(0.5, cancel.set)
        return [r async for r in b.agenerate(reqs(4))]

    with StubServer(latency_s=600) as stub:
        b = backend(stub, client, timeout_s=900)
        b.cancel = cancel
        t0 = time.monotonic()
        assert asyncio.run(collect(b)) == []
        assert time.monotonic() - t0 < 5
        assert _wait_until(lambda: stub.stats.abandoned == 4, 5)
        # Already cancelled: nothing is sent at all.
        assert list(b.generate(reqs(2))) == []
        assert len(stub.stats.request_times) == 4


def test_agenerate_takes_a_lazy_input_too(client):
    import asyncio

    async def collect(b):
        return [r async for r in b.agenerate(r for r in reqs(7))]

    with StubServer() as stub:
        results = asyncio.run(collect(backend(stub, client, concurrency=3)))
    assert sorted(r.completion for r in results) == sorted(f"Echo: q {i}" for i in range(7))


def test_both_clients_go_through_the_proxy_the_environment_names(monkeypatch):
    # A hosted API behind a company proxy: HTTP(S)_PROXY is honoured by both clients (the
    # "proxy" here is a local server that records the absolute URL it is asked for).
    ok = json.dumps({"choices": [{"message": {"content": "via proxy"}}]}).encode()
    seen: list = []
    proxy_url, shutdown = _scripted_server(200, ok, seen)
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy_url.removesuffix("/v1"))
    try:
        results = [_one_result("http://api.upstream.invalid/v1", c, reqs(1)[0])
                   for c in ("openai", "aiohttp")]
    finally:
        shutdown()
    assert [r.completion for r in results] == ["via proxy", "via proxy"]
    assert [path for path, _, _ in seen] == ["http://api.upstream.invalid/v1/chat/completions"] * 2
