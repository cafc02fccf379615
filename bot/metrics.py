"""Prometheus metrics (METRICS_PORT): the recorder the engine and the Discord client report to,
and the listener that serves them at /metrics.

The registry is this object's own, never prometheus_client's global one, so several bots (or
tests) in one process do not clash. The listener runs on the bot's event loop (aiohttp, which
discord.py already brings), so the engine's state is read at each scrape on the thread that
owns it. Labels are models, states and outcomes only: never a member, server, channel or job.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from importlib import metadata

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.aiohttp import make_aiohttp_handler
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.engine.ports import TogetherOutcome
from bot.engine.snapshot import EngineSnapshot
from storage.models import JobState

log = logging.getLogger(__name__)

# Discord must have the first response within 3 s: the buckets are fine-grained below that.
FIRST_RESPONSE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0, 10.0)
# Together done -> video in Discord: seconds normally, up to an hour through an outage.
DELIVERY_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)


def bot_version() -> str:
    """The installed package's version, or "unknown" when run from a bare source tree."""
    try:
        return metadata.version("video-bot")
    except metadata.PackageNotFoundError:
        return "unknown"


class PrometheusRecorder:
    """Implements the engine's Recorder port and counts Discord's answers, in its own registry."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        Gauge(
            "videobot_build_info", "The running bot's version", ["version"], registry=registry
        ).labels(bot_version()).set(1)
        self._started = Gauge(
            "videobot_start_time_seconds", "When the bot started (Unix time)", registry=registry
        )
        self._started.set_to_current_time()
        self._together = Counter(
            "videobot_together_requests",
            "Requests to Together (POSTs and status reads) by how they ended: ok, rate_limited "
            "(429), client_error (other 4xx), server_error (5xx), network (no answer), "
            "bad_answer (2xx that was not a job)",
            ["outcome"],
            registry=registry,
        )
        self._finished = Counter(
            "videobot_jobs_finished",
            "Jobs that reached a final state (delivered, failed, cancelled, timed_out)",
            ["state", "model"],
            registry=registry,
        )
        self._spend = Counter(
            "videobot_spend_usd",
            "US dollars Together reported as jobs' cost, counted when a job's end is stored",
            ["model"],
            registry=registry,
        )
        self._delivery = Histogram(
            "videobot_delivery_delay_seconds",
            "Seconds from Together reporting a video done to the video being in Discord",
            buckets=DELIVERY_BUCKETS,
            registry=registry,
        )
        self._first_response = Histogram(
            "videobot_first_response_seconds",
            "Seconds from an interaction's creation (its snowflake) to Discord accepting the "
            "bot's first response to it (reply, deferral, modal or autocomplete)",
            buckets=FIRST_RESPONSE_BUCKETS,
            registry=registry,
        )
        self._discord_errors = Counter(
            "videobot_discord_errors",
            "Discord HTTP answers that were 429 (rate_limited) or 5xx (server_error), every "
            "attempt counted, including those discord.py retried by itself",
            ["outcome"],
            registry=registry,
        )
        for outcome in ("rate_limited", "server_error"):
            self._discord_errors.labels(outcome)  # shown as 0 before the first one
        self._together.labels("ok")
        self._engine: _EngineCollector | None = None

    # -- the engine's Recorder port --------------------------------------------------------

    def together_answered(self, outcome: TogetherOutcome) -> None:
        self._together.labels(outcome).inc()

    def job_finished(self, state: JobState, model: str) -> None:
        self._finished.labels(state.value, model).inc()

    def spent(self, model: str, usd: float) -> None:
        self._spend.labels(model).inc(usd)

    def delivered(self, delay: float) -> None:
        self._delivery.observe(delay)

    # -- Discord (bot.discord_trace) -------------------------------------------------------

    def discord_answered(self, status: int) -> None:
        if status == 429:
            self._discord_errors.labels("rate_limited").inc()
        elif status >= 500:
            self._discord_errors.labels("server_error").inc()

    def first_response(self, seconds: float) -> None:
        self._first_response.observe(seconds)

    # -- the engine's state, read at each scrape -------------------------------------------

    def watch(self, snapshot: Callable[[], EngineSnapshot]) -> None:
        """Export the engine's jobs by state and its request budget (JobEngine.snapshot)."""
        if self._engine is None:
            self._engine = _EngineCollector(snapshot)
            self.registry.register(self._engine)


class _EngineCollector(Collector):
    """Gauges computed from the engine at scrape time, so they are never stale."""

    def __init__(self, snapshot: Callable[[], EngineSnapshot]) -> None:
        self._snapshot = snapshot

    def describe(self) -> list[Metric]:
        return []  # families are only known at collect time; nothing to check for clashes

    def collect(self) -> Iterator[Metric]:
        snapshot = self._snapshot()
        jobs = GaugeMetricFamily(
            "videobot_jobs", "Unfinished jobs by state, as the engine holds them", labels=["state"]
        )
        for state, count in snapshot.states.items():
            jobs.add_metric([state.value], count)
        yield jobs
        yield GaugeMetricFamily(
            "videobot_queue_length",
            "Jobs waiting in the bot's queue, not yet sent to Together",
            value=snapshot.waiting,
        )
        budget = snapshot.budget
        if budget.limited:  # TOGETHER_REQUESTS_PER_SECOND 0: no rate to show
            yield GaugeMetricFamily(
                "videobot_together_budget_rate",
                "Requests per second the bot allows itself to Together now (learned from 429s)",
                value=budget.rate,
            )
            yield GaugeMetricFamily(
                "videobot_together_budget_ceiling",
                "TOGETHER_REQUESTS_PER_SECOND: the most the learned rate may reach",
                value=budget.ceiling,
            )
        yield GaugeMetricFamily(
            "videobot_together_backing_off",
            "1 while the request budget is paused or below the rate a 429 cut, else 0",
            value=1.0 if budget.backing_off else 0.0,
        )


class MetricsPortUnavailable(Exception):
    """METRICS_PORT could not be listened on (in use, or not allowed): the bot stops."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        super().__init__(
            f"METRICS_PORT {port} on METRICS_HOST {host} cannot be used: {reason} (choose "
            "another, or leave METRICS_PORT empty to turn metrics off)"
        )
        self.host, self.port, self.reason = host, port, reason


class MetricsListener:
    """Serves the registry at http://host:port/metrics on the running event loop."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        self._host, self._port = host, port
        app = web.Application()
        app.router.add_get("/metrics", make_aiohttp_handler(registry))
        self._runner = web.AppRunner(app, access_log=None)

    async def start(self) -> None:
        """Listen, or raise MetricsPortUnavailable (e.g. the port is taken)."""
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise MetricsPortUnavailable(self._host, self._port, _reason(exc)) from exc
        log.info("Metrics at http://%s:%d/metrics", self._host, self._port)

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """Where it listens (host, port), for tests."""
        out = []
        for server in self._runner.addresses:
            host, port = server[0], server[1]
            out.append((str(host), int(port)))
        return out

    async def stop(self) -> None:
        await self._runner.cleanup()


def _reason(exc: OSError) -> str:
    """ "Address already in use", without asyncio's "error while attempting to bind ..." """
    if isinstance(exc, socket.gaierror):  # METRICS_HOST is not a known name
        return exc.strerror or str(exc)
    return os.strerror(exc.errno) if exc.errno else str(exc)


@contextlib.asynccontextmanager
async def metrics_served(
    recorder: PrometheusRecorder | None, host: str, port: int | None
) -> AsyncIterator[MetricsListener | None]:
    """The listener for METRICS_HOST:METRICS_PORT while inside; None when metrics are off."""
    if recorder is None or port is None:
        yield None
        return
    listener = MetricsListener(recorder.registry, host, port)
    await listener.start()
    try:
        yield listener
    finally:
        await listener.stop()
