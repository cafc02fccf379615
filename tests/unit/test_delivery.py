"""The Courier's files: a private folder per job, and what a crash left behind."""

from __future__ import annotations

import stat
from pathlib import Path

from bot.clock import ManualClock
from bot.engine.delivery import Courier, Delivered, DeliveryConfig
from storage.models import Job
from tests.unit.fakes import FakeFetcher, make_job


def courier(workdir: Path, fetch: FakeFetcher | None = None) -> Courier:
    return Courier(fetch or FakeFetcher(), ManualClock(), DeliveryConfig(workdir=workdir))


def finished_job(job_id: int) -> Job:
    return make_job(job_id, 1_700_000_000.0, video_url=f"https://x/{job_id}.mp4")


def test_leftovers_of_every_kind_are_removed_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "job-3-abcd").mkdir()
    (tmp_path / "job-3-abcd" / "video.mp4").write_bytes(b"v")
    (tmp_path / "job-3-abcd" / ".video.mp4.1a2b.part").write_bytes(b"p")
    (tmp_path / "job-2.mp4").write_bytes(b"old layout")
    (tmp_path / ".job-1.mp4.1234.part").write_bytes(b"old partial")
    (tmp_path / "notes.txt").write_text("a self-hoster's own file")
    courier(tmp_path).clean_leftovers()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


async def test_each_job_gets_a_private_folder_removed_once_released(tmp_path: Path) -> None:
    fetch = FakeFetcher()
    runner = courier(tmp_path, fetch)
    uploads: list[Path | None] = []

    async def upload(job: Job, video: Path | None) -> int | None:
        uploads.append(video)
        assert video is not None and video.read_bytes() == b"\0" * fetch.size
        return None

    outcomes = [await runner.attempt(finished_job(n), upload) for n in (1, 2)]
    assert outcomes == [Delivered("attachment", None)] * 2
    folders = [video.parent for video in uploads if video is not None]
    assert len(set(folders)) == 2, "no two jobs share a folder"
    for folder in folders:
        assert folder.parent == tmp_path and folder.name.startswith("job-")
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, "only the bot's user can read it"
    runner.release(1)
    runner.release(2)
    assert list(tmp_path.iterdir()) == []
