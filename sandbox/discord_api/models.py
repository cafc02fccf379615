"""The sandbox's state objects: plain records, serialised by ``payloads``."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .snowflakes import snowflake_time

EPHEMERAL = 1 << 6
LOADING = 1 << 7
IS_VOICE_MESSAGE = 1 << 13


@dataclass(eq=False)
class User:
    id: int
    username: str
    bot: bool = False
    global_name: str | None = None


@dataclass(eq=False)
class Role:
    id: int
    guild_id: int
    name: str
    permissions: int = 0
    position: int = 0
    bot_id: int | None = None  # set on the bot's managed integration role


@dataclass(eq=False)
class Channel:
    id: int
    guild_id: int
    name: str
    type: int = 0  # GUILD_TEXT
    position: int = 0
    topic: str | None = None
    permission_overwrites: list[dict[str, Any]] = field(default_factory=list)
    last_message_id: int | None = None
    nsfw: bool = False  # age-restricted; sent in GUILD_CREATE and in every interaction
    # A thread (type 11): the channel it is in, and who started it. Its age restriction is
    # its parent's; Discord does not send `nsfw` on threads.
    parent_id: int | None = None
    owner_id: int | None = None


@dataclass(eq=False)
class Member:
    user: User
    guild_id: int
    roles: list[Role]
    joined_at: dt.datetime
    permissions: int | None = None  # explicit total; None = computed from the roles
    nick: str | None = None
    # The member's client language: every interaction they make carries it as `locale`.
    locale: str = "en-US"

    @property
    def id(self) -> int:
        return self.user.id


@dataclass(eq=False)
class Guild:
    id: int
    name: str
    owner_id: int
    everyone: Role
    premium_tier: int = 0
    roles: list[Role] = field(default_factory=list)
    channels: list[Channel] = field(default_factory=list)
    threads: list[Channel] = field(default_factory=list)  # active threads, for GUILD_CREATE
    members: dict[int, Member] = field(default_factory=dict)


@dataclass(eq=False)
class Attachment:
    id: int
    channel_id: int
    filename: str
    content_type: str | None
    data: bytes = field(repr=False)
    url: str
    proxy_url: str
    description: str | None = None
    width: int | None = None
    height: int | None = None
    # Like Discord's CDN links, each payload's url is signed to expire this long after it was
    # served (`ex`, hex seconds); the CDN refuses it after that. None: unsigned links.
    link_lifetime: float | None = None
    # Only voice messages' attachments carry these on Discord.
    duration_secs: float | None = None
    waveform: str | None = None

    @property
    def size(self) -> int:
        return len(self.data)

    def signed_url(self, now: float) -> str:
        """The url as served at `now`: with `ex`, `is` and `hm` when links expire."""
        if self.link_lifetime is None:
            return self.url
        expires = int(now + self.link_lifetime)
        return f"{self.url}?ex={expires:x}&is={int(now):x}&hm={link_signature(self.url, expires)}"


def link_signature(url: str, expires: int) -> str:
    """The stand-in's `hm`: proves the expiry was set by the CDN, not typed by a client."""
    return hashlib.sha256(f"{url}|{expires}".encode()).hexdigest()[:32]


@dataclass(eq=False)
class Message:
    id: int
    channel_id: int
    guild_id: int
    author: User
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    flags: int = 0
    type: int = 0
    tts: bool = False
    edited_at: dt.datetime | None = None
    edit_count: int = 0
    interaction_metadata: dict[str, Any] | None = field(default=None, repr=False)
    webhook_id: int | None = None
    application_id: int | None = None
    interaction_id: int | None = None  # the interaction whose token created it
    deleted: bool = False

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        return bool(self.flags & LOADING)

    @property
    def created_at(self) -> dt.datetime:
        return snowflake_time(self.id)

    def custom_ids(self) -> list[str]:
        """Every ``custom_id`` in the message's components, nested rows included."""
        found: list[str] = []
        stack = list(self.components)
        while stack:
            component = stack.pop(0)
            if "custom_id" in component:
                found.append(component["custom_id"])
            stack.extend(component.get("components", []))
            if isinstance(component.get("accessory"), dict):
                stack.append(component["accessory"])
        return found


@dataclass(eq=False)
class Interaction:
    id: int
    type: int  # 2 command (data.type 1 slash, 3 message menu), 3 component, 4 autocomplete,
    # 5 modal submit
    token: str = field(repr=False)
    application_id: int
    guild: Guild = field(repr=False)
    channel: Channel = field(repr=False)
    member: Member = field(repr=False)
    data: dict[str, Any]
    sent_at: float  # time.monotonic() when dispatched; deadlines count from here
    message: Message | None = field(default=None, repr=False)  # the component's message
    responded: int | None = None  # callback type of the first response
    response_time: float | None = None  # seconds from sending to the first response
    original_message: Message | None = field(default=None, repr=False)
    followups: list[Message] = field(default_factory=list, repr=False)
    ephemeral: bool = False
    expired: bool = False
    autocomplete_choices: list[dict[str, Any]] | None = None
    modal: dict[str, Any] | None = None  # the bot's type 9 answer's data, as sent
    # A modal submission (type 5) points at the interaction that showed the modal, and that
    # one at its submission (a modal closes once submitted).
    modal_source: Interaction | None = field(default=None, repr=False)
    modal_submission: Interaction | None = field(default=None, repr=False)
    # The gateway shard whose session it was sent to; None: no session runs the server's shard.
    shard: int | None = None

    @property
    def created_at(self) -> dt.datetime:
        return snowflake_time(self.id)


class RecordedFile(NamedTuple):
    field: str
    filename: str
    size: int
    content_type: str


@dataclass
class RecordedRequest:
    method: str
    path: str  # without the /api/v10 prefix; tokens replaced by placeholders
    route: str  # "PATCH /webhooks/{app}/{token}/messages/{message}"
    json: Any
    files: list[RecordedFile]
    status: int
    time: float  # time.monotonic() when the request arrived
    query: dict[str, str] = field(default_factory=dict)
    interaction_id: int | None = None  # the interaction whose id or token is in the path
    error_code: int | None = None  # Discord's JSON error code, for error answers
