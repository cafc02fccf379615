"""Typed rows of the storage layer (no aiosqlite here, so the engine can import them)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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
    prompt: str
    width: int
    height: int
    seconds: int
    created_at: float
    deadline_at: float
    negative_prompt: str | None = None
    fps: int | None = None
    steps: int | None = None
    seed: int | None = None
    guidance_scale: float | None = None
    output_format: str = "MP4"
    estimated_cost_usd: float = 0.0
    thumbnail: str | None = None


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
    prompt: str
    negative_prompt: str | None
    width: int
    height: int
    seconds: int
    fps: int | None
    steps: int | None
    seed: int | None
    guidance_scale: float | None
    output_format: str
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

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"

    def __repr__(self) -> str:
        # The interaction token is a credential for 15 minutes: keep it out of logs and reprs.
        return f"Job(id={self.id}, state={self.state.value}, model={self.model!r})"
