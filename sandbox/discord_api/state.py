"""The sandbox's world: guilds, channels, roles, members, messages, attachments, commands.

Changes that the bot would hear about are announced to ``listeners`` (the gateway) as
``(event name, payload, intent bit)``.
"""

from __future__ import annotations

import datetime as dt
import io
import mimetypes
import re
from collections.abc import Callable, Sequence
from typing import Any

from .errors import DiscordError, invalid_form
from .models import Attachment, Channel, Guild, Interaction, Member, Message, Role, User
from .payloads import channel_payload, member_payload, role_payload
from .permissions import DEFAULT_BOT, DEFAULT_EVERYONE
from .snowflakes import SnowflakeFactory

INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_MESSAGES = 1 << 9
PUBLIC_THREAD = 11

Listener = Callable[[str, dict[str, Any], int], None]

# Upload limits by boost tier (discord.py's Guild.filesize_limit table).
_TIER_LIMITS = ((0, 10 * 1024 * 1024), (2, 50 * 1024 * 1024), (3, 100 * 1024 * 1024))

CHAT_INPUT, USER_COMMAND, MESSAGE_COMMAND = 1, 2, 3
# Per application and scope (global, or one guild): 100 slash commands, 5 of each context menu.
_COMMAND_LIMITS = {CHAT_INPUT: 100, USER_COMMAND: 5, MESSAGE_COMMAND: 5}
_SLASH_NAME = re.compile(r"^[-_'\w]{1,32}$")


def check_commands(payloads: list[dict[str, Any]]) -> None:
    """A bulk overwrite Discord would refuse: 400 before anything changes."""
    counts = dict.fromkeys(_COMMAND_LIMITS, 0)
    seen: set[tuple[str, int]] = set()
    for index, payload in enumerate(payloads):
        kind = payload.get("type", CHAT_INPUT)
        if kind not in _COMMAND_LIMITS:
            text = f"Value must be one of {set(_COMMAND_LIMITS)}."
            raise invalid_form(f"{index}.type", "BASE_TYPE_CHOICES", text)
        name = payload.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 32:
            text = "Must be between 1 and 32 in length."
            raise invalid_form(f"{index}.name", "BASE_TYPE_BAD_LENGTH", text)
        # Slash command names are lowercase words; context menu names may have spaces and
        # capitals ("Animate image").
        if kind == CHAT_INPUT and (not _SLASH_NAME.match(name) or name != name.lower()):
            raise invalid_form(
                f"{index}.name", "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"
            )
        _check_localizations(payload, f"{index}", slash=kind == CHAT_INPUT)
        if (name, kind) in seen:
            text = "Application command names must be unique"
            raise invalid_form(f"{index}.name", "APPLICATION_COMMANDS_DUPLICATE_NAME", text)
        seen.add((name, kind))
        counts[kind] += 1
        if counts[kind] > _COMMAND_LIMITS[kind]:
            limit = _COMMAND_LIMITS[kind]
            raise DiscordError(
                400, 30032, f"Maximum number of application commands reached ({limit})"
            )


def _check_localizations(
    payload: dict[str, Any], path: str, *, slash: bool, name_max: int = 32
) -> None:
    """Localized names follow the name's rules (1-32; for slash commands and options lower
    case words; choices 1-100), localized descriptions 1-100 characters."""
    for locale, name in (payload.get("name_localizations") or {}).items():
        bad = not isinstance(name, str) or not 1 <= len(name) <= name_max
        if bad or (slash and (not _SLASH_NAME.match(name) or name != name.lower())):
            raise invalid_form(
                f"{path}.name_localizations.{locale}",
                "APPLICATION_COMMAND_INVALID_NAME",
                "Command name is invalid",
            )
    for locale, text in (payload.get("description_localizations") or {}).items():
        if not isinstance(text, str) or not 1 <= len(text) <= 100:
            raise invalid_form(
                f"{path}.description_localizations.{locale}",
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 100 in length.",
            )
    for i, option in enumerate(payload.get("options") or []):
        _check_localizations(option, f"{path}.options.{i}", slash=True)
    for i, choice in enumerate(payload.get("choices") or []):
        _check_localizations(choice, f"{path}.choices.{i}", slash=False, name_max=100)


def premium_tier_for(limit: int) -> int:
    """The lowest boost tier whose upload limit covers ``limit``, so the guild agrees with it."""
    for tier, tier_limit in _TIER_LIMITS:
        if limit <= tier_limit:
            return tier
    return 3


def guess_content_type(filename: str, declared: str | None) -> str:
    """discord.py uploads everything as application/octet-stream; Discord sniffs the name."""
    if declared and declared != "application/octet-stream":
        return declared
    guessed, _ = mimetypes.guess_type(filename)
    return guessed or declared or "application/octet-stream"


def image_size(data: bytes, content_type: str) -> tuple[int | None, int | None]:
    if not content_type.startswith("image/"):
        return None, None
    try:
        from PIL import Image  # optional: only for width/height of image attachments

        with Image.open(io.BytesIO(data)) as image:
            return image.width, image.height
    except Exception:
        return None, None


class SandboxState:
    def __init__(
        self, *, attachment_size_limit: int, first_response_deadline: float, token_ttl: float
    ) -> None:
        self.ids = SnowflakeFactory()
        self.attachment_size_limit = attachment_size_limit
        self.first_response_deadline = first_response_deadline  # seconds to the first callback
        self.token_ttl = token_ttl  # seconds an interaction token works for webhooks
        self.application_id = self.ids.next()
        # Bots made since 2017 share their id with their application.
        self.bot_user = User(id=self.application_id, username="Sandbox Bot", bot=True)
        self.users: dict[int, User] = {self.bot_user.id: self.bot_user}
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}
        self.messages: dict[int, Message] = {}
        self.attachments: dict[int, Attachment] = {}
        self.interactions: dict[int, Interaction] = {}
        self.global_commands: list[dict[str, Any]] = []
        self.guild_commands: dict[int, list[dict[str, Any]]] = {}
        self.cdn_base = ""  # "http://127.0.0.1:PORT", set once the server listens
        # Attachment links are signed for this long, as Discord's are (about a day).
        self.attachment_link_lifetime: float | None = 86_400.0
        self.listeners: list[Listener] = []
        self.developer = self._new_user("sandbox-developer")  # the application's owner

    def emit(self, event: str, data: dict[str, Any], intent: int) -> None:
        for listener in self.listeners:
            listener(event, data, intent)

    # -- the world ---------------------------------------------------------------------------

    def add_guild(self, name: str, shard: tuple[int, int] | None = None) -> Guild:
        """`shard`: (shard_id, shard_count) the server's id must fall on; None: any."""
        guild_id = self.ids.next_on_shard(*shard) if shard is not None else self.ids.next()
        # @everyone's id is the guild's id.
        everyone = Role(
            id=guild_id, guild_id=guild_id, name="@everyone", permissions=DEFAULT_EVERYONE
        )
        owner = self._new_user(f"{name.lower()}-owner")
        guild = Guild(
            id=guild_id,
            name=name,
            owner_id=owner.id,
            everyone=everyone,
            premium_tier=premium_tier_for(self.attachment_size_limit),
            roles=[everyone],
        )
        self.guilds[guild_id] = guild
        self._join(guild, owner, [])
        bot_role = self._new_role(
            guild, self.bot_user.username, DEFAULT_BOT, bot_id=self.bot_user.id
        )
        self._join(guild, self.bot_user, [bot_role])
        self._new_channel(guild, "general")
        return guild

    def add_channel(self, guild: Guild, name: str, *, nsfw: bool = False) -> Channel:
        channel = self._new_channel(guild, name)
        channel.nsfw = nsfw
        self.emit("CHANNEL_CREATE", channel_payload(channel), INTENT_GUILDS)
        return channel

    def add_thread(self, parent: Channel, name: str, owner: Member) -> Channel:
        """A public thread in `parent`, started by `owner` (THREAD_CREATE)."""
        guild = self.guilds[parent.guild_id]
        thread = Channel(
            id=self.ids.next(),
            guild_id=guild.id,
            name=name,
            type=PUBLIC_THREAD,
            parent_id=parent.id,
            owner_id=owner.id,
        )
        guild.threads.append(thread)
        self.channels[thread.id] = thread
        self.emit(
            "THREAD_CREATE", {**channel_payload(thread), "newly_created": True}, INTENT_GUILDS
        )
        return thread

    def add_role(self, guild: Guild, name: str, permissions: int = 0) -> Role:
        role = self._new_role(guild, name, permissions)
        data = {"guild_id": str(guild.id), "role": role_payload(role)}
        self.emit("GUILD_ROLE_CREATE", data, INTENT_GUILDS)
        return role

    def add_member(
        self,
        guild: Guild,
        username: str,
        *,
        roles: Sequence[Role] = (),
        permissions: int | None = None,
        locale: str = "en-US",
    ) -> Member:
        member = self._join(guild, self._new_user(username), list(roles), permissions)
        member.locale = locale
        data = {**member_payload(member, guild), "guild_id": str(guild.id)}
        self.emit("GUILD_MEMBER_ADD", data, INTENT_GUILD_MEMBERS)
        return member

    def _new_user(self, username: str) -> User:
        user = User(id=self.ids.next(), username=username)
        self.users[user.id] = user
        return user

    def _new_role(
        self, guild: Guild, name: str, permissions: int, bot_id: int | None = None
    ) -> Role:
        role = Role(self.ids.next(), guild.id, name, permissions, len(guild.roles), bot_id)
        guild.roles.append(role)
        return role

    def _new_channel(self, guild: Guild, name: str) -> Channel:
        channel = Channel(
            id=self.ids.next(), guild_id=guild.id, name=name, position=len(guild.channels)
        )
        guild.channels.append(channel)
        self.channels[channel.id] = channel
        return channel

    def _join(
        self, guild: Guild, user: User, roles: list[Role], permissions: int | None = None
    ) -> Member:
        member = Member(user, guild.id, roles, dt.datetime.now(dt.UTC), permissions)
        guild.members[user.id] = member
        return member

    # -- attachments -------------------------------------------------------------------------

    def add_attachment(
        self,
        channel_id: int,
        filename: str,
        data: bytes,
        content_type: str | None = None,
        description: str | None = None,
    ) -> Attachment:
        attachment_id = self.ids.next()
        kind = guess_content_type(filename, content_type)
        width, height = image_size(data, kind)
        path = f"/attachments/{channel_id}/{attachment_id}/{filename}"
        attachment = Attachment(
            id=attachment_id,
            channel_id=channel_id,
            filename=filename,
            content_type=kind,
            data=data,
            url=f"{self.cdn_base}{path}",
            proxy_url=f"{self.cdn_base}{path}?proxy=1",
            link_lifetime=self.attachment_link_lifetime,
            description=description,
            width=width,
            height=height,
        )
        self.attachments[attachment_id] = attachment
        return attachment

    # -- lookups -----------------------------------------------------------------------------

    def guild_of(self, channel: Channel) -> Guild:
        return self.guilds[channel.guild_id]

    def interaction_by_token(self, token: str) -> Interaction | None:
        for interaction in self.interactions.values():
            if interaction.token == token:
                return interaction
        return None

    def commands_for(self, guild_id: int | None) -> list[dict[str, Any]]:
        if guild_id is None:
            return self.global_commands
        return self.guild_commands.get(guild_id, [])

    def find_command(self, name: str, guild_id: int, kind: int = 1) -> dict[str, Any] | None:
        """Guild commands shadow global ones, as in the Discord client. ``kind``: 1 slash
        command, 2 user and 3 message context menu (names are unique per type)."""
        for command in [*self.commands_for(guild_id), *self.global_commands]:
            if command["name"] == name and command.get("type", 1) == kind:
                return command
        return None

    def replace_commands(
        self, guild_id: int | None, payloads: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Bulk overwrite: same name and type keep their id, as on Discord (checked first with
        ``check_commands``). Context menus (types 2 and 3) come back with an empty
        description, as Discord returns them."""
        check_commands(payloads)
        previous = {(c["name"], c.get("type", 1)): c for c in self.commands_for(guild_id)}
        registered = []
        for payload in payloads:
            kind = payload.get("type", 1)
            old = previous.get((payload["name"], kind))
            command = {
                "name_localizations": None,
                "description_localizations": None,
                "default_member_permissions": None,
                "nsfw": False,
                "contexts": None,
                "integration_types": [0],
                **payload,
                "type": kind,
                "description": payload.get("description", "") if kind == CHAT_INPUT else "",
                "id": old["id"] if old else str(self.ids.next()),
                "application_id": str(self.application_id),
                "version": str(self.ids.next()),
                "options": payload.get("options", []),
            }
            if guild_id is not None:
                command["guild_id"] = str(guild_id)
            registered.append(command)
        if guild_id is None:
            self.global_commands = registered
        else:
            self.guild_commands[guild_id] = registered
        return registered
