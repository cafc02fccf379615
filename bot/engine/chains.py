"""Jobs made from delivered videos: Extend's first frame and Join's stitched video.

Both read the parts from their Discord messages (fetched again, for fresh links), never from
Together, whose links have long expired. Both run while the job is still `queued` (Extend) or
`delivering` (Join), so a restart in the middle simply does the work again: nothing is lost,
and nothing is sent to Together twice.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from bot.engine.ports import ClipJoiner, FrameMaker, JobStore, Notifier
from bot.media.files import DownloadedVideo, DownloadRefused, VideoFormat
from bot.media.keyframes import prepare_keyframe_async
from storage.models import Derivation, Job, JobState

log = logging.getLogger("bot.engine")

# The folders of one job's chain work; removed at start like the delivery folders.
CHAIN_FOLDER_PREFIX = "job-chain-"


class PartGone(Exception):
    """A part's video is no longer in its message (final): the job cannot be made."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def starts_from_parent_frame(job: Job) -> bool:
    """An Extend that starts from its parent's last frame (taken once, then stored)."""
    return job.derivation is Derivation.EXTEND and "first_frame" in job.params.media


def _format(job: Job) -> VideoFormat:
    return "WEBM" if job.params.output_format == "WEBM" else "MP4"


class ChainWork:
    def __init__(
        self,
        store: JobStore,
        notifier: Callable[[], Notifier],
        workdir: Path,
        frame: FrameMaker | None,
        join: ClipJoiner | None,
    ) -> None:
        self._store = store
        self._notifier = notifier
        self._workdir = workdir
        self._frame = frame
        self._join = join

    def _folder(self, job: Job) -> Path:
        self._workdir.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{CHAIN_FOLDER_PREFIX}{job.id}-", dir=self._workdir))

    async def _part(self, part: Job, folder: Path) -> DownloadedVideo:
        if part.state is not JobState.DELIVERED or part.delivery != "attachment":
            raise PartGone(f"part #{part.id} is not a video in its message")
        video = await self._notifier().fetch_delivered(part, folder)
        if video is None:
            raise PartGone(f"the video of #{part.id} is no longer in its message")
        return video

    async def ensure_first_frame(self, job: Job) -> None:
        """Take and store the parent's last frame unless an earlier try already did.

        Raises PartGone (final) or anything else (passing: tried again later).
        """
        if "first_frame" not in await self._store.media(job.id):
            await self.first_frame(job)

    async def first_frame(self, job: Job) -> bytes:
        """The parent's last frame, fitted to the job's frame, as stored for the POST.

        Raises PartGone (final) or anything else (passing: tried again later).
        """
        if self._frame is None:
            raise PartGone("ffmpeg is not installed, so the last frame cannot be taken")
        parent = await self._store.get(job.parent_id) if job.parent_id is not None else None
        if parent is None:
            raise PartGone("the video it continues is no longer known")
        folder = self._folder(job)
        try:
            video = await self._part(parent, folder)
            jpeg = await self._frame(video.path, source_format=_format(parent), workdir=folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        frame = await prepare_keyframe_async(
            "first_frame", jpeg, job.params.width, job.params.height
        )
        await self._store.add_media(job.id, "first_frame", frame)
        log.info("Took the last frame of job %d as its first", parent.id)
        return frame

    async def joined(self, job: Job, dest: Path) -> DownloadedVideo:
        """The chain's delivered parts up to this Join's part, stitched into `dest`.

        Raises DownloadRefused (final) when a part is gone, ffmpeg is missing or fails; any
        other error (Discord could not be reached) is passing.
        """
        if self._join is None:
            raise DownloadRefused(
                "ffmpeg is not installed, so videos cannot be joined", code="no_ffmpeg"
            )
        assert job.chain_id is not None
        parts = [
            p
            for p in await self._store.chain(job.chain_id)
            if p.derivation is not Derivation.JOIN and (p.chain_part or 1) <= (job.chain_part or 0)
        ]
        folder = dest.parent
        try:
            videos = [await self._part(part, folder) for part in parts]
        except PartGone as exc:
            raise DownloadRefused(
                f"The chain cannot be joined: {exc.reason}.", code="part_gone"
            ) from None
        if len(videos) < 2:
            raise DownloadRefused("The chain has fewer than two videos to join.", code="no_parts")
        try:
            joined = await self._join(
                [v.path for v in videos], dest, formats=[_format(p) for p in parts]
            )
        except Exception as exc:
            log.warning("Joining failed: %s", exc)
            raise DownloadRefused("The videos could not be joined.", code="join_failed") from None
        for video in videos:
            video.path.unlink(missing_ok=True)
        log.info("Joined %d parts into %d bytes", len(videos), joined.size)
        return joined
