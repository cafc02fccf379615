"""One bot process per database: a second `python -m bot` on the same DATABASE_PATH is refused.

Both bots are real subprocesses against the stand-ins in this process. The second one must
stop before it touches the database (its start-up recovery would fail the first one's
in-flight job), say why in one line, and leave the first one working.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox.discord_api import DiscordSandbox, Interaction, Member
from sandbox.harness import TOGETHER_KEY
from sandbox.process import BotProcess, run_bot_once
from sandbox.together import JobScript, TogetherSandbox
from tests.e2e.test_resilience import ManualClock

READY = "Your video is ready"
SECOND_TIMEOUT = 30.0
DELIVERY_TIMEOUT = 30.0
# Long enough that a job is still running at Together for the second bot's whole attempt;
# the test's clock then jumps ahead to finish it.
LONG_JOB = JobScript(queue_seconds=0.2, run_seconds=600.0)


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
    stand_ins: tuple[DiscordSandbox, TogetherSandbox, Member], tmp_path: Path
) -> AsyncIterator[BotProcess]:
    discord_sb, together_sb, _ = stand_ins
    bot = BotProcess(
        discord_sb, together_sb, tmp_path / "first", poll_interval=0.2, progress_edit_interval=1.0
    )
    try:
        await bot.start()
        yield bot
    finally:
        await bot.close()


async def start_second_bot(first: BotProcess, workdir: Path) -> tuple[int, str, str]:
    """`python -m bot` with the first one's settings (so its DATABASE_PATH); waits for exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    return await run_bot_once(first.env, workdir, timeout=SECOND_TIMEOUT)


async def delivered(discord_sb: DiscordSandbox, interaction: Interaction) -> None:
    def ready() -> bool:
        message = interaction.original_message
        return message is not None and message.embeds[0].get("title") == READY

    await discord_sb.wait_for(ready, timeout=DELIVERY_TIMEOUT)


async def test_second_bot_on_the_same_database_is_refused_and_the_first_keeps_working(
    stand_ins: tuple[DiscordSandbox, TogetherSandbox, Member],
    first_bot: BotProcess,
    clock: ManualClock,
    tmp_path: Path,
) -> None:
    discord_sb, together_sb, member = stand_ins
    in_flight = await discord_sb.slash_command("video", {"prompt": "a fox"}, member=member)
    await discord_sb.wait_for(lambda: bool(together_sb.jobs), timeout=DELIVERY_TIMEOUT)
    identifies = discord_sb.gateway.identifies

    code, out, err = await start_second_bot(first_bot, tmp_path / "second")

    assert code == 2
    assert out == ""
    database = first_bot.database_path.resolve()
    assert err.splitlines() == [
        f"video-bot: DATABASE_PATH {database} is in use by another bot process "
        f"(pid {first_bot.pid}); stop it first, or give this one its own DATABASE_PATH"
    ]
    assert discord_sb.gateway.identifies == identifies, "the second bot never connected"
    assert first_bot.running

    # The first bot's in-flight job was not failed as interrupted, and it still takes commands.
    later = await discord_sb.slash_command("video", {"prompt": "an owl"}, member=member)
    await discord_sb.wait_for(lambda: len(together_sb.jobs) == 2, timeout=DELIVERY_TIMEOUT)
    clock.advance(600.0)
    await delivered(discord_sb, in_flight)
    await delivered(discord_sb, later)
    assert len(together_sb.posts()) == 2, "each job was submitted once"
    assert "interrupted" not in first_bot.log_text()
    assert await first_bot.terminate() == 0


async def test_after_the_holder_is_killed_a_new_bot_starts_on_the_same_database(
    stand_ins: tuple[DiscordSandbox, TogetherSandbox, Member],
    first_bot: BotProcess,
    clock: ManualClock,
) -> None:
    discord_sb, together_sb, member = stand_ins
    first_bot.kill()  # SIGKILL: no clean-up; the OS drops the lock with the process
    await first_bot.wait()

    await first_bot.start()  # same settings, same DATABASE_PATH

    interaction = await discord_sb.slash_command("video", {"prompt": "a heron"}, member=member)
    try:
        await discord_sb.wait_for(lambda: bool(together_sb.jobs), timeout=DELIVERY_TIMEOUT)
        clock.advance(600.0)
        await delivered(discord_sb, interaction)
    except TimeoutError:
        # Seen once in a long run under load, never alone: the restarted bot's log says where.
        print(f"answered: {interaction.responded}\n{first_bot.log_text(2)}")
        raise
    assert "in use" not in first_bot.log_text(2)
    assert await first_bot.terminate() == 0
