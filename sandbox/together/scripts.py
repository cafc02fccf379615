"""Per-job scripts, the jobs they drive, and the record of every request."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Outcome = Literal["completed", "failed", "cancelled"]
Shape = Literal["object", "id_only", "info_errors", "iso_timestamps"]

DEFAULT_ERROR_MESSAGE = "The video could not be generated."

# Reasons a --fail-rate job ends with. The messages read like real provider failures; the
# codes are made up (Together does not publish its job error codes).
FAILURE_REASONS: tuple[tuple[str, str], ...] = (
    (DEFAULT_ERROR_MESSAGE, "generation_failed"),
    ("The prompt was flagged by the content moderation system.", "content_policy_violation"),
    ("The generation timed out. Please try again.", "timeout"),
    ("The model is temporarily overloaded. Please try again later.", "model_overloaded"),
)

FAIL_MARKER = "[fail]"
SLOW_MARKER = "[slow]"
SLOW_FACTOR = 10.0
CANCEL_MARKER = "[cancel]"
PAUSED_MARKER = "[paused]"
PAUSED_STATUS = "paused"
CANCELLED_MESSAGE = "The job was cancelled."
# What a job whose video or audio input could not be fetched ends with (code made up).
FETCH_ERROR_CODE = "invalid_media"


@dataclass(frozen=True)
class JobScript:
    """How one job behaves: its timeline, outcome, response shape and injected faults."""

    queue_seconds: float = 0.5
    run_seconds: float = 2.0
    outcome: Outcome = "completed"
    error_message: str = DEFAULT_ERROR_MESSAGE
    error_code: str | None = None
    shape: Shape = "object"
    cost: float | None = 0.28
    # Answer the POST with this HTTP error and create no job.
    post_status: int | None = None
    # Create the job, then answer 500: the response is "lost" but the job exists and bills.
    post_fail_after_create: bool = False
    # GET number n (1-based, per job) answers this status instead of the job.
    get_faults: dict[int, int] = field(default_factory=dict)
    # Serve the MP4 padded with zero bytes (or cut) to exactly this size.
    video_bytes: int | None = None
    # The POST already answers a whole job with status "failed".
    fail_immediately: bool = False
    # Seconds in the `retry-after` header of every 429 this job's requests get.
    retry_after: int = 1
    # The short link redirects to this absolute URL instead of /files/{id}.mp4.
    redirect_to: str | None = None
    # The file route serves these bytes instead of the fixture MP4 (`video_bytes` still pads).
    video_body: bytes | None = None
    # The file route sends the video this slowly, in small timed chunks.
    trickle_bytes_per_second: float | None = None
    # After the queue, report this status (one Together does not document, e.g. "paused") for
    # `unknown_status_seconds` before in_progress: clients must keep polling unknown statuses.
    unknown_status: str | None = None
    unknown_status_seconds: float = 0.0

    def __post_init__(self) -> None:
        rate = self.trickle_bytes_per_second
        if rate is not None and rate <= 0:
            raise ValueError("trickle_bytes_per_second must be positive")
        if self.unknown_status_seconds < 0:
            raise ValueError("unknown_status_seconds must not be negative")

    @property
    def run_after(self) -> float:
        """Seconds from creation until the job reports in_progress."""
        pause = self.unknown_status_seconds if self.unknown_status else 0.0
        return self.queue_seconds + pause

    @property
    def done_after(self) -> float:
        """Seconds from creation until the job reaches its outcome."""
        return 0.0 if self.fail_immediately else self.run_after + self.run_seconds


@dataclass(frozen=True)
class MediaFetch:
    """One video or audio input the stand-in fetched, as Together fetches them."""

    input: str  # e.g. "media.source_video", "media.audio_inputs[0]"
    url: str
    status: int | None  # HTTP status; None when no answer came (refused, timed out)
    bytes: int
    error: str | None  # why it counts as dead; None when it worked


@dataclass
class SandboxJob:
    """A job the stand-in created; its status follows its script and the injected clock."""

    id: str
    script: JobScript
    body: dict[str, Any]
    created_at: float  # on the injected clock
    created_unix: float  # wall time, only to give responses realistic timestamps
    clock: Callable[[], float] = field(repr=False)
    get_count: int = 0
    downloads: int = 0
    # Downloads the client walked away from before the last byte.
    downloads_cut: int = 0
    # The video and audio inputs fetched so far, in order. While `fetch_pending`, the job
    # cannot complete; a dead input sets `fetch_error` and the job reads failed from then on.
    fetches: list[MediaFetch] = field(default_factory=list)
    fetch_pending: bool = False
    fetch_error: str | None = None
    fetch_failed_at: float | None = None  # on the injected clock

    @property
    def model(self) -> str:
        return str(self.body["model"])

    @property
    def prompt(self) -> str | None:
        prompt = self.body.get("prompt")
        return prompt if isinstance(prompt, str) else None

    @property
    def status(self) -> str:
        return self.status_at(self.clock())

    def elapsed(self, now: float) -> float:
        return now - self.created_at

    def status_at(self, now: float) -> str:
        script = self.script
        if script.fail_immediately or self.fetch_error is not None:
            return "failed"
        elapsed = self.elapsed(now)
        if elapsed < script.queue_seconds:
            return "queued"
        if script.unknown_status and elapsed < script.run_after:
            return script.unknown_status
        if elapsed < script.done_after or self.fetch_pending:
            return "in_progress"
        return script.outcome

    def fail_fetch(self, message: str) -> None:
        """A video or audio input was dead: the job fails, as a real job would."""
        self.fetch_error = message
        self.fetch_failed_at = self.clock()

    def ended_after(self) -> float:
        """Seconds from creation to the job's end (call only once it has ended)."""
        if self.fetch_failed_at is not None and not self.script.fail_immediately:
            return self.fetch_failed_at - self.created_at
        return self.script.done_after

    def unix_after(self, seconds: float) -> float:
        """Wall timestamp `seconds` after creation (scripted time, not real time)."""
        return self.created_unix + seconds


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the stand-in saw it, with the API key redacted."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names; authorization is "Bearer ***"
    auth_ok: bool
    body: Any | None  # parsed JSON, or None when absent or not JSON
    status: int
    time: float  # on the injected clock


def apply_prompt_markers(script: JobScript, prompt: str | None) -> JobScript:
    """Hand-testing hooks: `[fail]` ends the job failed, `[cancel]` cancelled, `[paused]` shows
    the undocumented status "paused" for as long as the run before running, `[slow]` stretches
    the timeline."""
    if not prompt:
        return script
    if FAIL_MARKER in prompt:
        script = dataclasses.replace(script, outcome="failed")
    if CANCEL_MARKER in prompt:
        script = dataclasses.replace(
            script, outcome="cancelled", error_message=CANCELLED_MESSAGE, error_code=None
        )
    if PAUSED_MARKER in prompt:
        script = dataclasses.replace(
            script, unknown_status=PAUSED_STATUS, unknown_status_seconds=script.run_seconds
        )
    if SLOW_MARKER in prompt:
        script = dataclasses.replace(
            script,
            queue_seconds=script.queue_seconds * SLOW_FACTOR,
            run_seconds=script.run_seconds * SLOW_FACTOR,
            unknown_status_seconds=script.unknown_status_seconds * SLOW_FACTOR,
        )
    return script


def maybe_fail(script: JobScript, fail_rate: float, rng: random.Random) -> JobScript:
    """With probability `fail_rate`, turn the script into a failure with a realistic reason."""
    if fail_rate <= 0 or rng.random() >= fail_rate:
        return script
    message, code = rng.choice(FAILURE_REASONS)
    return dataclasses.replace(script, outcome="failed", error_message=message, error_code=code)
