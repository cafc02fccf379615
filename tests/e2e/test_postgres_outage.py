"""The bot on PostgreSQL through a database outage: the server dies mid-job and comes back.

A real bot process against the stand-ins and a PostgreSQL server of this test's own (started
with scripts/postgres-test-server in a folder of its own, so halting it disturbs no other
test). The server is halted as a crash would stop it (every connection cut, no checkpoint)
while a job runs at Together, stays down longer than the job's lease, and is started again.

Needs PostgreSQL like every other PostgreSQL test: skipped without TEST_DATABASE_URL, failed
when CI=true.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox.discord_api import DiscordSandbox, Member
from sandbox.discord_api.models import Interaction
from sandbox.harness import TOGETHER_KEY
from sandbox.process import REPO_ROOT, BotProcess
from sandbox.together import TogetherSandbox
from storage.jobs import JobRepository
from storage.models import JobState
from storage.postgres import open_postgres
from tests.databases import server_url
from tests.e2e.test_postgres_flow import until_stored
from tests.e2e.test_resilience import ManualClock
from tests.e2e.test_single_process import LONG_JOB, delivered

SCRIPT = REPO_ROOT / "scripts" / "postgres-test-server"
LEASE_SECONDS = 5  # the shortest allowed: the outage outlasts it
OUTAGE_SECONDS = 2 * LEASE_SECONDS + 2
ANSWER_TIMEOUT = 10.0


async def server(command: str, folder: Path) -> str:
    """Run the test server script without blocking the stand-ins (they share this loop)."""
    proc = await asyncio.create_subprocess_exec(
        str(SCRIPT),
        command,
        str(folder),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, f"postgres-test-server {command}: {err.decode()}"
    return out.decode().strip()


@pytest.fixture
async def own_server() -> AsyncIterator[tuple[str, Path]]:
    server_url()  # skipped without PostgreSQL (failed under CI), like every PostgreSQL test
    # Not under pytest's tmp_path: as root the server runs as "nobody", who cannot enter it.
    folder = Path(tempfile.gettempdir()) / f"video-bot-pg-outage-{uuid.uuid4().hex[:8]}"
    url = await server("start", folder)
    try:
        yield url, folder
    finally:
        await server("stop", folder)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def stand_ins(clock: ManualClock) -> AsyncIterator[tuple[DiscordSandbox, TogetherSandbox]]:
    async with (
        DiscordSandbox() as discord_sb,
        TogetherSandbox(api_key=TOGETHER_KEY, clock=clock, default_script=LONG_JOB) as together_sb,
    ):
        yield discord_sb, together_sb


async def stored(url: str, state: JobState) -> None:
    """Wait, through a connection of the test's own, until every job is stored in `state`."""
    db = await open_postgres(url)
    try:
        await until_stored(JobRepository(db), state)
    finally:
        await db.close()


async def answered(discord_sb: DiscordSandbox, interaction: Interaction) -> str:
    await discord_sb.wait_for(
        lambda: interaction.original_message is not None or bool(interaction.followups),
        timeout=ANSWER_TIMEOUT,
    )
    message = interaction.original_message or interaction.followups[0]
    return str(message.content or "")


@pytest.fixture
async def bot(
    stand_ins: tuple[DiscordSandbox, TogetherSandbox],
    own_server: tuple[str, Path],
    tmp_path: Path,
) -> AsyncIterator[BotProcess]:
    discord_sb, together_sb = stand_ins
    process = BotProcess(
        discord_sb,
        together_sb,
        tmp_path / "bot",
        poll_interval=0.2,
        progress_edit_interval=1.0,
        database_url=own_server[0],
        lease_seconds=LEASE_SECONDS,
    )
    try:
        yield process
    finally:
        print(process.log_text())  # shown when the test failed
        await process.close()


async def running_then_crashed(
    discord_sb: DiscordSandbox, bot: BotProcess, member: Member, own_server: tuple[str, Path]
) -> Interaction:
    """Start the bot and a /video; crash the server once the job runs at Together."""
    url, folder = own_server
    await bot.start()
    running = await discord_sb.slash_command("video", {"prompt": "a fox"}, member=member)
    await stored(url, JobState.RUNNING)
    await server("halt", folder)
    return running


async def test_a_job_running_when_the_database_dies_is_delivered_once_it_is_back(
    stand_ins: tuple[DiscordSandbox, TogetherSandbox],
    clock: ManualClock,
    own_server: tuple[str, Path],
    bot: BotProcess,
) -> None:
    discord_sb, together_sb = stand_ins
    member = discord_sb.add_member(discord_sb.guild, "member")
    running = await running_then_crashed(discord_sb, bot, member, own_server)

    # Together finishes the job while the bot cannot store that it did.
    clock.advance(600.0)
    during = await discord_sb.slash_command("video", {"prompt": "an owl"}, member=member)
    refusal = await answered(discord_sb, during)
    await asyncio.sleep(OUTAGE_SECONDS)  # the job's lease runs out meanwhile
    assert bot.running, "the bot died with its database"
    await server("start", own_server[1])

    await delivered(discord_sb, running)
    after = await discord_sb.slash_command("video", {"prompt": "a heron"}, member=member)
    await discord_sb.wait_for(lambda: len(together_sb.posts()) == 2, timeout=ANSWER_TIMEOUT)
    clock.advance(600.0)
    await delivered(discord_sb, after)

    # A member asking during the outage was told so, privately, and nothing was sent for it.
    assert during.ephemeral and "Nothing was submitted" in refusal, refusal
    prompts = [post.body["prompt"] for post in together_sb.posts()]
    assert prompts == ["a fox", "a heron"], "the fox sent once, the owl never, then the heron"
    assert "interrupted" not in bot.log_text()
    # The outage is in the log line by line, and the recoveries too; no traceback.
    log = bot.log_text()
    assert "Traceback" not in log, log
    assert "Lease heartbeat works again" in log


async def test_a_bot_stopped_while_its_database_is_down_stops_and_resumes_once_it_is_back(
    stand_ins: tuple[DiscordSandbox, TogetherSandbox],
    clock: ManualClock,
    own_server: tuple[str, Path],
    bot: BotProcess,
) -> None:
    # A SIGTERM used to leave the bot running: the engine's last writes (leases given back)
    # raised, and the client never closed; `docker stop` would have had to SIGKILL it.
    discord_sb, together_sb = stand_ins
    member = discord_sb.add_member(discord_sb.guild, "member")
    running = await running_then_crashed(discord_sb, bot, member, own_server)
    await asyncio.sleep(1.0)  # its next steps fail meanwhile
    code = await bot.terminate()
    stop_log = bot.log_text()

    await server("start", own_server[1])
    await bot.start()  # the same settings: it takes its job back from the database
    clock.advance(600.0)
    await delivered(discord_sb, running)

    assert code == 0, stop_log
    assert "Traceback" not in stop_log, stop_log
    assert "Could not give the leases back" in stop_log
    assert [post.body["prompt"] for post in together_sb.posts()] == ["a fox"]
