"""VideoBot: the discord.py client; loads the cogs, syncs commands and starts the engine."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.ext import commands

from bot.domain.catalog import Catalog
from bot.domain.errors import UserFacingError
from bot.engine import JobEngine
from bot.gatekeeper import Gatekeeper
from bot.heartbeat import GatewayWatch
from bot.housekeeping import KeyframePruner
from bot.i18n import translate
from bot.intake import Intake
from bot.outages import log_failure
from bot.settings import Settings
from bot.sharding import syncs_commands
from storage.forms import PendingForms
from storage.jobs import JobRepository
from storage.server_settings import GuildSettingsRepository
from storage.usage import UsageRepository

log = logging.getLogger(__name__)

EXTENSIONS = (
    "cogs.translator",  # first: the tree is synced with its localizations
    "cogs.buttons",
    "cogs.progress",
    "cogs.video",
    "cogs.account",
    "cogs.models",
    "cogs.forms",
    "cogs.admin",
)
RESTARTING = "error.restarting"
# How long a shutdown waits for commands already running to store their job and answer.
COMMAND_GRACE = 5.0
GENERIC_FAILURE = "error.generic"
# Log-in retries while Discord is down or out of reach: 5, 10, 20, 40, then every 60 s.
LOGIN_RETRY_DELAY = 5.0
LOGIN_MAX_RETRY_DELAY = 60.0


def point_discord_at(api_base: str, gateway_url: str) -> None:
    """Send discord.py's REST calls and gateway connection to the configured hosts.

    discord.py reads both from class attributes; a process runs one bot, so this is global.
    """
    discord.http.Route.BASE = api_base.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


class TokenRefused(Exception):
    """Discord refused DISCORD_TOKEN: final, unlike an outage (the bot stops, exit code 2)."""


class VideoCommandTree(app_commands.CommandTree[Any]):
    async def on_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        """Members read a UserFacingError's words; anything else is logged, never shown."""
        cause = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        locale = interaction.locale.value
        if isinstance(cause, UserFacingError):
            text = cause.text_for(locale)
        elif isinstance(cause, app_commands.NoPrivateMessage):
            text = translate(locale, "error.server_only")
        elif isinstance(cause, app_commands.CheckFailure):
            text = str(cause) or translate(locale, "error.not_here")
        elif isinstance(cause, app_commands.TransformerError):
            text = translate(locale, "error.bad_value", value=repr(cause.value))
        else:
            command = interaction.command.qualified_name if interaction.command else "?"
            log_failure(log, f"Command /{command} failed", cause)
            text = translate(locale, GENERIC_FAILURE)
        await send_ephemeral(interaction, text)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, discord.HTTPException):
        return f"HTTP {exc.status}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def send_ephemeral(interaction: discord.Interaction[Any], text: str) -> None:
    try:
        if interaction.response.is_done():
            await interaction.followup.send(
                text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
            )
        else:
            await interaction.response.send_message(
                text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
            )
    except discord.HTTPException as exc:
        log.warning("Could not tell the member why their command failed: %s", exc)


class VideoBot(commands.AutoShardedBot):
    def __init__(
        self,
        settings: Settings,
        jobs: JobRepository,
        engine: JobEngine,
        catalog: Catalog,
        server_settings: GuildSettingsRepository,
        usage: UsageRepository,
        gatekeeper: Gatekeeper,
        pruner: KeyframePruner,
        intake: Intake,
        pending_forms: PendingForms,
        http_trace: aiohttp.TraceConfig | None = None,
    ) -> None:
        intents = discord.Intents.none()
        intents.guilds = True  # channel and role cache; no message content, no members
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
            tree_cls=VideoCommandTree,
            # None and None: Discord says how many shards (GET /gateway/bot); all run here.
            shard_count=settings.shard_count,
            # discord.py reads a missing list as None; its annotation forgets that.
            shard_ids=list(settings.shard_ids) if settings.shard_ids else None,  # type: ignore[arg-type]
        )
        # The metrics' view of Discord's answers (bot/discord_trace.py), if they are on; read
        # by discord.py when it opens its HTTP session at log-in (what http_trace= sets).
        self.http.http_trace = http_trace
        self.settings = settings
        self.jobs = jobs
        self.engine = engine
        self.catalog = catalog
        self.server_settings = server_settings
        self.usage = usage
        self.gatekeeper = gatekeeper
        self.pruner = pruner
        self.intake = intake  # every way of starting a job goes through it
        # The files message menus were used on, until their forms are submitted.
        self.pending_forms = pending_forms
        self.started = time.monotonic()  # for the uptime in /videoadmin status
        self._closing = False
        self._close_requested = asyncio.Event()
        self._gateway_redirected = False
        self._engine_started = False
        self._commands_running = 0
        self._commands_idle = asyncio.Event()
        self._commands_idle.set()
        # Connected or since when not, per shard: for the health heartbeat (bot/heartbeat.py).
        self.gateway_watch = GatewayWatch()
        point_discord_at(settings.discord_api_base, settings.discord_gateway_url)

    async def _gateway_from_settings(self) -> tuple[int, str, Any]:
        shards, _url, limits = await self._ask_gateway()
        return shards, self.settings.discord_gateway_url, limits

    async def start(self, token: str, *, reconnect: bool = True) -> None:
        """Log in, waiting out a Discord outage, then connect (discord.py reconnects itself)."""
        if await self._log_in_when_reachable(token):
            await self.connect(reconnect=reconnect)

    async def _log_in_when_reachable(self, token: str) -> bool:
        """A start during a Discord outage waits for Discord instead of exiting.

        The jobs are safe in the database meanwhile; only a refused token is final. False when
        the bot was told to stop while waiting.
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                await self.login(token)
                return True
            except discord.LoginFailure as exc:
                raise TokenRefused(str(exc)) from exc
            except (discord.DiscordServerError, aiohttp.ClientError, OSError, TimeoutError) as exc:
                if self._closing:
                    return False
                delay = min(LOGIN_MAX_RETRY_DELAY, LOGIN_RETRY_DELAY * 2 ** min(attempt - 1, 8))
                log.warning(
                    "Discord cannot be reached to log in (%s); trying again in %.0f s",
                    _describe(exc),
                    delay,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._close_requested.wait(), delay)
                if self._closing:
                    return False

    async def setup_hook(self) -> None:
        """Runs inside each log-in attempt, so a retry after an outage must find it half done."""
        if not self._gateway_redirected:
            # AutoShardedBot asks GET /gateway/bot for the shard count and URL; keep its count
            # but use the configured URL, so a proxy or the sandbox is honoured.
            self._ask_gateway = self.http.get_bot_gateway
            self.http.get_bot_gateway = self._gateway_from_settings  # type: ignore[method-assign]
            self._gateway_redirected = True
        for extension in EXTENSIONS:
            if extension not in self.extensions:
                await self.load_extension(extension)
        # Commands are global: one process syncs them (SYNC_COMMANDS, bot/sharding.py).
        if syncs_commands(self.settings.sync_commands, self.settings.shard_ids):
            synced = await self.tree.sync()
            log.info("Synced %d application command(s)", len(synced))
        else:
            log.info(
                "Not syncing application commands (SYNC_COMMANDS=%s; shards %s of %s): "
                "another process does",
                self.settings.sync_commands,
                ",".join(map(str, self.settings.shard_ids or ())) or "all",
                self.settings.shard_count,
            )
        if not self._engine_started:
            await self.engine.start()
            self.pruner.start()
            self._engine_started = True

    async def on_ready(self) -> None:
        assert self.user is not None
        log.info(
            "Logged in as %s (id %d) in %d server(s)", self.user, self.user.id, len(self.guilds)
        )

    async def on_shard_connect(self, shard_id: int) -> None:
        self.gateway_watch.connected(shard_id)

    async def on_shard_resumed(self, shard_id: int) -> None:
        self.gateway_watch.connected(shard_id)

    async def on_shard_disconnect(self, shard_id: int) -> None:
        self.gateway_watch.disconnected(shard_id)

    @contextlib.asynccontextmanager
    async def command_slot(self) -> AsyncIterator[None]:
        """Held by a command that may create a job, so a shutdown lets it finish first."""
        if self._closing or not self.engine.accepting:
            raise UserFacingError(RESTARTING)
        self._commands_running += 1
        self._commands_idle.clear()
        try:
            yield
        finally:
            self._commands_running -= 1
            if self._commands_running == 0:
                self._commands_idle.set()

    async def close(self) -> None:
        try:
            if not self._closing:
                self._closing = True
                self._close_requested.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._commands_idle.wait(), COMMAND_GRACE)
                await self.pruner.stop()
                await self.engine.stop()
        finally:
            await super().close()  # stop even if the engine could not stop cleanly

    def model_name(self, model_id: str) -> str:
        spec = self.catalog.get(model_id)
        return spec.name if spec else model_id
