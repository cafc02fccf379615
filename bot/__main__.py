"""Composition root: Settings -> logging -> Storage -> TogetherClient -> JobEngine -> VideoBot."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

import discord
import httpx

from bot.catalog import CatalogError, load_catalog
from bot.client import VideoBot
from bot.clock import SystemClock
from bot.engine import EngineConfig, JobEngine
from bot.logs import configure_logging
from bot.media import DownloadedVideo, download_video
from bot.settings import Settings, SettingsError, load_settings
from bot.together import TogetherClient
from storage.db import open_database
from storage.jobs import JobRepository

log = logging.getLogger("bot")

EXIT_CONFIG = 2


async def run(settings: Settings) -> int:
    catalog = load_catalog()
    db = await open_database(settings.database_path)
    jobs = JobRepository(db)
    # Downloads use their own client: the Together key must never go to the video host.
    async with (
        TogetherClient(
            settings.together_api_key.get_secret_value(), settings.together_base_url
        ) as together,
        httpx.AsyncClient(follow_redirects=True, timeout=httpx.Timeout(60.0, connect=10.0)) as web,
    ):

        async def fetch(url: str, dest: Path, *, max_bytes: int) -> DownloadedVideo:
            return await download_video(web, url, dest, max_bytes=max_bytes)

        config = EngineConfig(
            workdir=settings.database_path.parent / "downloads",
            poll_interval=settings.poll_interval,
            edit_interval=settings.progress_edit_interval,
            max_active=settings.max_active_jobs,
        )
        engine = JobEngine(jobs, together, fetch, SystemClock(), config)
        bot = VideoBot(settings, jobs, engine, catalog)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, lambda: asyncio.ensure_future(bot.close()))
        try:
            async with bot:
                await bot.start(settings.discord_token.get_secret_value())
        except discord.LoginFailure:
            log.error("DISCORD_TOKEN was refused by Discord: check the bot token in .env")
            return EXIT_CONFIG
        finally:
            await db.close()
    log.info("Stopped cleanly")
    return 0


def main() -> int:
    try:
        settings = load_settings()
        load_catalog()  # fail fast, in one line, on a broken catalog
    except (SettingsError, CatalogError) as exc:
        print(f"video-bot: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(
        settings.log_level_number,
        [settings.discord_token.get_secret_value(), settings.together_api_key.get_secret_value()],
    )
    try:
        return asyncio.run(run(settings))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
