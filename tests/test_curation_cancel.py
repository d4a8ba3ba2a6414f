"""Cancel reaches requests in flight: a curation run whose reformatter takes far longer than the
test (a small model on a CPU at 16384 max tokens took over 15 minutes per sample) stops within
seconds of the cancel, and the reformatter sees its requests dropped."""

from __future__ import annotations

import threading
import time

import pytest

from devtools.openai_stub import StubServer
from experiments.errors import Cancelled
from experiments.models import Sample
from tests.support.curation import SECRET, echo_problems, make_run, make_version
from workers.jobs.curation import Pipeline
from workers.runner import JobContext


def _wait_until(cond, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.02)
    return cond()


@pytest.mark.django_db
@pytest.mark.parametrize("client", ["openai", "aiohttp"])
def test_cancel_interrupts_a_reformat_request_in_flight(settings, tmp_path, client):
    settings.RUNS_DIR = tmp_path / "runs"
    settings.OPENAI_API_KEY = SECRET
    version = make_version(echo_problems(3))
    with StubServer() as teacher, StubServer(latency_s=900) as reformatter:
        run = make_run(version, teacher.base_url, reformat={
            "model": "slow-reformatter", "base_url": reformatter.base_url, "max_tokens": 16384,
            "concurrency": 2, "client": client, "timeout_s": 1800})
        ctx = JobContext(run)  # not started: the test plays the heartbeat that sees the cancel

        def cancel_once_in_flight() -> None:
            if _wait_until(lambda: reformatter.stats.in_flight >= 2):
                ctx.cancel_event.set()

        threading.Thread(target=cancel_once_in_flight, daemon=True).start()
        t0 = time.monotonic()
        with pytest.raises(Cancelled):
            Pipeline(run, ctx).run_all()
        assert ctx.cancel_event.is_set()
        assert time.monotonic() - t0 < 30  # not the 900 s each reformat request would take
        assert _wait_until(lambda: reformatter.stats.abandoned == 2, 5)
    # Generation and verification were kept; no reformat row was written for the dropped
    # requests, so a resumed run sends them again.
    assert Sample.objects.filter(run=run, stage="verify", correct=True).count() == 3
    assert not Sample.objects.filter(run=run, stage="reformat").exists()


@pytest.mark.django_db
def test_cancel_interrupts_generation_in_flight(settings, tmp_path):
    settings.RUNS_DIR = tmp_path / "runs"
    version = make_version(echo_problems(2))
    with StubServer(latency_s=900) as teacher:
        run = make_run(version, teacher.base_url)
        ctx = JobContext(run)
        threading.Thread(target=lambda: _wait_until(lambda: teacher.stats.in_flight >= 2)
                         and ctx.cancel_event.set(), daemon=True).start()
        t0 = time.monotonic()
        with pytest.raises(Cancelled):
            Pipeline(run, ctx).run_all()
        assert time.monotonic() - t0 < 20
        assert _wait_until(lambda: teacher.stats.abandoned == 2, 5)
    assert not Sample.objects.filter(run=run).exists()
