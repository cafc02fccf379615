"""The bot on PostgreSQL (DATABASE_URL) end to end: real bot processes against the stand-ins.

Needs TEST_DATABASE_URL like the storage tests (skipped without it, failed when CI=true); each
test gets a database of its own on that server.

- A /video is stored, submitted, delivered; a bot killed mid-job and started again resumes it
  from PostgreSQL (the restart path: JobEngine.recover on this driver).
- Two bots share one database, each running one of two shards: when the one holding a job is
  killed, the other takes the job over once its lease runs out and delivers it, with no
  second POST (the restart rules, across processes).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox.discord_api import DiscordSandbox, Member
from sandbox.harness import TOGETHER_KEY
from sandbox.process import BotProcess
from sandbox.together import TogetherSandbox
from storage.jobs import JobRepository
from storage.models import Job, JobState
from storage.postgres import open_postgres
from tests.databases import own_database
from tests.e2e.test_quotas_flow import MANAGE_GUILD
from tests.e2e.test_resilience import ManualClock
from tests.e2e.test_single_process import LONG_JOB, delivered

DELIVERY_TIMEOUT = 30.0
LEASE_SECONDS = 5  # the shortest allowed: the takeover waits for it to run out


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    async with own_database("e2e") as url:
        yield url


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def stand_ins(
    clock: ManualClock,
) -> AsyncIterator[tuple[DiscordSandbox, TogetherSandbox, Member]]:
    async with (
        DiscordSandbox() as discord_sb,
        TogetherSandbox(api_key=TOGETHER_KEY, clock=clock, default_script=LONG_JOB) as together_sb,
    ):
        yield discord_sb, together_sb, discord_sb.add_member(discord_sb.guild, "member")


@pytest.fixture
async def first_bot(
    stand_ins: tuple[DiscordSandbox, TogetherSandbox, Member], tmp_path: Path, database_url: str
) -> AsyncIterator[BotProcess]:
    discord_sb, together_sb, _ = stand_ins
    bot = BotProcess(
        discord_sb,
        together_sb,
        tmp_path / "first",
        poll_interval=0.2,
        progress_edit_interval=1.0,
        database_url=database_url,
    )
    try:
        await bot.start()
        yield bot
    finally:
        await bot.close()


async def test_a_video_is_delivered_and_a_killed_bot_resumes_its_job(
    stand_ins: tuple[DiscordSandbox, TogetherSandbox, Member],
    first_bot: BotProcess,
    clock: ManualClock,
    database_url: str,
) -> None:
    discord_sb, together_sb, member = stand_ins
    db = await open_postgres(database_url)  # the test's own look
    try:
        jobs = JobRepository(db)
        running = await discord_sb.slash_command("video", {"prompt": "a heron"}, member=member)
        await until_stored(jobs, JobState.RUNNING)

        first_bot.kill()  # SIGKILL while the job runs at Together: its session and lock go too
        await first_bot.wait()
        await first_bot.start()  # same DATABASE_URL: recover() reads the job back and polls it
        clock.advance(600.0)
        await delivered(discord_sb, running)
        assert len(together_sb.posts()) == 1, "resumed, not submitted again"
        [job] = await until_stored(jobs, JobState.DELIVERED)
    finally:
        await db.close()
    assert job.params.prompt == "a heron"
    assert not first_bot.database_path.exists(), "nothing was written to SQLite"
    assert await first_bot.terminate() == 0


async def until_stored(jobs: JobRepository, state: JobState) -> list[Job]:
    """Every job, once all of them are in `state` in PostgreSQL."""
    found: list[Job] = []
    for _ in range(int(DELIVERY_TIMEOUT / 0.05)):
        found = await jobs.in_states(list(JobState))
        if found and all(job.state is state for job in found):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"jobs never all reached {state}: {found}")


async def test_when_the_holder_is_killed_the_other_process_takes_its_job_over(
    stand_ins: tuple[DiscordSandbox, TogetherSandbox, Member],
    clock: ManualClock,
    database_url: str,
    tmp_path: Path,
) -> None:
    discord_sb, together_sb, _ = stand_ins
    guild = discord_sb.add_guild("on shard 0", shard=(0, 2))
    member = discord_sb.add_member(guild, "member")
    elsewhere = discord_sb.add_guild("on shard 1", shard=(1, 2))
    moderator = discord_sb.add_member(elsewhere, "mod", permissions=MANAGE_GUILD)

    def process(name: str, shard: int) -> BotProcess:
        return BotProcess(
            discord_sb,
            together_sb,
            tmp_path / name,  # each its own DATABASE_PATH folder: heartbeat, downloads
            poll_interval=0.2,
            progress_edit_interval=1.0,
            database_url=database_url,
            shard_count=2,
            shard_ids=(shard,),
            lease_seconds=LEASE_SECONDS,
        )

    holder, other = process("holder", 0), process("other", 1)
    db = await open_postgres(database_url)  # the test's own look
    try:
        jobs = JobRepository(db)
        await holder.start()
        await other.start()
        interaction = await discord_sb.slash_command("video", {"prompt": "a fox"}, member=member)
        # Kill only once Together's answer is stored: killed between the POST and that write,
        # the job is `submitting`, and the rules fail it as interrupted rather than risk a
        # second paid POST (a race this test once lost about half the time).
        await until_stored(jobs, JobState.RUNNING)

        # Asked through the other process, the status counts the holder's job too.
        status = await discord_sb.slash_command(
            "videoadmin", {}, member=moderator, subcommand=("status",)
        )
        await discord_sb.wait_for(lambda: status.original_message is not None, timeout=10)
        assert status.original_message is not None
        lines = str(status.original_message.content).splitlines()
        assert lines[1] == "This process runs shards 1 of 2.", lines
        assert "waiting: 0 / 0 · sending: 0 / 0 · generating: 1 / 0 · uploading: 0 / 0" in lines

        holder.kill()  # SIGKILL: its leases are left to run out
        await holder.wait()

        # The job is still running at Together: finish it there; only the other can deliver it.
        clock.advance(600.0)
        await delivered(discord_sb, interaction)
        await until_stored(jobs, JobState.DELIVERED)
        assert len(together_sb.posts()) == 1, "taken over, never sent again"
        assert "interrupted" not in other.log_text()
        assert await other.terminate() == 0
    finally:
        await db.close()
        await holder.close()
        await other.close()
