"""One run with N bot processes on one PostgreSQL database, each running one of N shards.

Each process gets SHARD_COUNT=N, SHARD_IDS=i and a DATABASE_PATH folder of its own (heartbeat,
downloads); the scenario's members are spread over N servers, one on each shard, so every
process answers and works its share of the jobs. The stand-ins, the command schedule and the
records are the single-process runner's (bench.runner).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bench.compression import TimeScale
from bench.runner import RunRecord, collect, drive, stand_ins
from bench.scenarios import PlannedJob, Scenario, Strategy
from sandbox.process import BotProcess

LEASE_SECONDS = 30  # the bot's default: no process is killed here, so no takeover is waited for


@contextlib.asynccontextmanager
async def fresh_database(server_url: str) -> AsyncIterator[str]:
    """A new, empty database on the server (the login needs CREATEDB), dropped afterwards:
    a run never touches the database the URL names, nor sees an earlier run's jobs."""
    name = f"video_bot_bench_{uuid.uuid4().hex[:12]}"
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    parts = urlsplit(server_url)
    try:
        yield urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))
    finally:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _admin(server_url: str, statement: str) -> None:
    connection = await asyncpg.connect(server_url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def run_sharded_case(
    scenario: Scenario,
    strategy: Strategy,
    planned: list[PlannedJob],
    scale: TimeScale,
    workdir: Path,
    members: int,
    processes: int,
    server_url: str,
) -> RunRecord:
    """The scenario with `processes` bot processes; RunRecord.process_stats has one entry each,
    in shard order."""
    async with (
        fresh_database(server_url) as database_url,
        stand_ins(strategy, planned, scale, workdir) as (discord_sb, together_sb, settings),
    ):
        bots = [
            BotProcess(
                discord_sb,
                together_sb,
                workdir / f"shard-{shard}",
                database_url=database_url,
                shard_count=processes,
                shard_ids=(shard,),
                lease_seconds=LEASE_SECONDS,
                **settings,
            )
            for shard in range(processes)
        ]
        servers = [
            discord_sb.add_guild(f"bench shard {shard}", shard=(shard, processes))
            for shard in range(processes)
        ]
        budget = bots[0].settings.together_requests_per_second
        record = RunRecord(scenario, strategy, scale.factor, planned, budget)
        try:
            for bot in bots:
                await bot.start()
            first_request = len(discord_sb.requests)
            # Member i on server i % N: the planned jobs (member = index % members) alternate.
            people = [
                discord_sb.add_member(servers[i % processes], f"member-{i}") for i in range(members)
            ]
            interactions = await drive(record, bots, discord_sb, people, scale)
        finally:
            for bot in bots:
                await bot.close()
        collect(record, interactions, discord_sb, together_sb, first_request)
    return record
