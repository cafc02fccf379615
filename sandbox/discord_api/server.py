"""``DiscordSandbox``: the control object tests drive, and the aiohttp server behind it.

Test-facing events: ``slash_command``, ``autocomplete``, ``message_command`` (a message
context menu, Apps > name), ``click_button``, ``submit_modal`` (after the bot answered with a
modal: read it as ``interaction.modal``); each returns the ``Interaction`` it sent, whose
answer shows up on it (``responded``, ``original_message``, ``followups``, ``modal``). Members'
messages: ``user_message``, ``post_message`` (files, embeds), ``post_voice_message``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from aiohttp import web

from .cdn import Cdn
from .faults import FaultPlan, Outage, OutageStatus, RandomFaults
from .gateway import Gateway
from .interaction_events import FileSpec, InteractionFactory
from .messages import MessageStore
from .middleware import API_PREFIX, Pipeline
from .models import (
    Channel,
    Guild,
    Interaction,
    Member,
    Message,
    RecordedRequest,
    Role,
    User,
)
from .multipart import Upload
from .payloads import guild_create_payload
from .ratelimits import RateLimiter
from .rest import RestApi
from .state import INTENT_GUILDS, SandboxState
from .webhooks import InteractionApi

_POLL_INTERVAL = 0.01


class DiscordSandbox:
    """A local Discord: REST API, gateway and CDN on one loopback port.

    Point discord.py at it with ``discord.http.Route.BASE = sandbox.api_base`` (and, for
    non-resumable reconnects, ``DiscordWebSocket.DEFAULT_GATEWAY``; see ``redirect``).
    """

    def __init__(
        self,
        *,
        bot_token: str = "sandbox-bot-token",
        token_ttl: float = 900.0,
        first_response_deadline: float = 3.0,
        attachment_size_limit: int = 10 * 1024 * 1024,
        fault_rate: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        self._bot_token = bot_token
        self.state = SandboxState(
            attachment_size_limit=attachment_size_limit,
            first_response_deadline=first_response_deadline,
            token_ttl=token_ttl,
        )
        self.requests: list[RecordedRequest] = []
        self.faults = FaultPlan()
        # Opt-in: a fraction of message creates and edits answer 500/502 (see fault_rate).
        self.random_faults = RandomFaults(fault_rate, rng)
        self.rate_limits = RateLimiter()
        self._outage = Outage()
        self.gateway = Gateway(self.state, bot_token)
        self._store = MessageStore(self.state)
        self._factory = InteractionFactory(self.state)
        self._runner: web.AppRunner | None = None
        self.api_base = ""
        self.gateway_url = ""
        self.guild = self.state.add_guild("Sandbox")
        self.channel = self.guild.channels[0]

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if host != "127.0.0.1":
            raise ValueError("the sandbox binds to loopback only")
        app = self._build_app()
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0][1]
        origin = f"http://{host}:{bound}"
        self.state.cdn_base = origin
        self.api_base = origin + API_PREFIX
        self.gateway_url = self.gateway.url = f"ws://{host}:{bound}/gateway"

    def _build_app(self) -> web.Application:
        pipeline = Pipeline(
            self.state,
            self.faults,
            self.rate_limits,
            self.requests.append,
            self.random_faults,
            self._outage,
        )
        # Room for several uploads at the limit plus JSON; larger bodies are refused by aiohttp.
        max_body = max(self.state.attachment_size_limit * 12, 64 * 1024 * 1024)
        app = web.Application(client_max_size=max_body, middlewares=[pipeline.middleware()])
        rest = RestApi(self.state, self._store, self.gateway, self._bot_token)
        app.add_routes(rest.routes(API_PREFIX))
        app.add_routes(InteractionApi(self.state, self._store).routes(API_PREFIX))
        app.add_routes(Cdn(self.state).routes())
        app.add_routes([web.get("/gateway", self.gateway.handle)])
        return app

    async def close(self) -> None:
        self._outage.end()  # releases requests held by a "timeout" outage
        await self.gateway.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> DiscordSandbox:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # -- settings and views --------------------------------------------------------------------

    @property
    def bot_token(self) -> str:
        """The token the bot must log in with (a sandbox value, not a secret)."""
        return self._bot_token

    @property
    def application_id(self) -> int:
        return self.state.application_id

    @property
    def bot_user(self) -> User:
        return self.state.bot_user

    @property
    def bot_member(self) -> Member:
        return self.guild.members[self.bot_user.id]

    @property
    def first_response_deadline(self) -> float:
        return self.state.first_response_deadline

    @first_response_deadline.setter
    def first_response_deadline(self, seconds: float) -> None:
        self.state.first_response_deadline = seconds

    @property
    def token_ttl(self) -> float:
        return self.state.token_ttl

    @token_ttl.setter
    def token_ttl(self, seconds: float) -> None:
        self.state.token_ttl = seconds

    @property
    def attachment_size_limit(self) -> int:
        return self.state.attachment_size_limit

    @property
    def messages(self) -> dict[int, Message]:
        return self.state.messages

    @property
    def interactions(self) -> dict[int, Interaction]:
        return self.state.interactions

    @property
    def commands(self) -> list[dict[str, Any]]:
        """The registered global commands."""
        return self.state.global_commands

    def guild_commands(self, guild: Guild) -> list[dict[str, Any]]:
        return self.state.commands_for(guild.id)

    @property
    def connected(self) -> asyncio.Event:
        """Set while the bot has a live, identified (or resumed) gateway session."""
        return self.gateway.connected

    async def wait_until_ready(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        try:
            await asyncio.wait_for(self.gateway.connected.wait(), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"the bot did not IDENTIFY within {timeout}s; requests so far: "
                f"{self._recent_requests()}"
            ) from None

    async def wait_for_shards(self, *shard_ids: int, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Until a session runs each of these shards, on a live socket."""
        await self.wait_for(
            lambda: all(self.gateway.shard_connected(s) for s in shard_ids), timeout
        )

    # -- the world -----------------------------------------------------------------------------

    def add_guild(self, name: str, *, shard: tuple[int, int] | None = None) -> Guild:
        """A new server; `shard=(shard_id, shard_count)` picks an id on that gateway shard."""
        guild = self.state.add_guild(name, shard)
        payload = guild_create_payload(guild, self.bot_user, all_members=False, unavailable=None)
        self.state.emit("GUILD_CREATE", payload, INTENT_GUILDS)
        return guild

    def add_channel(self, guild: Guild, name: str, *, nsfw: bool = False) -> Channel:
        """A new text channel; `nsfw`: age-restricted."""
        return self.state.add_channel(guild, name, nsfw=nsfw)

    def add_thread(self, parent: Channel, name: str, owner: Member) -> Channel:
        """A public thread in `parent`; interactions sent in it carry it as their channel."""
        return self.state.add_thread(parent, name, owner)

    def add_role(self, guild: Guild, name: str, permissions: int = 0) -> Role:
        return self.state.add_role(guild, name, permissions)

    def delete_message(self, message: Message) -> None:
        """A moderator deletes the message: edits of it then get 404 Unknown Message (10008)."""
        self._store.delete(message)

    def delete_channel(self, channel: Channel) -> None:
        """The channel and its messages go: requests to it get 404 Unknown Channel (10003)."""
        for message in list(self.state.messages.values()):
            if message.channel_id == channel.id and not message.deleted:
                self._store.delete(message)
        self.state.channels.pop(channel.id, None)
        for guild in self.state.guilds.values():
            if channel in guild.channels:
                guild.channels.remove(channel)

    def add_member(
        self,
        guild: Guild,
        username: str,
        *,
        roles: Sequence[Role] = (),
        permissions: int | None = None,
        locale: str = "en-US",
    ) -> Member:
        """A member joins; ``locale`` is their client's language (the interactions' locale)."""
        return self.state.add_member(
            guild, username, roles=roles, permissions=permissions, locale=locale
        )

    def user_message(self, member: Member, content: str, channel: Channel | None = None) -> Message:
        """A message a member posts (MESSAGE_CREATE reaches bots with the messages intent)."""
        return self.post_message(member, channel, content=content)

    def post_message(
        self,
        member: Member,
        channel: Channel | None = None,
        *,
        content: str = "",
        files: Sequence[FileSpec] = (),
        embeds: Sequence[dict[str, Any]] = (),
    ) -> Message:
        """A member's message with attachments and/or embeds, for context menus to target.

        ``files``: ``(filename, data, content_type)`` each; they become CDN attachments with
        ``content_type`` (sniffed from the name when None or octet-stream), ``size``, a signed
        ``url`` and, for images Pillow can read, ``width``/``height``. ``embeds``: embed dicts
        as Discord serves them, e.g. a link's image preview ``{"type": "image", "url": ...,
        "thumbnail": {"url": ..., "proxy_url": ..., "width": 512, "height": 512}}`` (``type``
        defaults to "rich"). Same size limit and checks as any message (413, 50006).
        """
        target = self._channel_for(member, channel)
        uploads = [
            Upload(f"files[{i}]", name, content_type or "application/octet-stream", data, i)
            for i, (name, data, content_type) in enumerate(files)
        ]
        payload: dict[str, Any] = {"content": content, "embeds": list(embeds)}
        return self._store.create(target, member.user, payload, uploads)

    def post_voice_message(
        self,
        member: Member,
        data: bytes,
        *,
        duration_secs: float,
        channel: Channel | None = None,
    ) -> Message:
        """A voice message: one ``voice-message.ogg`` (audio/ogg) attachment carrying
        ``duration_secs`` and ``waveform``, the message flagged IS_VOICE_MESSAGE (8192)."""
        target = self._channel_for(member, channel)
        upload = Upload("files[0]", "voice-message.ogg", "audio/ogg", data, 0)
        return self._store.create(target, member.user, {}, [upload], voice_secs=duration_secs)

    # -- events to the bot ---------------------------------------------------------------------

    async def slash_command(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        member: Member,
        channel: Channel | None = None,
        attachments: dict[str, FileSpec] | None = None,
        subcommand: Sequence[str] = (),
    ) -> Interaction:
        """Sends a type 2 INTERACTION_CREATE; returns at once (the bot answers on its own)."""
        channel = self._channel_for(member, channel)
        interaction = self._factory.command(
            name, options or {}, member, channel, files=attachments or {}, subcommand=subcommand
        )
        self._send(interaction)
        return interaction

    async def autocomplete(
        self,
        name: str,
        options: dict[str, Any],
        focused: str,
        *,
        member: Member,
        channel: Channel | None = None,
        subcommand: Sequence[str] = (),
        timeout: float = 5.0,  # noqa: ASYNC109 (part of the specified API)
    ) -> list[dict[str, Any]]:
        """Sends a type 4 interaction and returns the choices of the bot's type 8 answer."""
        channel = self._channel_for(member, channel)
        interaction = self._factory.command(
            name, options, member, channel, files={}, subcommand=subcommand, focused=focused
        )
        self._send(interaction)
        await self.wait_for(lambda: interaction.autocomplete_choices is not None, timeout)
        return list(interaction.autocomplete_choices or [])

    async def message_command(self, name: str, target: Message, *, member: Member) -> Interaction:
        """Runs the message context menu command ``name`` (Apps > name) on ``target``: a type 2
        INTERACTION_CREATE with ``data.type`` 3, ``target_id`` and the whole message in
        ``data.resolved.messages``, in the target's channel. Returns at once.

        ValueError: a name the bot did not sync as a message command, a deleted or ephemeral
        target, a member of another guild.
        """
        interaction = self._factory.message_command(name, target, member)
        self._send(interaction)
        return interaction

    async def submit_modal(
        self,
        interaction: Interaction,
        values: dict[str, str] | None = None,
        *,
        member: Member | None = None,
    ) -> Interaction:
        """The member submits the modal the bot answered ``interaction`` with (its data is
        ``interaction.modal``): a MODAL_SUBMIT (type 5) with the modal's ``custom_id`` and
        every text input's value (from ``values`` by custom id; an input left out keeps its
        default ``value``, else ""). Returns the new interaction at once; the bot's answer
        shows up on it like on any other (``responded``, ``original_message``, and for a
        modal opened from a button, the button's message in ``message``).

        ValueError, as a real client would not let the member submit: no modal, already
        submitted, another member than the one it was shown to, an unknown input id, an empty
        required input, a value outside min_length/max_length.
        """
        submitter = interaction.member if member is None else member
        submission = self._factory.modal_submit(interaction, values or {}, submitter)
        self._send(submission)
        return submission

    async def click_button(
        self, message: Message, custom_id: str, *, member: Member
    ) -> Interaction:
        interaction = self._factory.button(message, custom_id, member)
        self._send(interaction)
        return interaction

    def _channel_for(self, member: Member, channel: Channel | None) -> Channel:
        if channel is None:
            guild = self.state.guilds[member.guild_id]
            return guild.channels[0]
        if channel.guild_id != member.guild_id:
            raise ValueError(f"{member.user.username} is not in the guild of #{channel.name}")
        return channel

    def _send(self, interaction: Interaction) -> None:
        payload = self._factory.payload(interaction)
        session = self.gateway.dispatch_to_guild(
            interaction.guild.id, "INTERACTION_CREATE", payload
        )
        # Undelivered when no session runs the server's shard: no one will answer it.
        interaction.shard = session.shard[0] if session is not None else None
        # The response deadline counts from the dispatch.
        interaction.sent_at = time.monotonic()

    # -- observation ---------------------------------------------------------------------------

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        timeout: float = 10.0,  # noqa: ASYNC109 (part of the specified API)
    ) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                name = getattr(predicate, "__qualname__", repr(predicate))
                raise TimeoutError(
                    f"{name} still false after {timeout}s; recent requests: "
                    f"{self._recent_requests()}"
                )
            await asyncio.sleep(_POLL_INTERVAL)

    async def wait_for_request(
        self,
        predicate: Callable[[RecordedRequest], bool],
        timeout: float = 10.0,  # noqa: ASYNC109
        *,
        start: int = 0,
    ) -> RecordedRequest:
        """The first recorded request from index ``start`` on (past ones count) that matches."""
        found: list[RecordedRequest] = []

        def matched() -> bool:
            found.extend(r for r in self.requests[start:] if predicate(r))
            return bool(found)

        await self.wait_for(matched, timeout)
        return found[0]

    def _recent_requests(self, count: int = 8) -> list[str]:
        return [f"{r.route} -> {r.status}" for r in self.requests[-count:]]

    # -- faults --------------------------------------------------------------------------------

    @property
    def fault_rate(self) -> float:
        """The fraction (0..1) of message creates and edits, by bot token or interaction
        webhook, that answer 500 or 502 without effect (never the interaction callback)."""
        return self.random_faults.rate

    @fault_rate.setter
    def fault_rate(self, rate: float) -> None:
        self.random_faults.rate = rate

    def fail_next(
        self,
        method: str,
        route_pattern: str,
        status: int,
        *,
        code: int | None = None,
        times: int = 1,
        retry_after: float = 0.2,
    ) -> None:
        """The next ``times`` requests matching get ``status`` (429s are Discord-shaped).

        ``route_pattern`` is an fnmatch pattern over the path without /api/v10, tried against
        both the templated route and the real path ("/webhooks/*", "/channels/*/messages").
        """
        self.faults.add(
            method, route_pattern, status, code=code, times=times, retry_after=retry_after
        )

    # -- outages ------------------------------------------------------------------------------
    # While an outage is on, every REST request under /api/v10 (interaction callbacks,
    # webhooks, channel messages, log-in calls, unknown paths) is answered with a Discord-shaped
    # JSON error before any handler runs, so it has no effect; it is recorded like any other
    # request, with its error status. Rate limits and ``fail_next`` shots are not used up.
    # The gateway websocket and the CDN stay up: interactions still reach the bot.

    def start_outage(self, outage_status: OutageStatus = 503, *, hold: float = 30.0) -> None:
        """Starts an outage that lasts until ``end_outage``.

        ``outage_status``: the 5xx status to answer (503 by default; 500, 502...), or
        "timeout": each request is held open until the outage ends or ``hold`` seconds pass,
        then answered 504, so a client with a shorter timeout sees a timeout.
        """
        self._outage.start(outage_status, hold=hold)

    def outage_for(
        self, seconds: float, outage_status: OutageStatus = 503, *, hold: float = 30.0
    ) -> None:
        """An outage that ends by itself after ``seconds`` (on the running event loop);
        ``end_outage`` still ends it early."""
        self._outage.start(outage_status, hold=hold)
        self._outage.end_after(seconds)

    def end_outage(self) -> None:
        """Ends the outage now; requests held by a "timeout" outage are answered 504."""
        self._outage.end()

    @property
    def in_outage(self) -> bool:
        return self._outage.active

    @property
    def outage_refusals(self) -> int:
        """How many requests outages refused so far (held ones count on arrival)."""
        return self._outage.refused

    def expire_interaction(self, interaction: Interaction) -> None:
        interaction.expired = True

    async def disconnect_gateway(self, *, resumable: bool = True) -> None:
        await self.gateway.disconnect(resumable=resumable)

    def refuse_gateway(self, refuse: bool = True) -> None:
        """A gateway outage: new websockets get 503 until called with False (REST stays up).
        Combine with disconnect_gateway to drop the bot's current socket too."""
        self.gateway.refusing = refuse
