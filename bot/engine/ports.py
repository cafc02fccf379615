"""The engine's ports: what it needs from the world, and what each side promises.

Every store method is a compare-and-set or a read; none blocks another caller. Where two
writers race (a moderator's cancel and a submission, two processes, a restart and a late
answer), the docstrings say what the loser sees. The engine imports neither discord,
aiosqlite nor httpx: storage/, bot/together/client.py, bot/media/download.py and
cogs/progress.py implement these.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from bot.media.files import DownloadedVideo, VideoFormat
from bot.media.reencode import FitResult
from bot.together.models import CreateVideoRequest, VideoJob
from storage.models import Job, JobState, MediaLink, SharedRate


class JobStore(Protocol):
    """The jobs table (storage.jobs.JobRepository)."""

    async def get(self, job_id: int) -> Job | None:
        """The job as stored now, or None if there is no such job."""
        ...

    async def transition(
        self, job_id: int, expected: JobState, new_state: JobState, now: float, **changes: object
    ) -> Job | None:
        """Move the job from ``expected`` to ``new_state`` and set ``changes``, atomically.

        Returns the updated job, or None when the job was no longer in ``expected``: another
        writer won, and nothing was changed.
        """
        ...

    async def update(
        self, job_id: int, expected: JobState, now: float, **changes: object
    ) -> Job | None:
        """Set ``changes`` only while the job is in ``expected``; None when it no longer is."""
        ...

    async def in_states(self, states: Iterable[JobState]) -> list[Job]:
        """Every job in one of ``states``, oldest first."""
        ...

    async def unannounced(self) -> list[Job]:
        """Finished jobs whose final state has not reached their message yet."""
        ...

    async def set_message_id(self, job_id: int, message_id: int) -> bool:
        """Record the message if none is recorded; False when one already was (kept)."""
        ...

    async def replace_message_id(self, job_id: int, old_id: int, new_id: int) -> bool:
        """Point the job at a new message where its old one was deleted; False when the job's
        message is no longer ``old_id`` (another writer moved it first)."""
        ...

    async def media(self, job_id: int) -> dict[str, bytes]:
        """The job's keyframe images by kind; empty once pruned or when it had none."""
        ...

    async def links(self, job_id: int) -> list[MediaLink]:
        """The job's video and soundtrack links (Together fetches them); empty if none."""
        ...

    async def add_media(self, job_id: int, kind: str, data: bytes) -> None:
        """Store (or replace) an image of the job made after it was accepted."""
        ...

    async def chain(self, chain_id: int) -> list[Job]:
        """The chain's jobs in part order, its first part (id ``chain_id``) first."""
        ...


class LeaseStore(Protocol):
    """This process's job leases (storage.leases.JobLeases). Several processes may share one
    database: each works only the jobs it holds (ARCHITECTURE.md, "Leases")."""

    @property
    def owner(self) -> str:
        """This process's id, written as the owner of the leases it holds."""
        ...

    async def transition(
        self, job_id: int, expected: JobState, new_state: JobState, now: float, **changes: object
    ) -> Job | None:
        """JobStore.transition, only while this process holds the job's lease; None (nothing
        written) when the state or the lease is no longer as expected."""
        ...

    async def update(
        self, job_id: int, expected: JobState, now: float, **changes: object
    ) -> Job | None:
        """JobStore.update, only while this process holds the job's lease."""
        ...

    async def claim_free(
        self, now: float, until: float, unclaimed_before: float, limit: int
    ) -> list[Job]:
        """Claim up to ``limit`` unfinished jobs whose lease expired (or that nobody claimed
        and were created before ``unclaimed_before``), oldest first; another process racing
        for the same jobs gets the others."""
        ...

    async def claim_all(self, until: float) -> list[Job]:
        """Claim every unfinished job, whoever held it (only when no other process lives)."""
        ...

    async def claim_new(self, job_id: int, now: float, until: float) -> bool:
        """Claim one job; False when another process holds a live lease on it, or it ended."""
        ...

    async def renew(self, until: float) -> set[int]:
        """Extend every lease this process holds, in one write; the ids still held."""
        ...

    async def renew_one(self, job_id: int, until: float) -> bool:
        """Extend one lease; False when this process no longer holds it."""
        ...

    async def release_all(self, now: float) -> None:
        """Give up every lease (clean shutdown): free for any process from ``now``."""
        ...

    async def holder(self, job_id: int) -> str | None:
        """The process holding the job's lease, expired or not; None when nobody does."""
        ...


class ProcessRow(Protocol):
    """A running process's row (storage.processes.ProcessRow): what the engine reads of it."""

    @property
    def id(self) -> str: ...


class ProcessTable(Protocol):
    """This process's row among the running ones (storage.processes.Processes)."""

    async def register(self, now: float) -> None: ...

    async def beat(self, now: float) -> None:
        """Renew this process's heartbeat."""
        ...

    async def remove(self) -> None:
        """Clean shutdown: this process is gone."""
        ...

    async def forget_others(self) -> None:
        """Remove the other processes' rows (they are known to be dead)."""
        ...

    @property
    def me(self) -> str:
        """This process's id."""
        ...

    async def live(self, now: float, lease_seconds: float) -> Sequence[ProcessRow]:
        """The processes whose heartbeat is at most `lease_seconds` old, oldest start first."""
        ...


class BudgetTable(Protocol):
    """The account's Together request budget, shared by every process
    (storage.together_budget.TogetherBudgetTable). Every write raises `version`."""

    async def start(self, rate: float, now: float, alone: bool) -> SharedRate:
        """The row at this process's start; `alone`: the rate starts again at `rate`."""
        ...

    async def read(self) -> SharedRate | None: ...

    async def lower(self, rate: float, paused_until: float, now: float) -> SharedRate | None:
        """Cut to `rate` unless lower already; pause until `paused_until` unless longer already.
        Two processes cutting from one value both land on the lower of their rates."""
        ...

    async def raise_from(self, version: int, rate: float, now: float) -> SharedRate | None:
        """Set `rate` if nobody wrote since `version`; None (nothing written) if somebody did."""
        ...


class VideoAPI(Protocol):
    """Together's /v2/videos (bot.together.TogetherClient); errors are TogetherError."""

    async def create_video(self, request: CreateVideoRequest) -> VideoJob:
        """POST one job. Never retried by the client: an unclear failure may have billed."""
        ...

    async def get_video(self, job_id: str) -> VideoJob:
        """The job's current status at Together."""
        ...


@dataclass(frozen=True)
class Progress:
    """What the engine knows beyond the job itself: its place in line, the time it may take."""

    place: int | None = None  # 1 = next to get a slot
    eta_seconds: float | None = None


class MessageUnreachable(Exception):
    """Raised by a Notifier: the job's channel is gone, or the bot may no longer post there.

    Final, unlike any other error from a Notifier, which counts as passing (an outage, a
    timeout, a rate limit) and is retried. ``reason`` is a plain sentence for logs and the
    job's record.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FileRefused(Exception):
    """Raised by ``Notifier.deliver``: Discord refused the file itself (too large for the
    channel after all); the link is posted instead."""


class Notifier(Protocol):
    """The job's message in Discord (cogs.progress.DiscordNotifier).

    `show` and `deliver` return the id of a message they had to post because the job had none
    (or the one it had was deleted), else None. Both raise ``MessageUnreachable`` when that is
    final; any other error is passing and the call is made again later.
    """

    async def show(self, job: Job, progress: Progress) -> int | None:
        """Render the job's current state in its progress message."""
        ...

    async def deliver(self, job: Job, video: Path | None) -> int | None:
        """Put the result in the job's message: the file, or Together's link when video is None.

        Must be safe to call again after a crash: if the video is already there, do nothing.
        May raise ``FileRefused`` when Discord will not take the file: the link goes instead.
        """
        ...

    async def fresh_link(self, link: MediaLink) -> MediaLink | None:
        """The same attachment's link, fetched again from its message (``link.refreshable``).

        None when the message or the attachment is gone (final); raises on a passing failure.
        """
        ...

    async def fetch_delivered(self, job: Job, folder: Path) -> DownloadedVideo | None:
        """Download the video a delivered job put in its message into ``folder`` (the message
        is fetched again, for a fresh link).

        None when the message or its video is gone, or it was posted as a link (final);
        raises on a passing failure.
        """
        ...


class VideoFetcher(Protocol):
    """Downloads a finished video (bot.media.download_video).

    Raises VideoTooLarge over ``max_bytes``, DownloadError (``permanent`` or not) otherwise.
    """

    async def __call__(
        self, url: str, dest: Path, *, max_bytes: int, expected_format: VideoFormat
    ) -> DownloadedVideo: ...


class VideoFitter(Protocol):
    """Shrinks a video under a size (bot.media.reencode.fit_under_limit); raises CannotFit."""

    async def __call__(
        self, source: Path, limit_bytes: int, workdir: Path, *, source_format: VideoFormat
    ) -> FitResult: ...


class FrameMaker(Protocol):
    """The last frame of a clip as a JPEG (bot.media.frames.last_frame); raises on failure."""

    async def __call__(
        self, source: Path, *, source_format: VideoFormat, workdir: Path
    ) -> bytes: ...


class ClipJoiner(Protocol):
    """Clips joined in order into ``dest`` (bot.media.concat.join_clips); raises on failure."""

    async def __call__(
        self, parts: Sequence[Path], dest: Path, *, formats: Sequence[VideoFormat]
    ) -> DownloadedVideo: ...


# Puts the result in the job's message: the file, or the link when None; returns the id of a
# message it had to post (see Notifier.deliver).
Uploader = Callable[[Job, Path | None], Awaitable[int | None]]


# How a request to Together ended, for the metrics: a small fixed set (bot.engine.budget).
TogetherOutcome = Literal[
    "ok", "rate_limited", "client_error", "server_error", "network", "bad_answer"
]


class Recorder(Protocol):
    """Where the engine reports what it counts (bot.metrics.PrometheusRecorder).

    Every call is cheap, synchronous and never raises. Nothing identifies a member, a server
    or a job: only models, states and outcomes, so the metrics' labels stay few.
    """

    def together_answered(self, outcome: TogetherOutcome) -> None:
        """A request to Together (POST or GET) ended so."""

    def job_finished(self, state: JobState, model: str) -> None:
        """A job reached a final state."""

    def spent(self, model: str, usd: float) -> None:
        """Together reported a job's cost (once per job, when its end is stored)."""

    def delivered(self, delay: float) -> None:
        """Seconds from Together saying done to the video being in Discord."""


class NoRecorder:
    """The default Recorder: counts nothing (no METRICS_PORT, and the unit tests)."""

    def together_answered(self, outcome: TogetherOutcome) -> None:
        pass

    def job_finished(self, state: JobState, model: str) -> None:
        pass

    def spent(self, model: str, usd: float) -> None:
        pass

    def delivered(self, delay: float) -> None:
        pass
