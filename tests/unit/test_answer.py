"""The first response shared by /video and Retry, with a fake interaction over a real intake."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import discord
import pytest

from bot.domain.catalog import load_catalog
from bot.domain.quota import QuotaDefaults
from bot.gatekeeper import Gatekeeper
from bot.intake import Intake
from cogs.answer import answer
from storage.db import open_database
from storage.jobs import JobRepository
from storage.models import Job, JobState
from storage.reservations import Reservations
from storage.server_settings import GuildSettingsRepository
from storage.usage import UsageRepository
from tests.unit.fakes import new_job


class RecordingEngine:
    def __init__(self) -> None:
        self.enqueued: list[Job] = []

    def enqueue(self, job: Job) -> None:
        self.enqueued.append(job)


def make_intake(jobs: JobRepository, engine: RecordingEngine) -> Intake:
    catalog = load_catalog(None)
    defaults = QuotaDefaults(user_daily=5, guild_daily=50, user_concurrent=2, monthly_budget_usd=1)
    db = jobs._db
    gate = Gatekeeper(
        GuildSettingsRepository(db), UsageRepository(db), Reservations(db), catalog, defaults
    )
    return Intake(gate, jobs, catalog, engine, "minimax/hailuo-02")


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


class Callback:
    message_id = 4242


class AcceptingResponse:
    def __init__(self) -> None:
        self.sent: dict[str, Any] = {}

    def is_done(self) -> bool:
        return False

    async def send_message(self, *args: Any, **kwargs: Any) -> Any:
        self.sent = kwargs
        return Callback()


class AcceptingInteraction:
    def __init__(self) -> None:
        self.response = AcceptingResponse()


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
        engine = RecordingEngine()
        intake = make_intake(jobs, engine)
        view = discord.ui.View(timeout=None)
        with pytest.raises(type(error)):
            await answer(FakeInteraction(error), intake, job, None, view)  # type: ignore[arg-type]
        stored = await jobs.get(job.id)
        assert stored is not None
        # Left queued, the next start would submit it, and bill it, with no message.
        assert stored.state is JobState.CANCELLED
        assert stored.interaction_token == ""
        assert engine.enqueued == []
    finally:
        await db.close()


async def test_an_accepted_first_response_becomes_the_jobs_message(tmp_path: Path) -> None:
    db = await open_database(tmp_path / "bot.sqlite3")
    try:
        jobs = JobRepository(db)
        job = await jobs.create(new_job(1_700_000_000.0))
        engine = RecordingEngine()
        interaction = AcceptingInteraction()
        view = discord.ui.View(timeout=None)
        await answer(interaction, make_intake(jobs, engine), job, None, view)  # type: ignore[arg-type]
        sent = interaction.response.sent
        assert sent["view"] is view and sent["allowed_mentions"].to_dict() == {"parse": []}
        assert sent["embed"].fields[0].value == "MiniMax Hailuo 02"
        stored = await jobs.get(job.id)
        assert stored is not None and stored.message_id == 4242
        assert stored.state is JobState.QUEUED
        assert [j.message_id for j in engine.enqueued] == [4242]
    finally:
        await db.close()
