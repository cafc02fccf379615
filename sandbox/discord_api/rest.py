"""Bot-token REST routes: identity, gateway discovery, commands, channels, messages, guilds."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .errors import (
    DiscordError,
    not_author,
    unknown_channel,
    unknown_guild,
    unknown_member,
    unknown_message,
    unknown_user,
)
from .gateway import Gateway
from .messages import MessageStore
from .models import Channel, Guild, Message
from .payloads import (
    bot_user_payload,
    channel_payload,
    guild_payload,
    member_payload,
    message_payload,
    role_payload,
    user_payload,
)
from .request_utils import (
    Handler,
    body_of,
    list_payload_of,
    payload_of,
    requires_bot_token,
    snowflake_param,
)
from .responses import json_response, no_content
from .state import SandboxState

UNKNOWN_APPLICATION = DiscordError(404, 10002, "Unknown Application")


# Privileged: without it, other users' messages come without what they say or carry.
INTENT_MESSAGE_CONTENT = 1 << 15


class RestApi:
    def __init__(
        self, state: SandboxState, store: MessageStore, gateway: Gateway, bot_token: str
    ) -> None:
        self.state = state
        self.store = store
        self.gateway = gateway
        self.bot_token = bot_token

    def routes(self, prefix: str) -> list[web.RouteDef]:
        table: list[tuple[str, str, Handler]] = [
            ("GET", "/users/@me", self.get_me),
            ("GET", "/users/{user}", self.get_user),
            ("GET", "/oauth2/applications/@me", self.get_application),
            ("GET", "/applications/@me", self.get_application),
            ("GET", "/gateway/bot", self.get_gateway_bot),
            ("GET", "/applications/{app}/commands", self.get_commands),
            ("PUT", "/applications/{app}/commands", self.put_commands),
            ("GET", "/applications/{app}/guilds/{guild}/commands", self.get_commands),
            ("PUT", "/applications/{app}/guilds/{guild}/commands", self.put_commands),
            ("GET", "/channels/{channel}", self.get_channel),
            ("GET", "/channels/{channel}/messages", self.list_messages),
            ("POST", "/channels/{channel}/messages", self.create_message),
            ("POST", "/channels/{channel}/typing", self.typing),
            ("GET", "/channels/{channel}/messages/{message}", self.get_message),
            ("PATCH", "/channels/{channel}/messages/{message}", self.edit_message),
            ("DELETE", "/channels/{channel}/messages/{message}", self.delete_message),
            ("GET", "/guilds/{guild}", self.get_guild),
            ("GET", "/guilds/{guild}/channels", self.get_guild_channels),
            ("GET", "/guilds/{guild}/roles", self.get_roles),
            ("GET", "/guilds/{guild}/members/{user}", self.get_member),
        ]
        routes = [
            web.route(method, prefix + path, requires_bot_token(self.bot_token, handler))
            for method, path, handler in table
        ]
        # Gateway discovery needs no token on Discord either.
        routes.append(web.get(prefix + "/gateway", self.get_gateway))
        return routes

    # -- identity and gateway ------------------------------------------------------------------

    async def get_me(self, request: web.Request) -> web.Response:
        return json_response(bot_user_payload(self.state.bot_user))

    async def get_user(self, request: web.Request) -> web.Response:
        user = self.state.users.get(snowflake_param(request, "user", unknown_user()))
        if user is None:
            raise unknown_user()
        return json_response(user_payload(user))

    async def get_application(self, request: web.Request) -> web.Response:
        state = self.state
        return json_response(
            {
                "id": str(state.application_id),
                "name": state.bot_user.username,
                "icon": None,
                "description": "A local Discord stand-in's application.",
                "summary": "",
                "type": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "owner": user_payload(state.developer),
                "team": None,
                "flags": 0,
                "bot": user_payload(state.bot_user),
                "rpc_origins": [],
                "redirect_uris": [],
                "tags": [],
                "interactions_endpoint_url": None,
                "approximate_guild_count": len(state.guilds),
                "integration_types_config": {"0": {}},
            }
        )

    async def get_gateway(self, request: web.Request) -> web.Response:
        return json_response({"url": self.gateway.url})

    async def get_gateway_bot(self, request: web.Request) -> web.Response:
        limits = {"total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1}
        shards = self.gateway.recommended_shards
        return json_response(
            {"url": self.gateway.url, "shards": shards, "session_start_limit": limits}
        )

    # -- application commands ------------------------------------------------------------------

    def _command_scope(self, request: web.Request) -> int | None:
        if snowflake_param(request, "app", UNKNOWN_APPLICATION) != self.state.application_id:
            raise UNKNOWN_APPLICATION
        if "guild" not in request.match_info:
            return None
        return self._guild(request).id

    async def get_commands(self, request: web.Request) -> web.Response:
        return json_response(self.state.commands_for(self._command_scope(request)))

    async def put_commands(self, request: web.Request) -> web.Response:
        guild_id = self._command_scope(request)
        return json_response(self.state.replace_commands(guild_id, list_payload_of(request)))

    # -- channels and messages -----------------------------------------------------------------

    def _channel(self, request: web.Request) -> Channel:
        channel = self.state.channels.get(snowflake_param(request, "channel", unknown_channel()))
        if channel is None:
            raise unknown_channel()
        return channel

    def _message(self, request: web.Request) -> Message:
        channel = self._channel(request)
        message = self.state.messages.get(snowflake_param(request, "message", unknown_message()))
        # Ephemeral messages exist only for their interaction's webhook.
        if (
            message is None
            or message.channel_id != channel.id
            or message.deleted
            or message.ephemeral
        ):
            raise unknown_message()
        return message

    async def get_channel(self, request: web.Request) -> web.Response:
        return json_response(channel_payload(self._channel(request)))

    async def list_messages(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        limit = max(1, min(int(request.query.get("limit", "50")), 100))
        before = int(request.query.get("before", "0")) or None
        after = int(request.query.get("after", "0"))
        visible = [
            m
            for m in self.state.messages.values()
            if m.channel_id == channel.id and not m.deleted and not m.ephemeral
        ]
        picked = [m for m in visible if m.id > after and (before is None or m.id < before)]
        picked.sort(key=lambda m: m.id, reverse=True)  # newest first, as Discord lists them
        return json_response([self._readable(m) for m in picked[:limit]])

    async def create_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        body = body_of(request)
        message = self.store.create(channel, self.state.bot_user, payload_of(request), body.uploads)
        return json_response(message_payload(message))

    async def typing(self, request: web.Request) -> web.Response:
        self._channel(request)
        return no_content()

    async def get_message(self, request: web.Request) -> web.Response:
        return json_response(self._readable(self._message(request)))

    def _readable(self, message: Message) -> dict[str, Any]:
        """The message as a bot without the Message Content intent gets it: another user's
        message (not mentioning the bot) comes without its content, embeds, attachments and
        components, as Discord sends it."""
        payload = message_payload(message)
        session = self.gateway.session_for_guild(message.guild_id)
        if session is not None and session.intents & INTENT_MESSAGE_CONTENT:
            return payload
        bot_id = self.state.bot_user.id
        mentioned = f"<@{bot_id}>" in message.content or f"<@!{bot_id}>" in message.content
        if message.author.id != bot_id and not mentioned:
            payload.update(content="", embeds=[], attachments=[], components=[])
        return payload

    async def edit_message(self, request: web.Request) -> web.Response:
        message = self._message(request)
        if message.author.id != self.state.bot_user.id:
            raise not_author()
        self.store.edit(message, payload_of(request), body_of(request).uploads)
        return json_response(message_payload(message))

    async def delete_message(self, request: web.Request) -> web.Response:
        # The bot's managed role has Manage Messages, so it may delete anyone's message.
        self.store.delete(self._message(request))
        return no_content()

    # -- guilds --------------------------------------------------------------------------------

    def _guild(self, request: web.Request) -> Guild:
        guild = self.state.guilds.get(snowflake_param(request, "guild", unknown_guild()))
        if guild is None:
            raise unknown_guild()
        return guild

    async def get_guild(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        payload: dict[str, Any] = guild_payload(guild)
        if request.query.get("with_counts") in ("true", "1", "True"):
            payload["approximate_member_count"] = len(guild.members)
            payload["approximate_presence_count"] = 0
        return json_response(payload)

    async def get_guild_channels(self, request: web.Request) -> web.Response:
        return json_response([channel_payload(c) for c in self._guild(request).channels])

    async def get_roles(self, request: web.Request) -> web.Response:
        return json_response([role_payload(r) for r in self._guild(request).roles])

    async def get_member(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        member = guild.members.get(snowflake_param(request, "user", unknown_member()))
        if member is None:
            raise unknown_member()
        return json_response(member_payload(member, guild))
