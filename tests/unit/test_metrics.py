"""bot.metrics (the recorder, its own registry, the listener) and bot.discord_trace, over
loopback with the real aiohttp and httpx."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator

import aiohttp
import httpx
import pytest
from aiohttp import web
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bot.discord_trace import DISCORD_EPOCH_MS, created_at, discord_trace
from bot.domain.budget import AdaptiveBudget
from bot.engine.snapshot import EngineSnapshot, take_snapshot
from bot.metrics import (
    MetricsListener,
    MetricsPortUnavailable,
    PrometheusRecorder,
    bot_version,
    metrics_served,
)
from bot.settings import Settings
from storage.models import JobState


def samples(recorder: PrometheusRecorder) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the registry, by name and labels."""
    text = generate_latest(recorder.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_counters_and_histograms_move() -> None:
    rec = PrometheusRecorder()
    rec.together_answered("ok")
    rec.together_answered("ok")
    rec.together_answered("rate_limited")
    rec.job_finished(JobState.DELIVERED, "minimax/hailuo-02")
    rec.spent("minimax/hailuo-02", 0.28)
    rec.spent("minimax/hailuo-02", 0.5)
    rec.delivered(4.0)
    rec.first_response(0.3)
    rec.discord_answered(200)
    rec.discord_answered(429)
    rec.discord_answered(502)
    rec.discord_answered(503)
    got = samples(rec)
    assert got[("videobot_together_requests_total", (("outcome", "ok"),))] == 2
    assert got[("videobot_together_requests_total", (("outcome", "rate_limited"),))] == 1
    finished = (("model", "minimax/hailuo-02"), ("state", "delivered"))
    assert got[("videobot_jobs_finished_total", finished)] == 1
    assert got[("videobot_spend_usd_total", (("model", "minimax/hailuo-02"),))] == 0.78
    assert got[("videobot_delivery_delay_seconds_count", ())] == 1
    assert got[("videobot_delivery_delay_seconds_bucket", (("le", "5.0"),))] == 1
    assert got[("videobot_delivery_delay_seconds_bucket", (("le", "2.0"),))] == 0
    assert got[("videobot_first_response_seconds_count", ())] == 1
    assert got[("videobot_discord_errors_total", (("outcome", "rate_limited"),))] == 1
    assert got[("videobot_discord_errors_total", (("outcome", "server_error"),))] == 2
    assert got[("videobot_build_info", (("version", bot_version()),))] == 1
    assert 0 < got[("videobot_start_time_seconds", ())] <= time.time()


def test_every_metric_has_help_and_the_prefix() -> None:
    rec = PrometheusRecorder()
    rec.watch(lambda: snapshot_of({JobState.QUEUED: 1}))
    families = list(text_string_to_metric_families(generate_latest(rec.registry).decode()))
    assert families
    for family in families:
        assert family.name.startswith("videobot_"), family.name
        assert family.documentation, family.name


def test_each_recorder_has_its_own_registry() -> None:
    one, two = PrometheusRecorder(), PrometheusRecorder()  # would clash in one registry
    one.together_answered("network")
    assert ("videobot_together_requests_total", (("outcome", "network"),)) in samples(one)
    assert ("videobot_together_requests_total", (("outcome", "network"),)) not in samples(two)
    assert REGISTRY.get_sample_value("videobot_together_requests_total") is None


def snapshot_of(
    counts: dict[JobState, int], budget: AdaptiveBudget | None = None, now: float = 100.0
) -> EngineSnapshot:
    base = take_snapshot([], budget or AdaptiveBudget(5.0, 1.0), now)
    return EngineSnapshot({**base.states, **counts}, base.budget)


def test_the_engine_gauges_are_read_at_each_scrape() -> None:
    rec = PrometheusRecorder()
    counts = {JobState.QUEUED: 3, JobState.RUNNING: 2}
    rec.watch(lambda: snapshot_of(counts))
    got = samples(rec)
    assert got[("videobot_jobs", (("state", "queued"),))] == 3
    assert got[("videobot_jobs", (("state", "running"),))] == 2
    assert got[("videobot_jobs", (("state", "delivering"),))] == 0
    assert got[("videobot_queue_length", ())] == 3
    assert got[("videobot_together_budget_rate", ())] == 1.0
    assert got[("videobot_together_budget_ceiling", ())] == 5.0
    assert got[("videobot_together_backing_off", ())] == 0
    counts[JobState.QUEUED] = 0
    assert samples(rec)[("videobot_queue_length", ())] == 0


def test_a_backing_off_budget_and_an_unlimited_one() -> None:
    rec = PrometheusRecorder()
    throttled = AdaptiveBudget(5.0, 1.0)
    throttled.throttled(99.0, 98.0, retry_after=10.0)
    rec.watch(lambda: snapshot_of({}, throttled))
    got = samples(rec)
    assert got[("videobot_together_backing_off", ())] == 1
    assert got[("videobot_together_budget_rate", ())] == pytest.approx(0.7)

    unlimited = PrometheusRecorder()
    unlimited.watch(lambda: snapshot_of({}, AdaptiveBudget(0, 1.0)))
    names = {name for name, _ in samples(unlimited)}
    assert "videobot_together_budget_rate" not in names
    assert "videobot_jobs" in names


async def test_the_listener_serves_the_text_format_on_loopback_by_default() -> None:
    settings = Settings(_env_file=None, discord_token="t", together_api_key="k")  # type: ignore[call-arg]
    assert settings.metrics_port is None and settings.metrics_host == "127.0.0.1"
    rec = PrometheusRecorder()
    rec.together_answered("ok")
    port = free_port()
    async with metrics_served(rec, settings.metrics_host, port) as listener:
        assert listener is not None
        assert listener.addresses == [("127.0.0.1", port)]
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/metrics")
            other = await client.get(f"http://127.0.0.1:{port}/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'videobot_together_requests_total{outcome="ok"} 1.0' in response.text
    assert other.status_code == 404


async def test_no_port_no_listener() -> None:
    async with metrics_served(PrometheusRecorder(), "127.0.0.1", None) as listener:
        assert listener is None
    async with metrics_served(None, "127.0.0.1", free_port()) as listener:
        assert listener is None


async def test_a_port_in_use_is_refused_naming_the_setting() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        listener = MetricsListener(PrometheusRecorder().registry, "127.0.0.1", port)
        with pytest.raises(MetricsPortUnavailable) as caught:
            await listener.start()
    assert str(caught.value).startswith(
        f"METRICS_PORT {port} on METRICS_HOST 127.0.0.1 cannot be used: Address already in use ("
    )


async def test_an_unknown_host_is_refused_naming_it() -> None:
    listener = MetricsListener(PrometheusRecorder().registry, "no-such-host.invalid", 9464)
    with pytest.raises(MetricsPortUnavailable) as caught:
        await listener.start()
    assert str(caught.value).startswith(
        "METRICS_PORT 9464 on METRICS_HOST no-such-host.invalid cannot be used: "
    )
    assert "\n" not in str(caught.value)


# -- Discord's answers, seen through discord.py's aiohttp session ---------------------------


@pytest.fixture
async def fake_discord() -> AsyncIterator[str]:
    """Answers with the status in the path: /status/429; interaction callbacks with 204."""

    async def by_status(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]))

    async def callback(request: web.Request) -> web.Response:
        return web.Response(status=204)

    app = web.Application()
    app.router.add_route("*", "/status/{code}", by_status)
    app.router.add_post("/interactions/{id}/{token}/callback", callback)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


def snowflake_at(unix: float) -> int:
    return (int(unix * 1000) - DISCORD_EPOCH_MS) << 22 | 12345


async def test_the_trace_counts_429s_and_5xx_and_times_first_responses(
    fake_discord: str,
) -> None:
    rec = PrometheusRecorder()
    async with aiohttp.ClientSession(trace_configs=[discord_trace(rec)]) as session:
        for code in (200, 404, 429, 500, 503):
            async with session.get(f"{fake_discord}/status/{code}"):
                pass
        interaction = snowflake_at(time.time() - 1.0)  # created a second ago
        async with session.post(f"{fake_discord}/interactions/{interaction}/tok/callback"):
            pass
        # Not a first response: a follow-up, and a failed callback.
        async with session.post(f"{fake_discord}/status/400"):
            pass
    got = samples(rec)
    assert got[("videobot_discord_errors_total", (("outcome", "rate_limited"),))] == 1
    assert got[("videobot_discord_errors_total", (("outcome", "server_error"),))] == 2
    assert got[("videobot_first_response_seconds_count", ())] == 1
    # Measured from the snowflake: at least the second since it was made.
    assert got[("videobot_first_response_seconds_bucket", (("le", "0.75"),))] == 0


def test_a_snowflake_says_when_it_was_made() -> None:
    # Discord's documented example: 175928847299117063 was made at 2016-04-30 11:18:25.796 UTC.
    assert created_at(175928847299117063) == pytest.approx(1462015105.796)
