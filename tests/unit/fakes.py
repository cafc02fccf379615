"""Fakes for the engine: an in-memory store, a scripted API, a recording notifier."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable
from pathlib import Path

from bot.clock import ManualClock
from bot.domain.catalog import ModelSpec, Price
from bot.engine import Progress
from bot.media.files import DownloadedVideo, VideoTooLarge
from bot.together.errors import TogetherError
from bot.together.models import CreateVideoRequest, VideoJob
from storage.jobs import MUTABLE_COLUMNS
from storage.models import Job, JobState, MediaLink, NewJob, VideoParams

# The fakes take every VideoParams field as a keyword of its own, as the rows do.
PARAM_NAMES = frozenset(field.name for field in dataclasses.fields(VideoParams))


def params(**overrides: object) -> VideoParams:
    """The parameters of a typical job, with `overrides`."""
    values: dict[str, object] = dict(
        prompt="a cat surfing a wave at sunset", width=1366, height=768, seconds=6
    )
    values.update(overrides)
    return VideoParams(**values)  # type: ignore[arg-type]


def _split(overrides: dict[str, object]) -> tuple[dict[str, object], dict[str, object]]:
    """(the overrides of VideoParams fields, the others)."""
    ours = {name: value for name, value in overrides.items() if name in PARAM_NAMES}
    return ours, {name: value for name, value in overrides.items() if name not in PARAM_NAMES}


def with_changes(job: Job, **changes: object) -> Job:
    """`job` with `changes`, VideoParams fields among them, as a row update would leave it."""
    param_changes, others = _split(changes)
    if param_changes:
        others["params"] = dataclasses.replace(job.params, **param_changes)  # type: ignore[arg-type]
    return dataclasses.replace(job, **others)  # type: ignore[arg-type]


def make_job(job_id: int, now: float, **overrides: object) -> Job:
    param_overrides, overrides = _split(overrides)
    values: dict[str, object] = dict(
        id=job_id,
        state=JobState.QUEUED,
        guild_id=10,
        channel_id=20,
        user_id=30,
        application_id=40,
        interaction_id=50 + job_id,
        interaction_token=f"token-{job_id}",
        message_id=1000 + job_id,
        upload_limit=10 * 1024 * 1024,
        model="minimax/hailuo-02",
        params=params(**param_overrides),
        estimated_cost_usd=0.49,
        together_id=None,
        provider_status=None,
        video_url=None,
        cost_usd=None,
        failure_reason=None,
        created_at=now,
        updated_at=now,
        submitted_at=None,
        finished_at=None,
        delivered_at=None,
        deadline_at=now + 1800,
        delivery=None,
        thumbnail=None,
        announced=True,
        media_pruned_at=None,
    )
    values.update(overrides)
    return Job(**values)  # type: ignore[arg-type]


class FakeStore:
    """The JobStore protocol over a dict, with the same compare-and-set rule as SQLite."""

    def __init__(self, jobs: Iterable[Job] = ()) -> None:
        self.jobs = {job.id: job for job in jobs}
        self.images: dict[int, dict[str, bytes]] = {}
        self.link_map: dict[int, list[MediaLink]] = {}
        self.history: list[tuple[int, JobState, JobState]] = []

    async def get(self, job_id: int) -> Job | None:
        return self.jobs.get(job_id)

    async def transition(
        self, job_id: int, expected: JobState, new_state: JobState, now: float, **changes: object
    ) -> Job | None:
        assert set(changes) <= MUTABLE_COLUMNS, changes
        job = self.jobs.get(job_id)
        if job is None or job.state is not expected:
            return None
        updated = with_changes(job, state=new_state, updated_at=now, **changes)
        self.jobs[job_id] = updated
        if new_state is not expected:
            self.history.append((job_id, expected, new_state))
        return updated

    async def update(
        self, job_id: int, expected: JobState, now: float, **changes: object
    ) -> Job | None:
        return await self.transition(job_id, expected, expected, now, **changes)

    async def media(self, job_id: int) -> dict[str, bytes]:
        return dict(self.images.get(job_id, {}))

    async def links(self, job_id: int) -> list[MediaLink]:
        return list(self.link_map.get(job_id, []))

    async def add_media(self, job_id: int, kind: str, data: bytes) -> None:
        self.images.setdefault(job_id, {})[kind] = data

    async def chain(self, chain_id: int) -> list[Job]:
        found = [j for j in self.jobs.values() if j.id == chain_id or j.chain_id == chain_id]
        return sorted(found, key=lambda j: (j.chain_part or 1, j.id))

    async def set_message_id(self, job_id: int, message_id: int) -> bool:
        job = self.jobs[job_id]
        if job.message_id is not None:
            return False
        self.jobs[job_id] = dataclasses.replace(job, message_id=message_id)
        return True

    async def replace_message_id(self, job_id: int, old_id: int, new_id: int) -> bool:
        job = self.jobs[job_id]
        if job.message_id != old_id:
            return False
        self.jobs[job_id] = dataclasses.replace(job, message_id=new_id)
        return True

    async def unannounced(self) -> list[Job]:
        return [job for job in self.jobs.values() if not job.announced]

    async def in_states(self, states: Iterable[JobState]) -> list[Job]:
        wanted = set(states)
        return [job for job in self.jobs.values() if job.state in wanted]


class FakeAPI:
    """Scripted Together: each created job answers its GETs from a list of statuses."""

    def __init__(self, clock: ManualClock | None = None) -> None:
        self._clock = clock
        self.request_times: list[float] = []
        self._ids = itertools.count(1)
        self.posts: list[CreateVideoRequest] = []
        self.gets: list[str] = []
        self.post_errors: list[TogetherError] = []
        self.post_result: dict[str, object] = {}
        self.scripts: dict[str, list[VideoJob | TogetherError]] = {}
        self.default_script: list[VideoJob | TogetherError] = []

    def _record(self) -> None:
        if self._clock is not None:
            self.request_times.append(self._clock.now())

    async def create_video(self, request: CreateVideoRequest) -> VideoJob:
        self._record()
        self.posts.append(request)
        if self.post_errors:
            raise self.post_errors.pop(0)
        job_id = f"vid_{next(self._ids)}"
        self.scripts[job_id] = list(self.default_script)
        return VideoJob(**{"id": job_id, "status": "queued", **self.post_result})  # type: ignore[arg-type]

    async def get_video(self, job_id: str) -> VideoJob:
        self._record()
        self.gets.append(job_id)
        script = self.scripts[job_id]
        answer = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(answer, TogetherError):
            raise answer
        return answer.model_copy(update={"id": job_id})


def status(name: str, **fields: object) -> VideoJob:
    return VideoJob(id="?", status=name, **fields)  # type: ignore[arg-type]


class FakeFetcher:
    def __init__(self, size: int = 2048) -> None:
        self.size = size
        self.calls: list[tuple[str, Path, int]] = []
        self.formats: list[str] = []
        self.errors: list[Exception] = []  # raised by the next calls, in order

    async def __call__(
        self, url: str, dest: Path, *, max_bytes: int, expected_format: str
    ) -> DownloadedVideo:
        self.calls.append((url, dest, max_bytes))
        self.formats.append(expected_format)
        if self.errors:
            raise self.errors.pop(0)
        if self.size > max_bytes:
            raise VideoTooLarge(self.size, max_bytes)
        dest.write_bytes(b"\0" * self.size)
        return DownloadedVideo(path=dest, size=self.size, content_type="video/mp4")


class RecordingNotifier:
    def __init__(self) -> None:
        self.shown: list[Job] = []
        self.delivered: list[tuple[Job, bytes | None]] = []
        self.fail_deliveries = 0
        self.fail_shows = 0
        # Raised by every deliver (or show) while set, as a Notifier reports a final answer.
        self.deliver_error: Exception | None = None
        self.show_error: Exception | None = None
        self.progress: list[Progress] = []
        self.posted_id = 9999  # the message "posted" for a job that had none
        # fresh_link answers: a link to hand back (None: the message is gone), or an error.
        self.fresh_links: MediaLink | Exception | None = None
        self.refreshed: list[MediaLink] = []
        # job id -> the bytes in its message (fetch_delivered), or an error to raise
        self.delivered_files: dict[int, bytes | Exception] = {}

    async def fetch_delivered(self, job: Job, folder: Path) -> DownloadedVideo | None:
        """The delivered video of `job` from `delivered_files` (None: gone from its message)."""
        body = self.delivered_files.get(job.id)
        if isinstance(body, Exception):
            raise body
        if body is None:
            return None
        path = folder / f"part-{job.id}.mp4"
        path.write_bytes(body)
        return DownloadedVideo(path, len(body), "video/mp4")

    async def fresh_link(self, link: MediaLink) -> MediaLink | None:
        self.refreshed.append(link)
        if isinstance(self.fresh_links, Exception):
            raise self.fresh_links
        return self.fresh_links

    async def show(self, job: Job, progress: Progress) -> int | None:
        self.progress.append(progress)
        if self.show_error is not None:
            raise self.show_error
        if self.fail_shows:
            self.fail_shows -= 1
            raise RuntimeError("Discord said 502")
        self.shown.append(job)
        return self.posted_id if job.message_id is None else None

    async def deliver(self, job: Job, video: Path | None) -> int | None:
        if self.deliver_error is not None:
            error, self.deliver_error = self.deliver_error, None
            raise error
        if self.fail_deliveries:
            self.fail_deliveries -= 1
            raise RuntimeError("Discord said 503")
        self.delivered.append((job, video.read_bytes() if video else None))
        return self.posted_id if job.message_id is None else None


def new_job(now: float, **overrides: object) -> NewJob:
    param_overrides, overrides = _split(overrides)
    values: dict[str, object] = dict(
        guild_id=10,
        channel_id=20,
        user_id=30,
        application_id=40,
        interaction_id=50,
        interaction_token="secret-interaction-token",
        upload_limit=10 * 1024 * 1024,
        model="minimax/hailuo-02",
        params=params(**param_overrides),
        created_at=now,
        deadline_at=now + 1800,
    )
    values.update(overrides)
    return NewJob(**values)  # type: ignore[arg-type]


# A model that takes resolution and ratio instead of width and height (like Wan 2.7).
WAN = ModelSpec(
    id="acme/wan",
    name="Wan",
    resolutions=("720P", "1080P"),
    ratios=("16:9", "9:16"),
    default_resolution="720P",
    default_ratio="16:9",
    durations=(5,),
    default_seconds=5,
    dimensions="resolution_ratio",
    price=Price(usd=0.1, per="second"),
)
