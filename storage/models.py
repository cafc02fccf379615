"""The storage layer's shared types: plain values, no SQL and no aiosqlite.

The engine, the quota policy and the cogs import them without touching the database; every
SQL module of `storage` maps its rows to them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Literal

DAY_SECONDS = 86_400
MONTH_SECONDS = 30 * DAY_SECONDS

# Float dollars summed in SQL drift by ~1e-15; a video that lands exactly on the budget is fine.
MONEY_EPSILON = 1e-9


class JobState(StrEnum):
    QUEUED = "queued"
    SUBMITTING = "submitting"
    RUNNING = "running"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES = frozenset(
    {JobState.DELIVERED, JobState.FAILED, JobState.CANCELLED, JobState.TIMED_OUT}
)
UNFINISHED_STATES = frozenset(JobState) - FINAL_STATES


# The kinds of image a job can be steered with (their bytes are stored with the job).
IMAGE_KINDS = ("first_frame", "last_frame", "reference")
# The kinds of file Together fetches by URL (only their links are stored, see MediaLink).
LINK_KINDS = ("video", "soundtrack")
# Everything a job can be steered with, in the order they are stored and sent.
MEDIA_KINDS = IMAGE_KINDS + LINK_KINDS


@dataclass(frozen=True, slots=True)
class VideoParams:
    """What a job asks Together for: checked by bot.domain.options, stored, then sent.

    The one list of the generation parameters. Each field is a column of `jobs` with the same
    name (storage.rows maps them generically) and, but for `media`, a field of Together's
    CreateVideoRequest with the same name (bot.engine.request passes them through). A new
    parameter is a field here, its check in options, and one migration adding its column.
    """

    prompt: str
    width: int
    height: int
    seconds: int
    negative_prompt: str | None = None
    fps: int | None = None
    steps: int | None = None
    seed: int | None = None
    guidance_scale: float | None = None
    output_format: str = "MP4"
    # For models that take these instead of width and height (width and height then hold the
    # frame they make, for keyframes and listings).
    resolution: str | None = None
    ratio: str | None = None
    generate_audio: bool | None = None
    output_quality: int | None = None
    # What steers it (kinds from MEDIA_KINDS, in that order): images' bytes are in job_media,
    # videos' and soundtracks' links in job_links.
    media: tuple[str, ...] = ()

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"


def media_kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    """VideoParams.media for a job with images of these kinds (unknown kinds are left out)."""
    given = set(kinds)
    return tuple(kind for kind in MEDIA_KINDS if kind in given)


class Derivation(StrEnum):
    """How a job was made from another one (its `parent_id`); None for a plain /video."""

    RETRY = "retry"  # the same options and media, a new seed
    REMIX = "remix"  # the same options, media and seed; new words
    EXTEND = "extend"  # continues the parent's clip: the next part of its chain
    JOIN = "join"  # the chain's parts stitched into one video (made by the bot, not Together)
    ANIMATE = "animate"  # an image from a message, as the first frame
    EDIT = "edit"  # a video from a message, edited by instruction


@dataclass(frozen=True, slots=True)
class MediaLink:
    """A file Together fetches by URL: a Discord attachment's signed CDN link.

    The link expires (`expires_at`, from its `ex` parameter; None when it carries none). Where
    the attachment is on a message (`channel_id`, `message_id`, `attachment_id`), fetching
    that message again gives a fresh link; an attachment to a slash command is on no message,
    and its link is used while it lasts.
    """

    kind: str  # one of LINK_KINDS
    url: str
    expires_at: float | None = None
    channel_id: int | None = None
    message_id: int | None = None
    attachment_id: int | None = None

    @property
    def refreshable(self) -> bool:
        return None not in (self.channel_id, self.message_id, self.attachment_id)

    def __repr__(self) -> str:
        # The signed URL is a credential to the file for hours: keep it out of logs.
        return f"MediaLink(kind={self.kind!r}, expires_at={self.expires_at})"


@dataclass(frozen=True, slots=True)
class PendingFile:
    """An attachment a message menu was used on, as that menu's interaction showed it."""

    id: int
    guild_id: int
    user_id: int
    channel_id: int
    message_id: int
    attachment_id: int | None
    url: str
    filename: str
    content_type: str | None
    size: int
    created_at: float


@dataclass(frozen=True, slots=True)
class NewJob:
    """What the /video command accepted, before it has an id."""

    guild_id: int
    channel_id: int
    user_id: int
    application_id: int
    interaction_id: int
    interaction_token: str
    upload_limit: int
    model: str
    params: VideoParams
    created_at: float
    deadline_at: float
    estimated_cost_usd: float = 0.0
    thumbnail: str | None = None
    # Lineage: the job it was made from, how, and for Extend and Join the chain (the id of its
    # first part) and this job's part number in it.
    parent_id: int | None = None
    derivation: Derivation | None = None
    chain_id: int | None = None
    chain_part: int | None = None
    # The requester's language (bot.i18n's catalog name): the job's message speaks it.
    locale: str = "en"


@dataclass(frozen=True, slots=True)
class Job:
    """A job as stored: the request, Together's view of it, and where it stands."""

    id: int
    state: JobState
    guild_id: int
    channel_id: int
    user_id: int
    application_id: int
    interaction_id: int
    interaction_token: str
    message_id: int | None
    upload_limit: int
    model: str
    params: VideoParams
    estimated_cost_usd: float
    together_id: str | None
    provider_status: str | None
    video_url: str | None
    cost_usd: float | None
    failure_reason: str | None
    created_at: float
    updated_at: float
    submitted_at: float | None
    finished_at: float | None
    delivered_at: float | None
    deadline_at: float
    delivery: str | None
    thumbnail: str | None
    announced: bool
    media_pruned_at: float | None = None  # its keyframe images were deleted then
    parent_id: int | None = None
    derivation: Derivation | None = None
    chain_id: int | None = None
    chain_part: int | None = None
    locale: str = "en"
    # The bot's own failure reason as a bot.i18n Text in JSON (see migration 015), or None.
    failure_text: str | None = None

    def __repr__(self) -> str:
        # The interaction token is a credential for 15 minutes: keep it out of logs and reprs.
        return f"Job(id={self.id}, state={self.state.value}, model={self.model!r})"


# --- quota limits and usage -----------------------------------------------------------------

ModelRule = Literal["allow", "deny"]


@dataclass(frozen=True, slots=True)
class GuildLimits:
    """A server's own limits; None means "use the bot-wide default"."""

    user_daily: int | None = None
    guild_daily: int | None = None
    user_concurrent: int | None = None
    monthly_budget_usd: float | None = None
    max_seconds: int | None = None


LIMIT_NAMES = tuple(field.name for field in fields(GuildLimits))


@dataclass(frozen=True, slots=True)
class EffectiveLimits:
    """The limits that apply to one member on one server (see quota.effective_limits)."""

    user_daily: int
    guild_daily: int
    user_concurrent: int
    monthly_budget_usd: float
    max_seconds: int | None  # None: only the model's own limit applies


@dataclass(frozen=True, slots=True)
class MemberUsage:
    """Everything the quota policy needs about one member, read in one transaction.

    The *_oldest fields are the created_at of the oldest counting job in that window: when it
    leaves the window, a slot frees up. For the month it is the oldest job that cost anything
    (a free job frees no budget). None when the window holds no such job.
    """

    user_day: int
    guild_day: int
    user_active: int
    guild_month_usd: float
    user_day_oldest: float | None
    guild_day_oldest: float | None
    guild_month_oldest: float | None


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One member's last 30 days."""

    user_id: int
    jobs: int
    spend_usd: float


@dataclass(frozen=True, slots=True)
class DailyUsage:
    """One UTC day's counting jobs and their spend (see storage.usage for what counts)."""

    day: dt.date
    jobs: int
    spend_usd: float


@dataclass(frozen=True, slots=True)
class UsageReport:
    day_jobs: int
    day_usd: float
    month_jobs: int
    month_usd: float
    top_members: list[UsageRow]


# A flow that picks its model itself: Animate image (an image-to-video model) and Edit video.
FLOWS = ("animate", "edit")
Flow = Literal["animate", "edit"]


# --- server settings and their audit --------------------------------------------------------

ScreenPolicy = Literal["refuse", "allow"]
SAFETY_NAMES = ("age_restricted_only", "screening", "screen_unavailable")


@dataclass(frozen=True, slots=True)
class SafetyRules:
    """A server's safety controls (/videoadmin safety); the defaults are everything off."""

    age_restricted_only: bool = False
    screening: bool = False
    screen_unavailable: ScreenPolicy = "refuse"  # when the moderation model gives no answer
    blocked_words: tuple[str, ...] = ()  # folded (bot.domain.safety.fold), sorted


@dataclass(frozen=True, slots=True)
class ServerRules:
    """Everything /video checks about a server before it reads any usage."""

    limits: GuildLimits
    role_quotas: Mapping[int, int]  # role_id -> that role's daily limit per member
    model_rules: Mapping[str, str]  # model_id -> 'allow' or 'deny'
    channels: frozenset[int]  # empty: every channel
    blocked: frozenset[int]
    # flow ("animate", "edit") -> the server's own model for it; absent: the bot-wide default
    flow_models: Mapping[str, str] = field(default_factory=dict)
    safety: SafetyRules = SafetyRules()


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    guild_id: int
    actor_id: int
    action: str
    detail: str
    created_at: float


@dataclass(frozen=True, slots=True)
class SharedRate:
    """The account's Together request budget as last written (storage/together_budget.py):
    requests per second, no request before `paused_until`, and the count of writes."""

    rate: float
    paused_until: float
    version: int
