"""Assembling the bot: Storage -> TogetherClient -> JobEngine -> VideoBot, and closing them.

Used by `python -m bot`, and by the sandbox harness so tests run the very same wiring.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from bot.client import VideoBot
from bot.clock import Clock, SystemClock
from bot.discord_trace import discord_trace
from bot.domain.catalog import load_catalog
from bot.domain.quota import QuotaDefaults
from bot.domain.scheduling import AdaptivePlanner, DurationModel, FixedPlanner, PollPlanner
from bot.engine import EngineConfig, JobEngine, Leasing
from bot.gatekeeper import Gatekeeper
from bot.heartbeat import HeartbeatWriter, heartbeat_path_for
from bot.housekeeping import KeyframePruner
from bot.intake import Intake
from bot.media.concat import join_clips
from bot.media.download import DownloadPolicy, download_video
from bot.media.files import DownloadedVideo, VideoFormat
from bot.media.frames import last_frame
from bot.media.reencode import FitResult, ffmpeg_available, fit_under_limit
from bot.metrics import PrometheusRecorder, metrics_served
from bot.rules_refresh import RulesRefresher
from bot.safety import SafetyGuard
from bot.settings import Settings
from bot.together.client import TogetherClient
from bot.together.moderation import TogetherModeration
from storage.db import open_configured
from storage.forms import PendingForms
from storage.jobs import JobRepository
from storage.leases import JobLeases
from storage.lock import acquire_database_lock
from storage.processes import Processes, new_process_id
from storage.reservations import Reservations
from storage.server_settings import GuildSettingsRepository
from storage.together_budget import TogetherBudgetTable
from storage.usage import UsageRepository

log = logging.getLogger(__name__)


@asynccontextmanager
async def assemble(settings: Settings, clock: Clock | None = None) -> AsyncIterator[VideoBot]:
    """A ready-to-start VideoBot; everything it opened is closed on exit."""
    # METRICS_PORT: the engine and the Discord client report to it (bot/metrics.py). Listening
    # comes first, so a port already taken stops the start before the database is touched.
    recorder = PrometheusRecorder() if settings.metrics_port is not None else None
    async with (
        metrics_served(recorder, settings.metrics_host, settings.metrics_port),
        _assemble(settings, clock, recorder) as bot,
    ):
        yield bot


@asynccontextmanager
async def _assemble(
    settings: Settings, clock: Clock | None, recorder: PrometheusRecorder | None
) -> AsyncIterator[VideoBot]:
    catalog = load_catalog(settings.models_file)
    # One bot per SQLite file: a second one would resume, poll and fail the first one's jobs.
    # With DATABASE_URL the lock beside DATABASE_PATH still guards this process's heartbeat
    # and download folder; the PostgreSQL database is shared, its jobs held by lease.
    lock = acquire_database_lock(settings.database_path)
    try:
        db = await open_configured(settings.database_path, settings.database_url_text)
    except BaseException:
        lock.release()
        raise
    jobs = JobRepository(db)
    try:
        async with (
            # get_retries=0: the engine retries polls itself, inside its request budget.
            TogetherClient(
                settings.together_api_key.get_secret_value(),
                settings.together_base_url,
                get_retries=0,
            ) as together,
            # Downloads use their own client: the Together key must never reach the video host.
            # Redirects are followed by download_video, which checks every hop's address.
            httpx.AsyncClient(
                follow_redirects=False, timeout=httpx.Timeout(60.0, connect=10.0)
            ) as web,
        ):
            # Together's own origin is exempt from the https and address rules, as configured,
            # so a local stand-in (or a proxy on a private address) works.
            policy = DownloadPolicy(allowed_origin=settings.together_base_url)

            async def fetch(
                url: str, dest: Path, *, max_bytes: int, expected_format: VideoFormat
            ) -> DownloadedVideo:
                return await download_video(
                    web,
                    url,
                    dest,
                    max_bytes=max_bytes,
                    expected_format=expected_format,
                    policy=policy,
                )

            async def fit(
                source: Path, limit_bytes: int, workdir: Path, *, source_format: VideoFormat
            ) -> FitResult:
                return await fit_under_limit(
                    source, limit_bytes, workdir, source_format=source_format
                )

            async def join(
                parts: Sequence[Path], dest: Path, *, formats: Sequence[VideoFormat]
            ) -> DownloadedVideo:
                joined = await join_clips(parts, dest, formats=formats)
                return DownloadedVideo(joined.path, joined.size, "video/mp4")

            if not ffmpeg_available():
                log.warning(
                    "ffmpeg is not installed: videos over a server's upload limit will be "
                    "posted as links instead of re-encoded"
                )
            config = EngineConfig(
                workdir=settings.download_dir_path,
                poll_interval=settings.poll_interval,
                edit_interval=settings.progress_edit_interval,
                max_active=settings.max_active_jobs,
                max_active_per_guild=settings.max_active_jobs_per_server,
                requests_per_second=settings.together_requests_per_second,
                start_requests_per_second=settings.together_start_requests_per_second,
                lease_seconds=settings.lease_seconds,
            )
            me = new_process_id()
            # sole: on SQLite the lock above proves no other process is alive, so every
            # unfinished job is claimed at start, without waiting for old leases to expire.
            # PostgreSQL is shared: another process's jobs are taken only once their lease ends.
            sole = db.dialect == "sqlite"
            leasing = Leasing(
                JobLeases(db, me), Processes(db, me), sole=sole, budget=TogetherBudgetTable(db)
            )
            planner: PollPlanner = FixedPlanner(settings.poll_interval)
            if settings.poll_strategy == "adaptive":
                expected = {model.id: model.expected_seconds for model in catalog}
                history = await jobs.recent_durations()
                planner = AdaptivePlanner(
                    DurationModel(expected, history), min_interval=settings.poll_interval
                )
            engine = JobEngine(
                jobs,
                together,
                fetch,
                clock or SystemClock(),
                config,
                catalog,
                fit if ffmpeg_available() else None,
                planner,
                frame=last_frame if ffmpeg_available() else None,
                join=join if ffmpeg_available() else None,
                recorder=recorder,
                leasing=leasing,
            )
            if recorder is not None:
                recorder.watch(engine.snapshot)
            server_settings = GuildSettingsRepository(db)
            usage = UsageRepository(db)
            defaults = QuotaDefaults(
                user_daily=settings.default_user_daily,
                guild_daily=settings.default_guild_daily,
                user_concurrent=settings.default_user_concurrent,
                monthly_budget_usd=settings.default_monthly_budget_usd,
            )
            gatekeeper = Gatekeeper(server_settings, usage, Reservations(db), catalog, defaults)
            pruner = KeyframePruner(jobs, clock or SystemClock(), settings.keyframe_retention_days)
            intake = Intake(
                gatekeeper,
                jobs,
                catalog,
                engine,
                settings.default_model,
                {"animate": settings.animate_model, "edit": settings.edit_model},
                safety=_safety_guard(settings, server_settings, together),
            )
            bot = VideoBot(
                settings,
                jobs,
                engine,
                catalog,
                server_settings,
                usage,
                gatekeeper,
                pruner,
                intake,
                PendingForms(db),
                http_trace=discord_trace(recorder) if recorder is not None else None,
            )
            # <DATABASE_PATH>.health, for `video-bot health` (bot/health.py).
            heartbeat = HeartbeatWriter(
                heartbeat_path_for(settings.database_path),
                gateway=bot.gateway_watch,
                engine_ticks=lambda: engine.ticks,
                ping=db.ping,
            )
            # Settings changed through another process reach this one's cache (2 s).
            async with heartbeat, RulesRefresher(server_settings):
                try:
                    yield bot
                finally:
                    if not bot.is_closed():
                        await bot.close()
    finally:
        try:
            await db.close()
        finally:
            lock.release()


def _safety_guard(
    settings: Settings, server_settings: GuildSettingsRepository, together: TogetherClient
) -> SafetyGuard:
    """The safety controls; prompt screening only when SAFETY_MODEL names a model."""
    timeout = settings.safety_timeout_seconds
    screen = (
        TogetherModeration(together, settings.safety_model, timeout)
        if settings.safety_model
        else None
    )
    return SafetyGuard(server_settings, screen, timeout)
