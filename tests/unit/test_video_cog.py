"""The /video cog's first response, with a fake interaction over a real SQLite repository."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import discord
import pytest

from cogs.video import VideoCog
from storage.db import open_database
from storage.jobs import JobRepository
from storage.models import Job, JobState
from tests.unit.fakes import new_job


class RecordingEngine:
    def __init__(self) -> None:
        self.enqueued: list[Job] = []

    def enqueue(self, job: Job) -> None:
        self.enqueued.append(job)


class FakeBot:
    def __init__(self, jobs: JobRepository) -> None:
        self.jobs = jobs
        self.engine = RecordingEngine()

    def model_name(self, model_id: str) -> str:
        return model_id


class FailingResponse:
    def __init__(self, error: BaseException) -> None:
        self.error = error

    def is_done(self) -> bool:
        return False

    async def send_message(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error


class FakeInteraction:
    def __init__(self, error: BaseException) -> None:
        self.response = FailingResponse(error)


@pytest.mark.parametrize(
    "error",
    [
        ConnectionResetError("Connection reset by peer"),
        TimeoutError(),
        discord.DiscordServerError(type("R", (), {"status": 503, "reason": "x"})(), "down"),
    ],
    ids=["oserror", "timeout", "http-503"],
)
async def test_a_first_response_that_fails_in_any_way_cancels_the_job(
    tmp_path: Path, error: BaseException
) -> None:
    db = await open_database(tmp_path / "bot.sqlite3")
    try:
        jobs = JobRepository(db)
        job = await jobs.create(new_job(1_700_000_000.0))
        bot = FakeBot(jobs)
        cog = VideoCog(bot)  # type: ignore[arg-type]
        with pytest.raises(type(error)):
            await cog._answer(FakeInteraction(error), job, None)  # type: ignore[arg-type]
        stored = await jobs.get(job.id)
        assert stored is not None
        # Left queued, the next start would submit it, and bill it, with no message.
        assert stored.state is JobState.CANCELLED
        assert stored.interaction_token == ""
        assert bot.engine.enqueued == []
    finally:
        await db.close()
