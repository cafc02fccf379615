"""Delivery: bring a finished job's video from Together's link into its Discord message.

A paid video is never given up for a passing fault. The :class:`Courier` keeps each job's
file in a private folder between attempts, so an outage at Discord costs retries, not a new
download; a download that fails for a passing reason is tried again while Together's link may
still work. Only a permanent answer ends a delivery: the file Together sent is refused (an
unsafe address, not a video), or Discord says the message can never be reached.

Like the rest of the engine, this module imports neither discord nor httpx: it talks to a
fetcher, a fitter and an uploader (the ports), and reads time from a Clock.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bot.clock import Clock
from bot.engine.decisions import backoff
from bot.engine.ports import (
    FileRefused,
    MessageUnreachable,
    Notifier,
    Uploader,
    VideoFetcher,
    VideoFitter,
)
from bot.engine.runtime import Runtime
from bot.engine.tracked import Tracked
from bot.engine.transitions import StateWriter
from bot.media.files import DownloadedVideo, DownloadError, VideoFormat, VideoTooLarge
from bot.media.reencode import CannotFit
from storage.models import Derivation, Job, JobState

log = logging.getLogger(__name__)

# The folder of one job's files; recover() removes every such folder left by a crash.
JOB_FOLDER_PREFIX = "job-"


@dataclass(frozen=True)
class DeliveryConfig:
    workdir: Path
    retry_delay: float = 5.0
    # Passing faults are retried at least this often: once Discord is back, a video reaches
    # its channel within one such interval.
    max_retry_delay: float = 60.0
    # The most downloaded for one video, whatever the upload limit.
    max_download_bytes: int = 512 * 1024 * 1024
    # A video may be downloaded up to this many times the upload limit when ffmpeg can shrink
    # it; shrinking by more gives a picture not worth posting over the link.
    reencode_ratio: int = 8
    # How long after Together finished its link is assumed to work. Together publishes no
    # lifetime ("download at once"); past this, a download that keeps failing is given up.
    link_lifetime: float = 3600.0


@dataclass(frozen=True)
class Delivered:
    mode: Literal["attachment", "link"]
    posted_message_id: int | None


@dataclass(frozen=True)
class RetryLater:
    after: float  # seconds
    why: str


@dataclass(frozen=True)
class GiveUp:
    reason: str  # for the member, stored as the job's failure reason


Outcome = Delivered | RetryLater | GiveUp


@dataclass
class _Staged:
    """What one job's delivery has in hand between attempts."""

    folder: Path
    video: Path | None = None  # downloaded (and fitted) and ready to upload
    link_only: bool = False  # post Together's link instead of a file
    failures: int = 0


class Courier:
    """Runs delivery attempts; owns every file under ``config.workdir``."""

    def __init__(
        self,
        fetch: VideoFetcher,
        clock: Clock,
        config: DeliveryConfig,
        fit: VideoFitter | None = None,
        assemble: Callable[[Job, Path], Awaitable[DownloadedVideo]] | None = None,
    ) -> None:
        self._fetch = fetch
        # Makes a Join's video from its chain's parts (bot.engine.chains) instead of a download.
        self._assemble = assemble
        self._fit = fit
        self._clock = clock
        self._config = config
        self._staged: dict[int, _Staged] = {}

    def clean_leftovers(self) -> None:
        """Remove every file a previous run left behind: job folders and stray partials.

        Only names this bot makes are touched, so a DOWNLOAD_DIR shared with other files is
        safe.
        """
        workdir = self._config.workdir
        workdir.mkdir(parents=True, exist_ok=True)
        for leftover in workdir.iterdir():
            # Older releases put "job-N.mp4" and ".job-N.mp4.1234.part" straight in workdir.
            if not leftover.name.lstrip(".").startswith(JOB_FOLDER_PREFIX):
                continue
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)

    def release(self, job_id: int) -> None:
        """Forget the job and remove its files: it is delivered, or given up."""
        staged = self._staged.pop(job_id, None)
        if staged is not None:
            shutil.rmtree(staged.folder, ignore_errors=True)

    def holding(self, job_id: int) -> bool:
        """Whether the job's video is downloaded and waiting for Discord."""
        staged = self._staged.get(job_id)
        return staged is not None and staged.video is not None

    async def attempt(self, job: Job, upload: Uploader) -> Outcome:
        """One try: fetch the video unless it is in hand, then put it in the message."""
        joined = job.derivation is Derivation.JOIN
        assert job.video_url is not None or joined
        staged = self._staged.get(job.id) or self._stage(job)
        if staged.video is None and not staged.link_only:
            problem = await self._prepare(job, staged)
            if problem is not None:
                return problem
        try:
            posted = await upload(job, None if staged.link_only else staged.video)
        except MessageUnreachable as exc:
            log.warning("Its message cannot be reached (%s); giving up", exc)
            if joined:
                return GiveUp(f"The joined video could not be posted here ({exc.reason}).")
            return GiveUp(
                f"The video was made, but it could not be posted here ({exc.reason}). It can "
                f"be downloaded from Together for a short while: {job.video_url}"
            )
        except FileRefused as exc:
            log.info("Discord refused the file (%s); posting the link", exc)
            staged.link_only, staged.video = True, None
            return RetryLater(0.0, "the file was refused")
        except Exception as exc:
            return self._retry(job, staged, f"Discord: {_describe(exc)}")
        mode: Literal["attachment", "link"] = "link" if staged.link_only else "attachment"
        return Delivered(mode, posted)

    def _stage(self, job: Job) -> _Staged:
        self._config.workdir.mkdir(parents=True, exist_ok=True)
        # mkdtemp: a fresh folder only this user can read, so no job ever sees another's file.
        folder = Path(
            tempfile.mkdtemp(prefix=f"{JOB_FOLDER_PREFIX}{job.id}-", dir=self._config.workdir)
        )
        staged = _Staged(folder)
        self._staged[job.id] = staged
        return staged

    async def _prepare(self, job: Job, staged: _Staged) -> Outcome | None:
        """Download and fit the video into the job's folder; an outcome if that fell short."""
        joined = job.derivation is Derivation.JOIN
        expected: VideoFormat = (
            "WEBM" if job.params.output_format == "WEBM" and not joined else "MP4"
        )
        dest = staged.folder / f"video{'.webm' if expected == 'WEBM' else '.mp4'}"
        try:
            if joined:
                if self._assemble is None:
                    return GiveUp("This bot cannot join videos.")
                downloaded = await self._assemble(job, dest)
            else:
                assert job.video_url is not None
                downloaded = await self._fetch(
                    job.video_url, dest, max_bytes=self._cap(job), expected_format=expected
                )
        except VideoTooLarge as exc:
            log.info("Video too large to download (%s); posting the link", exc)
            staged.link_only = True
            return None
        except DownloadError as exc:
            if exc.permanent:
                log.warning("Download refused: %s", exc.reason)
                return GiveUp(f"The video was made, but the file could not be used: {exc.reason}")
            return self._retry_download(job, staged, exc.reason)
        except Exception as exc:
            return self._retry_download(job, staged, _describe(exc))
        staged.video = await self._fitted(job, downloaded, staged, expected)
        staged.link_only = staged.video is None
        if staged.link_only and joined:
            # A Join has no Together link to post instead.
            return GiveUp(
                "The joined video is larger than this server's upload limit, even re-encoded. "
                "Its parts are still in their own messages."
            )
        return None

    def _cap(self, job: Job) -> int:
        """The most to download: what the upload takes, or what re-encoding can bring under it."""
        if self._fit is None:
            return job.upload_limit
        shrinkable = min(
            job.upload_limit * self._config.reencode_ratio, self._config.max_download_bytes
        )
        return max(job.upload_limit, shrinkable)

    async def _fitted(
        self, job: Job, downloaded: DownloadedVideo, staged: _Staged, expected: VideoFormat
    ) -> Path | None:
        """The file to upload, re-encoded to fit the upload limit if needed; None: the link."""
        if downloaded.size <= job.upload_limit:
            return downloaded.path
        if self._fit is None:
            log.info("Video over the upload limit and no ffmpeg; posting the link")
            return None
        try:
            fitted = await self._fit(
                downloaded.path, job.upload_limit, staged.folder, source_format=expected
            )
        except CannotFit as exc:
            log.info("Could not fit the upload limit (%s); posting the link", exc)
            return None
        if fitted.path != downloaded.path:
            downloaded.path.unlink(missing_ok=True)  # only the fitted copy is needed now
        log.info(
            "Re-encoded %d bytes to %d to fit the %d-byte limit",
            downloaded.size,
            fitted.size,
            job.upload_limit,
        )
        return fitted.path

    def _retry_download(self, job: Job, staged: _Staged, why: str) -> Outcome:
        if job.derivation is Derivation.JOIN:  # its parts live in Discord: no link to expire
            return self._retry(job, staged, f"parts: {why}")
        finished = job.finished_at or job.updated_at
        if self._clock.now() >= finished + self._config.link_lifetime:
            log.warning("Could not download the video in time (%s); giving up", why)
            return GiveUp(
                "The video was made, but it could not be downloaded from Together "
                f"before its link expired ({why})."
            )
        return self._retry(job, staged, f"download: {why}")

    def _retry(self, job: Job, staged: _Staged, why: str) -> RetryLater:
        staged.failures += 1
        wait = backoff(staged.failures, self._config.retry_delay, self._config.max_retry_delay)
        log.warning(
            "Delivery attempt %d failed (%s); retrying in %.0f s", staged.failures, why, wait
        )
        return RetryLater(wait, why)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__


class Deliveries:
    """Starts the delivery attempts that are due and records how each one ended."""

    def __init__(
        self,
        runtime: Runtime,
        writer: StateWriter,
        courier: Courier,
        notifier: Callable[[], Notifier],
    ) -> None:
        self._runtime = runtime
        self._writer = writer
        self.courier = courier
        self._notifier = notifier

    def start(self, now: float) -> None:
        for tracked in list(self._runtime.jobs.values()):
            delivering = tracked.job.state is JobState.DELIVERING
            if delivering and not tracked.busy and tracked.due_at <= now:
                self._runtime.spawn_work(tracked, self.attempt(tracked))

    async def attempt(self, tracked: Tracked) -> None:
        """One delivery attempt; the Courier keeps the file between attempts."""
        job = tracked.job

        async def upload(job: Job, video: Path | None) -> int | None:
            async with tracked.edit_lock:  # not in the middle of a progress edit
                return await self._notifier().deliver(job, video)

        outcome = await self.courier.attempt(job, upload)
        if isinstance(outcome, Delivered):
            if outcome.posted_message_id is not None:
                await self._writer.remember_message(tracked, outcome.posted_message_id)
            now = self._runtime.now()
            moved = await self._writer.move(
                tracked,
                JobState.DELIVERED,
                delivered_at=now,
                delivery=outcome.mode,
                interaction_token="",  # the message shows its end: the token is not needed
            )
            # From Together's "completed" (a Join was never at Together: not counted).
            if moved and job.finished_at is not None and job.derivation is not Derivation.JOIN:
                self._runtime.recorder.delivered(max(0.0, now - job.finished_at))
        elif isinstance(outcome, GiveUp):
            await self._writer.move(
                tracked, JobState.FAILED, failure_reason=outcome.reason, delivery="failed"
            )
        else:
            tracked.due_at = self._runtime.now() + outcome.after
            return
        self.courier.release(job.id)
