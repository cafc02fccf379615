"""A real bot process running one of two gateway shards (SHARD_COUNT=2, SHARD_IDS=1).

It answers /video in a server on shard 1, never hears of a server on shard 0 (the stand-in
delivers that server's events to the session of shard 0, which no process runs here), and
leaves the command sync to the process of shard 0. Two such processes on one database need
PostgreSQL (SQLite's process lock stops the second one), so the whole split comes later.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox.discord_api import DiscordSandbox
from sandbox.harness import TOGETHER_KEY
from sandbox.process import BotProcess
from sandbox.together import TogetherSandbox
from tests.e2e.conftest import FAST_JOB

READY = "Your video is ready"
DELIVERY_TIMEOUT = 30.0
COMMANDS_SYNC = "PUT /applications/{app}/commands"


@pytest.fixture
async def stand_ins() -> AsyncIterator[tuple[DiscordSandbox, TogetherSandbox]]:
    async with (
        DiscordSandbox() as discord_sb,
        TogetherSandbox(api_key=TOGETHER_KEY, default_script=FAST_JOB) as together_sb,
    ):
        yield discord_sb, together_sb


async def test_a_process_on_shard_1_answers_only_its_servers(
    stand_ins: tuple[DiscordSandbox, TogetherSandbox], tmp_path: Path
) -> None:
    discord_sb, together_sb = stand_ins
    on_zero = discord_sb.add_guild("on shard 0", shard=(0, 2))
    on_one = discord_sb.add_guild("on shard 1", shard=(1, 2))
    # The commands are global and stay registered at Discord: as if shard 0's process had
    # synced them earlier, a plain start registers them, then stops.
    registrar = BotProcess(discord_sb, together_sb, tmp_path / "registrar")
    await registrar.start()
    assert await registrar.terminate() == 0
    first_request = len(discord_sb.requests)

    async with BotProcess(
        discord_sb, together_sb, tmp_path / "shard1", shard_count=2, shard_ids=(1,)
    ) as bot:  # started: identified, without syncing
        (session,) = [s for s in discord_sb.gateway.live_sessions() if s.connection]
        assert session.shard == (1, 2)
        assert not any(r.route == COMMANDS_SYNC for r in discord_sb.requests[first_request:])
        assert "Not syncing application commands" in bot.log_text()

        unheard = await discord_sb.slash_command(
            "video", {"prompt": "a fox"}, member=discord_sb.add_member(on_zero, "zoe")
        )
        answered = await discord_sb.slash_command(
            "video", {"prompt": "an owl"}, member=discord_sb.add_member(on_one, "oona")
        )

        def delivered() -> bool:
            message = answered.original_message
            return message is not None and message.embeds[0].get("title") == READY

        try:
            await discord_sb.wait_for(delivered, timeout=DELIVERY_TIMEOUT)
        except TimeoutError:
            print(bot.log_text())
            raise
        assert answered.shard == 1
        assert unheard.shard is None  # sent to no session: no process runs shard 0
        assert unheard.responded is None and unheard.original_message is None
        assert [post.body["prompt"] for post in together_sb.posts()] == ["an owl"]
        assert str(on_zero.id) not in bot.log_text()
        assert await bot.terminate() == 0
