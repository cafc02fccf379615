"""The Discord stand-in's sharding: guilds on chosen shards, IDENTIFY's shard checked, and each
server's events sent to the session running its shard, with two discord.py bots at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from sandbox.discord_api import DiscordSandbox, Member, point_discord_at

TOKEN = "sandbox-bot-token"


class ShardBot(commands.AutoShardedBot):
    """Runs some of two shards; /ping answers with the shards it runs."""

    def __init__(self, shard_ids: list[int]) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents.none(),
            shard_count=2,
            shard_ids=shard_ids,
            guild_ready_timeout=0.05,
        )
        self.label = ",".join(map(str, shard_ids))

    async def setup_hook(self) -> None:
        self.tree.add_command(ping)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None  # discord.py waits 5 s between IDENTIFYs; nothing to pace here


@app_commands.command(description="Which process answers")
async def ping(interaction: discord.Interaction) -> None:
    bot = interaction.client
    assert isinstance(bot, ShardBot)
    await interaction.response.send_message(f"shards {bot.label}")


@pytest.fixture
async def sandbox() -> AsyncIterator[DiscordSandbox]:
    async with DiscordSandbox(bot_token=TOKEN) as instance:
        yield instance


async def started(shard_ids: list[int]) -> tuple[ShardBot, asyncio.Task[None]]:
    bot = ShardBot(shard_ids)
    await bot.login(TOKEN)
    runner = asyncio.create_task(bot.connect())
    await asyncio.wait_for(bot.wait_until_ready(), 10)
    return bot, runner


async def stopped(bot: ShardBot, runner: asyncio.Task[None]) -> None:
    await bot.close()
    await runner


def test_guilds_land_on_the_chosen_shard(sandbox: DiscordSandbox) -> None:
    ids = []
    for count in (1, 2, 3, 16):
        for shard in range(count):
            guild = sandbox.add_guild(f"g{shard}of{count}", shard=(shard, count))
            assert (guild.id >> 22) % count == shard
            ids.append(guild.id)
    assert ids == sorted(set(ids))  # still unique and increasing
    with pytest.raises(ValueError, match="no shard 2"):
        sandbox.add_guild("nowhere", shard=(2, 2))


async def identify(sandbox: DiscordSandbox, shard: Any) -> tuple[aiohttp.WSMessage, list[Any]]:
    """IDENTIFY on a raw socket with this `shard` field: the close frame (if any) and the
    dispatches received before it or before READY's guilds were all sent."""
    frames: list[Any] = []
    url = sandbox.gateway_url + "?v=10&encoding=json"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await ws.receive_json()  # HELLO
        await ws.send_json({"op": 2, "d": {"token": TOKEN, "intents": 1, "shard": shard}})
        while True:
            message = await asyncio.wait_for(ws.receive(), 5)
            if message.type is not aiohttp.WSMsgType.TEXT:
                return message, frames
            frames.append(message.json())
            if frames[0]["t"] == "READY" and len(frames) == 1 + len(frames[0]["d"]["guilds"]):
                return message, frames


@pytest.mark.parametrize(
    "shard",
    [[2, 2], [-1, 2], [0, 0], [1], [0, 1, 2], "0", None, [0.0, 1], [True, 2], [0, "2"], {"0": 1}],
)
async def test_an_identify_with_a_bad_shard_is_closed_with_4010(
    sandbox: DiscordSandbox, shard: Any
) -> None:
    closing, frames = await identify(sandbox, shard)
    assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == 4010
    assert frames == []
    assert sandbox.gateway.sessions == {}


async def test_ready_lists_only_the_shards_guilds(sandbox: DiscordSandbox) -> None:
    on_zero = sandbox.add_guild("zero", shard=(0, 2))
    on_one = sandbox.add_guild("one", shard=(1, 2))
    _, frames = await identify(sandbox, [1, 2])
    ready, *creates = frames
    assert ready["t"] == "READY" and ready["d"]["shard"] == [1, 2]
    listed = {int(g["id"]) for g in ready["d"]["guilds"]}
    assert on_one.id in listed and on_zero.id not in listed
    assert all((guild_id >> 22) % 2 == 1 for guild_id in listed)
    assert {int(frame["d"]["id"]) for frame in creates} == listed


async def test_gateway_bot_recommends_the_configured_shard_count(sandbox: DiscordSandbox) -> None:
    sandbox.gateway.recommended_shards = 4
    headers = {"Authorization": f"Bot {TOKEN}"}
    async with aiohttp.ClientSession() as http:
        response = await http.get(sandbox.api_base + "/gateway/bot", headers=headers)
        assert (await response.json())["shards"] == 4


async def test_two_bots_on_two_shards_each_answer_their_own_servers(
    sandbox: DiscordSandbox,
) -> None:
    guilds = [sandbox.add_guild(f"shard {s}", shard=(s, 2)) for s in (0, 1)]
    members: list[Member] = [sandbox.add_member(g, f"member{i}") for i, g in enumerate(guilds)]
    with point_discord_at(sandbox):
        first, first_runner = await started([0])
        second, second_runner = await started([1])
        try:
            await sandbox.wait_for_shards(0, 1)
            await first.tree.sync()
            sent = [await sandbox.slash_command("ping", member=m) for m in members]
            await sandbox.wait_for(lambda: all(i.original_message for i in sent))
            answers = [i.original_message.content for i in sent if i.original_message]
            assert answers == ["shards 0", "shards 1"]
            assert [i.shard for i in sent] == [0, 1]
            assert {g.id for g in first.guilds} == {
                g.id for g in sandbox.state.guilds.values() if (g.id >> 22) % 2 == 0
            }
            assert {g.id for g in second.guilds} == {
                g.id for g in sandbox.state.guilds.values() if (g.id >> 22) % 2 == 1
            }
        finally:
            await stopped(second, second_runner)
            await stopped(first, first_runner)


async def test_a_server_whose_shard_no_one_runs_gets_no_answer(sandbox: DiscordSandbox) -> None:
    unserved = sandbox.add_guild("shard 0", shard=(0, 2))
    served = sandbox.add_guild("shard 1", shard=(1, 2))
    with point_discord_at(sandbox):
        bot, runner = await started([1])
        try:
            await bot.tree.sync()
            lost = await sandbox.slash_command("ping", member=sandbox.add_member(unserved, "a"))
            answered = await sandbox.slash_command("ping", member=sandbox.add_member(served, "b"))
            await sandbox.wait_for(lambda: answered.original_message is not None)
            assert lost.shard is None and lost.responded is None
            (session,) = sandbox.gateway.live_sessions()
            delivered = [
                frame["d"]["guild_id"]
                for _, frame in session.backlog
                if frame["t"] == "INTERACTION_CREATE"
            ]
            assert delivered == [str(served.id)]
            assert unserved.id not in {g.id for g in bot.guilds}
        finally:
            await stopped(bot, runner)


async def open_session(
    http: aiohttp.ClientSession, sandbox: DiscordSandbox, shard: list[int]
) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(sandbox.gateway_url + "?v=10&encoding=json")
    await ws.receive_json()  # HELLO
    await ws.send_json({"op": 2, "d": {"token": TOKEN, "intents": 1, "shard": shard}})
    ready = await ws.receive_json()
    assert ready["t"] == "READY"
    return ws


async def test_a_client_closing_with_1000_ends_its_session(sandbox: DiscordSandbox) -> None:
    async with aiohttp.ClientSession() as http:
        ws = await open_session(http, sandbox, [0, 1])
        await ws.close(code=1000)
        await sandbox.wait_for(lambda: not sandbox.gateway.sessions)
        resumable = await open_session(http, sandbox, [0, 1])
        await resumable.close(code=4000)  # discord.py's code when it means to resume
        await sandbox.wait_for(lambda: not sandbox.gateway.shard_connected(0))
        assert len(sandbox.gateway.sessions) == 1


async def test_a_left_session_of_another_shard_count_never_takes_a_live_ones_events(
    sandbox: DiscordSandbox,
) -> None:
    on_zero = sandbox.add_guild("zero", shard=(0, 2))
    on_one = sandbox.add_guild("one", shard=(1, 2))
    sandbox.state.replace_commands(None, [{"name": "ping", "description": "Which process"}])
    async with aiohttp.ClientSession() as http:
        old = await open_session(http, sandbox, [0, 1])  # one process ran every shard
        await old.close(code=4000)  # and went away without ending its session
        await sandbox.wait_for(lambda: not sandbox.gateway.shard_connected(0))
        live = await open_session(http, sandbox, [1, 2])  # now a process runs shard 1 of 2
        served = await sandbox.slash_command("ping", member=sandbox.add_member(on_one, "a"))
        kept = await sandbox.slash_command("ping", member=sandbox.add_member(on_zero, "b"))
        assert (served.shard, kept.shard) == (1, 0)  # shard 0: the old session's replay
        frame = await live.receive_json()
        while frame["t"] != "INTERACTION_CREATE":  # its servers' GUILD_CREATEs come first
            frame = await asyncio.wait_for(live.receive_json(), 5)
        assert frame["d"]["guild_id"] == str(on_one.id)
        await live.close()
