"""Extend's last frame and Join's video, made by the engine from the parts' messages."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Sequence
from pathlib import Path

import pytest
from PIL import Image

from bot.clock import ManualClock
from bot.engine import EngineConfig, JobEngine
from bot.media.files import DownloadedVideo, VideoFormat
from storage.models import Derivation, JobState
from tests.unit.fakes import FakeAPI, FakeFetcher, FakeStore, RecordingNotifier, make_job, status


def jpeg(colour: tuple[int, int, int] = (10, 200, 10)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 36), colour).save(out, "JPEG")
    return out.getvalue()


class Parts:
    """Fake ffmpeg: records what it was asked to do."""

    def __init__(self) -> None:
        self.framed: list[Path] = []
        self.joined: list[list[bytes]] = []
        self.frame_error: Exception | None = None

    async def frame(self, source: Path, *, source_format: VideoFormat, workdir: Path) -> bytes:
        self.framed.append(source)
        if self.frame_error is not None:
            raise self.frame_error
        return jpeg()

    async def join(
        self, parts: Sequence[Path], dest: Path, *, formats: Sequence[VideoFormat]
    ) -> DownloadedVideo:
        self.joined.append([p.read_bytes() for p in parts])
        dest.write_bytes(b"".join(p.read_bytes() for p in parts))
        return DownloadedVideo(dest, dest.stat().st_size, "video/mp4")


class ChainHarness:
    def __init__(self, tmp_path: Path) -> None:
        self.clock = ManualClock()
        self.store = FakeStore()
        self.api = FakeAPI(self.clock)
        self.notifier = RecordingNotifier()
        self.parts = Parts()
        config = EngineConfig(
            workdir=tmp_path / "downloads",
            poll_interval=5.0,
            retry_delay=2.0,
            requests_per_second=0,
        )
        self.engine = JobEngine(
            self.store,
            self.api,
            FakeFetcher(),
            self.clock,
            config,
            frame=self.parts.frame,
            join=self.parts.join,
        )
        self.engine.attach(self.notifier)

    def delivered(self, job_id: int, **overrides: object) -> None:
        job = make_job(job_id, self.clock.now(), **overrides)
        self.store.jobs[job_id] = dataclasses.replace(
            job, state=JobState.DELIVERED, delivery="attachment", message_id=100 + job_id
        )
        self.notifier.delivered_files[job_id] = f"clip{job_id}".encode()

    def add(self, job_id: int, **overrides: object) -> None:
        overrides.setdefault("deadline_at", self.clock.now() + 600)
        job = make_job(job_id, self.clock.now(), **overrides)
        self.store.jobs[job.id] = job
        self.engine.enqueue(job)

    async def step(self, seconds: float = 0.0) -> None:
        self.clock.advance(seconds)
        await self.engine.tick()
        await self.engine.drain()


@pytest.fixture
def c(tmp_path: Path) -> ChainHarness:
    return ChainHarness(tmp_path)


async def test_an_extend_starts_from_its_parents_last_frame(c: ChainHarness) -> None:
    c.api.default_script = [status("in_progress")]
    c.delivered(1)
    c.add(
        2,
        parent_id=1,
        derivation=Derivation.EXTEND,
        chain_id=1,
        chain_part=2,
        media=("first_frame",),
    )
    await c.step()
    assert len(c.parts.framed) == 1
    frame = c.store.images[2]["first_frame"]
    assert Image.open(io.BytesIO(frame)).size == (1366, 768)  # fitted to the job's frame
    media = c.api.posts[0].media
    assert media is not None and media.frame_images is not None
    assert c.store.jobs[2].state is JobState.RUNNING


async def test_an_extend_whose_parent_video_is_gone_fails_unsent(c: ChainHarness) -> None:
    c.delivered(1)
    del c.notifier.delivered_files[1]  # the message was deleted
    c.add(
        2,
        parent_id=1,
        derivation=Derivation.EXTEND,
        chain_id=1,
        chain_part=2,
        media=("first_frame",),
    )
    await c.step()
    job = c.store.jobs[2]
    assert job.state is JobState.FAILED and job.together_id is None
    assert "not charged" in (job.failure_reason or "") and not c.api.posts


async def test_discord_down_while_taking_the_frame_leaves_the_job_queued(c: ChainHarness) -> None:
    c.api.default_script = [status("in_progress")]
    c.delivered(1)
    c.notifier.delivered_files[1] = RuntimeError("Discord said 503")
    c.add(
        2,
        parent_id=1,
        derivation=Derivation.EXTEND,
        chain_id=1,
        chain_part=2,
        media=("first_frame",),
    )
    await c.step()
    assert c.store.jobs[2].state is JobState.QUEUED and not c.api.posts
    c.notifier.delivered_files[1] = b"clip1"
    await c.step(5)
    assert c.store.jobs[2].state is JobState.RUNNING and len(c.api.posts) == 1


async def test_a_join_stitches_the_parts_without_together(c: ChainHarness) -> None:
    c.delivered(1)
    c.delivered(2, parent_id=1, derivation=Derivation.EXTEND, chain_id=1, chain_part=2)
    c.delivered(3, parent_id=2, derivation=Derivation.EXTEND, chain_id=1, chain_part=3)
    c.add(4, parent_id=3, derivation=Derivation.JOIN, chain_id=1, chain_part=3)
    await c.step()
    await c.step()
    job = c.store.jobs[4]
    assert job.state is JobState.DELIVERED, job.failure_reason
    assert c.parts.joined == [[b"clip1", b"clip2", b"clip3"]]
    assert c.notifier.delivered[-1][1] == b"clip1clip2clip3"
    assert not c.api.posts and not c.api.gets


async def test_a_join_with_a_part_gone_fails_with_the_reason(c: ChainHarness) -> None:
    c.delivered(1)
    c.delivered(2, parent_id=1, derivation=Derivation.EXTEND, chain_id=1, chain_part=2)
    del c.notifier.delivered_files[2]
    c.add(3, parent_id=2, derivation=Derivation.JOIN, chain_id=1, chain_part=2)
    await c.step()
    await c.step()
    job = c.store.jobs[3]
    assert job.state is JobState.FAILED
    assert "no longer in its message" in (job.failure_reason or "")


async def test_a_join_cut_off_by_a_restart_is_made_again(c: ChainHarness) -> None:
    c.delivered(1)
    c.delivered(2, parent_id=1, derivation=Derivation.EXTEND, chain_id=1, chain_part=2)
    join = make_job(
        3,
        c.clock.now(),
        parent_id=2,
        derivation=Derivation.JOIN,
        chain_id=1,
        chain_part=2,
        message_id=103,
    )
    # Stored as delivering by the process that died mid-join.
    c.store.jobs[3] = dataclasses.replace(join, state=JobState.DELIVERING)
    await c.engine.recover()
    await c.step()
    await c.step()
    assert c.store.jobs[3].state is JobState.DELIVERED
    assert c.parts.joined == [[b"clip1", b"clip2"]] and not c.api.posts
