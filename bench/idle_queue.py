"""`python -m bench.idle_queue`: what a long queue costs the engine while every slot is taken.

N jobs wait for a slot while `max_active` run at Together and take minutes. Nothing is due but
a poll every few seconds, a cosmetic edit per job every 10 s and, once a slot frees, the next
submission. The engine runs its real loop on the system clock against in-memory stand-ins
(the unit tests' store, an API that answers "in_progress", a notifier that draws nothing), so
the figure is the engine's own: loop passes per second and CPU seconds per wall second.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import tempfile
import time
from pathlib import Path

from bot.clock import SystemClock
from bot.engine import EngineConfig, JobEngine, Progress
from bot.media.files import DownloadedVideo
from bot.together.models import CreateVideoRequest, VideoJob
from storage.models import Job
from tests.unit.fakes import FakeStore, make_job


class BusyTogether:
    """Accepts every job and reports it in progress for ever."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.requests = 0

    async def create_video(self, request: CreateVideoRequest) -> VideoJob:
        self.requests += 1
        return VideoJob(id=f"vid_{next(self._ids)}", status="queued")

    async def get_video(self, job_id: str) -> VideoJob:
        self.requests += 1
        return VideoJob(id=job_id, status="in_progress")


class SilentNotifier:
    async def show(self, job: Job, progress: Progress) -> int | None:
        return None

    async def deliver(self, job: Job, video: Path | None) -> int | None:
        return None


async def no_fetch(url: str, dest: Path, **_: object) -> DownloadedVideo:
    raise AssertionError("nothing finishes in this benchmark")


def queued_job(job_id: int, now: float) -> Job:
    # Twenty servers and channels, one member per job, nothing submitted yet.
    return make_job(
        job_id,
        now,
        guild_id=1 + job_id % 20,
        channel_id=100 + job_id % 20,
        user_id=job_id,
        interaction_token="",
        deadline_at=now + 3600,
    )


async def measure(queued: int, seconds: float, warmup: float) -> tuple[float, float, int]:
    """(loop passes per second, CPU seconds per second, Together requests) once settled."""
    now = time.time()
    store = FakeStore(queued_job(i, now) for i in range(1, queued + 1))
    api = BusyTogether()
    with tempfile.TemporaryDirectory() as workdir:
        config = EngineConfig(workdir=Path(workdir), requests_per_second=5.0)
        engine = JobEngine(store, api, no_fetch, SystemClock(), config)  # type: ignore[arg-type]
        engine.attach(SilentNotifier())
        passes = 0
        real_tick = engine.tick

        async def counted_tick() -> None:
            nonlocal passes
            passes += 1
            await real_tick()

        engine.tick = counted_tick  # type: ignore[method-assign]
        for job in store.jobs.values():
            engine.enqueue(job)
        await engine.start()
        try:
            await asyncio.sleep(warmup)  # the slots fill and the first edits go out
            passes, cpu, wall = 0, time.process_time(), time.monotonic()
            await asyncio.sleep(seconds)
            cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        finally:
            await engine.stop(grace=1.0)
    return passes / wall, cpu / wall, api.requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queued", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    args = parser.parse_args()
    rate, cpu, requests = asyncio.run(measure(args.queued, args.seconds, args.warmup))
    print(
        f"{args.queued} queued, 20 running: {rate:.1f} loop passes/s, "
        f"{cpu * 100:.1f} % of a core, {requests} Together requests in all"
    )


if __name__ == "__main__":
    main()
